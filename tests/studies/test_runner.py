"""Real studies: a local Ray runs the trials, a real MLflow store (or server) holds every fold.

The assertions read what MLflow holds: the run tree, metrics, artifacts and tags.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from liser import tracking
from liser.studies.runner import run_study, state_dir_for
from liser.studies.spec import load_study
from liser.train import load_student

pytestmark = pytest.mark.ray


def runs_of(uri, name, view_all=False):
    from mlflow.entities import ViewType

    c = tracking.client(uri)
    exp = c.get_experiment_by_name(name)
    return c, c.search_runs([exp.experiment_id], run_view_type=ViewType.ALL if view_all else ViewType.ACTIVE_ONLY, max_results=1000)


def test_four_parallel_trials_log_the_full_run_tree(tmp_path, write_study, local_ray):
    path = write_study(
        tmp_path / "four.yaml", name="four", configurations=["no-dstl", "vid-dstl", "sp-dstl", "conf-vid-sp-dstl"],
        resources={"cpu": 0.5}, max_concurrent=4,
    )
    summary = run_study(load_study(path), root=tmp_path, progress=False, log=lambda _: None)
    assert [t["state"] for t in summary.trials] == ["COMPLETE"] * 4
    c, runs = runs_of(summary.tracking_uri, "four")
    parents = [r for r in runs if r.data.tags["liser.role"] == "trial"]
    children = [r for r in runs if r.data.tags["liser.role"] == "fold"]
    teachers = [r for r in runs if r.data.tags["liser.role"] == "teachers"]  # one teacher diagnosis per study
    assert len(parents) == 4 and len(children) == 8 and len(teachers) == 1 and len(runs) == 13
    scored = {k.split(".")[0] for k in teachers[0].data.metrics if k.endswith(".truth_accuracy")}  # scored on the hidden truth
    assert "video" in scored and any(k.startswith("speech") for k in scored) and "n_warnings" in teachers[0].data.metrics
    assert all(r.info.status == "FINISHED" for r in runs)
    by_parent = {p.info.run_id: sorted(int(ch.data.tags["liser.fold"]) for ch in children if ch.data.tags["mlflow.parentRunId"] == p.info.run_id) for p in parents}
    assert all(folds == [0, 1] for folds in by_parent.values())
    assert {p.data.tags["liser.config"] for p in parents} == {"no-dstl", "vid-dstl", "sp-dstl", "conf-vid-sp-dstl"}

    # trials really ran side by side (known reports show Optuna + Tune running one at a time)
    spans = sorted((p.info.start_time, p.info.end_time) for p in parents)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:])), spans

    for p in parents:  # summary = mean and std over the fold runs
        mine = [ch for ch in children if ch.data.tags["mlflow.parentRunId"] == p.info.run_id]
        tests = [ch.data.metrics["test_uar"] for ch in mine]
        assert p.data.metrics["test_uar_mean"] == pytest.approx(sum(tests) / 2)
        assert p.data.metrics["val_uar_mean"] == pytest.approx(sum(ch.data.metrics["val_uar"] for ch in mine) / 2)
        assert p.data.params["lambda_vd"] in ("0.0", "1.0")
    trial_values = {t["run_id"]: t["val_uar"] for t in summary.trials}
    assert all(trial_values[p.info.run_id] == pytest.approx(p.data.metrics["val_uar_mean"]) for p in parents)

    for ch in children:
        tags = ch.data.tags
        for key in ("liser.study", "liser.dataset", "liser.trial", "liser.fold", "liser.seed", "liser.git_commit", "liser.labeled_manifest", "liser.version"):
            assert tags[key], key
        distils = tags["liser.config"] != "no-dstl"
        assert bool(tags.get("liser.teachers")) and (not distils or tags["liser.teacher.speech"])
        for key in ("loss", "loss_sup", "epoch_val_uar", "epoch_val_war"):
            assert len(c.get_metric_history(ch.info.run_id, key)) == 1
        assert {"val_uar", "val_war", "test_uar", "test_war"} <= set(ch.data.metrics)
    ch = children[0]
    names = {a.path for a in c.list_artifacts(ch.info.run_id)}
    assert {"confusion_matrix.png", "confusion_matrix.json", "fold.json", "config.yaml", "checkpoint"} <= names
    local = c.download_artifacts(ch.info.run_id, "checkpoint/student.pt", str(tmp_path))
    model, record = load_student(local)
    assert record["fold"] == int(ch.data.tags["liser.fold"]) and sum(p.numel() for p in model.parameters()) == 105_143
    table = json.loads(open(c.download_artifacts(ch.info.run_id, "confusion_matrix.json", str(tmp_path))).read())
    assert sum(row[-1] for row in table["data"]) == ch.data.metrics["n_test"]

    again = run_study(load_study(path), root=tmp_path, progress=False, log=lambda _: None)  # nothing owed: nothing re-run
    assert again.plan.to_run == 0 and len(runs_of(summary.tracking_uri, "four")[1]) == 13  # the teachers run is not logged twice


def cli(*args):
    return [sys.executable, "-m", "liser.cli", *map(str, args)]


def wait_for(predicate, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_sigkill_and_resume(tmp_path, write_study):
    """Kill the real `liser study run` process mid-study; the same command finishes it without duplicates."""
    path = write_study(tmp_path / "kill.yaml", name="kill", configurations=["no-dstl", "vid-dstl", "sp-dstl"],
                       fixed={"epochs": 2}, resources={"cpu": 1}, max_concurrent=2)
    uri, _ = tracking.resolve_tracking_uri(None, tmp_path)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    proc = subprocess.Popen(cli("study", "run", path, "-q"), cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def some_fold_finished():
        if proc.poll() is not None:  # it ended (or failed) before we could kill it
            raise AssertionError(f"liser study run exited early ({proc.returncode}): {proc.stdout.read().decode()[-3000:]}")
        try:
            return any(r.data.tags.get("liser.role") == "fold" and r.info.status == "FINISHED" for r in runs_of(uri, "kill")[1])
        except Exception:
            return False

    wait_for(some_fold_finished, 300, "a finished fold run")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _, runs = runs_of(uri, "kill")
    assert any(r.info.status == "RUNNING" for r in runs)  # killed mid-study, not after it
    finished_before = {r.info.run_id for r in runs if r.info.status == "FINISHED" and r.data.tags["liser.role"] == "fold"}
    open_parents = {r.info.run_id for r in runs if r.data.tags["liser.role"] == "trial" and r.info.status != "FINISHED"}
    to_reuse = sum(r.data.tags["mlflow.parentRunId"] in open_parents for r in runs if r.info.run_id in finished_before)

    done = subprocess.run(cli("study", "run", path, "-q"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming kill" in done.stdout
    c, runs = runs_of(uri, "kill")
    parents = [r for r in runs if r.data.tags["liser.role"] == "trial"]
    children = [r for r in runs if r.data.tags["liser.role"] == "fold"]
    assert len(parents) == 3 and len(children) == 6  # no duplicated run
    assert all(r.info.status == "FINISHED" for r in runs)  # nothing RUNNING forever
    assert finished_before <= {r.info.run_id for r in children}  # finished folds were kept, not re-run
    assert sum(p.data.metrics["reused_fold_runs"] for p in parents) == to_reuse
    keys = [(r.data.tags["mlflow.parentRunId"], r.data.tags["liser.fold"]) for r in children]
    assert len(set(keys)) == 6
    _, every = runs_of(uri, "kill", view_all=True)  # interrupted fold runs: KILLED and deleted
    interrupted = [r for r in every if r.info.lifecycle_stage == "deleted"]
    assert interrupted and all(r.info.status == "KILLED" for r in interrupted)

    import optuna

    from liser.studies.search import storage

    ostudy = optuna.load_study(study_name="kill", storage=storage(state_dir_for("kill", tmp_path)))
    states = [t.state.name for t in ostudy.trials]
    assert states.count("COMPLETE") == 3 and "RUNNING" not in states and "WAITING" not in states
    assert all(t.user_attrs.get("interrupted") for t in ostudy.trials if t.state.name == "FAIL")
    status = subprocess.run(cli("study", "status", "kill"), cwd=tmp_path, capture_output=True, text=True)
    assert "3 COMPLETE" in status.stdout and "best so far" in status.stdout


def test_study_against_a_real_mlflow_server(tmp_path, write_study):
    """A tracking server over HTTP; one trial diverges (NaN) and is recorded as failed while the study goes on."""
    from liser.ui import start_server, stop_server, wait_ready

    proc, url = start_server(f"sqlite:///{tmp_path / 'server.db'}", root=tmp_path)
    try:
        wait_ready(url, proc)
        path = write_study(tmp_path / "srv.yaml", name="srv", configurations=["no-dstl"], grid={"lr": [1e-4, 1e12]}, resources={"cpu": 1})
        done = subprocess.run(cli("study", "run", path, "--tracking-uri", url, "-q"), cwd=tmp_path, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "FAILED: TrainingDiverged" in done.stdout + done.stderr

        def api(endpoint, body):
            req = urllib.request.Request(f"{url}/api/2.0/mlflow/{endpoint}", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(req, timeout=30).read())

        exp = json.loads(urllib.request.urlopen(f"{url}/api/2.0/mlflow/experiments/get-by-name?experiment_name=srv").read())
        runs = api("runs/search", {"experiment_ids": [exp["experiment"]["experiment_id"]], "max_results": 100})["runs"]
        tags = [{t["key"]: t["value"] for t in r["data"].get("tags", [])} for r in runs]
        parents = [(r, t) for r, t in zip(runs, tags) if t["liser.role"] == "trial"]
        assert len(parents) == 2
        status = {next(p["value"] for p in r["data"]["params"] if p["key"] == "lr"): (r["info"]["status"], t) for r, t in parents}
        assert status["0.0001"][0] == "FINISHED"
        assert status["1000000000000.0"][0] == "FAILED" and "nan" in status["1000000000000.0"][1]["liser.error"]
        folds = [r for r, t in zip(runs, tags) if t["liser.role"] == "fold" and r["info"]["status"] == "FINISHED"]
        assert len(folds) == 2 and all(any(m["key"] == "test_uar" for m in r["data"]["metrics"]) for r in folds)
    finally:
        stop_server(proc)
    assert proc.returncode is not None


def test_study_on_an_existing_ray_cluster(tmp_path, write_study):
    """`ray start --head --block` on loopback; the study joins it with --address.

    The cluster lives in its own process group and is ended by signalling that group,
    never with `ray stop`, which ends every Ray on the machine (other test processes,
    a user's own cluster) and any driver attached to one.
    """
    import ray

    from liser.ui import free_port

    ray.shutdown()
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    port = free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    log = tmp_path / "ray-head.log"
    with open(log, "w") as out:
        head = subprocess.Popen(
            [ray_bin, "start", "--head", "--block", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
             "--include-dashboard", "false", "--disable-usage-stats"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        wait_for(lambda: "Ray runtime started" in log.read_text() or head.poll() is not None, 120, "ray start --head")
        assert head.poll() is None, log.read_text()
        path = write_study(tmp_path / "clu.yaml", name="clu", configurations=["no-dstl", "vid-dstl"], resources={"cpu": 1}, folds={"n": 5, "use": [0]})
        done = subprocess.run(cli("study", "run", path, "--address", f"127.0.0.1:{port}", "-q"), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "2 COMPLETE" in done.stdout
        _, runs = runs_of(tracking.resolve_tracking_uri(None, tmp_path)[0], "clu")
        roles = sorted(r.data.tags["liser.role"] for r in runs)
        assert roles == ["fold"] * 2 + ["teachers"] + ["trial"] * 2 and all(r.info.status == "FINISHED" for r in runs)
        assert head.poll() is None  # the cluster outlives the study that joined it
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(30)


def test_studies_side_by_side_keep_their_own_runs(tmp_path, write_study, local_ray):
    """Two studies at once in one process (as `liser demo` runs them): each trial lands in its own study's experiment."""
    from liser.studies.runner import run_side_by_side

    a = load_study(write_study(tmp_path / "a.yaml", name="side-a", configurations=["no-dstl", "vid-dstl"], folds={"n": 5, "use": [0]}, resources={"cpu": 0.5}))
    b = load_study(write_study(tmp_path / "b.yaml", name="side-b", configurations=["sp-dstl"], grid={"labeled_fraction": [0.5, 1.0]},
                               folds={"n": 5, "use": [0]}, resources={"cpu": 0.5}))
    lines = []
    summaries = run_side_by_side([a, b], root=tmp_path, progress=False, log=lines.append)
    assert [s.study for s in summaries] == ["side-a", "side-b"]
    for name, configs in (("side-a", {"no-dstl", "vid-dstl"}), ("side-b", {"sp-dstl"})):
        _, runs = runs_of(summaries[0].tracking_uri, name)
        trials = [r for r in runs if r.data.tags["liser.role"] == "trial"]
        assert len(trials) == 2 and {r.data.tags["liser.config"] for r in trials} == configs
        assert all(r.data.tags["liser.study"] == name and r.info.status == "FINISHED" for r in trials)
    assert any(line.startswith("side-a: ") for line in lines) and any(line.startswith("side-b: ") for line in lines)
