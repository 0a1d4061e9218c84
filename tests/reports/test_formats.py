"""Tables on disk: the CSV reads back as the same numbers, Markdown and LaTeX parse and escape."""

import pandas as pd
import pytest

from liser.reports import tables
from liser.reports.formats import latex_escape, to_markdown, write_table


@pytest.fixture(scope="module")
def table2(loaded):
    return tables.configuration_table(loaded)


def test_csv_reads_back_the_numbers(table2, tmp_path):
    csv, md, tex = write_table(table2, tmp_path / "r-table2")
    assert [p.name for p in (csv, md, tex)] == ["r-table2.csv", "r-table2.md", "r-table2.tex"]
    back = pd.read_csv(csv)
    back["baseline"] = back["baseline"].fillna("")  # the baseline rows' empty cell reads back as missing
    pd.testing.assert_frame_equal(back, table2.data.reset_index(drop=True), check_dtype=False, check_exact=True)


def test_markdown_is_a_pipe_table_of_the_display_cells(table2, tmp_path):
    _, md, _ = write_table(table2, tmp_path / "r-table2")
    lines = [ln for ln in md.read_text(encoding="utf-8").splitlines() if ln.startswith("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
    assert rows[0] == ["Configuration", "ravdess UAR", "ravdess WAR", "ravdess n", "cremad UAR", "cremad WAR", "cremad n"]
    assert set(rows[1]) == {"---"}
    assert len(rows) == 2 + len(table2.display)
    for row, (config, cells) in zip(rows[2:], table2.display.iterrows()):
        assert row == [config, *cells.tolist()]


def test_markdown_escapes_pipes():
    frame = pd.DataFrame({"a": ["x|y"]}, index=pd.Index(["r"], name="i"))
    assert r"x\|y" in to_markdown(frame)


def test_latex_is_escaped_booktabs(table2, tmp_path):
    _, _, tex = write_table(table2, tmp_path / "r-table2")
    text = tex.read_text(encoding="utf-8")
    assert r"\begin{tabular}" in text and r"\toprule" in text and r"\bottomrule" in text
    assert r"\multicolumn{3}{c}{ravdess}" in text and r"\multicolumn{3}{c}{cremad}" in text
    assert r"$\pm$" in text and r"\%" in text and "±" not in text
    body = text[text.index(r"\midrule"):text.index(r"\bottomrule")]
    assert body.count(r"\\") == len(table2.display)


def test_latex_escape():
    assert latex_escape("a_b & 5 % ± λ < #") == r"a\_b \& 5 \% $\pm$ $\lambda$ $<$ \#"
