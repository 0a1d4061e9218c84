"""EmoDistill's prosodic teacher (section 3): eGeMAPS LLDs into a 2D ResNet of 4 residual blocks.

What it supports:

* features: opensmile's eGeMAPSv02 low-level descriptors (25 per 10 ms frame, section 4.2),
  computed from the 16 kHz mono waveform once per clip and cached through
  :class:`~liser.storage.ClipStore` (:func:`lld_features`). A clip whose LLDs hold NaN or
  inf is skipped with that reason rather than patched: opensmile only does this for audio
  too short to analyse, which :func:`~liser.audio.load_audio` already refuses, so a
  non-finite value means something we do not understand and should not train on.
* the network (:class:`ProsodicResNet`): the LLD matrix [T, 25] as a 1-channel image, a stem
  conv, 4 basic residual blocks, global average pooling, a ReLU-activated linear embedding
  z_P (what the student matches with Eq. 3) and a linear classifier (logits y_P, Eq. 1).
* fitting (:func:`fit_prosodic_teachers`): one teacher per fold from that fold's training
  speakers only, features standardized with the fit clips' statistics, trained with AdamW
  and a cosine learning-rate decay on random crops, the epoch with the best whole-clip UAR
  on a class-stratified 20 % kept. Its
  logits and embeddings for every usable clip of the corpus go to a
  :class:`~liser.targets.ClipOutputs` file per fold.

Layout of ``out_dir``::

    fold{k}/prosodic.pt      weights, standardization and provenance (loads with weights_only=True)
    prosodic-fold{k}.npz     ClipOutputs(kind="prosodic"): logits [N, K], embeddings [N, D]
    prosodic.json            a summary over the folds fitted so far

Usage::

    liser teacher prosodic fit --labeled ravdess:PATH --out teachers/prosodic
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from tqdm.auto import tqdm

import liser
from liser.audio import load_audio
from liser.constants import SAMPLE_RATE
from liser.corpora.manifest import Corpus
from liser.evaluate import uar, war
from liser.folds import Fold
from liser.storage import ClipStore, ClipTask, ContentHashes, SkipClip, StoreRun, default_cache_dir, sha1_file, skip_or, write_atomic
from liser.targets import ClipOutputs
from liser.teachers.fitting import best_epoch_loop, check_folds, fit_folds, split_fit_val, torch_threads
from liser.errors import TeacherError

N_LLD = 25  # eGeMAPSv02 low-level descriptors per frame
LLD_HOP_SECONDS = 0.01  # opensmile's eGeMAPS frame step: 100 frames per second
MIN_FRAMES = 16  # shorter inputs are padded (3 stride-2 blocks need a few frames to pool over)
CHECKPOINT = "prosodic.pt"
SUMMARY_FILE = "prosodic.json"


def lld_settings() -> dict:
    """What decides the cached LLDs; its hash names the cache folder."""
    import opensmile

    return {
        "kind": "egemaps-lld",
        "feature_set": "eGeMAPSv02",
        "feature_level": "LowLevelDescriptors",
        "opensmile": opensmile.__version__,
        "sample_rate": SAMPLE_RATE,
        "version": 1,
    }


def lld_settings_key(settings: dict | None = None) -> str:
    return hashlib.sha1(json.dumps(settings or lld_settings(), sort_keys=True).encode()).hexdigest()[:12]


class LldTask(ClipTask):
    """eGeMAPSv02 LLDs of a batch of clips; each worker builds its openSMILE extractor once, on its
    first clip to compute (a warm cache never pays for it)."""

    auto_min_clips = 400  # openSMILE runs at hundreds of clips/s: Ray pays only for big jobs

    def __init__(self, batch_size: int = 16) -> None:
        self.batch_size, self._smile = batch_size, None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_smile": None}  # not picklable; each worker builds its own

    def lld(self, path: Path) -> dict[str, np.ndarray]:
        import opensmile

        wave = load_audio(path)  # AudioError carries the skip reason
        if self._smile is None:
            self._smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Segment too short, filling with NaN": handled below
            lld = self._smile.process_signal(wave, SAMPLE_RATE).to_numpy(np.float32)
        if lld.ndim != 2 or lld.shape[1] != N_LLD or not len(lld):
            raise SkipClip(f"no eGeMAPS frames (got shape {lld.shape})")
        bad = int((~np.isfinite(lld)).sum())
        if bad:
            raise SkipClip(f"eGeMAPS LLDs hold {bad} NaN/inf values")
        return {"lld": lld}

    def __call__(self, paths: list[Path]) -> list:
        return [skip_or(self.lld, p) for p in paths]


def _valid_lld(entry: dict[str, np.ndarray]) -> bool:
    lld = entry.get("lld")
    return lld is not None and lld.ndim == 2 and lld.shape[1] == N_LLD and len(lld) > 0 and bool(np.isfinite(lld).all())


def lld_features(
    corpus: Corpus, cache_dir: str | Path | None = None, progress: bool = True, pool=None
) -> tuple[dict[str, np.ndarray], StoreRun]:
    """eGeMAPSv02 LLDs [T, 25] float32 of every usable clip, computed once and cached.

    Cached under ``<cache>/prosody/<settings-key>/`` by content hash. Clips whose audio is
    unusable (see :func:`~liser.audio.load_audio`) or whose LLDs are not finite are skipped;
    the returned :class:`StoreRun` lists them with their reasons. ``pool``
    (:class:`liser.workers.Pool`) computes the missing clips in worker processes.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    store = ClipStore(root / "prosody" / lld_settings_key(), ContentHashes(root / "hashes.json"))
    rows = corpus.manifest[["clip_id", "path"]].itertuples(index=False)
    run = store.map(rows, LldTask(), check=_valid_lld, total=len(corpus.manifest), desc=f"eGeMAPS {corpus.name}", progress=progress, pool=pool)
    return {clip_id: entry["lld"] for clip_id, entry in run.arrays.items()}, run


# ------------------------------------------------------------------------------- network
class ProsodicOutput(NamedTuple):
    logits: torch.Tensor  # [B, K]
    embedding: torch.Tensor  # [B, D], z_P


class BasicBlock(nn.Module):
    """He et al.'s basic residual block: two 3x3 conv + BN, identity or 1x1 projection shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        same = stride == 1 and c_in == c_out
        self.shortcut = nn.Identity() if same else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ProsodicResNet(nn.Module):
    """The prosodic teacher f_T^P (section 3): a 2D ResNet of 4 residual blocks over [T, 25] LLDs.

    The embedding is ``ReLU(Linear(pooled))``, the layer the classifier reads: z_P is the
    teacher's penultimate representation, as the student's GELU-activated projection is its own.
    Inputs shorter than :data:`MIN_FRAMES` are zero-padded (zero is the mean after standardization).
    """

    def __init__(self, n_features: int = N_LLD, n_classes: int = 8, channels: Sequence[int] = (16, 32, 64, 128), embedding: int = 128):
        super().__init__()
        if len(channels) != 4:
            raise TeacherError(f"the prosodic ResNet has 4 residual blocks, so 4 channel widths; got {tuple(channels)}")
        self.n_features = n_features
        self.stem = nn.Sequential(nn.Conv2d(1, channels[0], 3, 1, 1, bias=False), nn.BatchNorm2d(channels[0]), nn.ReLU())
        widths = [channels[0], *channels]
        self.blocks = nn.Sequential(*(BasicBlock(widths[i], widths[i + 1], 1 if i == 0 else 2) for i in range(4)))
        self.embed = nn.Linear(channels[-1], embedding)
        self.classifier = nn.Linear(embedding, n_classes)

    def forward(self, x: torch.Tensor) -> ProsodicOutput:
        if x.ndim != 3 or x.shape[-1] != self.n_features:
            raise TeacherError(f"expected LLDs [batch, frames, {self.n_features}], got {tuple(x.shape)}")
        if x.shape[1] < MIN_FRAMES:
            x = nn.functional.pad(x, (0, 0, 0, MIN_FRAMES - x.shape[1]))
        h = self.blocks(self.stem(x.unsqueeze(1)))  # [B, C, T / 8, F / 8]
        z = torch.relu(self.embed(h.mean(dim=(2, 3))))
        return ProsodicOutput(self.classifier(z), z)


# ------------------------------------------------------------------------------- fitting
class ProsodicTeacherConfig(BaseModel):
    """How a prosodic teacher is fitted. The paper gives no teacher hyperparameters; these suit
    a small ResNet on a few hundred clips."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epochs: int = Field(30, ge=1, description="epochs; the best whole-clip val UAR is kept")
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(1e-2, ge=0, description="AdamW")
    batch_size: int = Field(32, ge=1)
    crop_frames: int = Field(300, ge=MIN_FRAMES, description="LLD frames per training crop (100 per second); evaluation uses whole clips")
    channels: tuple[int, int, int, int] = (16, 32, 64, 128)
    embedding: int = Field(128, ge=1, description="size of z_P")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="class-stratified share of the training clips held out")
    seed: int = 0
    threads: int | None = Field(None, ge=1, description="torch threads while fitting (default: torch's)")


def standardizer(llds: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std [25] over all frames of ``llds`` (a constant feature gets std 1)."""
    frames = np.concatenate(llds).astype(np.float64)
    mean, std = frames.mean(0), frames.std(0)
    return mean.astype(np.float32), np.where(std > 1e-6, std, 1.0).astype(np.float32)


def crop_batch(llds: Sequence[np.ndarray], frames: int, rng: np.random.Generator) -> torch.Tensor:
    """[B, frames, 25] random crops of standardized LLDs; shorter clips are zero-padded at the end."""
    out = np.zeros((len(llds), frames, llds[0].shape[1]), np.float32)
    for row, lld in enumerate(llds):
        start = int(rng.integers(0, max(len(lld) - frames, 0) + 1))
        piece = lld[start : start + frames]
        out[row, : len(piece)] = piece
    return torch.from_numpy(out)


@torch.inference_mode()
def predict(
    model: ProsodicResNet, llds: Sequence[np.ndarray], device: torch.device | str = "cpu", batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Whole-clip logits [N, K] and embeddings [N, D] of standardized LLDs.

    Clips of equal length share a batch; no clip is padded beyond :data:`MIN_FRAMES`, so a
    clip's outputs do not depend on what it is batched with.
    """
    model.eval()
    k, d = model.classifier.out_features, model.embed.out_features
    logits, emb = np.zeros((len(llds), k), np.float32), np.zeros((len(llds), d), np.float32)
    by_length: dict[int, list[int]] = {}
    for i, lld in enumerate(llds):
        by_length.setdefault(len(lld), []).append(i)
    for idx in by_length.values():
        for lo in range(0, len(idx), batch_size):
            part = idx[lo : lo + batch_size]
            out = model(torch.from_numpy(np.stack([llds[i] for i in part])).to(device))
            logits[part], emb[part] = out.logits.float().cpu().numpy(), out.embedding.float().cpu().numpy()
    return logits, emb


def _state_sha1(state: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha1()
    for name, tensor in sorted(state.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def fit_prosodic_teacher(
    llds: dict[str, np.ndarray],
    labels: dict[str, int],
    classes: Sequence[str],
    cfg: ProsodicTeacherConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "prosodic teacher",
) -> dict:
    """Fit one teacher on the clips of ``labels`` (clip_id -> class index), LLDs from ``llds``.

    The clips are split 80/20 (class-stratified); the network trains on random crops of
    the 80 %, and the epoch with the best whole-clip (UAR, WAR) on the 20 % is kept.
    Returns the checkpoint payload (tensors and primitives) plus ``fit_clips``/``val_clips``.
    """
    cfg = cfg or ProsodicTeacherConfig()
    with torch_threads(cfg.threads):
        return _fit(llds, labels, classes, cfg, device, progress, desc)


def _fit(llds, labels, classes, cfg: ProsodicTeacherConfig, device, progress: bool, desc: str) -> dict:
    ids = sorted(labels)
    y = np.asarray([labels[c] for c in ids], int)
    fit_idx, val_idx = split_fit_val(y, cfg.val_fraction, cfg.seed)
    if not len(fit_idx) or not len(val_idx):
        raise TeacherError(f"{len(ids)} usable clips cannot be split into fit and validation parts")
    mean, std = standardizer([llds[ids[i]] for i in fit_idx])  # the fit clips only
    x = [(llds[c] - mean) / std for c in ids]

    torch.manual_seed(cfg.seed)
    model = ProsodicResNet(N_LLD, len(classes), cfg.channels, cfg.embedding).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # cosine decay to zero over the run (section 4.2 anneals the student's LR the same way)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg.epochs * -(-len(fit_idx) // cfg.batch_size))
    rng = np.random.default_rng([cfg.seed, 7, 25])
    val_x, val_y = [x[i] for i in val_idx], y[val_idx]

    def train_epoch(epoch: int) -> dict:
        model.train()
        losses, order = [], rng.permutation(fit_idx)
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            if len(idx) < 2 and lo:  # BatchNorm cannot train on a single sample; drop a lone remainder
                continue
            logits = model(crop_batch([x[i] for i in idx], cfg.crop_frames, rng).to(device)).logits
            loss = nn.functional.cross_entropy(logits, torch.as_tensor(y[idx], device=device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.item()))
        return {"loss": float(np.mean(losses))}

    def validate() -> tuple[tuple[float, float], dict]:
        pred = predict(model, val_x, device)[0].argmax(1)
        score = (uar(val_y, pred), war(val_y, pred))
        return score, {"val_uar": score[0], "val_war": score[1]}

    bar = tqdm(total=cfg.epochs, desc=desc, unit="epoch", disable=not progress)
    snapshot = lambda: {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}  # noqa: E731
    best = best_epoch_loop(cfg.epochs, train_epoch, validate, snapshot, bar=bar, tick=True, timed=False)
    return {
        "state_dict": best.state,
        "config": cfg.model_dump(mode="json"),
        "classes": list(classes),
        "mean": torch.from_numpy(mean),
        "std": torch.from_numpy(std),
        "best_epoch": best.epoch,
        "val_uar": float(best.score[0]),
        "val_war": float(best.score[1]),
        "history": best.history,
        "n_fit": int(len(fit_idx)),
        "n_val": int(len(val_idx)),
        "fit_seconds": best.seconds,
        "fit_clips": [ids[i] for i in fit_idx],
        "val_clips": [ids[i] for i in val_idx],
    }


@dataclass
class ProsodicTeacher:
    """A fitted prosodic teacher: network, standardization and the checkpoint's record."""

    model: ProsodicResNet
    mean: np.ndarray
    std: np.ndarray
    record: dict
    device: torch.device | str = "cpu"

    @classmethod
    def from_payload(cls, payload: dict, device: torch.device | str = "cpu") -> "ProsodicTeacher":
        cfg = payload["config"]
        model = ProsodicResNet(N_LLD, len(payload["classes"]), tuple(cfg["channels"]), cfg["embedding"])
        model.load_state_dict(payload["state_dict"])
        record = {k: v for k, v in payload.items() if k not in ("state_dict", "mean", "std")}
        return cls(model.to(device).eval(), payload["mean"].numpy(), payload["std"].numpy(), record, device)

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> "ProsodicTeacher":
        """Read ``fold{k}/prosodic.pt`` (or its folder) with ``weights_only=True``."""
        path = Path(path)
        path = path / CHECKPOINT if path.is_dir() else path
        return cls.from_payload(torch.load(path, map_location="cpu", weights_only=True), device)

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.record["classes"])

    def predict(self, llds: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Logits [N, K] and embeddings z_P [N, D] of raw (unstandardized) LLDs, one row per clip."""
        return predict(self.model, [(np.asarray(l, np.float32) - self.mean) / self.std for l in llds], self.device)


class _ProsodicFolds:
    """The prosodic teacher's part of :func:`~liser.teachers.fitting.fit_folds`: a fold is its
    checkpoint plus its logits and embeddings over every usable clip, from LLDs read once."""

    kind, summary_file = "prosodic", SUMMARY_FILE

    def __init__(self, corpus: Corpus, cfg: ProsodicTeacherConfig, out_dir: Path, llds: dict, skipped: list, device, progress: bool) -> None:
        self.corpus, self.cfg, self.out_dir, self.llds, self.skipped = corpus, cfg, out_dir, llds, skipped
        self.device, self.progress = device, progress
        self.settings, self.manifest_hash = lld_settings(), corpus.manifest_hash()
        self.identity = {"config": cfg.model_dump(mode="json"), "settings": self.settings}
        self.header = {"skipped": len(skipped)}
        manifest = corpus.manifest[corpus.manifest["clip_id"].isin(llds)]
        self.speaker_of = dict(zip(manifest["clip_id"], manifest["speaker"].astype(str)))
        self.label_of = dict(zip(manifest["clip_id"], manifest["label_index"].astype(int)))
        self.ids = sorted(llds)

    def _paths(self, k: int) -> tuple[Path, Path]:
        return self.out_dir / f"fold{k}" / CHECKPOINT, self.out_dir / f"prosodic-fold{k}.npz"

    def _expect(self, train: list[str]) -> dict:
        return {"settings": self.settings, "config": self.cfg.model_dump(mode="json"), "manifest_hash": self.manifest_hash, "train_speakers": train}

    def up_to_date(self, k: int, fold: Fold, train: list[str]) -> dict | None:
        ckpt, npz = self._paths(k)
        if not (ckpt.exists() and npz.exists()):
            return None
        try:
            meta = ClipOutputs.load(npz).meta
        except ValueError:
            return None
        if any(meta.get(key) != v for key, v in self._expect(train).items()) or meta.get("checkpoint_sha1") != sha1_file(ckpt):
            return None
        return meta

    def fit(self, k: int, fold: Fold, train: list[str], held_out: list[str]) -> dict:
        ckpt, npz = self._paths(k)
        labels = {c: self.label_of[c] for c in self.ids if self.speaker_of[c] in train}
        if not labels:
            raise TeacherError(f"fold {k}: no usable clips of training speakers {train} in corpus {self.corpus.name}")
        cfg, corpus = self.cfg, self.corpus
        payload = fit_prosodic_teacher(self.llds, labels, corpus.classes, cfg, device=self.device, progress=self.progress, desc=f"prosodic teacher fold {k}")
        payload.update(train_speakers=train, val_speakers=sorted(fold.val), test_speakers=sorted(fold.test),
                       settings=self.settings, manifest_hash=self.manifest_hash, corpus=corpus.name, liser_version=liser.__version__)
        payload["weights_sha1"] = _state_sha1(payload["state_dict"])
        write_atomic(ckpt, lambda fh: torch.save(payload, fh))
        with torch_threads(cfg.threads):
            logits, emb = ProsodicTeacher.from_payload(payload, self.device).predict([self.llds[c] for c in self.ids])
        meta = {
            **self._expect(train), "fold": k, "val_uar": payload["val_uar"], "val_war": payload["val_war"], "best_epoch": payload["best_epoch"],
            "n_fit": payload["n_fit"], "n_val": payload["n_val"], "fit_clips": payload["fit_clips"], "val_clips": payload["val_clips"],
            "fit_seconds": payload["fit_seconds"], "checkpoint": f"fold{k}/{CHECKPOINT}",
            "checkpoint_sha1": sha1_file(ckpt),  # the file (it records fit_seconds, so differs between runs)
            "weights_sha1": payload["weights_sha1"],  # the weights alone: equal for equal seeds
            "skipped": self.skipped, "corpus": corpus.name, "liser_version": liser.__version__,
        }
        ClipOutputs("prosodic", tuple(corpus.classes), self.ids, logits, emb, meta).save(npz)
        return meta

    def entry(self, k: int, record: dict) -> dict:
        return {"checkpoint": record["checkpoint"], "outputs": self._paths(k)[1].name, "n_fit": record["n_fit"], "n_val": record["n_val"],
                "checkpoint_sha1": record["checkpoint_sha1"]}


def fit_prosodic_teachers(
    corpus: Corpus,
    folds: Sequence[Fold],
    fold_indices: Sequence[int] | None = None,
    cfg: ProsodicTeacherConfig | None = None,
    out_dir: str | Path = "prosodic-teachers",
    *,
    cache_dir: str | Path | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    log: Callable[[str], object] = print,
    pool=None,
) -> dict:
    """One prosodic teacher per fold, each fitted on ``fold.train`` speakers only.

    Writes ``out_dir/fold{k}/prosodic.pt``, ``out_dir/prosodic-fold{k}.npz`` (logits and
    embeddings of every usable clip of the corpus) and ``out_dir/prosodic.json`` (merged
    with folds fitted before), and returns the summary. A fold whose files exist with the
    same settings, corpus and training speakers is skipped. ``pool`` computes the LLDs the
    cache lacks in worker processes.

    Raises:
        TeacherError: unlabeled corpus, unknown fold, a fold whose training speakers overlap
            its validation or test speakers, or training clips of held-out speakers.
    """
    cfg = cfg or ProsodicTeacherConfig()
    if not corpus.labeled:
        raise TeacherError(f"corpus {corpus.name} at {corpus.root} is unlabeled; a prosodic teacher is fitted on labeled speech")
    check_folds(folds, fold_indices)  # all leakage checks before any work, the LLDs included
    llds, run = lld_features(corpus, cache_dir, progress, pool)
    if run.skipped:
        log(f"prosodic teacher: {len(run.skipped)} of {len(corpus.manifest)} clips skipped (reasons in each fold's meta)")
    skipped = [{"path": p, "reason": r} for p, r in run.skipped]
    teacher = _ProsodicFolds(corpus, cfg, Path(out_dir), llds, skipped, device, progress)
    return fit_folds(teacher, corpus, folds, fold_indices, out_dir, log=log)
