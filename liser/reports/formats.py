"""Writing a :class:`~liser.reports.tables.Table` to disk: CSV (numbers), Markdown and LaTeX (formatted cells).

The CSV holds the tidy numbers so other tools can read them back; Markdown and LaTeX
hold the paper-style layout. Markdown is written here (``tabulate`` is not a
dependency); LaTeX goes through pandas (``jinja2``), with its special characters escaped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from liser.reports.tables import Table

LATEX_SPECIAL = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
    "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "−": "$-$", "—": "---", "<": r"$<$", ">": r"$>$",
    "λ": r"$\lambda$", "·": r"$\cdot$",
}


def latex_escape(text) -> str:
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def _flat(label) -> str:
    return " ".join(str(p) for p in label if str(p)) if isinstance(label, tuple) else str(label)


def to_markdown(display: pd.DataFrame) -> str:
    """A GitHub pipe table; the index becomes the first column(s), column levels are joined with spaces."""
    frame = display.reset_index()
    heads = [_flat(c) for c in frame.columns]
    cells = [[str(v).replace("|", r"\|").replace("\n", " ") for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines) + "\n"


def to_latex(display: pd.DataFrame, caption: str = "") -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs}``), every label and cell escaped."""
    frame = display.map(latex_escape)
    frame.index = frame.index.map(lambda v: tuple(latex_escape(p) for p in v) if isinstance(v, tuple) else latex_escape(v))
    frame.index.names = [latex_escape(n) if n else n for n in display.index.names]
    frame.columns = frame.columns.map(lambda v: tuple(latex_escape(p) for p in v) if isinstance(v, tuple) else latex_escape(v))
    return frame.to_latex(escape=False, multicolumn=True, multicolumn_format="c", caption=latex_escape(caption) or None)


def write_table(table: Table, stem: Path | str) -> list[Path]:
    """``<stem>.csv``, ``<stem>.md`` and ``<stem>.tex``; returns their paths."""
    stem = str(stem)
    paths = [Path(stem + ".csv"), Path(stem + ".md"), Path(stem + ".tex")]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    table.data.to_csv(paths[0], index=False)
    md = f"## {table.title}\n\n{to_markdown(table.display)}" + (f"\n{table.note}\n" if table.note else "")
    paths[1].write_text(md, encoding="utf-8")
    paths[2].write_text(to_latex(table.display, table.title), encoding="utf-8")
    return paths
