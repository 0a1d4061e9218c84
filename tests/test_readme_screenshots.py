"""The README's screenshots, taken in a real Chromium from a real, full `liser demo` run.

    liser demo --root R
    LISER_DEMO_ROOT=R LISER_SCREENSHOTS=dashboards/screenshots pytest tests/test_readme_screenshots.py

Without LISER_DEMO_ROOT these tests skip: a full demo takes about 15 minutes, so CI checks
the same pages on the quick demo instead (tests/test_demo.py, whose screenshots go to
``$LISER_SCREENSHOTS/quick``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import Browser

ROOT = os.environ.get("LISER_DEMO_ROOT")
SHOTS = os.environ.get("LISER_SCREENSHOTS")
pytestmark = pytest.mark.skipif(not ROOT, reason="set LISER_DEMO_ROOT to a folder a full `liser demo --root` wrote")


@pytest.fixture(scope="module")
def browser():
    b = Browser(size=(1400, 1500))
    yield b
    b.close()


def _keep(shot: Path, name: str) -> None:
    assert shot.stat().st_size > 10_000, f"{name}: an empty screenshot"
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(SHOTS) / name)


@pytest.mark.parametrize("page, must_show", [
    ("dashboards/demo.html", ("Table 2", "vid-sp-dstl", "conf-vid-sp-dstl", "Teachers", "Students on the teachers", "no-dstl student")),
    ("dashboards/demo-fraction-curve.html", ("Figure 2", "vid-sp-dstl", "no-dstl")),
    ("data/synth/teachers/teachers.html", ("video.npz", "speech-fold0.npz", "hidden truth")),
])
def test_full_demo_page_renders_offline(browser, tmp_path, page, must_show):
    path = Path(ROOT) / page
    assert path.exists(), f"{path}: run a full `liser demo --root {ROOT}` first"
    shot = tmp_path / f"{path.stem}.png"
    check = "[document.querySelectorAll('.plotly-graph-div .main-svg').length, document.body.innerText]"
    load = browser.load(path.as_uri(), check, until=lambda v: bool(v) and v[0] > 0, screenshot=shot)
    figures, text = load.value
    assert figures > 0, f"{page}: no plotly figure rendered"
    missing = [s for s in must_show if s.lower() not in text.lower()]
    assert missing == [], f"{page} does not show {missing}"
    assert [u for u in load.requests if u != path.as_uri() and not u.startswith("data:")] == []  # self-contained
    assert load.errors == [] and load.failed_loads == [], load.errors + load.failed_loads
    _keep(shot, "teachers.png" if path.stem == "teachers" else f"{path.stem}.png")


def test_mlflow_ui_opens_the_demo_study_with_nested_fold_runs(browser, tmp_path):
    from liser.ui import free_port, wait_ready

    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "liser.cli", "ui", "--port", str(port)], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, ui)
        printed = [ui.stdout.readline() for _ in range(4)]
        links = dict(line.strip()[len("study "):].split(": ", 1) for line in printed if line.strip().startswith("study "))
        assert "demo" in links, printed
        shot = tmp_path / "mlflow-ui.png"
        load = browser.load(links["demo"], "document.body.innerText", until=lambda t: bool(t) and "-conf-vid-sp-dstl" in t and "matching runs" in t,
                            timeout=90, screenshot=shot)
        text = load.value or ""
        assert "Model training" in text and all(f"-{c}" in text for c in ("no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl")), text[:800]
        _keep(shot, "mlflow-ui.png")
    finally:
        ui.terminate()
        ui.wait(30)
