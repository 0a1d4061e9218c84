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


# What a user does first in the runs table, done by clicks: close MLflow 3's assistant panel,
# expand every trial to its fold runs, and show the UAR columns (Columns menu; the Dataset,
# Source and Models columns, empty here, are switched off to make room). The view state
# (columns) is the UI's own, not in the URL, so `liser ui` cannot set it.
TRIALS_VIEW = """(() => { const t = document.body.innerText; const W = window;
      const close = document.querySelector('button[aria-label="Close"]'); if (close && t.includes('MLflow Assistant')) close.click();
      const ex = [...document.querySelectorAll('.ag-row button[data-component-id$="runnamecellrenderer.tsx_46"]')];
      if (!W.__expanded && ex.length >= 5) { ex.forEach(b => b.click()); W.__expanded = 1; return [0, 'expanded']; }
      if (W.__expanded && !W.__opened) { const b = [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Columns'); if (b) { b.click(); W.__opened = 1; } return [0, 'opened']; }
      if (W.__opened && !W.__picked) { const want = ['val_uar_mean', 'test_uar_mean', 'val_uar', 'test_uar', 'Dataset', 'Source', 'Models'];
        const leaf = (root, text) => [...root.querySelectorAll('span')].filter(e => e.childElementCount === 0 && e.textContent.trim() === text);
        let menu = leaf(document, 'val_uar_mean')[0];
        while (menu && !(leaf(menu, 'Dataset').length && leaf(menu, 'test_uar').length)) menu = menu.parentElement;
        if (!menu) return [0, 'no menu'];
        const hits = want.flatMap(w => leaf(menu, w).slice(0, 1));
        hits.forEach(e => e.click()); W.__picked = hits.length; return [0, 'picked ' + hits.length];
      }
      if (W.__picked && !W.__closed) { document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Escape', bubbles: true})); document.body.click(); W.__closed = 1; return [0, 'closed']; }
      return [document.querySelectorAll('.ag-row').length, String(W.__picked), document.body.innerText,
              document.querySelectorAll('button[aria-label="Close"]').length]; })()"""


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
        load = browser.load(links["demo"], TRIALS_VIEW, until=lambda v: bool(v) and v[0] >= 15, timeout=90, screenshot=shot)
        rows, picked, text, panels = load.value
        assert picked == "7", f"the Columns menu did not offer the UAR columns ({picked})"
        assert "Model training" in text and all(f"-{c}" in text for c in ("no-dstl", "vid-dstl", "sp-dstl", "vid-sp-dstl")), text[:800]
        assert "fold0" in text and "test_uar_mean" in text and panels == 0  # fold runs nested, UAR columns, the assistant panel closed
        _keep(shot, "mlflow-ui.png")
    finally:
        ui.terminate()
        ui.wait(30)
