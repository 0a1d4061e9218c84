"""build_report and build_fraction_curve: the files, the sections found from the data, a self-contained page."""

import re

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs

from liser.reports import TEST_NAME, StudyNotFound, build_fraction_curve, build_report

ALL = ["table2-ravdess", "table2-cremad", "fraction-cremad", "lambda-grid", "search-ravdess"]
UI = "http://127.0.0.1:5000"


@pytest.fixture(scope="module")
def report(fake_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    paths = build_report(fake_store.uri, ALL, out, name="all")
    return out, paths, paths[0].read_text(encoding="utf-8")


def outside_plotlyjs(page: str) -> str:
    # plotly.js itself mentions cdn.plot.ly (a default for geo maps, which no figure here uses); check the rest.
    return page.replace(get_plotlyjs(), "")


def test_files_written(report):
    out, paths, _ = report
    tables = ["table2", "table3", "fraction-curve", "lambda-grid", "history-search-ravdess", "importances-search-ravdess", "confusion"]
    assert paths[0] == out / "all.html"
    assert [p.name for p in paths[1:]] == [f"all-{t}.{ext}" for t in tables for ext in ("csv", "md", "tex")]
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    for csv in paths[1::3]:
        assert len(pd.read_csv(csv)) > 0


def test_page_is_self_contained(report):
    _, _, page = report
    assert page.count(get_plotlyjs()) == 1
    rest = outside_plotlyjs(page)
    assert "<script src" not in page and "cdn.plot.ly" not in rest
    assert "<link" not in rest and "@import" not in rest and "url(" not in rest and "<img" not in rest and "<iframe" not in rest
    for address in re.findall(r"https?://[^\s\"'<>]+", rest):
        assert address.startswith(UI + "/#/experiments/"), address


def test_one_plotly_div_per_figure(report):
    out, _, page = report
    confusion = pd.read_csv(out / "all-confusion.csv")[["dataset", "config"]].drop_duplicates()
    figures = 2 + 2 + 1 + 1 + len(confusion)  # fraction UAR/WAR, λ grid + search scatter, history, importances, confusions
    assert page.count('class="plotly-graph-div"') == figures == page.count("Plotly.newPlot(")


def test_page_states_provenance_and_the_test(fake_store, report):
    _, _, page = report
    for text in (*ALL, "Table 2 (RAVDESS): five configurations", "TPE over the distillation knobs (RAVDESS)", "ravdess", "cremad",
                 "manifest-ravdess", "manifest-cremad", "manifest-avclips", "0123456789abcdef0123456789abcdef01234567", "0.1.0",
                 "speech:0=aaravdess,video:all=bb", TEST_NAME, "n = the number of paired (fold, seed) runs", fake_store.uri):
        assert text in page, text


def test_page_links_the_runs_behind_the_tables(fake_store, report):
    out, _, page = report
    rows = pd.read_csv(out / "all-table2.csv")
    for run_id, study in zip(rows["run_id"], rows["study"]):
        assert f'href="{UI}/#/experiments/{fake_store.experiments[study]}/runs/{run_id}"' in page
    for name in ("failed_trial", "running_trial", "killed_trial", "deleted_fold", "running_fold", "failed_fold"):
        assert fake_store.ignored[name] not in page


def test_sections_follow_the_data(fake_store, tmp_path):
    paths = build_report(fake_store.uri, ["table2-cremad"], tmp_path, ui_url="http://mlflow.lab:5000/")
    assert [p.name for p in paths] == ["table2-cremad.html"] + [f"table2-cremad-{t}.{e}" for t in ("table2", "confusion") for e in ("csv", "md", "tex")]
    page = paths[0].read_text(encoding="utf-8")
    for heading in ("Table 3", "Figure 2", "λ grid", "Optimisation history", "Parameter importances"):
        assert f"<h2>{heading}" not in page
    assert "<h2>Table 2" in page and "<h2>Confusion matrices" in page
    assert page.count('class="plotly-graph-div"') == 5  # the confusion matrices only
    assert "http://mlflow.lab:5000/#/experiments/" in page and UI not in outside_plotlyjs(page)


def test_default_name_joins_the_studies(fake_store, tmp_path):
    paths = build_report(fake_store.uri, ["table2-ravdess", "table2-cremad"], tmp_path)
    assert paths[0].name == "table2-ravdess+table2-cremad.html"


def test_fraction_curve_page_alone(fake_store, tmp_path):
    paths = build_fraction_curve(fake_store.uri, ["fraction-cremad"], tmp_path)
    assert [p.name for p in paths] == [f"fraction-cremad-fraction-curve.{e}" for e in ("html", "csv", "md", "tex")]
    page = paths[0].read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()) == 1 and page.count('class="plotly-graph-div"') == 2
    assert "Figure 2 (CREMA-D)" in page and TEST_NAME in page
    curve = pd.read_csv(paths[1])
    assert len(curve) == 6 and set(curve["config"]) == {"no-dstl", "vid-sp-dstl"}


def test_unknown_study(fake_store, tmp_path):
    with pytest.raises(StudyNotFound, match="no study 'nope'.*studies there: .*table2-ravdess"):
        build_report(fake_store.uri, ["nope"], tmp_path)
    assert not list(tmp_path.iterdir())


def test_other_methods_grids(methods_store, tmp_path):
    paths = build_report(methods_store.uri, ["nsl-grid", "emodistill-tau"], tmp_path, name="grids")
    tables = ["table2", "methods", "emodistill-grid", "nsl-grid"]  # no confusion matrices were logged
    assert [p.name for p in paths] == ["grids.html"] + [f"grids-{t}.{e}" for t in tables for e in ("csv", "md", "tex")]
    page = paths[0].read_text(encoding="utf-8")
    assert "<h2>NSL grid (n × α): validation choice" in page and "<h2>EmoDistill grid: validation choice" in page
    assert "<h2>λ grid" not in page
    assert page.count('class="plotly-graph-div"') == 2  # the n × α heatmap and the τ_P line
    nsl = pd.read_csv(tmp_path / "grids-nsl-grid.csv")
    assert list(nsl.columns[:5]) == ["study", "dataset", "config", "nsl_neighbors", "nsl_alpha"] and len(nsl) == 4
    assert nsl.loc[nsl["chosen"], ["nsl_neighbors", "nsl_alpha"]].values.tolist() == [[6, 0.1]]
    emo = pd.read_csv(tmp_path / "grids-emodistill-grid.csv")
    assert emo["tau_prosodic"].tolist() == [0.1, 0.5, 2.0] and emo["chosen"].tolist() == [False, True, False]
