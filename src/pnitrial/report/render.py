"""Plain renderers for human-readable tables: Markdown, LaTeX and HTML, no templates."""

from __future__ import annotations

import html

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
}


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
    return "".join(_LATEX.get(ch, ch) for ch in s)


def to_latex(df: pd.DataFrame, title: str = "") -> str:
    r"""A table as a LaTeX ``table`` float: first column left-aligned, the others right, special characters escaped.

    Parameters
    ----------
    df : DataFrame
        The table; cells are written with str().
    title : str, optional
        The caption.

    Returns
    -------
    str

    Examples
    --------
    >>> print(to_latex(pd.DataFrame({"Outcome": ["IL_6 & TNF"], "p (%)": ["5"]})), end="")
    \begin{table}[ht]
    \centering
    \begin{tabular}{lr}
    \hline
    Outcome & p (\%) \\
    \hline
    IL\_6 \& TNF & 5 \\
    \hline
    \end{tabular}
    \end{table}
    """
    spec = "l" + "r" * (len(df.columns) - 1)
    lines = [r"\begin{table}[ht]", r"\centering"]
    if title:
        lines.append(r"\caption{" + _latex_escape(title) + "}")
    lines += [
        r"\begin{tabular}{" + spec + "}",
        r"\hline",
        " & ".join(_latex_escape(str(c)) for c in df.columns) + r" \\",
        r"\hline",
    ]
    lines += [" & ".join(_latex_escape(c) for c in row) + r" \\" for row in _cells(df)]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
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
