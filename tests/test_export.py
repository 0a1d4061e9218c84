"""ONNX export: the file matches torch, and `liser export` logs it back to a real MLflow run."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from liser.cli import main
from liser.configs import make_config
from liser.constants import CROP_FRAMES, N_MELS
from liser.export import check_equivalence, equivalence_inputs, export_onnx
from liser.model import Student
from liser.tracking import CHECKPOINT_ARTIFACT, TAG, client
from liser.train import save_checkpoint


def _student(seed: int = 0) -> Student:
    """Random weights with non-trivial BatchNorm statistics, so eval mode matters."""
    torch.manual_seed(seed)
    model = Student()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    return model.eval()


def test_onnx_matches_torch_at_batch_1_and_3_and_other_lengths(tmp_path):
    model = _student()
    path = export_onnx(model, tmp_path / "student.onnx", n_mels=N_MELS, frames=CROP_FRAMES)
    assert path.stat().st_size > 100_000  # 105K float32 parameters
    inputs = equivalence_inputs(N_MELS)
    assert [x.shape[0] for x in inputs] == [1, 3, 2] and inputs[2].shape[2] != CROP_FRAMES
    assert check_equivalence(model, path, inputs) < 1e-4


def test_check_equivalence_refuses_a_different_model(tmp_path):
    path = export_onnx(_student(0), tmp_path / "student.onnx", n_mels=N_MELS)
    with pytest.raises(ValueError, match="differ from torch"):
        check_equivalence(_student(1), path, equivalence_inputs(N_MELS))


@pytest.fixture
def store(tmp_path):
    """A sqlite MLflow store with one finished trial run and one finished fold run holding a checkpoint."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    c = client(uri)
    exp = c.create_experiment("export", artifact_location=(tmp_path / "artifacts").as_uri())
    model = _student()
    result = SimpleNamespace(state_dict=model.state_dict(), model_config=model.config, fold=0, best_epoch=1, val=SimpleNamespace(uar=0.5))
    ckpt = save_checkpoint(tmp_path / "ckpt" / "student.pt", result, make_config("no-dstl"), tuple("abcdefgh"))
    trial = c.create_run(exp, tags={TAG + "role": "trial"}).info.run_id
    fold = c.create_run(exp, tags={TAG + "role": "fold", TAG + "fold": "0", "mlflow.parentRunId": trial}).info.run_id
    c.log_artifact(fold, str(ckpt), "checkpoint")
    empty = c.create_run(exp, tags={TAG + "role": "fold"}).info.run_id
    for run in (trial, fold, empty):
        c.set_terminated(run, "FINISHED")
    return SimpleNamespace(uri=uri, client=c, trial=trial, fold=fold, empty=empty)


def test_cli_exports_a_fold_run_and_logs_it_back(store, tmp_path):
    out = CliRunner().invoke(main, ["export", store.fold, "--onnx", "--tracking-uri", store.uri, "--out", str(tmp_path / "exp")])
    assert out.exit_code == 0, out.output
    assert "KB" in out.output and "max abs diff" in out.output
    c = store.client
    assert "onnx/student.onnx" in {a.path for a in c.list_artifacts(store.fold, "onnx")}
    run = c.get_run(store.fold)
    assert run.data.metrics["onnx_max_abs_diff"] < 1e-4
    assert run.data.metrics["onnx_size_bytes"] == (tmp_path / "exp" / store.fold / "student.onnx").stat().st_size
    assert run.info.status == "FINISHED"
    assert {a.path for a in c.list_artifacts(store.fold, "checkpoint")} == {CHECKPOINT_ARTIFACT}


def test_cli_exports_the_folds_of_a_trial_run(store, tmp_path):
    out = CliRunner().invoke(main, ["export", store.trial, "--onnx", "--out", str(tmp_path / "exp")], env={"MLFLOW_TRACKING_URI": store.uri})
    assert out.exit_code == 0, out.output
    assert store.fold in out.output
    assert "onnx_size_bytes" in store.client.get_run(store.fold).data.metrics


@pytest.mark.parametrize(
    ("which", "args", "message"),
    [("unknown", ["--onnx"], "no MLflow run"), ("empty", ["--onnx"], "no checkpoint/student.pt"), ("fold", [], "--onnx")],
)
def test_cli_errors_are_clear(store, tmp_path, which, args, message):
    run_id = "0" * 32 if which == "unknown" else getattr(store, which)
    out = CliRunner().invoke(main, ["export", run_id, *args, "--tracking-uri", store.uri, "--out", str(tmp_path / "exp")])
    assert out.exit_code != 0 and message in out.output, out.output
