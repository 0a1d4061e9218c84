"""The student as an ONNX file, checked against PyTorch and logged back to its MLflow run.

    liser export RUN_ID --onnx

The file takes ``log_mel`` [batch, n_mels, frames] (float32, the features of
:mod:`liser.features`) with batch and frames both dynamic, and returns the outputs of
the student's forward, by name: ``sup``, ``sd``, ``vd``, ``embedding`` for LiSER's
:class:`liser.model.StudentOutput`, ``sup``, ``embedding`` for CNN-6, ``sup``,
``prosodic``, ``linguistic``, ``embedding`` for an EmoDistill student. ``sup`` is always
the emotion prediction.

We use the TorchScript-based exporter (``dynamo=False``): it exports the LSTM exactly
(max difference ~1e-7), in about a second, and needs only ``onnx``; the dynamo exporter
gives the same graph but takes ~12 s and needs ``onnxscript``. Tracing records no
data-dependent branches here, and :func:`check_equivalence` runs several batch sizes and
window lengths to prove the dynamic axes hold.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from liser.constants import CROP_FRAMES
from liser.model import StudentOutput
from liser.errors import TrackingError

INPUT_NAME = "log_mel"
OUTPUT_NAMES = StudentOutput._fields  # LiSER's student: sup, sd, vd, embedding
ONNX_ARTIFACT = "onnx/student.onnx"
OPSET = 17


def output_names(model: torch.nn.Module, n_mels: int) -> tuple[str, ...]:
    """The names of the student's outputs (its forward returns a NamedTuple)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, n_mels, CROP_FRAMES))
    model.train(was_training)
    return type(out)._fields


def export_onnx(model: torch.nn.Module, path: str | Path, *, n_mels: int, frames: int = CROP_FRAMES) -> Path:
    """Write ``model`` (in eval mode: BatchNorm uses its running statistics) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = output_names(model, n_mels)
    was_training = model.training
    model.eval()
    example = torch.zeros(2, n_mels, frames)  # batch 2: tracing must not fold the batch into a constant
    axes = {INPUT_NAME: {0: "batch", 2: "frames"}, **{name: {0: "batch"} for name in names}}
    try:
        with warnings.catch_warnings():
            # The exporter's deprecation notice, and tracer notes about shape arithmetic
            # that check_equivalence verifies at other batch sizes and lengths.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, (example,), str(path), dynamo=False, opset_version=OPSET,
                input_names=[INPUT_NAME], output_names=list(names), dynamic_axes=axes,
            )  # fmt: skip
    finally:
        model.train(was_training)
    return path


def equivalence_inputs(n_mels: int, frames: int = CROP_FRAMES, seed: int = 0) -> list[torch.Tensor]:
    """Log-Mel-like inputs at batch 1 and 3 of one window, and batch 2 of a longer one."""
    g = torch.Generator().manual_seed(seed)
    shapes = [(1, n_mels, frames), (3, n_mels, frames), (2, n_mels, 2 * frames + 5)]
    return [torch.randn(shape, generator=g) * 20 - 60 for shape in shapes]  # dB-like scale


def onnx_session(onnx_path: str | Path, threads: int | None = None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])


def check_equivalence(model: torch.nn.Module, onnx_path: str | Path, inputs: Sequence[torch.Tensor | np.ndarray], atol: float = 1e-4) -> float:
    """Max absolute difference over all outputs between onnxruntime and torch on ``inputs``.

    Raises ``ValueError`` when it exceeds ``atol``: an exported file that disagrees with
    its checkpoint must not be shipped.
    """
    session = onnx_session(onnx_path)
    names = [o.name for o in session.get_outputs()]
    model.eval()
    worst = 0.0
    for x in inputs:
        x = torch.as_tensor(x, dtype=torch.float32)
        with torch.no_grad():
            expected = model(x)
        got = session.run(names, {INPUT_NAME: x.numpy()})
        for name, out in zip(names, got):
            ref = getattr(expected, name)
            if out.shape != tuple(ref.shape):
                raise ValueError(f"ONNX output {name} has shape {out.shape}, torch {tuple(ref.shape)} (input {tuple(x.shape)})")
            worst = max(worst, float(np.abs(out - ref.numpy()).max()))
    if worst > atol:
        raise ValueError(f"ONNX outputs differ from torch by up to {worst:.3g} (tolerance {atol:g})")
    return worst


def student_n_mels(model: torch.nn.Module) -> int:
    """The mel bands a student takes (an EmoDistill student's backbone says)."""
    config = model.config
    return int(config["n_mels"] if "n_mels" in config else config["backbone"]["n_mels"])


def fold_runs(c, run_id: str) -> list:
    """The runs to export for ``run_id``: itself if a fold run, else its finished fold children.

    A trial's parent run holds no checkpoint; each of its folds trained its own student,
    and all are exported so that any fold can be deployed.
    """
    from mlflow.exceptions import MlflowException

    from liser.tracking import TAG

    try:
        run = c.get_run(run_id)
    except MlflowException as exc:
        raise TrackingError(f"no MLflow run {run_id!r} in this store") from exc
    if run.data.tags.get(TAG + "role") != "trial":
        return [run]
    children = c.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run_id}' and tags.`{TAG}role` = 'fold' and attributes.status = 'FINISHED'",
        max_results=1000,
    )
    if not children:
        raise TrackingError(f"trial run {run_id} has no finished fold runs to export")
    return sorted(children, key=lambda r: int(r.data.tags.get(TAG + "fold", 0)))


def export_one(c, run, out_dir: Path, atol: float = 1e-4) -> dict:
    """Download one fold run's checkpoint, export and check it, log the file and metrics back."""
    from liser.tracking import CHECKPOINT_ARTIFACT
    from liser.train import load_student

    run_id = run.info.run_id
    stored = {a.path for a in c.list_artifacts(run_id, "checkpoint")}
    if CHECKPOINT_ARTIFACT not in stored:
        raise FileNotFoundError(f"run {run_id} has no {CHECKPOINT_ARTIFACT} artifact (not a finished fold run?)")
    with tempfile.TemporaryDirectory() as tmp:
        model, _ = load_student(c.download_artifacts(run_id, CHECKPOINT_ARTIFACT, tmp))
    n_mels = student_n_mels(model)
    path = export_onnx(model, out_dir / run_id / Path(ONNX_ARTIFACT).name, n_mels=n_mels)
    diff = check_equivalence(model, path, equivalence_inputs(n_mels), atol=atol)
    size = path.stat().st_size
    # A FINISHED run still accepts artifacts and metrics; its status stays FINISHED.
    c.log_artifact(run_id, str(path), str(Path(ONNX_ARTIFACT).parent))
    c.log_metric(run_id, "onnx_max_abs_diff", diff)
    c.log_metric(run_id, "onnx_size_bytes", size)
    return {"run_id": run_id, "path": path, "size_bytes": size, "max_abs_diff": diff, "artifact": ONNX_ARTIFACT}


def export_run(run_id: str, tracking_uri: str, out_dir: str | Path, atol: float = 1e-4) -> dict:
    """Export the student of a fold run, or of every finished fold of a trial run.

    Returns ``{"run_id": ..., "exports": [{"run_id", "path", "size_bytes", "max_abs_diff", "artifact"}]}``.
    Raises ``LookupError`` for an unknown run, ``FileNotFoundError`` for a run with no
    checkpoint, ``ValueError`` when the export disagrees with torch.
    """
    from liser.tracking import client

    c = client(tracking_uri)
    out_dir = Path(out_dir)
    exports = [export_one(c, run, out_dir, atol) for run in fold_runs(c, run_id)]
    return {"run_id": run_id, "exports": exports}
