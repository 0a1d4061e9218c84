"""A study's teachers diagnosed once into a ``teachers`` MLflow run, and its dashboard's Teachers section."""

from liser.reports import build_report
from liser import tracking
from liser.studies.runner import log_teachers_run, prepare
from liser.studies.spec import load_study
from tests.studies.test_tracking import fake_result


def test_teachers_run_is_logged_once_and_the_dashboard_links_it(tmp_path, write_study):
    study = load_study(write_study(tmp_path / "s.yaml", name="teach", configurations=["vid-sp-dstl"]))
    ctx = prepare(study, progress=False)
    uri, artifacts = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'm.db'}")
    ctx.tracking_uri, ctx.experiment_id = uri, tracking.setup_experiment(uri, artifacts, study.name, {"liser.study": study.name})
    lines = []
    run_id = log_teachers_run(ctx, lines.append)
    assert run_id and "teacher diagnosis logged" in lines[0]
    assert log_teachers_run(ctx, lines.append) is None  # same teacher files: not logged twice
    c = tracking.client(uri)
    run = c.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["liser.role"] == "teachers"
    m = run.data.metrics
    assert m["speech.truth_accuracy"] > 0.5 and m["video.truth_accuracy"] > 0.5 and 0 < m["speech.mean_confidence"] <= 1
    assert m["speech.video_kappa"] > 0.3 and "n_warnings" in m
    assert {a.path for a in c.list_artifacts(run_id)} == {"teachers.html", "teachers.csv", "teachers-agreement.csv"}

    # a finished trial, so the study has a dashboard; it gets a Teachers section linking the run
    t = tracking.TrialTracker(uri, ctx.experiment_id, "k", {**ctx.tags, "liser.config": "vid-sp-dstl"})
    t.open("000-vid-sp-dstl", {"config": "vid-sp-dstl", "labeled_fraction": 1.0})
    ckpt = tmp_path / "student.pt"
    ckpt.write_bytes(b"w")
    fold = t.start_fold(0, 0, {})
    t.finish_fold(fold, config={"name": "vid-sp-dstl"}, fold_record={"index": 0}, result=fake_result(0), classes=["a", "b", "c"], checkpoint=ckpt)
    t.finish({"val_uar_mean": 0.5, "test_uar_mean": 1.0})
    page = build_report(uri, [study.name], tmp_path / "boards")[0].read_text()
    assert "<h2>Teachers</h2>" in page and f"/runs/{run_id}" in page and "speech.npz" in page and "truth_accuracy" in page
    assert "Students on the teachers" not in page  # no fold logged a truth score

    # fold runs with the student's hidden-truth accuracy: the students table and the one-line answer
    for trial, config, acc in ((1, "no-dstl", 0.25), (2, "sp-dstl", 0.75)):
        t = tracking.TrialTracker(uri, ctx.experiment_id, f"k{trial}", {**ctx.tags, "liser.config": config, "liser.trial": str(trial)})
        t.open(f"00{trial}-{config}", {"config": config, "labeled_fraction": 1.0})
        fold = t.start_fold(0, 0, {})
        t.finish_fold(fold, config={"name": config}, fold_record={"index": 0}, result=fake_result(0), classes=["a", "b", "c"], checkpoint=ckpt,
                      extra_metrics={"unlabeled_truth_accuracy": acc, "unlabeled_truth_uar": acc / 2,
                                     **({"unlabeled_truth_sd_accuracy": 0.625, "unlabeled_truth_sd_uar": 0.5, "unlabeled_truth_sd_top_share": 0.375} if config == "sp-dstl" else {})})
        t.finish({"val_uar_mean": 0.5, "test_uar_mean": 1.0})
    written = build_report(uri, [study.name], tmp_path / "boards")
    page = written[0].read_text()
    assert "Students on the teachers" in page and "0.250" in page and "0.750" in page
    speech = m["speech.truth_accuracy"]
    assert "no-dstl student 0.250; teachers" in page and f"speech {speech:.3f} (above it" in page
    table = next(p for p in written if p.name.endswith("students-on-unlabeled.csv")).read_text()
    assert "no-dstl" in table and "sp-dstl" in table and "vid-sp-dstl" not in table  # only folds that logged the score
    assert "g_sd (speech distillation head) on those clips" in page and "0.625" in page  # sp-dstl's g_sd, beside its g_sup
    assert "g_vd (video" not in page  # no fold trained g_vd
    md = next(p for p in written if p.name.endswith("students-on-unlabeled.md")).read_text()
    assert "\n| study | configuration | labeled fraction | folds |" in md  # named row keys, no bare index column
    assert "0.625 (UAR 0.500, one class on 38%)" in page  # the table cell
    assert "g_sd 0.625, UAR 0.500 (g_sup 0.750; sp-dstl)" in page  # the line
