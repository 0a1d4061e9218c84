"""The speech teacher (sections 2.1, 3.2, 3.4): HuBERT fine-tuned for SER with LoRA.

What it supports:

* backbones: a Hugging Face hub id (default ``facebook/hubert-base-ls960``, the paper's),
  a local checkpoint folder, or ``"tiny-synth"``, a small HuBERT-architecture backbone
  built offline (see :func:`tiny_synth_backbone`). All three load through the same
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
import math
import os
import shutil
import time
import warnings
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from tqdm.auto import tqdm
from transformers import (
    HubertConfig,
    HubertForSequenceClassification,
    PretrainedConfig,
    Wav2Vec2FeatureExtractor,
)
from transformers.utils import logging as hf_logging

import liser
from liser.audio import AudioError, load_audio
from liser.constants import RAVDESS_EMOTIONS, SAMPLE_RATE, TEACHER_SEGMENT_SECONDS
from liser.corpora.manifest import Corpus
from liser.evaluate import uar, war
from liser.folds import Fold
from liser.storage import default_cache_dir, write_text_atomic
from liser.teachers.fitting import (
    TeacherError, check_folds, fold_entry, not_cached_message, read_entries, split_fit_val, torch_threads, write_summary,
)

HUBERT_BASE = "facebook/hubert-base-ls960"  # the paper's backbone (section 2.1)
TINY_SYNTH = "tiny-synth"  # the offline stand-in, built on first use
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # HuBERT's self-attention projections
HEAD_MODULES = ("projector", "classifier")  # HubertForSequenceClassification's head, trained in full
SEGMENT_SAMPLES = round(TEACHER_SEGMENT_SECONDS * SAMPLE_RATE)
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
    crop_seconds: float = Field(3.0, ge=TEACHER_SEGMENT_SECONDS, description="random training crop; shorter clips are zero-padded")
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


# ------------------------------------------------------------------------------- backbones
@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (a fresh head is always 'missing')."""
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _looks_like_path(backbone: str) -> bool:
    """A local path rather than a hub id ('org/name' has one slash and no leading ./ ~ /)."""
    return backbone.startswith(("/", ".", "~")) or "\\" in backbone or backbone.count("/") > 1 or os.path.exists(backbone)


def _not_cached_message(backbone: str, err: Exception) -> str:
    return not_cached_message("backbone", backbone, err, f"`--backbone {TINY_SYNTH}` for the small offline backbone")


def resolve_backbone(backbone: str, *, progress: bool = False) -> str:
    """What ``from_pretrained`` gets: ``tiny-synth`` becomes its cached folder (built once)."""
    if backbone == TINY_SYNTH:
        return str(tiny_synth_backbone(progress=progress))
    if _looks_like_path(backbone):
        path = Path(backbone).expanduser()
        if not path.exists():
            raise TeacherError(f"backbone folder not found: {path}")
        if not (path / "config.json").exists():
            raise TeacherError(f"{path}: not a Hugging Face checkpoint folder (no config.json)")
        return str(path)
    return backbone


def _state_hash(module: torch.nn.Module) -> str:
    """sha1 of a module's parameters and buffers, by name: the backbone's identity."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def _wants_normalize(source: str) -> bool:
    """Whether the checkpoint's feature extractor normalizes each input (zero mean, unit variance)."""
    try:
        with _quiet_transformers():
            return bool(Wav2Vec2FeatureExtractor.from_pretrained(source).do_normalize)
    except (OSError, ValueError):
        return True  # Wav2Vec2FeatureExtractor's default


@dataclass(frozen=True)
class BackboneInfo:
    """Where a backbone came from and what it is, recorded in teacher.json."""

    backbone: str  # as given: hub id, path or 'tiny-synth'
    source: str  # what from_pretrained read
    backbone_hash: str  # sha1 of the loaded backbone weights (head excluded)
    normalize: bool  # zero-mean unit-variance input, per the checkpoint's feature extractor


def load_backbone(backbone: str, classes: Sequence[str], *, progress: bool = False) -> tuple[HubertForSequenceClassification, BackboneInfo]:
    """``HubertForSequenceClassification`` with a fresh K-class head on the given backbone.

    Raises:
        TeacherError: not cached (offline), missing folder, not a HuBERT checkpoint, or
            weights that do not fit the architecture its config describes.
    """
    classes = list(classes)
    if not classes:
        raise TeacherError("a speech teacher needs classes; the corpus is unlabeled")
    source = resolve_backbone(backbone, progress=progress)
    try:
        config_dict, _ = PretrainedConfig.get_config_dict(source)
    except OSError as exc:
        raise TeacherError(_not_cached_message(backbone, exc)) from None
    model_type = config_dict.get("model_type")
    if model_type != "hubert":
        raise TeacherError(
            f"backbone {backbone!r} is a {model_type or 'unknown'!r} checkpoint, not HuBERT (model_type 'hubert'); "
            f"the speech teacher needs a HuBERT checkpoint such as {HUBERT_BASE}"
        )
    try:
        with _quiet_transformers():
            model, info = HubertForSequenceClassification.from_pretrained(
                source,
                num_labels=len(classes),
                id2label=dict(enumerate(classes)),
                label2id={c: i for i, c in enumerate(classes)},
                ignore_mismatched_sizes=True,  # a head fitted for other classes is replaced, checked below
                output_loading_info=True,
                dtype=torch.float32,
            )
    except OSError as exc:
        raise TeacherError(_not_cached_message(backbone, exc)) from None
    except (RuntimeError, ValueError) as exc:
        raise TeacherError(f"backbone {backbone!r}: its weights do not load into HuBERT ({exc})") from None
    head = tuple(f"{m}." for m in HEAD_MODULES)
    mismatched = [k[0] if isinstance(k, tuple) else k for k in info["mismatched_keys"]]  # (name, shape, shape)
    bad = sorted(k for k in [*info["missing_keys"], *mismatched] if not k.startswith(head))
    if bad or info.get("error_msgs"):
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise TeacherError(
            f"backbone {backbone!r}: its weights do not fit the HuBERT its config describes "
            f"(missing or mis-shaped: {shown or info.get('error_msgs')}); the checkpoint is damaged or of another architecture"
        )
    return model, BackboneInfo(backbone, source, _state_hash(model.hubert), _wants_normalize(source))


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
    with _quiet_transformers():
        return get_peft_model(model, lora)


def build_model(backbone: str, classes: Sequence[str], cfg: SpeechTeacherConfig | None = None, *, progress: bool = False) -> PeftModel:
    """The trainable teacher: :func:`load_backbone` then :func:`add_lora`."""
    model, _ = load_backbone(backbone, classes, progress=progress)
    return add_lora(model, cfg)


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


# ---------------------------------------------------------------- the tiny-synth backbone
# What the synthesizer varies per clip, as regression targets of the tiny-synth pretraining
# (standardized over the pretraining set). The first five can be heard in any 0.5 s of
# speech; the others are clip-level (relative to the speaker, or the utterance's end).
PROSODY_TARGETS = (
    "pitch",  # F0 level in semitones: speaker's F0 plus the clip's shift
    "level_db",  # loudness: emotion plus recording gain
    "brightness",  # spectral tilt: speaker plus clip
    "log_jitter",
    "log_rate",  # syllables per second
    "pitch_shift",  # the clip's shift from the speaker's own F0
    "log_range",  # pitch-accent size
    "final_st",  # utterance-final fall or rise
    "female",
)


@dataclass(frozen=True)
class TinySynthRecipe:
    """How the offline backbone is built: a small HuBERT, supervised on synthetic speech.

    It stands in for SSL pretraining: every weight is trained on speakers drawn in their own
    seed namespace, never the labeled corpus's actors, to classify each crop's emotion and to
    regress the prosody the synthesizer gave it (:data:`PROSODY_TARGETS`): the cues emotion is
    made of here, so the network learns to hear pitch, loudness and tilt, not only 8 labels.
    The conv feature extractor is HuBERT's (strides total 320: 50 frames/s at 16 kHz).
    """

    hidden_size: int = 128
    layers: int = 2
    heads: int = 4
    intermediate_size: int = 256
    conv_channels: int = 32
    speakers: int = 64
    clips_per_speaker: int = 8  # half acted statements, half conversational pseudo-words
    steps: int = 1500
    batch_size: int = 16
    lr: float = 1e-3
    crop_seconds: tuple[float, ...] = (0.5,)  # the teacher's segment length; one length per batch
    prosody_weight: float = 1.0  # of the prosody regression, next to the emotion cross-entropy
    seed: int = 0

    def hubert_config(self) -> HubertConfig:
        return HubertConfig(
            hidden_size=self.hidden_size,
            num_hidden_layers=self.layers,
            num_attention_heads=self.heads,
            intermediate_size=self.intermediate_size,
            conv_dim=(self.conv_channels,) * 7,
            conv_stride=(5, 2, 2, 2, 2, 2, 2),
            conv_kernel=(10, 3, 3, 3, 3, 2, 2),
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4,
            classifier_proj_size=self.hidden_size,
            # a model this small underfits: no dropout, layer drop or time masking
            hidden_dropout=0.0,
            attention_dropout=0.0,
            activation_dropout=0.0,
            feat_proj_dropout=0.0,
            final_dropout=0.0,
            layerdrop=0.0,
            mask_time_prob=0.0,
            num_labels=len(RAVDESS_EMOTIONS) + len(PROSODY_TARGETS),  # the pretraining head; dropped when saved
        )

    def key(self) -> str:
        text = json.dumps({"recipe": asdict(self), "version": _TINY_SYNTH_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


_TINY_SYNTH_VERSION = 3  # bump when the build below changes what it produces
DEFAULT_TINY_SYNTH = TinySynthRecipe()  # what the "tiny-synth" keyword builds
TINY_SYNTH_BUILDS = 0  # builds done by this process (tests check that a cached backbone is reused)


def tiny_synth_backbone(recipe: TinySynthRecipe | None = None, *, cache_dir: str | Path | None = None, progress: bool = False) -> Path:
    """The tiny-synth checkpoint folder, ``<cache>/backbones/tiny-synth-<key>``, built on first use.

    The build writes to a temporary folder and renames it into place, so an interrupted
    or concurrent build never leaves a half-written backbone behind.
    """
    global TINY_SYNTH_BUILDS
    recipe = recipe or DEFAULT_TINY_SYNTH
    root = (Path(cache_dir) if cache_dir else default_cache_dir()) / "backbones"
    final = root / f"{TINY_SYNTH}-{recipe.key()}"
    if (final / "config.json").exists() and (final / "model.safetensors").exists():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with torch_threads(1):  # one thread: the same weights on any machine, and fastest for so small a model
            report = _pretrain_tiny(recipe, tmp, progress)
        (tmp / "tiny_synth.json").write_text(json.dumps(report, indent=1))
    except BaseException:  # interrupted or failed: leave nothing half-built behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    TINY_SYNTH_BUILDS += 1
    try:
        tmp.rename(final)
    except OSError:  # a concurrent build got there first (or a broken folder is in the way)
        if not (final / "model.safetensors").exists():
            shutil.rmtree(final, ignore_errors=True)
            tmp.rename(final)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _pretraining_clip(speaker, emotion: str, acted: bool, rng: np.random.Generator) -> tuple[np.ndarray, float, list[float]]:
    """One pretraining clip, the gain its speech was scaled by (≈ its voiced RMS) and its :data:`PROSODY_TARGETS`.

    Both styles of the synthetic world, made by the generator's own renderers: a RAVDESS
    statement (normal or strong intensity) in a quiet studio, or 2-4 s of conversational
    breath groups (:data:`liser.synth.speech.CONVERSATION`), as a broad speech collection
    holds both. The prosody is drawn here, so it is known.
    """
    from liser.synth.speech import (  # only the tiny build needs them
        CONVERSATION, MIN_RATE, STATEMENTS, STRONG, emotion_prosody, loudness_gain, render_acted, render_conversation,
    )

    strength = (STRONG if rng.random() < 0.5 else 1.0) if acted else float(rng.uniform(*CONVERSATION.strength))
    prosody = emotion_prosody(emotion, strength, rng)
    gain_db = float(rng.uniform(-6, 6))
    if acted:
        wave = render_acted(speaker, prosody, STATEMENTS[1 + int(rng.integers(2))], rng, SAMPLE_RATE, gain_db=gain_db)
    else:
        n = round(rng.uniform(2.0, 4.0) * SAMPLE_RATE)
        wave = render_conversation(speaker, prosody, n, rng, SAMPLE_RATE, CONVERSATION, gain_db=gain_db).wave
    targets = [
        12 * math.log2(speaker.f0_hz) + prosody.pitch_st,
        prosody.energy_db + gain_db,
        prosody.brightness + speaker.brightness,
        math.log(speaker.jitter * prosody.jitter_scale),
        math.log(max(speaker.rate * prosody.rate_scale, MIN_RATE)),
        prosody.pitch_st,
        math.log(prosody.range_scale),
        prosody.final_st,
        float(speaker.female),
    ]
    return np.asarray(wave, np.float32), loudness_gain(prosody, gain_db), targets


def _pretraining_set(recipe: TinySynthRecipe) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Clips of speakers drawn in the 999 namespace, balanced over the 8 emotions:
    (waves, emotion labels, speech gain per clip, standardized prosody targets [N, 9])."""
    from liser.synth.speech import draw_speaker

    waves, labels, loudness, targets = [], [], [], []
    for i in range(recipe.speakers):
        speaker = draw_speaker(np.random.default_rng([recipe.seed, 999, i]), female=i % 2 == 0)
        for j in range(recipe.clips_per_speaker):
            k = (i + j) % len(RAVDESS_EMOTIONS)  # each speaker starts at another emotion: all 8 even with 8 clips
            rng = np.random.default_rng([recipe.seed, 998, i, j])
            wave, gain, prosody = _pretraining_clip(speaker, RAVDESS_EMOTIONS[k], j % 2 == 0, rng)
            waves.append(wave)
            labels.append(k)
            loudness.append(gain)
            targets.append(prosody)
    t = np.asarray(targets)
    t = (t - t.mean(0)) / np.maximum(t.std(0), 1e-6)
    return waves, np.asarray(labels), np.asarray(loudness, np.float32), t.astype(np.float32)


def _emotion_and_prosody_loss(
    logits: torch.Tensor, labels: torch.Tensor, prosody: torch.Tensor, heard: torch.Tensor, weight: float
) -> torch.Tensor:
    """Cross-entropy on the emotion logits plus ``weight`` x the mean squared error of the
    prosody outputs, the latter over crops that are mostly speech (room noise has no prosody)."""
    k = len(RAVDESS_EMOTIONS)
    error = ((logits[:, k:] - prosody) ** 2).mean(1)
    return torch.nn.functional.cross_entropy(logits[:, :k], labels) + weight * (error * heard).sum() / heard.sum().clamp(min=1)


def _pretrain_tiny(recipe: TinySynthRecipe, out: Path, progress: bool) -> dict:
    """Train every weight of a fresh tiny HuBERT on emotion and prosody, then save its backbone (no head)."""
    started = time.perf_counter()
    waves, labels, loudness, prosody = _pretraining_set(recipe)
    data_seconds = time.perf_counter() - started
    torch.manual_seed(recipe.seed)
    model = HubertForSequenceClassification(recipe.hubert_config())
    optimizer = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, total_steps=recipe.steps, pct_start=0.15)
    rng = np.random.default_rng([recipe.seed, 997])
    k = len(RAVDESS_EMOTIONS)
    tail = max(recipe.steps // 10, 1)  # the last 10 % of steps, for the report
    correct = seen = 0
    errors = []
    for step in tqdm(range(recipe.steps), desc=f"building {TINY_SYNTH} backbone", unit="step", disable=not progress):
        idx = rng.integers(0, len(waves), recipe.batch_size)
        x = crop_batch([waves[i] for i in idx], float(rng.choice(recipe.crop_seconds)), rng, normalize=False)
        heard = (x.pow(2).mean(1).sqrt() > 0.3 * torch.from_numpy(loudness[idx])).float()  # mostly speech, not room noise
        x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-7)  # as _normalize
        y = torch.as_tensor(labels[idx])
        loss_fn = partial(_emotion_and_prosody_loss, prosody=torch.from_numpy(prosody[idx]), heard=heard, weight=recipe.prosody_weight)
        _, logits = _step_logits(model, optimizer, x, y, loss_fn)
        schedule.step()
        if step >= recipe.steps - tail:
            correct += int((logits[:, :k].argmax(1) == y).sum())
            seen += len(idx)
            errors.append(float(((logits[:, k:] - torch.from_numpy(prosody[idx])) ** 2).mean()))
    with _quiet_transformers():
        model.hubert.save_pretrained(out)  # the backbone alone, as a hub HuBERT checkpoint is
        Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True, return_attention_mask=False).save_pretrained(out)
    return {
        "recipe": asdict(recipe),
        "version": _TINY_SYNTH_VERSION,
        "clips": len(waves),
        "prosody_targets": list(PROSODY_TARGETS),
        "final_train_accuracy": correct / max(seen, 1),  # emotion, over the last 10 % of steps
        "final_prosody_mse": float(np.mean(errors)) if errors else None,  # standardized targets: 1.0 is guessing the mean
        "data_seconds": round(data_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "liser_version": liser.__version__,
    }


# ------------------------------------------------------------------------------- inputs
def _normalize(x: np.ndarray) -> np.ndarray:
    """Zero mean, unit variance, as Wav2Vec2FeatureExtractor's ``do_normalize``."""
    return (x - x.mean()) / np.sqrt(x.var() + 1e-7)


def crop_batch(waves: Sequence[np.ndarray], seconds: float, rng: np.random.Generator, *, normalize: bool) -> torch.Tensor:
    """[B, samples] random crops of ``seconds``; shorter waves are normalized then zero-padded."""
    n = round(seconds * SAMPLE_RATE)
    out = np.zeros((len(waves), n), np.float32)
    for row, wave in enumerate(waves):
        start = int(rng.integers(0, max(len(wave) - n, 0) + 1))
        piece = wave[start : start + n]
        out[row, : len(piece)] = _normalize(piece) if normalize else piece
    return torch.from_numpy(out)


def segment_wave(wave: np.ndarray, *, normalize: bool) -> np.ndarray:
    """[ceil(len / 0.5 s), 0.5 s] segments; the last is zero-padded, each normalized on its own samples."""
    wave = np.asarray(wave, np.float32)
    if wave.ndim != 1:
        raise TeacherError(f"expected a mono waveform (1-D array), got shape {wave.shape}")
    if not np.all(np.isfinite(wave)):
        raise TeacherError("waveform holds NaN or inf samples")
    n_seg = math.ceil(len(wave) / SEGMENT_SAMPLES)
    out = np.zeros((n_seg, SEGMENT_SAMPLES), np.float32)
    for s in range(n_seg):
        piece = wave[s * SEGMENT_SAMPLES : (s + 1) * SEGMENT_SAMPLES]
        out[s, : len(piece)] = _normalize(piece) if normalize else piece
    return out


# ------------------------------------------------------------------------------- training
def make_optimizer(model: torch.nn.Module, cfg: SpeechTeacherConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters only (LoRA A/B and the head)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr, weight_decay=cfg.weight_decay)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    """One cross-entropy step on a batch of waveforms [B, samples] and labels [B]; returns the loss."""
    return _step_logits(model, optimizer, x, y)[0]


def _step_logits(
    model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, loss_fn=torch.nn.functional.cross_entropy
) -> tuple[float, torch.Tensor]:
    model.train()
    logits = model(input_values=x).logits
    loss = loss_fn(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.item()), logits.detach()


@torch.inference_mode()
def predict_clips(
    model: torch.nn.Module, waves: Sequence[np.ndarray], *, normalize: bool, device: torch.device | str = "cpu"
) -> np.ndarray:
    """Whole-clip logits [N, K], one clip per forward pass (HuBERT takes any length, no padding)."""
    model.eval()
    rows = []
    for wave in waves:
        x = torch.from_numpy(_normalize(wave) if normalize else wave)[None].to(device)
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


def _segment_means(model, waves: list[np.ndarray], normalize: bool, device, batch_size: int) -> np.ndarray:
    """Per clip, the argmax of its 0.5 s segment softmaxes averaged: the teacher as the trainer reads it."""
    probs = predict_segment_probs(model, waves, normalize=normalize, device=device, batch_size=batch_size)
    return np.asarray([p.mean(0).argmax() if len(p) else -1 for p in probs])


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


def _checkpoint_hash(out_dir: Path, backbone: BackboneInfo, classes: Sequence[str], cfg: SpeechTeacherConfig) -> str:
    """sha1 of the saved weights plus everything else that decides the teacher's outputs."""
    digest = hashlib.sha1()
    ident = {
        "backbone_hash": backbone.backbone_hash,
        "normalize": backbone.normalize,
        "classes": list(classes),
        "lora": [cfg.lora_r, cfg.lora_alpha, list(LORA_TARGETS)],
    }
    digest.update(json.dumps(ident, sort_keys=True).encode())
    with open(out_dir / ADAPTER_WEIGHTS, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def _write_json(path: Path, payload: dict) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1))


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
        return _fit(corpus, train_speakers, cfg, Path(out_dir), tuple(map(str, forbidden_speakers)), device, progress)


def _fit(
    corpus: Corpus,
    train_speakers: Sequence[str],
    cfg: SpeechTeacherConfig,
    out_dir: Path,
    forbidden_speakers: tuple[str, ...],
    device: torch.device | str,
    progress: bool,
) -> dict:
    if not corpus.labeled:
        raise TeacherError(f"corpus {corpus.name} at {corpus.root} is unlabeled; a speech teacher is fitted on labeled speech")
    train = tuple(sorted(set(map(str, train_speakers))))
    leaked = sorted(set(train) & set(forbidden_speakers))
    if leaked:
        raise TeacherError(f"leakage: speakers {leaked} are in this fold's validation or test part and may not train its teacher")
    unknown = sorted(set(train) - set(corpus.manifest["speaker"]))
    if unknown:
        raise TeacherError(f"speakers {unknown[:5]} are not in corpus {corpus.name} at {corpus.root}")
    table = corpus.manifest[corpus.manifest["speaker"].isin(train)].reset_index(drop=True)
    if not set(table["speaker"]) <= set(train) or set(table["speaker"]) & set(forbidden_speakers):
        raise TeacherError("leakage: a clip outside the training speakers was selected")  # guards the selection above

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
    val_waves = [waves[i] for i in val_idx]

    history: list[dict] = []
    best: tuple[float, float] | None = None
    best_state: dict[str, torch.Tensor] = {}
    best_epoch, stale = 0, 0
    started = time.perf_counter()
    bar = tqdm(total=cfg.epochs * len(fit_idx), desc=f"speech teacher {out_dir.name}", unit="clip", disable=not progress)
    for epoch in range(1, cfg.epochs + 1):
        t0, losses = time.perf_counter(), []
        order = rng.permutation(fit_idx)
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            x = crop_batch([waves[i] for i in idx], cfg.crop_seconds, rng, normalize=backbone.normalize).to(device)
            losses.append(train_step(model, optimizer, x, torch.as_tensor(labels[idx], device=device)))
            bar.update(len(idx))
        pred = predict_clips(model, val_waves, normalize=backbone.normalize, device=device).argmax(1)
        seg = _segment_means(model, val_waves, backbone.normalize, device, cfg.eval_batch_size)
        clip_score = (uar(labels[val_idx], pred), war(labels[val_idx], pred))
        seg_score = (uar(labels[val_idx], seg), war(labels[val_idx], seg))
        score = seg_score if cfg.select_on == "segments" else clip_score
        seconds = round(time.perf_counter() - t0, 2)
        history.append({
            "epoch": epoch, "loss": float(np.mean(losses)), "val_uar": clip_score[0], "val_war": clip_score[1],
            "val_segment_uar": seg_score[0], "val_segment_war": seg_score[1], "seconds": seconds,
        })
        bar.set_postfix(epoch=epoch, loss=f"{np.mean(losses):.3f}", val_uar=f"{score[0]:.3f}")
        if best is None or score > best:
            best, best_epoch, stale = score, epoch, 0
            best_state = {k: v.detach().clone() for k, v in get_peft_model_state_dict(model).items()}
        else:
            stale += 1
            if cfg.patience and stale >= cfg.patience:
                break
    bar.close()
    set_peft_model_state_dict(model, best_state)

    kept = history[best_epoch - 1]
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TEACHER_FILE).unlink(missing_ok=True)  # a folder without teacher.json is an unfinished fit
    with _quiet_transformers():
        model.save_pretrained(out_dir)
    (out_dir / "README.md").unlink(missing_ok=True)  # peft's empty model-card template; teacher.json says it all
    record = {
        "kind": "speech",
        "backbone": cfg.backbone,
        "backbone_source": backbone.source,
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
        "best_epoch": best_epoch,
        "selected_on": cfg.select_on,
        "val_uar": kept["val_uar"],
        "val_war": kept["val_war"],
        "val_segment_uar": kept["val_segment_uar"],
        "val_segment_war": kept["val_segment_war"],
        "history": history,
        "config": cfg.model_dump(),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "segment_seconds": TEACHER_SEGMENT_SECONDS,
        "fit_seconds": round(time.perf_counter() - started, 1),
        "checkpoint_hash": _checkpoint_hash(out_dir, backbone, corpus.classes, cfg),
        "liser_version": liser.__version__,
    }
    _write_json(out_dir / TEACHER_FILE, record)
    return record


def fit_speech_teachers(
    corpus: Corpus,
    folds: Sequence[Fold],
    fold_indices: Sequence[int] | None = None,
    cfg: SpeechTeacherConfig | None = None,
    out_dir: str | Path = "speech-teachers",
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> dict:
    """One teacher per fold in ``out_dir/fold{k}/``, each fitted on ``fold.train`` speakers only.

    Writes ``out_dir/teachers.json`` (merged with any folds fitted before) and returns it.

    Raises:
        TeacherError: a fold whose training speakers overlap its validation or test speakers,
            or a fold index that does not exist.
    """
    cfg = cfg or SpeechTeacherConfig()
    out_dir = Path(out_dir)
    by_index, wanted = check_folds(folds, fold_indices)
    summary_path = out_dir / SUMMARY_FILE
    entries = read_entries(summary_path, {"manifest_hash": corpus.manifest_hash(), "backbone": cfg.backbone})
    for k in wanted:
        fold = by_index[k]
        held_out = set(fold.val) | set(fold.test)
        record = fit_speech_teacher(
            corpus, fold.train, cfg, out_dir / f"fold{k}", forbidden_speakers=sorted(held_out), device=device, progress=progress
        )
        speakers = corpus.manifest.set_index("clip_id").loc[record["fit_clips"] + record["val_clips"], "speaker"]
        if set(speakers) & held_out:  # belt and braces: what was actually used
            raise TeacherError(f"leakage: fold {k}'s teacher used clips of held-out speakers {sorted(set(speakers) & held_out)}")
        entries[k] = fold_entry(
            k, fold, record, dir=f"fold{k}", val_segment_uar=record["val_segment_uar"], checkpoint_hash=record["checkpoint_hash"]
        )
    return write_summary(summary_path, "speech", corpus, entries, backbone=cfg.backbone, config=cfg.model_dump())


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
        return {"segment_seconds": TEACHER_SEGMENT_SECONDS, "sample_rate": SAMPLE_RATE, "normalize": self.normalize}

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
        if _checkpoint_hash(fold_dir, backbone, classes, cfg) != meta["checkpoint_hash"]:
            raise TeacherError(
                f"{fold_dir / ADAPTER_WEIGHTS} does not match the checkpoint hash in {meta_path}; the folder was altered, refit it"
            )
        try:
            with _quiet_transformers():
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
