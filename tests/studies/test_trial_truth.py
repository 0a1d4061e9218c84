"""Each fold's student scored on the unlabeled clips' hidden truth after training (liser.studies.trial).

No Ray here: run_trial is a plain function; the fold run goes to a real MLflow store.
"""

import pytest

from liser import tracking
from liser.data import teachers_for_fold
from liser.studies.runner import prepare
from liser.studies.spec import load_study
from liser.studies.trial import run_trial
from liser.teachers.truth import student_head_scores, student_truth_scores
from liser.train import load_student


def test_fold_runs_log_the_students_truth_accuracy_on_the_unlabeled_clips(tmp_path, write_study):
    study = load_study(write_study(tmp_path / "s.yaml", name="truthy", configurations=["no-dstl", "vid-dstl"], folds={"n": 5, "use": [0]}))
    ctx = prepare(study, progress=False)
    assert ctx.unlabeled_truth is not None and set(ctx.unlabeled.features.features) <= set(ctx.unlabeled_truth.index)
    uri, artifacts = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    ctx.tracking_uri, ctx.experiment_id = uri, tracking.setup_experiment(uri, artifacts, study.name, {"liser.study": study.name})
    reports = []
    final = run_trial(ctx, study.points()[0], 0, reports.append)
    assert final["complete"]

    c = tracking.client(uri)
    fold = [r for r in c.search_runs([ctx.experiment_id]) if r.data.tags.get("liser.role") == "fold"]
    assert len(fold) == 1
    m = fold[0].data.metrics
    # the logged figure is the saved student's, recomputed here from its checkpoint
    model, _ = load_student(c.download_artifacts(fold[0].info.run_id, "checkpoint/student.pt", str(tmp_path)))
    again = student_truth_scores(model, ctx.unlabeled.features.features, ctx.unlabeled_truth, ctx.labeled.corpus.classes)
    assert again["clips"] == len(ctx.unlabeled.features.features)
    assert m["unlabeled_truth_accuracy"] == pytest.approx(again["accuracy"], abs=1e-6)
    assert m["unlabeled_truth_uar"] == pytest.approx(again["uar"], abs=1e-6)
    assert 0 <= m["unlabeled_truth_accuracy"] <= 1
    assert not any(k.startswith(("unlabeled_truth_sd", "unlabeled_truth_vd")) for k in m)  # no-dstl trained neither head


def test_a_distilling_students_heads_are_scored_where_it_trained_them(tmp_path, write_study):
    """vid-sp-dstl trains g_sd and g_vd: each is logged against its own truth, as its checkpoint scores."""
    study = load_study(write_study(tmp_path / "s.yaml", name="heads", configurations=["vid-sp-dstl"], folds={"n": 5, "use": [0]}, fixed={"epochs": 1}))
    ctx = prepare(study, progress=False)
    assert ctx.unlabeled_video_truth is not None
    uri, artifacts = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    ctx.tracking_uri, ctx.experiment_id = uri, tracking.setup_experiment(uri, artifacts, study.name, {"liser.study": study.name})
    assert run_trial(ctx, study.points()[0], 0, lambda _: None)["complete"]

    c = tracking.client(uri)
    fold = next(r for r in c.search_runs([ctx.experiment_id]) if r.data.tags.get("liser.role") == "fold")
    m = fold.data.metrics
    model, _ = load_student(c.download_artifacts(fold.info.run_id, "checkpoint/student.pt", str(tmp_path)))
    video_classes = teachers_for_fold(ctx.teachers, ctx.folds[0])["video"].classes
    again = student_head_scores(model, ctx.unlabeled.features.features, {
        "sd": (ctx.unlabeled_truth, ctx.labeled.corpus.classes), "vd": (ctx.unlabeled_video_truth, video_classes)})
    for head in ("sd", "vd"):
        assert m[f"unlabeled_truth_{head}_accuracy"] == pytest.approx(again[head]["accuracy"], abs=1e-6)
        assert m[f"unlabeled_truth_{head}_uar"] == pytest.approx(again[head]["uar"], abs=1e-6)
        assert m[f"unlabeled_truth_{head}_top_share"] == pytest.approx(again[head]["top_class_share"], abs=1e-6)
    assert again["vd"]["clips"] == len(ctx.unlabeled.features.features)  # every clip has a FERV39k class


def test_no_truth_file_no_truth_metric(tmp_path, write_study, synth_root):
    import shutil

    copy = tmp_path / "avclips"
    shutil.copytree(synth_root / "avclips", copy)  # the clips without their sibling truth file
    study = load_study(write_study(tmp_path / "s.yaml", name="real", configurations=["no-dstl"], unlabeled=f"avclips:{copy}", folds={"n": 5, "use": [0]}))
    assert prepare(study, progress=False).unlabeled_truth is None
