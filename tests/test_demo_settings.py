"""What `liser demo` runs, read from the shipped study files (no training: the Ray test runs the chain)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from liser.demo import TABLE2, DemoSettings, _study, studies_dir
from liser.studies.spec import load_study


def _demo(settings: DemoSettings, fraction: bool = False):
    name = "demo-fraction.yaml" if fraction else "demo.yaml"
    return _study(studies_dir() / name, Path("/data/synth"), Path("/data/synth/teachers"), settings, fraction=fraction)


def test_default_demo_runs_table2_and_full_adds_table3():
    shipped = load_study(studies_dir() / "demo.yaml")
    assert set(TABLE2) < set(shipped.configurations) and {"distill-ce", "two-stage-train"} <= set(shipped.configurations)
    assert _demo(DemoSettings()).configurations == list(TABLE2)
    assert _demo(DemoSettings.full()).configurations == shipped.configurations
    assert {"distill-ce", "two-stage-train"} <= set(_demo(DemoSettings.quick()).configurations)  # the tests' run covers Table 3


def test_figure2_points_share_one_schedule():
    """The full-label point of Figure 2 comes from demo.yaml: both files must train the same way."""
    table, curve = _demo(DemoSettings()), _demo(DemoSettings(), fraction=True)
    assert table.fixed == curve.fixed and table.fixed["epoch_over"] == "augmented"
    assert table.folds == curve.folds
    assert all(0 < f < 1 for f in curve.grid["labeled_fraction"])


def test_demo_epochs_reach_both_studies_and_keep_their_schedule_shared():
    table, curve = _demo(DemoSettings(epochs=15)), _demo(DemoSettings(epochs=15), fraction=True)
    assert table.fixed["epochs"] == curve.fixed["epochs"] == 15 and table.fixed == curve.fixed
    assert _demo(DemoSettings()).fixed["epochs"] == load_study(studies_dir() / "demo.yaml").fixed["epochs"]


def test_quick_and_full_are_refused_together(tmp_path):
    done = subprocess.run([sys.executable, "-m", "liser.cli", "demo", "--quick", "--full", "--root", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "--quick and --full" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()  # refused before any work


def _die() -> list[str]:
    import os

    os._exit(3)  # a lane process killed mid-work: no exception reaches the driver


def _lines() -> list[str]:
    return ["speech: done"]


def test_a_lane_whose_process_dies_runs_again_here_and_one_that_raises_still_raises():
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    import pytest

    from liser.demo import lane_result

    logged: list[str] = []
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        assert lane_result(pool.submit(_die), lambda: ["rerun here"], logged.append) == ["rerun here"]
    assert len(logged) == 1 and "ended abruptly" in logged[0]
    with ProcessPoolExecutor(1, mp_context=ctx) as pool:
        assert lane_result(pool.submit(_lines), lambda: ["not this"], logged.append) == ["speech: done"]
        with pytest.raises(ZeroDivisionError):
            lane_result(pool.submit(divmod, 1, 0), lambda: ["not this"], logged.append)
    assert len(logged) == 1
