"""Every shipped study file runs end to end in its fast mode (1 epoch, 2 folds, ≤ 2 trials) on the synthetic corpus."""

from pathlib import Path

import pytest

from liser.studies.runner import run_study
from liser.studies.spec import load_study, smoke

from conftest import corpus_fields, study_method

STUDIES = sorted((Path(__file__).resolve().parents[2] / "studies").glob("*.yaml"))
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """One project root for every smoke study, as a user's checkout holds one MLflow store
    (mlflow/mlflow.db) for all its studies; each study is its own experiment there."""
    return tmp_path_factory.mktemp("smoke-project")


@pytest.mark.parametrize("path", STUDIES, ids=lambda p: p.stem)
def test_shipped_study_smoke(path, synth_root, project, tmp_path, local_ray):
    shipped = load_study(path)
    kind = shipped.labeled.split(":")[0]
    study = smoke(load_study(path, **corpus_fields(synth_root, kind, study_method(shipped))))
    summary = run_study(study, root=project, progress=False, log=lambda _: None)
    assert summary.plan.to_run == len(summary.trials) >= 1
    assert all(t["state"] == "COMPLETE" for t in summary.trials), summary.trials
    assert all(0 <= t["val_uar"] <= 1 for t in summary.trials)
    if study_method(shipped) != "liser":  # every method's trials appear in the report, with their students
        from liser.reports import build_report

        page = build_report(summary.tracking_uri, [study.name], tmp_path / "dashboards")[0].read_text()
        assert "Methods and students" in page and study_method(shipped) in page
