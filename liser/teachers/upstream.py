"""Upstream embeddings for NSL (NSL paper, sections 2.1 and 3.2).

NSL's upstream model is a speech SER model fine-tuned on a source corpus; its embedding
h(x) of a clip is the output of the second-last fully connected layer averaged over time.
Our speech teacher is ``HubertForSequenceClassification``, whose head is
``projector`` (hidden -> classifier_proj_size) -> mean over time -> ``classifier``, so
h(x) is the time-mean of the projector's output: the very vector the classifier reads.
:func:`liser.graph.build_graph` turns these embeddings into the NSL graph.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import liser
from liser.audio import load_audio
from liser.corpora.manifest import Corpus
from liser.storage import ClipStore, ClipTask, ContentHashes, StoreRun, default_cache_dir, skip_or
from liser.teachers.cache import teacher_key
from liser.targets import ClipOutputs
from liser.teachers.speech import SpeechTeacher, TeacherError, torch_threads
from liser.teachers.waves import normalize_wave


def _base_model(model: torch.nn.Module) -> torch.nn.Module:
    """The ``HubertForSequenceClassification`` under a peft wrapper, or the model itself (merged)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not all(isinstance(getattr(base, name, None), torch.nn.Module) for name in ("projector", "classifier")):
        raise TypeError(f"{type(base).__name__} has no projector and classifier; expected a HubertForSequenceClassification")
    return base


def _check_wave(wave: np.ndarray, index: int, min_samples: int) -> np.ndarray:
    wave = np.asarray(wave, np.float32)
    if wave.ndim != 1:
        raise TeacherError(f"clip {index}: expected a mono waveform (1-D array), got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise TeacherError(f"clip {index}: waveform holds NaN or inf samples")
    if len(wave) < min_samples:
        raise TeacherError(f"clip {index}: {len(wave)} samples is shorter than one HuBERT frame ({min_samples} samples)")
    return wave


def _min_samples(base: torch.nn.Module) -> int:
    """The shortest input the conv feature encoder turns into one frame (400 samples for HuBERT base)."""
    n = 1
    for kernel, stride in reversed(list(zip(base.config.conv_kernel, base.config.conv_stride))):
        n = (n - 1) * stride + kernel
    return n


def clip_embedding(teacher: SpeechTeacher, waves: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per whole clip, the upstream embedding h(x) [N, classifier_proj_size] and the logits [N, K].

    One clip per forward pass, as :func:`liser.teachers.speech.predict_clips` (no padding,
    so no attention mask), normalized as the teacher was fitted. The embedding is taken
    from the projector by a forward hook, so it is exactly what the model's own forward
    pooled: ``classifier(embedding) == logits``.

    Raises:
        ValueError: a clip that is not a finite 1-D waveform of at least one HuBERT frame.
    """
    model = teacher.model
    base = _base_model(model)
    dim, k = base.config.classifier_proj_size, base.config.num_labels
    min_samples = _min_samples(base)
    checked = [_check_wave(w, i, min_samples) for i, w in enumerate(waves)]
    projected: list[torch.Tensor] = []
    hook = base.projector.register_forward_hook(lambda _module, _inputs, output: projected.append(output))
    was_training = model.training
    model.eval()
    embeddings, logits = [], []
    try:
        with torch.no_grad(), torch_threads(teacher.threads):
            for wave in checked:
                x = torch.from_numpy(normalize_wave(wave) if teacher.normalize else wave)[None].to(teacher.device)
                out = model(input_values=x).logits
                embeddings.append(projected.pop().mean(dim=1)[0].float().cpu().numpy())  # [1, T, D] -> [D]
                logits.append(out[0].float().cpu().numpy())
    finally:
        hook.remove()
        model.train(was_training)
    if not checked:
        return np.zeros((0, dim), np.float32), np.zeros((0, k), np.float32)
    return np.stack(embeddings), np.stack(logits)


class UpstreamEmbeddings(ClipTask):
    """The upstream teacher's embedding and logits of a batch of clips; each worker loads the teacher once."""

    batch_size = 8

    def __init__(self, teacher_dir: str | Path, device: str = "cpu") -> None:
        self.teacher_dir, self.device, self._teacher = Path(teacher_dir), device, None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_teacher": None}

    def embed(self, path: Path) -> dict[str, np.ndarray]:
        emb, logits = clip_embedding(self._teacher, [load_audio(path)])
        return {"embedding": emb[0], "logits": logits[0]}

    def __call__(self, paths: list[Path]) -> list:
        if self._teacher is None:
            self._teacher = SpeechTeacher.load(self.teacher_dir, self.device)
        return [skip_or(self.embed, p) for p in paths]


def _valid_embedding(entry: dict[str, np.ndarray]) -> bool:
    return "embedding" in entry and "logits" in entry and bool(np.all(np.isfinite(entry["embedding"])))


def embed_corpus(
    teacher_dir: str | Path,
    target: Corpus,
    out_file: str | Path,
    *,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    pool=None,
) -> tuple[ClipOutputs, StoreRun]:
    """Embed every clip of the ``target`` corpus with the upstream teacher at ``teacher_dir``.

    Each clip runs once: entries are cached by clip content and teacher checkpoint, so a
    second call (or another fold, trial or study) does no teacher work. Writes
    ``out_file`` (kind ``upstream``) and returns it with what the pass computed. ``pool``
    (:class:`liser.workers.Pool`) embeds the missing clips in worker processes.

    Raises:
        TeacherError: the teacher was fitted on the target corpus itself (NSL transfers
            from a *source* corpus; its graph would carry the target's test labels).
    """
    teacher = SpeechTeacher.load(teacher_dir, device)
    meta = teacher.meta
    if meta.get("manifest_hash") == target.manifest_hash():
        raise TeacherError(
            f"{teacher_dir}: this upstream teacher was fitted on {target.name} at {target.root}, the target corpus itself; "
            "fit it on another (source) corpus: liser teacher upstream --source NAME:PATH --target ..."
        )
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    key = teacher_key("upstream", teacher.checkpoint_hash, {"pool": "projector-time-mean", **teacher.settings})
    store = ClipStore(root / "teachers" / key, ContentHashes(root / "hashes.json"))
    task = UpstreamEmbeddings(teacher_dir, str(device))
    if pool is None or not pool.distributed:
        task._teacher = teacher  # this process already holds it
    rows = target.manifest[["clip_id", "path"]].itertuples(index=False)
    run = store.map(rows, task, check=_valid_embedding, total=len(target.manifest), desc="upstream embeddings", progress=progress, pool=pool)
    info = {
        "source_corpus": meta.get("corpus"), "source_manifest_hash": meta.get("manifest_hash"),
        "source_speakers": meta.get("train_speakers"), "source_val_uar": meta.get("val_uar"), "source_val_war": meta.get("val_war"),
        "target_corpus": target.name, "target_manifest_hash": target.manifest_hash(),
        "teacher_dir": str(teacher_dir), "checkpoint_hash": teacher.checkpoint_hash, "teacher_key": key,
        "cache": run.as_dict(), "skipped": [{"path": p, "reason": r} for p, r in run.skipped], "liser_version": liser.__version__,
    }
    rows_out = {c: (e["logits"], e["embedding"]) for c, e in run.arrays.items()}
    outputs = ClipOutputs.from_rows("upstream", teacher.classes, rows_out, info)
    outputs.save(out_file)
    return outputs, run


def fit_upstream(source: Corpus, cfg, teacher_dir: str | Path, *, device: torch.device | str = "cpu", progress: bool = True, log=print) -> dict:
    """Fit NSL's upstream model on every speaker of the ``source`` corpus, or reuse the one at
    ``teacher_dir`` when it was fitted on the same corpus with the same settings. Returns its record."""
    from liser.teachers.speech import TEACHER_FILE, fit_speech_teacher

    teacher_dir = Path(teacher_dir)
    record_path = teacher_dir / TEACHER_FILE
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    if record.get("config") == cfg.model_dump() and record.get("manifest_hash") == source.manifest_hash():
        log(f"upstream model: reusing {teacher_dir} (fitted on {source.name}, val UAR {record['val_uar']:.3f})")
        return record
    speakers = source.manifest["speaker"].unique()
    log(f"upstream model: fitting on all {len(speakers)} speakers of {source.name}")
    return fit_speech_teacher(source, speakers, cfg, teacher_dir, device=device, progress=progress)
