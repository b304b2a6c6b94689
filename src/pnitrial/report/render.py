"""Plain renderers for human-readable tables: Markdown, LaTeX and HTML, no templates."""

from __future__ import annotations

import html
import re

import pandas as pd

_LATEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    # characters pdflatex's utf8 input cannot set in text: Greek letters and symbols as math
    "α": r"\ensuremath{\alpha}",
    "β": r"\ensuremath{\beta}",
    "γ": r"\ensuremath{\gamma}",
    "δ": r"\ensuremath{\delta}",
    "κ": r"\ensuremath{\kappa}",
    "λ": r"\ensuremath{\lambda}",
    "μ": r"\ensuremath{\mu}",
    "µ": r"\ensuremath{\mu}",
    "σ": r"\ensuremath{\sigma}",
    "τ": r"\ensuremath{\tau}",
    "ω": r"\ensuremath{\omega}",
    "Δ": r"\ensuremath{\Delta}",
    "×": r"\ensuremath{\times}",
    "−": r"\ensuremath{-}",
    "±": r"\ensuremath{\pm}",
    "<": r"\ensuremath{<}",
    ">": r"\ensuremath{>}",
    "≤": r"\ensuremath{\leq}",
    "≥": r"\ensuremath{\geq}",
    "√": r"\ensuremath{\surd}",
    "²": r"\textsuperscript{2}",
    "°": r"\ensuremath{^\circ}",
    "–": r"\textendash{}",  # not "--": the minus rule below would read "2--3" as 2, hyphen, minus 3
    "—": r"\textemdash{}",
}
LONG_TABLE_ROWS = 30  # longer tables break across pages (longtable)
_NUMBER_MINUS = re.compile(r"(?<![\w.)])-(?=\d|\.\d|inf)")  # a minus sign, not a hyphen (IL-6, T-score)
_TIMES = re.compile(r"(?<=\s)x(?=\s)")  # "arm x visit"


def _cells(df: pd.DataFrame) -> list[list[str]]:
    return [["" if pd.isna(v) else str(v) for v in row] for row in df.itertuples(index=False)]


def to_markdown(df: pd.DataFrame, title: str = "") -> str:
    """A table in Markdown (pipe table), with an optional ``##`` title; missing cells are empty.

    Parameters
    ----------
    df : DataFrame
        The table; cells are written with str(), pipes escaped.
    title : str, optional
        A heading above the table.

    Returns
    -------
    str

    Examples
    --------
    >>> df = pd.DataFrame({"Outcome": ["IL-6", "CRP"], "p": ["0.012", None]})
    >>> print(to_markdown(df, "Effects"), end="")
    ## Effects
    <BLANKLINE>
    | Outcome | p |
    |---|---|
    | IL-6 | 0.012 |
    | CRP |  |
    """

    def esc(s: str) -> str:
        return s.replace("|", r"\|")

    head = "| " + " | ".join(esc(str(c)) for c in df.columns) + " |"
    rule = "|" + "|".join(["---"] * len(df.columns)) + "|"
    body = ["| " + " | ".join(esc(c) for c in row) + " |" for row in _cells(df)]
    lines = ([f"## {title}", ""] if title else []) + [head, rule, *body]
    return "\n".join(lines) + "\n"


def _latex_escape(s: str) -> str:
    text = "".join(_LATEX.get(ch, ch) for ch in s)
    text = _NUMBER_MINUS.sub(r"\\ensuremath{-}", text)
    return _TIMES.sub(r"\\ensuremath{\\times}", text)


_NUMERIC = re.compile(r"^[-−<>.\d]")


def _align(column: list[str]) -> str:
    """r for a column of numbers (estimates, intervals, p), l for text."""
    filled = [c for c in column if c.strip()]
    return "r" if filled and all(_NUMERIC.match(c.strip()) for c in filled) else "l"


def _label(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return "tab:" + (slug[:60].rstrip("-") or "table")


def to_latex(df: pd.DataFrame, title: str = "") -> str:
    r"""A table for pdflatex: booktabs rules, caption and label, longtable beyond LONG_TABLE_ROWS rows.

    Columns of numbers are right-aligned and text columns left-aligned; special characters are escaped,
    Greek letters and symbols set as math, minus signs (not hyphens) as math minus and a standalone
    ``x`` as the times sign. The document needs ``\usepackage{booktabs}`` (and ``longtable`` for
    long tables).

    Parameters
    ----------
    df : DataFrame
        The table; cells are written with str().
    title : str, optional
        The caption; the label is ``tab:`` and the title's words.

    Returns
    -------
    str

    Examples
    --------
    >>> table = pd.DataFrame({"Outcome": ["IL-1β & TNF"], "Effect": ["-0.26 [-0.5, -0.02]"]})
    >>> print(to_latex(table, "arm x visit"), end="")
    \begin{table}[ht]
    \centering
    \caption{arm \ensuremath{\times} visit}
    \label{tab:arm-x-visit}
    \begin{tabular}{lr}
    \toprule
    Outcome & Effect \\
    \midrule
    IL-1\ensuremath{\beta} \& TNF & \ensuremath{-}0.26 [\ensuremath{-}0.5, \ensuremath{-}0.02] \\
    \bottomrule
    \end{tabular}
    \end{table}
    """
    cells = _cells(df)
    spec = "l" + "".join(_align([row[j] for row in cells]) for j in range(1, len(df.columns)))
    head = " & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\"
    body = [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in cells]
    caption = [r"\caption{" + _latex_escape(title) + "}", r"\label{" + _label(title) + "}"] if title else []
    if len(body) > LONG_TABLE_ROWS:
        lines = [r"\begin{longtable}{" + spec + "}"]
        if caption:
            lines.append(caption[0] + caption[1] + r" \\")
        more = r"\multicolumn{" + str(len(df.columns)) + r"}{l}{\emph{(continued)}} \\"
        lines += [r"\toprule", head, r"\midrule", r"\endfirsthead", more, r"\toprule", head, r"\midrule"]
        lines += [r"\endhead", r"\bottomrule", r"\endfoot", *body, r"\end{longtable}"]
        return "\n".join(lines) + "\n"
    lines = [r"\begin{table}[ht]", r"\centering", *caption, r"\begin{tabular}{" + spec + "}", r"\toprule", head]
    lines += [r"\midrule", *body, r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def html_table(df: pd.DataFrame, title: str = "") -> str:
    """A <table> element (with caption) to embed in a page.

    Parameters
    ----------
    df : DataFrame
        The table; cells are written with str() and HTML-escaped.
    title : str, optional
        The caption.

    Returns
    -------
    str

    Examples
    --------
    >>> df = pd.DataFrame({"Outcome": ["IL-6", "CRP"], "p": ["<0.001", None]})
    >>> print(html_table(df, "Effects"), end="")
    <table><caption>Effects</caption>
    <thead><tr><th>Outcome</th><th>p</th></tr></thead>
    <tbody>
    <tr><td>IL-6</td><td>&lt;0.001</td></tr>
    <tr><td>CRP</td><td></td></tr>
    </tbody></table>
    """
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in df.columns)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in _cells(df))
    cap = f"<caption>{esc(title)}</caption>" if title else ""
    return f"<table>{cap}\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>\n"


def html_page(title: str, body: str) -> str:
    r"""A complete HTML page around a body, with the one small stylesheet of pnitrial's tables.

    Parameters
    ----------
    title : str
        The page title (escaped).
    body : str
        HTML to place in the body, as it is.

    Returns
    -------
    str

    Examples
    --------
    >>> page = html_page("Effects & fits", "<p>Two outcomes.</p>\n")
    >>> page.startswith("<!DOCTYPE html>"), "<title>Effects &amp; fits</title>" in page
    (True, True)
    """
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>'
        + html.escape(title)
        + "</title><style>table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ccc}"
        "td:not(:first-child){text-align:right}</style></head><body>\n" + body + "</body></html>\n"
    )


def to_html(df: pd.DataFrame, title: str = "") -> str:
    r"""A table as a complete HTML page (`html_table` in `html_page`).

    Parameters
    ----------
    df : DataFrame
        The table.
    title : str, optional
        Page title and caption.

    Returns
    -------
    str

    Examples
    --------
    >>> page = to_html(pd.DataFrame({"Outcome": ["IL-6"]}), "Effects")
    >>> "<caption>Effects</caption>" in page, page.endswith("</html>\n")
    (True, True)
    """
    return html_page(title, html_table(df, title))


def write_all(df: pd.DataFrame, stem: str, title: str) -> list[str]:
    """Write stem.md, stem.tex and stem.html; returns the paths.

    Parameters
    ----------
    df : DataFrame
        The table.
    stem : str
        Path of the files without extension.
    title : str
        Heading, caption and page title.

    Returns
    -------
    list of str
        The three paths, in the order above.

    Examples
    --------
    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     paths = write_all(pd.DataFrame({"Outcome": ["IL-6"]}), os.path.join(tmp, "effects"), "Effects")
    ...     names = [os.path.basename(p) for p in paths]
    >>> names
    ['effects.md', 'effects.tex', 'effects.html']
    """
    paths = []
    for ext, fn in (("md", to_markdown), ("tex", to_latex), ("html", to_html)):
        path = f"{stem}.{ext}"
        with open(path, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(fn(df, title))
        paths.append(path)
    return paths
