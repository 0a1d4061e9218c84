"""`liser demo --quick --methods all` to the end as a user runs it, then its pages and the MLflow UI in a real Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from browser import Browser
from liser import tracking
from liser.targets import TeacherOutputs

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group(name="demo")]  # one worker runs the demo once for all its tests

# The quick run's own screenshots: LISER_SCREENSHOTS=dashboards/screenshots pytest -m ray tests/test_demo.py writes
# them to dashboards/screenshots/quick (the README's come from a full demo: tests/test_readme_screenshots.py)
SHOTS = str(Path(os.environ["LISER_SCREENSHOTS"]) / "quick") if os.environ.get("LISER_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run([sys.executable, "-m", "liser.cli", "demo", "--quick", "--methods", "all", "-q", "--root", str(root)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return root, done.stdout


@pytest.fixture(scope="module")
def browser():
    b = Browser()
    yield b
    b.close()


def test_demo_runs_the_chain_and_writes_dashboards_from_mlflow(demo):
    root, out = demo
    for step in ("[1/5] corpus", "[2/5] teachers", "[3/5] studies demo (4 trials x 2 folds) and demo-fraction (2 trials x 2 folds) side by side",
                 "[4/5] study demo-emodistill", "[5/5] dashboards"):
        assert step in out
    assert "Hidden-truth accuracy on the unlabeled clips: no-dstl student" in out  # the answer, in the terminal
    assert "Table 2: configurations (test UAR over folds" in out and "vid-sp-dstl" in out.split("Table 2: configurations")[-1]
    assert (root / "data/synth/teachers/speech-fold0.npz").exists() and (root / "data/synth/teachers/video.npz").exists()
    video = TeacherOutputs.load(root / "data/synth/teachers/video.npz")  # the small DFER fitted on the face videos
    assert video.meta["teacher"] == "small-dfer" and video.meta["hidden_truth"]["column"] == "ferv_class"
    assert "teacher diagnosis of" in out and "truth acc" in out  # the diagnosis summary, scored on the hidden truth
    page = root / "data/synth/teachers/teachers.html"
    assert f"teacher diagnosis: {page}" in out and "Speech-video agreement" in page.read_text()
    boards = root / "dashboards"
    assert {"demo.html", "demo-fraction-curve.html"} <= {p.name for p in boards.glob("*.html")}
    for table in ("table2", "table3"):
        for ext in ("csv", "md", "tex"):
            assert (boards / f"demo-{table}.{ext}").stat().st_size > 0
    assert f"dashboard: {boards / 'demo.html'}" in out

    c = tracking.client(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    for name, trials in (("demo", 4), ("demo-fraction", 2)):
        runs = c.search_runs([c.get_experiment_by_name(name).experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags["liser.role"] == "trial"]
        assert len(parents) == trials and all(r.info.status == "FINISHED" for r in runs)
        roles = [r.data.tags["liser.role"] for r in runs]
        assert roles.count("fold") == trials * 2 and roles.count("teachers") == 1  # 2 fold runs per trial, one teacher diagnosis
        truth = [r.data.metrics.get("unlabeled_truth_accuracy") for r in runs if r.data.tags["liser.role"] == "fold"]
        assert all(a is not None and 0 <= a <= 1 for a in truth)  # every student scored on the unlabeled clips' truth

    # the Table 2 CSV holds what MLflow holds: no-dstl's mean test UAR over its fold runs
    demo_exp = c.get_experiment_by_name("demo").experiment_id
    folds = [r for r in c.search_runs([demo_exp], max_results=1000) if r.data.tags["liser.role"] == "fold" and r.data.tags["liser.config"] == "no-dstl"]
    table = pd.read_csv(boards / "demo-table2.csv")
    row = table[table["config"] == "no-dstl"].iloc[0]
    assert row["test_uar_mean"] == pytest.approx(sum(r.data.metrics["test_uar"] for r in folds) / len(folds))
    assert row["run_id"] == next(iter({r.data.tags["mlflow.parentRunId"] for r in folds}))

    again = subprocess.run([sys.executable, "-m", "liser.cli", "demo", "--quick", "--methods", "all", "-q", "--root", str(root)],
                           cwd=root, capture_output=True, text=True, timeout=600)  # resumes: nothing trained twice
    assert again.returncode == 0, again.stderr[-2000:]
    assert "reusing" in again.stdout and again.stdout.count("0 to run") == 4  # demo, demo-fraction, demo-emodistill, demo-nsl


def test_every_method_runs_as_a_study_and_reaches_the_dashboards(demo):
    """EmoDistill and NSL: real teachers fitted per fold (upstream on the source corpus), a study each, a page each."""
    root, out = demo
    synth = root / "data" / "synth"
    for name in ("prosodic-fold0.npz", "prosodic-fold1.npz", "linguistic-fold0.npz", "linguistic-fold1.npz"):
        assert (synth / "emodistill-teachers" / name).exists()
    assert (synth / "nsl-teachers" / "upstream.npz").exists()
    c = tracking.client(f"sqlite:///{root / 'mlflow' / 'mlflow.db'}")
    for name, trials, method in (("demo-emodistill", 2, "emodistill"), ("demo-nsl", 2, "nsl")):  # --quick: first and last rows
        runs = c.search_runs([c.get_experiment_by_name(name).experiment_id], max_results=1000)
        parents = [r for r in runs if r.data.tags["liser.role"] == "trial"]
        assert len(parents) == trials and all(r.info.status == "FINISHED" for r in runs)
        assert method in {r.data.params.get("method") for r in parents}
        page = (root / "dashboards" / f"{name}.html").read_text()
        assert "Methods and students" in page and f"dashboard: {root / 'dashboards' / (name + '.html')}" in out
    nsl_folds = [r for r in c.search_runs([c.get_experiment_by_name("demo-nsl").experiment_id], max_results=1000)
                 if r.data.tags["liser.role"] == "fold" and r.data.params.get("method") == "nsl"]
    assert nsl_folds and all(r.data.metrics["n_graph_nodes"] == r.data.metrics["n_train"] for r in nsl_folds)  # the degree record
    methods = pd.read_csv(root / "dashboards" / "demo-nsl-methods.csv")
    assert methods.loc[methods["method"] == "nsl", "graph_mean_degree"].iloc[0] > 0


def test_dashboards_render_offline_in_chromium(demo, browser, tmp_path):
    root, _ = demo
    pages = sorted((root / "dashboards").glob("*.html"))
    assert len(pages) >= 2
    for page in pages:
        shot = tmp_path / f"{page.stem}.png"
        load = browser.load(page.as_uri(), "document.querySelectorAll('.plotly-graph-div .main-svg').length", until=lambda n: (n or 0) > 0, screenshot=shot)
        assert load.value and load.value > 0, f"{page.name}: no plotly SVG rendered"
        off_page = [u for u in load.requests if u != page.as_uri() and not u.startswith("data:")]
        assert off_page == [], f"{page.name} fetched {off_page}"
        assert load.errors == [] and load.failed_loads == [], f"{page.name}: {load.errors + load.failed_loads}"
        assert shot.stat().st_size > 10_000
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(SHOTS) / f"dashboard-{page.stem}.png")


def test_mlflow_ui_from_liser_ui_renders_in_chromium(demo, browser, tmp_path):
    from liser.ui import free_port, wait_ready

    root, _ = demo
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "liser.cli", "ui", "--port", str(port)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, ui)
        printed = [ui.stdout.readline() for _ in range(6)]  # "starting", "MLflow UI: URL", then one line per study
        links = dict(line.strip()[len("study "):].split(": ", 1) for line in printed if line.strip().startswith("study "))
        assert {"demo", "demo-fraction", "demo-emodistill", "demo-nsl"} <= set(links), printed
        shot = tmp_path / "mlflow-ui.png"
        # the study's link opens its runs in the model-training view: the trials, their fold runs nested under them
        load = browser.load(links["demo"], "document.body.innerText", until=lambda t: bool(t) and "000-no-dstl" in t and "matching runs" in t, timeout=90, screenshot=shot)
        text = load.value or ""
        assert all(f"-{c}" in text for c in ("no-dstl", "vid-sp-dstl", "distill-ce", "two-stage-train")), text[:800]
        matching = re.search(r"(\d+) matching runs", text)
        assert "Model training" in text and matching and int(matching.group(1)) == 13, text[-600:]  # 4 trials + 8 fold runs + the teachers run
        elsewhere = [u for u in load.requests if not u.startswith((url, "data:", "blob:"))]
        assert elsewhere == [], f"the MLflow UI reached off the machine: {elsewhere}"
        assert load.errors == [], load.errors  # no JS error
        # The UI probes optional endpoints of its own server: users/current (404 without auth) and
        # MLflow's AI-assistant settings (assistant/config, /providers: they look for local agent
        # CLIs and gateways, and once answered 500 under a loaded test run, 200 when asked again;
        # the runs page does not use them). Anything else failing to load would be a broken page.
        broken = [f for f in load.failed_loads if not any(probe in f for probe in ("/users/current", "/mlflow/assistant/"))]
        assert broken == [], broken
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(SHOTS) / "mlflow-ui.png")
    finally:
        ui.terminate()
        ui.wait(30)
    with pytest.raises(OSError):  # SIGTERM to `liser ui` stopped its mlflow server too
        urllib.request.urlopen(f"{url}/health", timeout=5)
