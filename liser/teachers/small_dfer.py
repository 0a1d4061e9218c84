"""A small DFER network trained here: the offline video teacher (section 2.2's role of S2D).

A per-frame CNN on 64x64 crops whose logits are averaged over a 16-frame window's face
frames (:class:`SmallDFERNet`), trained on labeled face videos such as
:mod:`liser.synth.face_videos` by :func:`fit_small_dfer` with a :class:`SmallDFERConfig`,
through the shared best-epoch loop (:func:`liser.teachers.fitting.best_epoch_loop`).
"""

from __future__ import annotations

import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from torch import nn
from tqdm.auto import tqdm

from liser.constants import DFER_WINDOW_FRAMES, FERV39K_CLASSES, VIDEO_FPS
from liser.errors import CheckpointError, InputNotFound, TeacherError
from liser.evaluate import uar, war
from liser.storage import sha1_file, write_atomic, write_text_atomic
from liser.teachers.faces import FaceStore, FaceTrack
from liser.teachers.video_decode import VideoError
from liser.teachers.fitting import best_epoch_loop, torch_threads
from liser.teachers.video import MIN_FACES, N_FERV, normalise_class_name, windows


SMALL_DFER_FORMAT = "liser-small-dfer/1"


class SmallDFERNet(nn.Module):
    """Per-frame CNN (64x64 RGB -> 4x4 map -> embedding -> linear), averaged over time.

    ``forward(x [b, t, 3, h, w] float, mask [b, t] bool)`` -> logits [b, 7]: the mean of
    the frame logits over the window's faces (mask True), i.e. temporal mean pooling.
    Each frame is standardised (zero mean, unit variance) first, so lighting and skin
    tone matter less. It has no motion model: expressions here are held, not transient.
    The convolutions run channels-last: 9.0 s against 12.3 s per demo epoch on one CPU
    thread (``benchmarks/bench_dfer.py``, which builds ``channels_last=False`` to compare).
    """

    def __init__(
        self, n_classes: int = N_FERV, width: int = 16, embed: int = 128, size: int = 64, dropout: float = 0.2, channels_last: bool = True
    ) -> None:
        super().__init__()
        if size % 16:
            raise TeacherError(f"crop size must be a multiple of 16, got {size}")
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        blocks: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            blocks += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        flat = chans[-1] * (size // 16) ** 2  # four stride-2 convolutions
        self.size = size
        self.frames = nn.Sequential(*blocks, nn.Flatten(), nn.Dropout(dropout), nn.Linear(flat, embed), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed, n_classes))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.frames.to(memory_format=self.memory_format)  # load_state_dict keeps the layout

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [n, 7] of single frames x [n, 3, h, w]."""
        x = (x - x.mean((1, 2, 3), keepdim=True)) / (x.std((1, 2, 3), keepdim=True) + 1e-3)
        x = x.contiguous(memory_format=self.memory_format)
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
        self.face_size = net.size  # the crops it was trained on: a face store's size
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
        hint = "train one with `liser teacher video fit`"
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
        return self.predict_windows_batch([track], batch_size)[0]

    def predict_windows_batch(self, tracks: list[FaceTrack], batch_size: int = 64) -> list[tuple[np.ndarray, np.ndarray]]:
        """The 16-frame windows of several tracks, batched through the network together."""
        for track in tracks:
            if track.size != self.face_size:
                raise TeacherError(f"track crops are {track.size}px but this model was trained on {self.face_size}px")
        found = [windows(t, self.min_faces) for t in tracks]
        outs = [np.full((len(starts), N_FERV), 1.0 / N_FERV, np.float32) for starts, _ in found]
        jobs = [(i, int(w)) for i, (_, valid) in enumerate(found) for w in np.flatnonzero(valid)]
        with torch.no_grad():
            for lo in range(0, len(jobs), batch_size):
                chunk = jobs[lo : lo + batch_size]
                crops, mask = zip(*(_window_arrays(tracks[i], int(found[i][0][w])) for i, w in chunk))
                probs = torch.softmax(self.net(_to_input(np.stack(crops)), torch.from_numpy(np.stack(mask))), 1).numpy()
                for (i, w), p in zip(chunk, probs):
                    outs[i][w] = p
        return [(out, valid) for out, (_, valid) in zip(outs, found)]


def _checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".pt", ".json") else path
    return stem.with_name(stem.name + ".pt"), stem.with_name(stem.name + ".json")


def fitted_with(path: str | Path, cfg: SmallDFERConfig, n_videos: int) -> bool:
    """Whether the checkpoint at ``path`` was fitted with ``cfg`` on ``n_videos`` videos (skips counted)."""
    meta_path = _checkpoint_paths(path)[1]
    if not meta_path.exists():
        return False
    meta = json.loads(meta_path.read_text())
    clips = meta.get("train_clips", 0) + meta.get("val_clips", 0) + len(meta.get("skipped", []))
    return (meta.get("training"), clips) == (cfg.training(), n_videos)


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


class SmallDFERConfig(BaseModel):
    """How :func:`fit_small_dfer` trains (``liser teacher video fit --set KEY=VALUE``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(15, ge=1)
    detector: str = "prealigned"  # the face store's detector: prealigned for drawn faces, opencv for real videos
    size: int = Field(64, ge=16, multiple_of=16)  # crop size in pixels
    windows_per_clip: int = Field(12, ge=1)  # random 16-frame windows per training clip per epoch
    frames_per_window: int = Field(4, ge=1, le=DFER_WINDOW_FRAMES)  # random face frames trained per window
    batch_size: int = Field(16, ge=1)
    lr: float = Field(3e-3, gt=0)
    val_fraction: float = Field(0.2, gt=0, lt=1)
    min_faces: int = Field(MIN_FACES, ge=1, le=DFER_WINDOW_FRAMES)
    seed: int = 0
    width: int = Field(16, ge=1)  # channels of the first convolution
    threads: int | None = Field(None, ge=1)  # torch threads (None: as set); the count changes the last bits

    def training(self) -> dict:
        """The fields that shape the trained weights, as the checkpoint records them (``training``).

        The face store's detector, crop size and face threshold are recorded by the face store.
        """
        return self.model_dump(exclude={"detector", "size", "min_faces"})


def make_dfer_config(**fields) -> SmallDFERConfig:
    """A :class:`SmallDFERConfig`; invalid fields are one :class:`TeacherError` naming each."""
    try:
        return SmallDFERConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TeacherError(f"invalid small DFER configuration: {problems}") from None


def face_tracks(table: pd.DataFrame, store: FaceStore, min_faces: int, progress: bool = False):
    """(tracks, labels, kept rows, skips) of a labeled video table; a video without a usable window is a counted skip."""
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
    return tracks, np.asarray(labels), keep, skipped


def fit_small_dfer(
    videos: str | Path | pd.DataFrame,
    out_path: str | Path,
    cfg: SmallDFERConfig | None = None,
    *,
    store: FaceStore | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train a :class:`SmallDFERNet` on labeled face videos and save the best epoch.

    Faces come from ``store`` (default: the shared cache, with ``cfg.detector`` and
    ``cfg.size``; synthetic drawn faces use ``"prealigned"``). Each epoch draws
    ``windows_per_clip`` random 16-frame windows per training clip (S2D too trains on random
    16-frame windows) and ``frames_per_window`` random face frames of each, each trained to
    the clip's class (the model averages frame logits, so this costs a quarter of whole
    windows and gives every frame a gradient). A held-out ``val_fraction`` (whole people
    when the table has a ``person`` column with at least 5 people, else stratified clips) is
    scored after each epoch by clip-level UAR (mean softmax over the clip's valid windows,
    all 16 frames each). The best epoch (UAR, then WAR, then earliest) is saved to
    ``<out_path>.pt`` / ``.json`` with its validation UAR/WAR and the whole history.
    Returns that metadata plus the file paths.
    """
    cfg = cfg or SmallDFERConfig()
    start_time = time.perf_counter()
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    table = read_video_table(videos)
    store = store or FaceStore(detector=cfg.detector, size=cfg.size)
    tracks, y, keep, skipped = face_tracks(table, store, cfg.min_faces, progress)
    if len(tracks) < 2:
        raise TeacherError(f"only {len(tracks)} usable labeled video(s); need at least 2 (skipped: {skipped[:5]})")
    if any(t.size != cfg.size for t in tracks):
        raise TeacherError(f"the store's crops are not {cfg.size}px; pass a FaceStore with size={cfg.size}")
    table = table.iloc[keep].reset_index(drop=True)
    val = _split(table, cfg.val_fraction, rng)
    if val.all() or not val.any():
        raise TeacherError(f"could not hold out a validation part of {len(table)} clips; add clips")
    train_idx, val_idx = np.flatnonzero(~val), np.flatnonzero(val)

    architecture = {"n_classes": N_FERV, "width": cfg.width, "embed": 128, "size": cfg.size, "dropout": 0.2}
    net = SmallDFERNet(**architecture)
    optim = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = max(1, cfg.epochs * math.ceil(len(train_idx) * cfg.windows_per_clip / cfg.batch_size))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(optim, T_max=steps)

    def train_epoch(epoch: int) -> dict:
        net.train()
        samples = training_windows(tracks, train_idx, cfg.windows_per_clip, cfg.min_faces, rng)
        order = rng.permutation(len(samples))
        losses = []
        for lo in range(0, len(order), cfg.batch_size):
            batch = [samples[j] for j in order[lo : lo + cfg.batch_size]]
            losses.append(train_step(net, optim, tracks, y, batch, cfg.frames_per_window, rng))
            sched.step()
        return {"train_loss": float(np.mean(losses))}

    def validate() -> tuple[tuple[float, float], dict]:
        model = SmallDFER(net, {"min_faces": cfg.min_faces, "size": cfg.size})  # puts net in eval mode
        pred = np.array([_clip_probs(model, tracks[c]).argmax() for c in val_idx])
        score = (uar(y[val_idx], pred), war(y[val_idx], pred))
        return score, {"val_uar": score[0], "val_war": score[1]}

    bar = tqdm(total=cfg.epochs, desc="small dfer", unit="epoch", disable=not progress)
    with torch_threads(cfg.threads):
        best = best_epoch_loop(cfg.epochs, train_epoch, validate, lambda: copy.deepcopy(net.state_dict()), bar=bar, tick=True, timed=False)
    net.load_state_dict(best.state)
    split = "person" if "person" in table and table["person"].nunique() >= 5 else "stratified clips"
    meta = {
        "name": "small-dfer",
        "classes": list(FERV39K_CLASSES),
        "architecture": architecture,
        "size": cfg.size,
        "detector": store.detector,
        "min_faces": cfg.min_faces,
        "window_frames": DFER_WINDOW_FRAMES,
        "fps": VIDEO_FPS,
        "best_epoch": best.epoch,
        "val_uar": best.row["val_uar"],
        "val_war": best.row["val_war"],
        "history": best.history,
        "train_clips": int(len(train_idx)),
        "val_clips": int(len(val_idx)),
        "val_split": split,
        "skipped": skipped,
        "training": cfg.training(),
        "torch": torch.__version__,
        "seconds": round(time.perf_counter() - start_time, 1),
    }
    model = SmallDFER(net, meta)
    weights = model.save(out_path)
    return dict(model.meta, path=str(weights), meta_path=str(_checkpoint_paths(out_path)[1]))


def training_windows(tracks: list[FaceTrack], clips, per_clip: int, min_faces: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """One epoch's samples: ``per_clip`` random (clip, window start) pairs for each of ``clips``."""
    return [(int(c), s) for c in clips for s in _random_starts(tracks[c], per_clip, min_faces, rng)]


def train_step(
    net: SmallDFERNet, optim: torch.optim.Optimizer, tracks: list[FaceTrack], labels: np.ndarray,
    batch: list[tuple[int, int]], frames_per_window: int, rng: np.random.Generator,
) -> float:
    """One optimiser step on a batch of (clip, window start) pairs; returns the loss.

    Each window gives ``frames_per_window`` random face frames, augmented together, and every
    frame is trained to its clip's class (the model averages frame logits over a window).
    """
    crops = np.stack([_random_faces(tracks[c], s, frames_per_window, rng) for c, s in batch])
    x = _augment(_to_input(crops), rng)  # [b, frames_per_window, 3, h, w]
    target = torch.as_tensor(labels[[c for c, _ in batch]]).repeat_interleave(x.shape[1])
    loss = F.cross_entropy(net.frame_logits(x.flatten(0, 1)), target)
    optim.zero_grad()
    loss.backward()
    optim.step()
    return loss.item()


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
