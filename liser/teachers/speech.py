"""The speech teacher (sections 2.1, 3.2, 3.4): HuBERT fine-tuned for SER with LoRA.

What it supports:

* backbones: a Hugging Face hub id (default ``facebook/hubert-base-ls960``, the paper's),
  a local checkpoint folder, or ``"tiny-synth"``, a small HuBERT-architecture backbone
  built offline (see :func:`liser.teachers.tiny_synth.tiny_synth_backbone`; loading: :mod:`liser.teachers.hubert`). All three load through the same
  ``HubertForSequenceClassification.from_pretrained`` + LoRA path (:func:`build_model`).
* fine-tuning (section 3.2): LoRA on the self-attention projections (q, k, v, out), the
  classification head trained in full, everything else frozen; 80 % of the labeled
  training clips fit, the best of up to 50 epochs is chosen on the other 20 %.
  :func:`fit_speech_teachers` fits one teacher per fold from that fold's training
  speakers only and refuses any clip of its validation or test speakers.
* prediction (section 3.4): :meth:`SpeechTeacher.predict_segments` gives one softmax per
  0.5 s segment, the unit the trainer averages over each 3 s crop.

A fitted teacher folder holds the LoRA adapter and head (``adapter_model.safetensors``,
``adapter_config.json``, written by peft) and ``teacher.json`` (what it was fitted on,
how well it did on its 20 %, and a checkpoint hash). Usage::

    liser teacher speech fit --labeled ravdess:PATH --backbone tiny-synth --out teachers/speech
"""

from __future__ import annotations

import hashlib
import json
from functools import partial
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm.auto import tqdm
from transformers import HubertForSequenceClassification

import liser
from liser.audio import AudioError, load_audio
from liser.constants import SAMPLE_RATE, TEACHER_SEGMENT_SECONDS
from liser.corpora.manifest import Corpus
from liser.evaluate import uar, war
from liser.folds import Fold
from liser.storage import write_json
from liser.teachers.fitting import TeacherError, best_epoch_loop, fit_folds, split_fit_val, torch_threads, training_clips
from liser.teachers.hf import quiet_transformers
from liser.teachers.hubert import HEAD_MODULES, HUBERT_BASE, load_backbone, resolve_backbone  # noqa: F401  (resolve_backbone: re-exported)
from liser.teachers.tiny_synth import TINY_SYNTH  # noqa: F401  (re-exported: the keyword)
from liser.teachers.waves import SPEECH_RANGE_DB, crop_batch, normalize_wave, segment_wave, speech_crop_starts, speech_segments, step_logits

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # HuBERT's self-attention projections
TEACHER_FILE = "teacher.json"
SUMMARY_FILE = "teachers.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
FIT_COMMAND = "liser teacher speech fit --labeled CORPUS --out DIR"


class SpeechTeacherConfig(BaseModel):
    """How a speech teacher is fine-tuned (section 3.2); defaults follow the paper where it says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: str = Field(HUBERT_BASE, description="hub id, local checkpoint folder, or 'tiny-synth'")
    epochs: int = Field(50, ge=1, description="maximum epochs; the best on the 20 % is kept")
    patience: int | None = Field(None, ge=1, description="stop after this many epochs without a better val UAR")
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(8, ge=1)
    lora_r: int = Field(8, ge=1)
    lora_alpha: int = Field(16, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    val_fraction: float = Field(0.2, gt=0, lt=1, description="class-stratified share of the training clips held out")
    crop_seconds: float = Field(
        TEACHER_SEGMENT_SECONDS, ge=TEACHER_SEGMENT_SECONDS, description="random training crop (the 0.5 s segment it predicts on); shorter clips are zero-padded"
    )
    speech_crops: bool = Field(True, description="centre training crops on speech, not pauses or room noise (waves.speech_crop_starts)")
    class_weighted: bool = Field(True, description="cross-entropy weighted by inverse class frequency (RAVDESS has half as much neutral); UAR is the score")
    select_on: Literal["segments", "clips"] = Field(
        "segments", description="keep the epoch with the best val UAR of 0.5 s segments averaged per clip (what students distil) or of whole clips"
    )
    eval_batch_size: int = Field(64, ge=1, description="0.5 s segments per forward pass when predicting")
    threads: int | None = Field(None, ge=1, description="torch threads while fitting (default: torch's); 1 suits tiny backbones")
    seed: int = 0


def make_config(**fields) -> SpeechTeacherConfig:
    """A :class:`SpeechTeacherConfig` whose validation errors are TeacherErrors naming the field."""
    try:
        return SpeechTeacherConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise TeacherError(f"invalid speech teacher configuration: {problems}") from None


def add_lora(model: HubertForSequenceClassification, cfg: SpeechTeacherConfig | None = None) -> PeftModel:
    """LoRA on every self-attention projection, the head trained in full, all else frozen (section 3.2)."""
    cfg = cfg or SpeechTeacherConfig()
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=list(LORA_TARGETS),
        modules_to_save=list(HEAD_MODULES),
    )
    # The frozen conv encoder would still ask autograd for its input's gradient (HF's hook
    # for gradient checkpointing), which costs more than the rest of the backward pass.
    model.freeze_feature_encoder()
    with quiet_transformers():
        return get_peft_model(model, lora)


def build_model(backbone: str, classes: Sequence[str], cfg: SpeechTeacherConfig | None = None, *, progress: bool = False) -> PeftModel:
    """The trainable teacher: :func:`load_backbone` then :func:`add_lora`."""
    model, _ = load_backbone(backbone, classes, progress=progress)
    return add_lora(model, cfg)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# ------------------------------------------------------------------------------- training
def make_optimizer(model: torch.nn.Module, cfg: SpeechTeacherConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters only (LoRA A/B and the head)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_step(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, weight: torch.Tensor | None = None
) -> float:
    """One cross-entropy step (class-``weight``ed if given) on waveforms [B, samples] and labels [B]; returns the loss."""
    return step_logits(model, optimizer, x, y, partial(torch.nn.functional.cross_entropy, weight=weight))[0]


def class_weights(labels: np.ndarray, k: int) -> torch.Tensor:
    """Inverse class frequency, scaled to 1 per clip on average (absent classes 0)."""
    counts = np.bincount(labels, minlength=k).astype(np.float64)
    w = np.divide(counts.sum() / max((counts > 0).sum(), 1), counts, out=np.zeros(k), where=counts > 0)
    return torch.tensor(w, dtype=torch.float32)


@torch.inference_mode()
def predict_clips(
    model: torch.nn.Module, waves: Sequence[np.ndarray], *, normalize: bool, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Whole-clip logits [N, K], one clip per forward pass (HuBERT takes any length, no padding)."""
    model.eval()
    rows = []
    for wave in waves:
        x = torch.from_numpy(normalize_wave(wave) if normalize else wave)[None].to(device)
        rows.append(model(input_values=x).logits[0].float().cpu().numpy())
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


@torch.inference_mode()
def predict_segment_probs(
    model: torch.nn.Module, waves: Sequence[np.ndarray], *, normalize: bool, device: torch.device | str = "cpu", batch_size: int = 64
) -> list[np.ndarray]:
    """Per wave, the softmax of every 0.5 s segment [n_segments, K] (section 3.4), batched across waves."""
    model.eval()
    parts = [segment_wave(w, normalize=normalize) for w in waves]
    counts = [len(p) for p in parts]
    k = model.config.num_labels
    if not sum(counts):
        return [np.zeros((0, k), np.float32) for _ in waves]
    segments = np.concatenate(parts)
    probs = []
    for lo in range(0, len(segments), batch_size):
        x = torch.from_numpy(segments[lo : lo + batch_size]).to(device)
        probs.append(torch.softmax(model(input_values=x).logits.float(), -1).cpu().numpy())
    flat = np.concatenate(probs)
    return np.split(flat, np.cumsum(counts)[:-1])


def _segment_means(model, waves: list[np.ndarray], speech: list[np.ndarray], normalize: bool, device, batch_size: int) -> np.ndarray:
    """Per clip, the argmax of its ``speech`` segments' softmaxes averaged (:func:`speech_segments`,
    computed once per fit): the teacher as the trainer reads it."""
    probs = predict_segment_probs(model, waves, normalize=normalize, device=device, batch_size=batch_size)
    return np.asarray([p[mask].mean(0).argmax() if len(p) else -1 for p, mask in zip(probs, speech)])


def _decode(table, progress: bool) -> tuple[list[np.ndarray], list[int], list[dict]]:
    """Decode the clips' audio; (waves, kept row positions, skips with their reasons)."""
    waves, kept, skipped = [], [], []
    rows = table[["clip_id", "path"]].itertuples(index=False)
    for pos, (clip_id, path) in enumerate(tqdm(rows, total=len(table), desc="decoding", unit="clip", disable=not progress, leave=False)):
        try:
            waves.append(load_audio(path))
            kept.append(pos)
        except AudioError as exc:
            skipped.append({"clip_id": clip_id, "path": str(path), "reason": exc.reason})
    return waves, kept, skipped


def _checkpoint_hash(out_dir: Path, backbone_hash: str, normalize: bool, classes: Sequence[str], cfg: SpeechTeacherConfig) -> str:
    """sha1 of the saved weights plus everything else that decides the teacher's outputs."""
    digest = hashlib.sha1()
    ident = {"backbone_hash": backbone_hash, "normalize": normalize, "classes": list(classes), "lora": [cfg.lora_r, cfg.lora_alpha, list(LORA_TARGETS)]}
    digest.update(json.dumps(ident, sort_keys=True).encode())
    with open(out_dir / ADAPTER_WEIGHTS, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def fit_speech_teacher(
    corpus: Corpus,
    train_speakers: Sequence[str],
    cfg: SpeechTeacherConfig | None = None,
    out_dir: str | Path = "speech-teacher",
    *,
    forbidden_speakers: Sequence[str] = (),
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """Fine-tune a speech teacher on the clips of ``train_speakers`` and save it to ``out_dir``.

    The clips are split 80/20 (class-stratified); LoRA and the head are trained on random
    crops of the 80 %, and the epoch with the best UAR on the 20 % is kept (section 3.2).
    By default that UAR is of the 0.5 s segment softmaxes averaged per clip, because those
    segments are what a student distils (eq. 2); ``select_on="clips"`` scores whole clips.
    Returns the teacher.json record.

    Raises:
        TeacherError: unlabeled corpus, unknown or forbidden speakers, no usable clips.
    """
    cfg = cfg or SpeechTeacherConfig()
    with torch_threads(cfg.threads):
        return _fit(corpus, train_speakers, cfg, Path(out_dir), forbidden_speakers, device, progress)


def _fit(corpus: Corpus, train_speakers, cfg: SpeechTeacherConfig, out_dir: Path, forbidden_speakers, device, progress: bool) -> dict:
    train, table = training_clips(corpus, train_speakers, forbidden_speakers, "speech teacher")
    log = tqdm.write if progress else (lambda *_: None)
    resolve_backbone(cfg.backbone, progress=progress)  # a tiny-synth build draws random numbers: before seeding
    torch.manual_seed(cfg.seed)  # head and LoRA initialisation
    base, backbone = load_backbone(cfg.backbone, corpus.classes, progress=progress)  # fails fast, before decoding
    waves, kept, skipped = _decode(table, progress)
    if skipped:
        log(f"speech teacher: skipped {len(skipped)} of {len(table)} clips whose audio is unusable (listed in {TEACHER_FILE})")
    table = table.iloc[kept].reset_index(drop=True)
    labels = table["label_index"].to_numpy(int)
    fit_idx, val_idx = split_fit_val(labels, cfg.val_fraction, cfg.seed)
    if not len(fit_idx) or not len(val_idx):
        raise TeacherError(f"{len(table)} usable clips of speakers {list(train)} cannot be split into fit and validation parts")

    model = add_lora(base, cfg).to(device)
    trainable, total = count_parameters(model)
    log(f"speech teacher: {trainable:,} of {total:,} parameters trainable ({100 * trainable / total:.2f} %), backbone {cfg.backbone}")
    optimizer = make_optimizer(model, cfg)
    rng = np.random.default_rng([cfg.seed, 3, 2])
    val_waves, val_y = [waves[i] for i in val_idx], labels[val_idx]
    val_speech = [speech_segments(w) for w in val_waves]
    bar = tqdm(total=cfg.epochs * len(fit_idx), desc=f"speech teacher {out_dir.name}", unit="clip", disable=not progress)

    starts = [speech_crop_starts(w, cfg.crop_seconds) for w in waves] if cfg.speech_crops else None
    weight = class_weights(labels[fit_idx], len(corpus.classes)).to(device) if cfg.class_weighted else None

    def train_epoch(epoch: int) -> dict:
        losses, order = [], rng.permutation(fit_idx)
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            at = [starts[i] for i in idx] if starts is not None else None
            x = crop_batch([waves[i] for i in idx], cfg.crop_seconds, rng, normalize=backbone.normalize, starts=at).to(device)
            losses.append(train_step(model, optimizer, x, torch.as_tensor(labels[idx], device=device), weight))
            bar.update(len(idx))
        return {"loss": float(np.mean(losses))}

    def validate() -> tuple[tuple[float, float], dict]:
        pred = predict_clips(model, val_waves, normalize=backbone.normalize, device=device).argmax(1)
        seg = _segment_means(model, val_waves, val_speech, backbone.normalize, device, cfg.eval_batch_size)
        clips, segments = (uar(val_y, pred), war(val_y, pred)), (uar(val_y, seg), war(val_y, seg))
        fields = {"val_uar": clips[0], "val_war": clips[1], "val_segment_uar": segments[0], "val_segment_war": segments[1]}
        return (segments if cfg.select_on == "segments" else clips), fields

    def snapshot() -> dict:
        return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}

    best = best_epoch_loop(cfg.epochs, train_epoch, validate, snapshot, patience=cfg.patience, bar=bar)
    set_peft_model_state_dict(model, best.state)

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TEACHER_FILE).unlink(missing_ok=True)  # a folder without teacher.json is an unfinished fit
    with quiet_transformers():
        model.save_pretrained(out_dir)
    (out_dir / "README.md").unlink(missing_ok=True)  # peft's empty model-card template; teacher.json says it all
    kept = best.row
    record = {
        "kind": "speech",
        "backbone": cfg.backbone,
        "backbone_source": backbone.source,
        "pretrained_head": backbone.pretrained_head,
        "backbone_hash": backbone.backbone_hash,
        "normalize": backbone.normalize,
        "classes": list(corpus.classes),
        "corpus": corpus.name,
        "corpus_root": str(corpus.root),
        "manifest_hash": corpus.manifest_hash(),
        "train_speakers": list(train),
        "n_fit": int(len(fit_idx)),
        "n_val": int(len(val_idx)),
        "fit_clips": table["clip_id"].iloc[fit_idx].tolist(),
        "val_clips": table["clip_id"].iloc[val_idx].tolist(),
        "skipped": skipped,
        "best_epoch": best.epoch,
        "selected_on": cfg.select_on,
        "val_uar": kept["val_uar"],
        "val_war": kept["val_war"],
        "val_segment_uar": kept["val_segment_uar"],
        "val_segment_war": kept["val_segment_war"],
        "history": best.history,
        "config": cfg.model_dump(),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "segment_seconds": TEACHER_SEGMENT_SECONDS,
        "fit_seconds": best.seconds,
        "checkpoint_hash": _checkpoint_hash(out_dir, backbone.backbone_hash, backbone.normalize, corpus.classes, cfg),
        "liser_version": liser.__version__,
    }
    write_json(out_dir / TEACHER_FILE, record)
    return record


class _SpeechFolds:
    """The speech teacher's part of :func:`~liser.teachers.fitting.fit_folds`."""

    kind, summary_file = "speech", SUMMARY_FILE

    def __init__(self, corpus: Corpus, cfg: SpeechTeacherConfig, out_dir: Path, device, progress: bool) -> None:
        self.corpus, self.cfg, self.out_dir, self.device, self.progress = corpus, cfg, out_dir, device, progress
        self.identity, self.header = {"backbone": cfg.backbone}, {"config": cfg.model_dump()}

    def up_to_date(self, k: int, fold: Fold, train: list[str]) -> dict | None:
        fold_dir = self.out_dir / f"fold{k}"
        try:
            record = json.loads((fold_dir / TEACHER_FILE).read_text())
            same = (
                record["config"] == self.cfg.model_dump() and record["manifest_hash"] == self.corpus.manifest_hash()
                and record["classes"] == list(self.corpus.classes) and record["train_speakers"] == train
                and _checkpoint_hash(fold_dir, record["backbone_hash"], record["normalize"], record["classes"], self.cfg) == record["checkpoint_hash"]
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return record if same else None

    def fit(self, k: int, fold: Fold, train: list[str], held_out: list[str]) -> dict:
        fold_dir = self.out_dir / f"fold{k}"
        return fit_speech_teacher(self.corpus, train, self.cfg, fold_dir, forbidden_speakers=held_out, device=self.device, progress=self.progress)

    def entry(self, k: int, record: dict) -> dict:
        return {"dir": f"fold{k}", "val_segment_uar": record["val_segment_uar"], "checkpoint_hash": record["checkpoint_hash"]}


def fit_speech_teachers(
    corpus: Corpus,
    folds: Sequence[Fold],
    fold_indices: Sequence[int] | None = None,
    cfg: SpeechTeacherConfig | None = None,
    out_dir: str | Path = "speech-teachers",
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    log=None,
) -> dict:
    """One teacher per fold in ``out_dir/fold{k}/``, each fitted on ``fold.train`` speakers only.

    A fold whose teacher exists with the same configuration, corpus and training speakers
    (and intact weights) is skipped. Writes ``out_dir/teachers.json`` (merged with any folds
    fitted before) and returns it.

    Raises:
        TeacherError: a fold whose training speakers overlap its validation or test speakers,
            or a fold index that does not exist.
    """
    cfg = cfg or SpeechTeacherConfig()
    log = log or (tqdm.write if progress else (lambda *_: None))
    teacher = _SpeechFolds(corpus, cfg, Path(out_dir), device, progress)
    return fit_folds(teacher, corpus, folds, fold_indices, out_dir, log=log)


# ------------------------------------------------------------------------------- inference
class SpeechTeacher:
    """A fitted speech teacher, ready to give one softmax per 0.5 s segment (section 3.4)."""

    def __init__(self, model: torch.nn.Module, meta: dict, device: torch.device | str = "cpu", threads: int | None = None):
        self.model, self.meta, self.device, self.threads = model.eval(), meta, torch.device(device), threads
        self.classes: tuple[str, ...] = tuple(meta["classes"])
        self.checkpoint_hash: str = meta["checkpoint_hash"]
        self.normalize: bool = bool(meta.get("normalize", True))
        self.batch_size: int = int(meta.get("config", {}).get("eval_batch_size", 64))

    @property
    def settings(self) -> dict:
        """What, besides the checkpoint, decides the outputs (for teacher-output cache keys)."""
        return {
            "segment_seconds": TEACHER_SEGMENT_SECONDS, "sample_rate": SAMPLE_RATE, "normalize": self.normalize,
            "valid": f"speech within {SPEECH_RANGE_DB:g} dB of the clip's loudest segment",
        }

    @classmethod
    def load(cls, fold_dir: str | Path, device: torch.device | str = "cpu", threads: int | None = None) -> "SpeechTeacher":
        """Load a teacher folder written by :func:`fit_speech_teacher` (safetensors only, no pickle).

        ``threads`` sets torch's threads while predicting (default: the ``threads`` it was fitted with).

        Raises:
            TeacherError: missing folder or teacher.json, changed weights, or a backbone that
                differs from the one the teacher was fitted on.
        """
        fold_dir = Path(fold_dir)
        if not fold_dir.is_dir():
            raise TeacherError(f"speech teacher folder not found: {fold_dir}; create it with `{FIT_COMMAND}`")
        meta_path = fold_dir / TEACHER_FILE
        if not meta_path.exists():
            folds = sorted(p.name for p in fold_dir.glob("fold*") if (p / TEACHER_FILE).exists())
            hint = f"it holds per-fold teachers, pass one of them ({', '.join(folds)})" if folds else f"create it with `{FIT_COMMAND}`"
            raise TeacherError(f"{meta_path} not found: {fold_dir} is not a fitted speech teacher; {hint}")
        try:
            meta = json.loads(meta_path.read_text())
            backbone_name, classes = meta["backbone"], meta["classes"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TeacherError(f"{meta_path}: not a speech teacher record ({exc}); refit with `{FIT_COMMAND}`") from None
        if not (fold_dir / ADAPTER_WEIGHTS).exists():
            raise TeacherError(f"{fold_dir / ADAPTER_WEIGHTS} not found; the fit did not finish, refit with `{FIT_COMMAND}`")
        base, backbone = load_backbone(backbone_name, classes)
        if backbone.backbone_hash != meta.get("backbone_hash"):
            raise TeacherError(
                f"{fold_dir}: backbone {backbone_name!r} now loads different weights ({backbone.backbone_hash}) from those "
                f"the teacher was fitted on ({meta.get('backbone_hash')}); refit the teacher with `{FIT_COMMAND}`"
            )
        cfg = SpeechTeacherConfig(**meta["config"])
        if _checkpoint_hash(fold_dir, backbone.backbone_hash, backbone.normalize, classes, cfg) != meta["checkpoint_hash"]:
            raise TeacherError(
                f"{fold_dir / ADAPTER_WEIGHTS} does not match the checkpoint hash in {meta_path}; the folder was altered, refit it"
            )
        try:
            with quiet_transformers():
                model = PeftModel.from_pretrained(base, fold_dir).merge_and_unload()  # merged: plain HuBERT, faster
        except (OSError, ValueError, RuntimeError) as exc:
            raise TeacherError(f"{fold_dir}: the adapter does not load ({exc}); refit with `{FIT_COMMAND}`") from None
        return cls(model.to(device), meta, device, threads or cfg.threads)

    def predict_segments(self, wave: np.ndarray) -> np.ndarray:
        """Softmax per 0.5 s segment [ceil(len / 0.5 s), K] of a mono 16 kHz waveform."""
        return self.predict_segments_batch([wave])[0]

    def predict_segments_batch(self, waves: Sequence[np.ndarray]) -> list[np.ndarray]:
        """:meth:`predict_segments` for many waveforms, their segments batched together."""
        with torch_threads(self.threads):
            return predict_segment_probs(self.model, waves, normalize=self.normalize, device=self.device, batch_size=self.batch_size)

    def predict_file(self, path: str | Path) -> np.ndarray:
        """Segment softmaxes of an audio file; raises :class:`AudioError` (with ``reason``) for unusable audio."""
        return self.predict_segments(load_audio(path))
