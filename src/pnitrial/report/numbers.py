"""Numbers as people read them: effects to three significant digits, p values in APA style.

One place decides how an effect, its interval and a p value are printed, so the summary, the
readable tables and the figures agree. Machine-readable CSVs keep their own precision
(`pnitrial.report.precision`); this module is for text.
"""

from __future__ import annotations

import math

MINUS = "\u2212"


def _missing(x: float | None) -> bool:
    return x is None or not isinstance(x, int | float) or not math.isfinite(x)


def decimals_for(*values: float, digits: int = 3) -> int:
    """Decimals that give the largest of `values` `digits` significant digits (0 for 100 and above).

    Examples
    --------
    >>> decimals_for(2.6), decimals_for(0.26), decimals_for(0.05, -0.8, 0.9), decimals_for(125.0)
    (2, 3, 3, 0)
    """
    finite = [abs(v) for v in values if not _missing(v) and v != 0]
    if not finite:
        return digits - 1
    return min(max(digits - 1 - math.floor(math.log10(max(finite))), 0), 6)


def number(x: float | None, decimals: int, minus: str = "-") -> str:
    """`x` with `decimals` decimals; never ``-0.00``; an empty string for a missing value.

    Examples
    --------
    >>> number(-0.0004, 2), number(-2.6, 2, minus=MINUS), number(float("nan"), 2)
    ('0.00', '−2.60', '')
    """
    if _missing(x):
        return ""
    text = f"{x:.{decimals}f}"
    if float(text) == 0:
        text = text.lstrip("-")
    return text.replace("-", minus)


def effect_text(estimate: float | None, low: float | None, high: float | None, minus: str = "-") -> str:
    """Estimate [low, high], the three with the decimals that give the estimate three significant digits.

    No more decimals than give the interval's half-width three significant digits, so an estimate
    near zero reads ``0.00 [-1.20, 1.21]`` rather than ``0.000312 [...]``.

    Parameters
    ----------
    estimate, low, high : float
        The effect and its confidence limits.
    minus : str, optional
        The minus sign: ``-`` for tables (LaTeX turns it into a math minus), U+2212 for figures.

    Returns
    -------
    str
        ``''`` when the estimate is missing; the estimate alone when the limits are.

    Examples
    --------
    >>> effect_text(-2.6, -4.9, -0.306), effect_text(0.26, 0.031, 0.49), effect_text(5.34, -0.47, 11.15)
    ('-2.60 [-4.90, -0.31]', '0.260 [0.031, 0.490]', '5.34 [-0.47, 11.15]')
    >>> effect_text(0.0003, -1.2, 1.21), effect_text(-0.667, -5.019, 3.684), effect_text(1.29, 1.09, 1.52, minus=MINUS)
    ('0.00 [-1.20, 1.21]', '-0.67 [-5.02, 3.68]', '1.29 [1.09, 1.52]')
    """
    if _missing(estimate):
        return ""
    if _missing(low) or _missing(high):
        return number(estimate, decimals_for(estimate), minus)
    # the estimate's three significant digits, but no more decimals than the interval's width carries
    d = min(decimals_for(estimate), decimals_for((high - low) / 2))
    return f"{number(estimate, d, minus)} [{number(low, d, minus)}, {number(high, d, minus)}]"


def p_value(p: float | None) -> str:
    """A p value in APA style (7th ed., 6.36): three decimals without the leading zero, ``< .001``.

    Examples
    --------
    >>> p_value(0.00347), p_value(0.0004), p_value(0.2), p_value(0.9996), p_value(None)
    ('.003', '< .001', '.200', '> .999', '')
    """
    if _missing(p):
        return ""
    if p < 0.001:
        return "< .001"
    if p > 0.999:
        return "> .999"
    return f"{p:.3f}".lstrip("0")


def p_text(p: float | None, name: str = "p") -> str:
    """``p = .003`` or ``p < .001``, for running text and figure annotations.

    Examples
    --------
    >>> p_text(0.00347), p_text(1e-5, "p(FDR)"), p_text(float("nan"))
    ('p = .003', 'p(FDR) < .001', '')
    """
    value = p_value(p)
    if not value:
        return ""
    return f"{name} {value}" if value[0] in "<>" else f"{name} = {value}"
