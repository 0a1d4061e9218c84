"""Loading studies from MLflow: only FINISHED runs, typed params, provenance, clear errors."""

import numpy as np
import pytest

from liser.reports.runs import StudyNotFound, load_confusion, load_studies

ALL = ["table2-ravdess", "table2-cremad", "fraction-cremad", "lambda-grid", "search-ravdess"]


def test_one_row_per_finished_trial_and_fold(fake_store, loaded):
    finished = fake_store.finished()
    assert set(loaded.trials["run_id"]) == set(finished)
    assert len(loaded.trials) == 34
    for parent, raw in finished.items():
        got = loaded.folds[loaded.folds["parent_run_id"] == parent].sort_values("fold")
        assert got["fold"].tolist() == [f["fold"] for f in raw["folds"]]
        for metric in ("val_uar", "val_war", "test_uar", "test_war", "n_train", "n_test"):
            assert got[metric].tolist() == pytest.approx([f[metric] for f in raw["folds"]])
        assert set(got["config"]) == {raw["config"]} and set(got["dataset"]) == {raw["dataset"]} and set(got["study"]) == {raw["study"]}
    assert (loaded.trials["n_folds"] == 3).all()


def test_failed_running_killed_and_deleted_runs_are_left_out(fake_store, loaded):
    ignored = fake_store.ignored
    for name in ("failed_trial", "running_trial", "killed_trial"):
        assert ignored[name] not in set(loaded.trials["run_id"])
        assert ignored[name] not in set(loaded.folds["parent_run_id"])
    for name in ("deleted_fold", "running_fold", "failed_fold"):
        assert ignored[name] not in set(loaded.folds["run_id"])
    assert loaded.folds["test_uar"].between(0.3, 0.8).all()  # none of the absurd scores got in


def test_params_come_back_typed(loaded):
    t = loaded.trials.set_index("label")
    grid = t.loc["005-vid-sp-dstl lambda_sd=1.0, lambda_vd=5.0"]
    assert grid["lambda_sd"] == 1.0 and grid["lambda_vd"] == 5.0 and isinstance(grid["lambda_sd"], float)
    assert grid["epochs"] == 50 and grid["pretrain_epochs"] is None
    assert set(loaded.trials["confidence"]) == {True, False}
    assert all(isinstance(v, bool) for v in loaded.trials["confidence"])
    assert set(loaded.trials["distill_loss"]) == {"mae", "ce"}
    assert "config" not in loaded.params and "name" not in loaded.params
    assert loaded.trials.loc[loaded.trials["config"] == "conf-vid-sp-dstl", "confidence"].tolist() == [True, True]


def test_folds_carry_their_parents_params(loaded):
    f = loaded.folds[loaded.folds["study"] == "fraction-cremad"]
    t = loaded.trials.set_index("run_id")
    assert (f["labeled_fraction"].to_numpy() == t.loc[f["parent_run_id"], "labeled_fraction"].to_numpy()).all()
    assert sorted(f["labeled_fraction"].unique()) == [0.25, 0.5, 1.0]


def test_study_provenance(fake_store, loaded):
    info = {s.name: s for s in loaded.studies}
    r = info["table2-ravdess"]
    assert r.description == "Table 2 (RAVDESS): five configurations" and r.kind == "points" and r.spec_hash == "hash-table2-ravdess"
    assert r.experiment_id == fake_store.experiments["table2-ravdess"]
    assert r.trial_status == {"FINISHED": 9, "FAILED": 1, "RUNNING": 1}
    assert r.datasets == ["ravdess"] and r.labeled_manifests == ["manifest-ravdess"] and r.unlabeled_manifests == ["manifest-avclips"]
    assert r.git_commits == ["0123456789abcdef0123456789abcdef01234567"] and r.versions == ["0.1.0"]
    assert r.teachers == ["speech:0=aaravdess,video:all=bb"]
    assert info["search-ravdess"].kind == "search" and info["search-ravdess"].trial_status == {"FINISHED": 8, "KILLED": 1}
    assert loaded.names == ALL


def test_unknown_study_names_the_store_and_the_known_studies(fake_store):
    with pytest.raises(StudyNotFound) as err:
        load_studies(fake_store.uri, ["table2-ravdess", "tabel2-cremad"])
    msg = str(err.value)
    assert "'tabel2-cremad'" in msg and fake_store.uri in msg
    for name in ALL + ["no-finished"]:
        assert name in msg


def test_study_without_finished_trials_is_an_error(fake_store):
    with pytest.raises(StudyNotFound, match=r"'no-finished'.*no FINISHED trial runs.*1 FAILED"):
        load_studies(fake_store.uri, "no-finished")


def test_missing_sqlite_store_is_not_created(tmp_path):
    uri = f"sqlite:///{tmp_path / 'nope.db'}"
    with pytest.raises(StudyNotFound, match="no MLflow store"):
        load_studies(uri, ["x"])
    assert not (tmp_path / "nope.db").exists()


def test_runs_logged_before_the_dataset_tag_group_by_manifest(empty_store):
    s = empty_store
    s.study("legacy")
    parent = s.trial("legacy", "no-dstl", "ravdess", s.folds("ravdess", 0.5, confusion=False), confusion=False)
    s.client.delete_tag(parent, "liser.dataset")
    data = load_studies(s.uri, ["legacy"])
    assert data.trials["dataset"].tolist() == ["labeled manifest"]  # "manifest-ravdess"[:8]
    assert set(data.folds["dataset"]) == {"labeled manifest"} and data.studies[0].datasets == ["labeled manifest"]


def test_confusion_tables_are_read_back(fake_store, loaded):
    parent = next(rid for rid, r in fake_store.finished("table2-ravdess", "vid-dstl").items())
    folds = loaded.folds[loaded.folds["parent_run_id"] == parent].sort_values("fold")
    long = load_confusion(fake_store.uri, folds["run_id"].tolist())
    assert list(long.columns) == ["run_id", "true", "predicted", "count"]
    for run_id, raw in zip(folds["run_id"], fake_store.raw[parent]["folds"]):
        got = long[long["run_id"] == run_id]
        assert list(dict.fromkeys(got["true"])) == ["neutral", "happy", "sad"]
        assert got["count"].to_numpy().reshape(3, 3).tolist() == raw["confusion"]


def test_reads_what_the_real_tracker_writes(tmp_path):
    """Contract with liser.tracking: a trial logged by TrialTracker loads with its folds and confusion tables."""
    from liser.configs import make_config
    from liser import tracking

    uri, artifacts = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    exp = tracking.setup_experiment(uri, artifacts, "real", {"liser.study": "real", "liser.kind": "points", "liser.spec_hash": "h", "mlflow.note.content": "real writer"})
    cfg = make_config("vid-dstl")
    tags = {"liser.study": "real", "liser.dataset": "ravdess", "liser.git_commit": "abc", "liser.version": "0.1.0", "liser.labeled_manifest": "m1",
            "liser.unlabeled_manifest": "m2", "liser.teachers": "video:all=t", "liser.trial": "0", "liser.config": cfg.name}
    tracker = tracking.TrialTracker(uri, exp, "key0", tags)
    parent = tracker.open("000-vid-dstl", {"config": "vid-dstl", **cfg.model_dump(exclude={"seed"})})
    ckpt = tmp_path / "student.pt"
    ckpt.write_bytes(b"weights")
    results = []
    for fold, (uar, war) in enumerate([(0.5, 0.6), (0.7, 0.65)]):
        run = tracker.start_fold(fold, 0, {})
        cm = np.array([[3, 1], [0, 4]]) + fold
        result = {"fold": fold, "best_epoch": 2, "seconds": 1.0, "counts": {"train": 40, "val": 10, "test": 12},
                  "val": {"uar": uar - 0.1, "war": war - 0.1, "confusion": cm.tolist()}, "test": {"uar": uar, "war": war, "confusion": cm.tolist()}, "history": []}
        tracker.finish_fold(run, config=cfg.model_dump(), fold_record={"index": fold}, result=result, classes=["calm", "sad"], checkpoint=ckpt)
        results.append(result)
    tracker.finish({"val_uar_mean": 0.5, "test_uar_mean": 0.6, "n_fold_runs": 2.0})

    data = load_studies(uri, ["real"])
    assert data.trials[["config", "dataset", "trial", "lambda_vd"]].iloc[0].tolist() == ["vid-dstl", "ravdess", 0, 1.0]
    assert data.folds["test_uar"].tolist() == [0.5, 0.7] and data.folds["n_train"].tolist() == [40, 40] and data.folds["n_test"].tolist() == [12, 12]
    long = load_confusion(uri, data.folds["run_id"].tolist())
    assert long.groupby(["true", "predicted"], sort=False)["count"].sum().tolist() == [7, 3, 1, 9]
    assert data.studies[0].description == "real writer" and parent in set(data.trials["run_id"])
