"""Video frames and face crops: what the video teacher sees (sections 2.2 and 3.1).

The paper runs every MSP-Face video through DeepFace (detection, alignment, crop) and
feeds 16-frame windows of the crops to its DFER teacher. Here:

* :func:`liser.teachers.video_decode.read_frames` decodes a video to RGB frames at 30 fps.
* :func:`extract_faces` finds one face per frame with DeepFace's OpenCV detector, fully
  offline (:func:`ensure_offline_detector`), or takes the frames as already aligned crops
  (``detector="prealigned"``, for corpora that ship face crops), or cuts the face out of a
  synthetic talking-head frame at its known place (``detector="synthetic"``).
* :class:`FaceStore` keeps the crops of each video once, keyed by the file's content, and
  :func:`extract_corpus_faces` fills it for a whole corpus with a progress bar.

Store layout, under ``root`` (default ``$LISER_CACHE/faces`` or ``~/.cache/liser/faces``)::

    <sha1[:2]>/<sha1>-<detector>-<size>.npz    crops uint8 [n, size, size, 3], found bool [n], meta
    <sha1[:2]>/<sha1>-<detector>-<size>.json   why the video is unusable (VideoError reason)
    hashes.json                                path+size+mtime -> sha1

Why the largest face: DeepFace's OpenCV backend reports ``confidence = (100 - w) / 100``
where ``w`` is OpenCV's level weight, which grows with certainty, so its confidences rank
faces backwards. In the paper's data one person faces the camera, so the largest detected
face is the speaker; Haar false positives are small.

Synthetic drawn faces (:mod:`liser.synth.face`): DeepFace's OpenCV detector finds them in
only a minority of frames (about 13-47 %, depending on frame size), and more often for
some expressions than others. So the labeled face videos (:mod:`liser.synth.face_videos`),
which are face crops already, use ``detector="prealigned"``, and the unlabeled synthetic
talking-head clips use ``detector="synthetic"``: ``"prealigned"`` with
``box=SYNTH_FACE_BOX``, the part of the frame where the drawn face sits.
"""

from __future__ import annotations

import json
import os
import time
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from liser.constants import SYNTH_FACE_BOX
from liser.storage import ClipTask, ContentHashes, SkipClip, default_cache_dir, run_local, skip_or, write_atomic
from liser.errors import TeacherError
from liser.teachers.video_decode import VideoError, read_frames

DETECTORS = ("opencv", "prealigned", "synthetic")  # other DeepFace backends work but need downloads
HAARCASCADE_FILES = ("haarcascade_frontalface_default.xml", "haarcascade_eye.xml")  # deepface 0.0.103 OpenCv.py
BLANK_STD = 4.0  # a "prealigned" frame whose grey levels vary less than this is blank
# Where the drawn face sits in a liser.synth talking-head frame, as (x0, y0, x1, y1)
# fractions: the head centre is at (0.5, 0.44) and its half-width 0.24-0.3 of the frame.
FACES_VERSION = 1  # bump when crops change for the same settings

# ----------------------------------------------------------------------- DeepFace
def ensure_offline_detector() -> Path:
    """Make ``DeepFace.extract_faces(detector_backend="opencv")`` work with no network.

    Sets ``DEEPFACE_HOME`` (unless the user set it) to ``$LISER_CACHE/deepface`` or
    ``~/.cache/liser/deepface``, copies OpenCV's Haar cascades into
    ``$DEEPFACE_HOME/.deepface/weights/`` (where deepface 0.0.103 looks when ``cv2/data``
    lacks them, as OpenCV 5 wheels do, before trying to download), and sets
    ``DEEPFACE_BACKEND_ENGINE=pytorch`` (unless set) so deepface never imports TensorFlow.
    Returns the weights folder.
    """
    os.environ.setdefault("DEEPFACE_HOME", str(default_cache_dir() / "deepface"))
    os.environ.setdefault("DEEPFACE_BACKEND_ENGINE", "pytorch")
    os.environ.setdefault("DEEPFACE_LOG_LEVEL", "30")  # warnings only
    weights = Path(os.environ["DEEPFACE_HOME"]) / ".deepface" / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    source = Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "/nonexistent")
    for name in HAARCASCADE_FILES:
        target = weights / name
        if target.exists() and target.stat().st_size > 0:
            continue
        if not (source / name).exists():
            raise RuntimeError(
                f"OpenCV's {name} is not installed (cv2 {cv2.__version__} ships no Haar cascades) and deepface "
                f"would download it. Install `opencv-contrib-python-headless<5`, or copy {name} into {weights}."
            )
        write_atomic(target, lambda f, src=source / name: f.write(src.read_bytes()))
    return weights


_DEEPFACE = None


def _deepface():
    """The DeepFace module, imported once, offline, without touching global warning filters."""
    global _DEEPFACE
    if _DEEPFACE is None:
        ensure_offline_detector()
        with warnings.catch_warnings():  # DeepFace's import runs warnings.filterwarnings("ignore")
            from deepface import DeepFace

        _DEEPFACE = DeepFace
    return _DEEPFACE


# ----------------------------------------------------------------------- face crops
@dataclass
class FaceTrack:
    """One face crop per video frame (zeros where no face was found)."""

    crops: np.ndarray  # uint8 [n, size, size, 3] RGB
    found: np.ndarray  # bool [n]
    detector: str
    size: int
    meta: dict = field(default_factory=dict)  # e.g. the VideoInfo of the frames

    def __len__(self) -> int:
        return len(self.found)

    @property
    def n_faces(self) -> int:
        return int(self.found.sum())


def extract_faces(
    frames: np.ndarray, detector: str = "opencv", size: int = 64, box: tuple[float, float, float, float] | None = None
) -> FaceTrack:
    """The face in each RGB frame, aligned, cropped and resized to ``size`` x ``size``.

    ``detector="opencv"`` runs ``DeepFace.extract_faces(..., detector_backend="opencv",
    enforce_detection=False, align=True)`` and keeps the largest face; a frame for which
    DeepFace returns its whole-image stand-in (confidence 0) has no face. Other DeepFace
    backends are passed through but need weights downloaded beforehand.
    ``detector="prealigned"`` treats each frame as an aligned face crop: it is resized,
    and it counts as a face unless it is blank (grey-level std below ``BLANK_STD``).
    With ``box`` (x0, y0, x1, y1 as fractions of the frame), that part of the frame is
    the crop: for recordings framed alike. ``detector="synthetic"`` is ``"prealigned"``
    with ``box=SYNTH_FACE_BOX``, for the synthetic talking-head clips.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise TeacherError(f"frames must be [n, H, W, 3] RGB, got shape {frames.shape}")
    n = len(frames)
    crops = np.zeros((n, size, size, 3), np.uint8)
    found = np.zeros(n, bool)
    if box is not None and detector != "prealigned":
        raise TeacherError("box applies to detector='prealigned' only")
    if detector == "synthetic":
        box = SYNTH_FACE_BOX
    if detector in ("prealigned", "synthetic"):
        if box is not None:
            h, w = frames.shape[1:3]
            x0, y0, x1, y1 = box
            if not 0 <= x0 < x1 <= 1 or not 0 <= y0 < y1 <= 1:
                raise TeacherError(f"box must be fractions 0 <= x0 < x1 <= 1, 0 <= y0 < y1 <= 1; got {box}")
            frames = frames[:, round(y0 * h) : max(round(y1 * h), round(y0 * h) + 1), round(x0 * w) : max(round(x1 * w), round(x0 * w) + 1)]
        for i, frame in enumerate(frames):
            found[i] = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).std() >= BLANK_STD
            crops[i] = _resize(frame, size)
        return FaceTrack(crops, found, detector, size)
    deepface = _deepface()
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        try:
            results = deepface.extract_faces(
                np.ascontiguousarray(frame[:, :, ::-1]),  # DeepFace takes BGR arrays
                detector_backend=detector,
                enforce_detection=False,
                align=True,
                color_face="rgb",
                normalize_face=False,
            )
        except cv2.error:  # a degenerate frame (e.g. a few pixels): no face in it
            continue
        faces = [r for r in results if r["confidence"] > 0 and not _whole_image(r["facial_area"], w, h) and min(r["face"].shape[:2]) > 0]
        if faces:
            best = max(faces, key=lambda r: r["facial_area"]["w"] * r["facial_area"]["h"])
            crops[i] = _resize(np.clip(best["face"], 0, 255).astype(np.uint8), size)
            found[i] = True
    return FaceTrack(crops, found, detector, size)


def _whole_image(area: dict, width: int, height: int) -> bool:
    """DeepFace's no-face stand-in: the whole image (it trims w, h by one pixel)."""
    return area["x"] == 0 and area["y"] == 0 and area["w"] >= width - 1 and area["h"] >= height - 1


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    if img.shape[0] == size and img.shape[1] == size:
        return img
    shrinking = img.shape[0] > size or img.shape[1] > size
    return cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


# ----------------------------------------------------------------------- store
class FaceStore:
    """Face crops of each video, computed once and kept under a content-hash key.

    ``box`` is passed to :func:`extract_faces` for ``detector="prealigned"``.
    ``get(path)`` returns the stored :class:`FaceTrack` or decodes the video, extracts
    the faces and stores them atomically; a corrupt entry is recomputed. A video that
    cannot be decoded raises :class:`VideoError`, and its reason is remembered so the
    next run does not decode it again. ``stats`` counts ``computed`` and ``cached`` gets.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        detector: str = "opencv",
        size: int = 64,
        max_side: int | None = None,
        box: tuple[float, float, float, float] | None = None,
    ) -> None:
        self.root = Path(root) if root is not None else default_cache_dir() / "faces"
        self.detector, self.size, self.max_side = detector, size, max_side
        self.box = tuple(float(v) for v in box) if box is not None else None
        self._hashes = ContentHashes(self.root / "hashes.json")
        self.stats = {"computed": 0, "cached": 0}

    def key(self, path: str | Path, detector: str | None = None) -> str:
        detector = detector or self.detector
        extra = f"-m{self.max_side}" if self.max_side and detector not in ("prealigned", "synthetic") else ""
        if self.box is not None and detector == "prealigned":
            extra += "-box" + "_".join(f"{v:g}" for v in self.box)
        return f"{self._hashes(Path(path))}-{detector}-{self.size}{extra}-v{FACES_VERSION}"

    def get(self, path: str | Path, detector: str | None = None) -> FaceTrack:
        return self.fetch(path, detector)[0]

    def fetch(self, path: str | Path, detector: str | None = None) -> tuple[FaceTrack, bool]:
        """(track, whether it came from the store)."""
        detector = detector or self.detector
        try:
            key = self.key(path, detector)
        except OSError as err:
            raise VideoError(f"unreadable ({err.strerror or err})", path) from err
        npz, failed = self.root / key[:2] / f"{key}.npz", self.root / key[:2] / f"{key}.json"
        if failed.exists():
            try:
                raise VideoError(json.loads(failed.read_text())["reason"], path)
            except (ValueError, KeyError):
                failed.unlink(missing_ok=True)  # unreadable note: decode again
        if npz.exists():
            track = _load_track(npz)
            if track is not None and track.detector == detector and track.size == self.size:
                self.stats["cached"] += 1
                return track, True
        self.stats["computed"] += 1
        try:
            frames, info = read_frames(path, max_side=None if detector in ("prealigned", "synthetic") else self.max_side)
        except VideoError as err:
            reason = json.dumps({"reason": err.reason}).encode()
            write_atomic(failed, lambda fh: fh.write(reason))
            raise
        box = self.box if detector == "prealigned" else None
        track = extract_faces(frames, detector, self.size, box)
        track.meta = {"video": info.as_dict(), "box": box}
        write_atomic(
            npz,
            lambda fh: np.savez(
                fh,
                crops=track.crops,
                found=track.found,
                detector=np.asarray(detector),
                size=np.asarray(self.size),
                meta=np.asarray(json.dumps(track.meta)),
            ),
        )
        return track, False

    def save_hashes(self) -> None:
        self._hashes.save()


def _load_track(npz: Path) -> FaceTrack | None:
    """A stored track, or None when the entry is corrupt."""
    try:
        with np.load(npz, allow_pickle=False) as entry:
            crops, found = entry["crops"], entry["found"].astype(bool)
            track = FaceTrack(crops, found, str(entry["detector"]), int(entry["size"]), json.loads(str(entry["meta"])))
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError):
        return None
    if crops.dtype != np.uint8 or crops.ndim != 4 or crops.shape[1:] != (track.size, track.size, 3) or len(found) != len(crops):
        return None
    return track


class _FaceCounts(ClipTask):
    """Fill the face store for a batch of videos in a worker; return each clip's counts.

    Face crops are the one per-clip result written by the workers themselves: at MSP-Face
    scale they are tens of GB, so they go straight to the store (shared storage on a cluster,
    each entry written atomically) instead of through the driver.
    """

    batch_size = 2

    def __init__(self, store: "FaceStore", detector: str | None):
        self.store, self.detector = store, detector

    def __call__(self, paths: list[Path]) -> list:
        out = []
        try:
            for path in paths:
                start = time.perf_counter()
                got = skip_or(self.store.fetch, path, self.detector)
                if isinstance(got, SkipClip):
                    out.append(got)
                    continue
                track, cached = got
                out.append({"frames": len(track), "no_face": int((~track.found).sum()), "faces": track.n_faces, "cached": cached,
                            "seconds": time.perf_counter() - start})
        finally:
            self.store.save_hashes()
        return out


def extract_corpus_faces(corpus, store: "FaceStore", detector: str | None = None, progress: bool = True, pool=None) -> dict[str, Any]:
    """Fill ``store`` with the faces of every video of ``corpus`` (a manifest Corpus).

    Returns counts: ``clips`` (usable), ``computed``, ``from_cache``, ``skipped`` (list of
    (path, reason)), ``frames``, ``frames_no_face``, ``clips_no_face`` (not one face), and
    ``frames_per_s`` of the extraction actually done (per worker). ``pool``
    (:class:`liser.workers.Pool`) spreads the videos over worker processes.
    """
    manifest = corpus.manifest
    column = "video_path" if "video_path" in manifest and manifest["video_path"].notna().any() else "path"
    paths = [Path(p) for p in manifest[column].tolist()]
    counts: dict[str, Any] = dict(clips=0, computed=0, from_cache=0, skipped=[], frames=0, frames_no_face=0, clips_no_face=0)
    done_frames, busy = 0, 0.0
    task = _FaceCounts(store, detector)
    results = pool.run(task, paths) if pool is not None else run_local(task, paths)
    bar = tqdm(total=len(paths), desc=f"faces {getattr(corpus, 'name', '')}".strip(), unit="clip", disable=not progress)
    try:
        for i, got in results:
            bar.update()
            if isinstance(got, SkipClip):
                counts["skipped"].append((i, str(paths[i]), got.reason))
                continue
            counts["clips"] += 1
            counts["from_cache" if got["cached"] else "computed"] += 1
            counts["frames"] += got["frames"]
            counts["frames_no_face"] += got["no_face"]
            counts["clips_no_face"] += int(got["faces"] == 0)
            if not got["cached"]:
                done_frames += got["frames"]
                busy += got["seconds"]
                bar.set_postfix(frames_per_s=f"{done_frames / max(busy, 1e-9):.0f}")
    finally:
        store.save_hashes()
        bar.close()
    counts["skipped"] = [(path, reason) for _, path, reason in sorted(counts["skipped"])]  # the corpus's order
    counts["frames_per_s"] = done_frames / busy if busy else None
    return counts


# ----------------------------------------------------------------------- small helpers
