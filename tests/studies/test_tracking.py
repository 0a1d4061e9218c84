"""MLflow records of a trial in a real (sqlite) store: reopened parents, superseded folds, reconcile."""

import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from liser import tracking


@pytest.fixture
def store(tmp_path):
    uri, artifacts = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    exp = tracking.setup_experiment(uri, artifacts, "t", {"liser.study": "t"})
    return uri, exp


def test_default_store_is_under_mlflow(tmp_path):
    uri, artifacts = tracking.resolve_tracking_uri(None, tmp_path)
    assert uri == f"sqlite:///{tmp_path.resolve() / 'mlflow' / 'mlflow.db'}"
    assert artifacts == tmp_path.resolve() / "mlflow" / "artifacts"


OPEN_WHEN_TOLD = textwrap.dedent("""
    import os, sys, time
    import mlflow  # the slow import first, so the three processes open the store together
    from liser import tracking
    open(f"{sys.argv[2]}.{os.getpid()}", "w").close()  # ready
    while not os.path.exists(sys.argv[2]):
        time.sleep(0.01)
    tracking.client(sys.argv[1]).search_experiments(max_results=1)
    print("opened")
""")


def test_processes_opening_a_fresh_store_together_all_get_it(tmp_path):
    """Three real processes open one new SQLite store at the same moment (a study starting while
    `liser ui` opens it). Unguarded, MLflow's migrations collide and two of them die."""
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, uri, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(3)]
    try:
        deadline = time.time() + 120
        while len(list(tmp_path.glob("go.*"))) < 3 and time.time() < deadline:
            time.sleep(0.1)
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-400:] for _, err in outs]
    assert all(out.strip() == "opened" for out, _ in outs)
    assert len(tracking.client(uri).search_experiments()) == 1  # one migrated store, its Default experiment


def test_experiment_created_once(store):
    uri, exp = store
    assert tracking.setup_experiment(uri, None, "t", {"x": "1"}) == exp


def fake_result(fold):
    cm = np.eye(3, dtype=int) * 2
    return {"fold": fold, "best_epoch": 1, "seconds": 1.0, "counts": {"train": 6, "val": 6, "test": 6},
            "val": {"uar": 0.5, "war": 0.5, "confusion": cm.tolist()}, "test": {"uar": 1.0, "war": 1.0, "confusion": cm.tolist()}, "history": []}


def test_trial_runs_are_reused_and_superseded(store, tmp_path):
    uri, exp = store
    t = tracking.TrialTracker(uri, exp, "k1", {"liser.study": "t", "liser.trial": "0"})
    parent = t.open("000-no-dstl", {"config": "no-dstl"})
    first = t.start_fold(0, 0, {})
    t.log_epoch(first, 1, {"stage": "train", "loss": 1.0, "val_uar": 0.2})
    t.log_epoch(first, 2, {"stage": "train", "loss": 0.5, "val_uar": 0.4})
    ckpt = tmp_path / "student.pt"
    ckpt.write_bytes(b"weights")
    t.finish_fold(first, config={"name": "no-dstl"}, fold_record={"index": 0}, result=fake_result(0), classes=["a", "b", "c"], checkpoint=ckpt)
    broken = t.start_fold(1, 0, {})  # killed before it finished
    c = tracking.client(uri)
    assert [m.value for m in c.get_metric_history(first, "epoch_val_uar")] == [0.2, 0.4]
    assert c.get_run(first).data.metrics["val_uar"] == 0.5 and c.get_run(first).data.metrics["test_uar"] == 1.0
    assert {a.path for a in c.list_artifacts(first)} >= {"confusion_matrix.png", "confusion_matrix.json", "fold.json", "config.yaml", "checkpoint"}

    counts = tracking.reconcile_runs(uri, exp)
    assert counts == {"trials_killed": 1, "folds_killed": 1}
    assert c.get_run(broken).info.status == "KILLED" and c.get_run(broken).info.lifecycle_stage == "deleted"
    assert c.get_run(parent).info.status == "KILLED"

    again = tracking.TrialTracker(uri, exp, "k1", {"liser.study": "t", "liser.trial": "4"})
    assert again.open("004-no-dstl", {"config": "no-dstl"}) == parent
    assert c.get_run(parent).info.status == "RUNNING" and c.get_run(parent).data.tags["liser.trial"] == "4"
    assert set(again.finished_folds()) == {(0, 0)}
    retry = again.start_fold(1, 0, {})
    again.fail_fold(retry, "boom")
    third = again.start_fold(1, 0, {})  # the failed attempt is superseded, not duplicated
    active = c.search_runs([exp], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    assert sorted(r.info.run_id for r in active) == sorted([first, third])
    again.finish({"val_uar_mean": 0.5})
    assert c.get_run(parent).info.status == "FINISHED" and c.get_run(parent).data.metrics["val_uar_mean"] == 0.5


def test_dropped_counts_of_fold_runs_reach_the_console(tmp_path):
    """The study's end names what its folds dropped (issue 14: not only in the runs' metrics)."""
    from mlflow.tracking import MlflowClient

    from liser.studies.runner import dropped_lines

    uri = f"sqlite:///{tmp_path / 'm.db'}"
    exp = tracking.setup_experiment(uri, tmp_path / "artifacts", "drops", {})
    c = MlflowClient(uri)
    for fold, dropped in ((0, 4), (1, 0), (2, 6)):
        run = c.create_run(exp, tags={tracking.TAG + "role": "fold"}).info.run_id
        c.log_metric(run, "n_unlabeled_dropped_no_teacher", dropped)
        c.log_metric(run, "n_train", 100)
    lines = dropped_lines(uri, exp)
    assert lines == ["dropped or masked: unlabeled_dropped_no_teacher in 2 of 3 fold runs (up to 6 per fold; see the runs' n_unlabeled_dropped_no_teacher)"]
