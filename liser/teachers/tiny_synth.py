"""The offline stand-in for a pretrained HuBERT: ``tiny-synth``, built once and cached.

No weights can be downloaded here, so ``--backbone tiny-synth`` builds a small
HuBERT-architecture checkpoint folder by supervised pretraining on synthetic speakers of
their own seed namespace (never the labeled corpus's actors), and the speech teacher loads
it through the same ``from_pretrained`` + LoRA path as ``facebook/hubert-base-ls960``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import HubertConfig, HubertForSequenceClassification, Wav2Vec2FeatureExtractor

import liser
from liser.constants import RAVDESS_EMOTIONS, SAMPLE_RATE
from liser.storage import default_cache_dir
from liser.teachers.fitting import torch_threads
from liser.teachers.hf import quiet_transformers
from liser.teachers.waves import crop_batch, step_logits

TINY_SYNTH = "tiny-synth"  # the keyword that builds it
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
    speakers: int = 256
    clips_per_speaker: int = 8  # half acted statements, half conversational pseudo-words
    steps: int = 6000
    batch_size: int = 16
    lr: float = 1e-3
    crop_seconds: tuple[float, ...] = (0.5,)  # the teacher's segment length; one length per batch
    prosody_weight: float = 1.0  # of the prosody regression, next to the emotion cross-entropy
    normalize: bool = True  # zero-mean unit-variance crops, as HuBERT's feature extractor asks; False keeps loudness
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
        recipe = asdict(self)
        if self.normalize:  # the default, left out so that builds from before the field keep their key
            del recipe["normalize"]
        text = json.dumps({"recipe": recipe, "version": _TINY_SYNTH_VERSION}, sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:12]


_TINY_SYNTH_VERSION = 4  # bump when the build below changes what it produces
# The default build, shipped in the package (1.4 MB): it takes about 5.5 min on one core, so a
# fresh clone loads it as a hub checkpoint would load. ``python -m liser.teachers.tiny_synth``
# rebuilds it from the recipe (one thread: the same weights on any machine).
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / TINY_SYNTH
DEFAULT_TINY_SYNTH = TinySynthRecipe()  # what the "tiny-synth" keyword builds
TINY_SYNTH_BUILDS = 0  # builds done by this process (tests check that a cached backbone is reused)


def _final_path(recipe: TinySynthRecipe, cache_dir: str | Path | None) -> Path:
    return (Path(cache_dir) if cache_dir else default_cache_dir()) / "backbones" / f"{TINY_SYNTH}-{recipe.key()}"


def _complete(folder: Path) -> bool:
    return (folder / "config.json").exists() and (folder / "model.safetensors").exists()


def shipped_backbone(recipe: TinySynthRecipe | None = None) -> Path | None:
    """The build shipped in the package, if it is the one ``recipe`` makes (its report's key)."""
    recipe = recipe or DEFAULT_TINY_SYNTH
    try:
        report = json.loads((SHIPPED / "tiny_synth.json").read_text())
    except (OSError, ValueError):
        return None
    return SHIPPED if report.get("key") == recipe.key() and _complete(SHIPPED) else None


def tiny_synth_built(recipe: TinySynthRecipe | None = None, *, cache_dir: str | Path | None = None) -> bool:
    """Whether :func:`tiny_synth_backbone` would return at once (cached, or the shipped build)."""
    recipe = recipe or DEFAULT_TINY_SYNTH
    return _complete(_final_path(recipe, cache_dir)) or shipped_backbone(recipe) is not None


def tiny_synth_backbone(recipe: TinySynthRecipe | None = None, *, cache_dir: str | Path | None = None, progress: bool = False) -> Path:
    """The tiny-synth checkpoint folder: ``<cache>/backbones/tiny-synth-<key>`` if built there, else
    the shipped build when it is this recipe's, else built into the cache on first use.

    The build writes to a temporary folder and renames it into place, so an interrupted
    or concurrent build never leaves a half-written backbone behind.
    """
    global TINY_SYNTH_BUILDS
    recipe = recipe or DEFAULT_TINY_SYNTH
    final = _final_path(recipe, cache_dir)
    if _complete(final):
        return final
    shipped = shipped_backbone(recipe)
    if shipped is not None:
        return shipped
    root = final.parent
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{final.name}.{os.getpid()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with torch_threads(1):  # one thread: the same weights on any machine, and fastest for so small a model
            _pretrain_tiny(recipe, tmp, progress)
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
    breath groups (:data:`liser.synth.conversation.CONVERSATION`), as a broad speech collection
    holds both. The prosody is drawn here, so it is known.
    """
    from liser.synth.phonetics import STATEMENTS  # only the tiny build needs these
    from liser.synth.conversation import CONVERSATION, render_conversation
    from liser.synth.speech import MIN_RATE, STRONG, emotion_prosody, loudness_gain, render_acted

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
    prosody outputs, both over crops that are mostly speech: room noise carries neither an
    emotion nor a prosody, and a label on it teaches the network to read the noise."""
    k = len(RAVDESS_EMOTIONS)
    error = ((logits[:, k:] - prosody) ** 2).mean(1)
    ce = torch.nn.functional.cross_entropy(logits[:, :k], labels, reduction="none")
    return ((ce + weight * error) * heard).sum() / heard.sum().clamp(min=1)


def _emotion_model(model: HubertForSequenceClassification, recipe: TinySynthRecipe) -> HubertForSequenceClassification:
    """The pretrained network with its head cut to the emotion logits, labelled with their classes."""
    k = len(RAVDESS_EMOTIONS)
    config = recipe.hubert_config()
    config.num_labels = k
    config.id2label = dict(enumerate(RAVDESS_EMOTIONS))
    config.label2id = {c: i for i, c in enumerate(RAVDESS_EMOTIONS)}
    out = HubertForSequenceClassification(config)
    state = model.state_dict()
    state["classifier.weight"], state["classifier.bias"] = state["classifier.weight"][:k], state["classifier.bias"][:k]
    out.load_state_dict(state)
    return out


def _pretrain_tiny(recipe: TinySynthRecipe, out: Path, progress: bool) -> dict:
    """Train every weight of a fresh tiny HuBERT on emotion and prosody, then save it with its emotion head
    and its report (``tiny_synth.json``, which carries the recipe's key); returns the report.

    The head is kept (its 8 emotion rows; the prosody rows are dropped) as a hub checkpoint
    fine-tuned for emotion keeps its classifier: a teacher whose classes it names starts from
    it (:func:`liser.teachers.hubert.load_backbone`), one with other classes gets a fresh head.
    """
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
        if recipe.normalize:
            x = (x - x.mean(1, keepdim=True)) / torch.sqrt(x.var(1, unbiased=False, keepdim=True) + 1e-7)  # as normalize_wave
        y = torch.as_tensor(labels[idx])
        loss_fn = partial(_emotion_and_prosody_loss, prosody=torch.from_numpy(prosody[idx]), heard=heard, weight=recipe.prosody_weight)
        _, logits = step_logits(model, optimizer, x, y, loss_fn)
        schedule.step()
        if step >= recipe.steps - tail:
            correct += int((logits[:, :k].argmax(1) == y).sum())
            seen += len(idx)
            errors.append(float(((logits[:, k:] - torch.from_numpy(prosody[idx])) ** 2).mean()))
    with quiet_transformers():
        _emotion_model(model, recipe).save_pretrained(out)
        Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=recipe.normalize, return_attention_mask=False).save_pretrained(out)
    report = {
        "recipe": asdict(recipe),
        "key": recipe.key(),
        "version": _TINY_SYNTH_VERSION,
        "clips": len(waves),
        "prosody_targets": list(PROSODY_TARGETS),
        "final_train_accuracy": correct / max(seen, 1),  # emotion, over the last 10 % of steps
        "final_prosody_mse": float(np.mean(errors)) if errors else None,  # standardized targets: 1.0 is guessing the mean
        "data_seconds": round(data_seconds, 1),
        "seconds": round(time.perf_counter() - started, 1),
        "liser_version": liser.__version__,
    }
    (out / "tiny_synth.json").write_text(json.dumps(report, indent=1))
    return report


def rebuild_shipped() -> str:
    """Build the default recipe afresh; install it as the shipped build, or, if the shipped one is
    current, say whether the new weights are identical to it (reproducibility)."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / TINY_SYNTH
        with torch_threads(1):
            report = _pretrain_tiny(DEFAULT_TINY_SYNTH, built, True)
        if shipped_backbone() is not None:
            same = (built / "model.safetensors").read_bytes() == (SHIPPED / "model.safetensors").read_bytes()
            return f"rebuilt in {report['seconds']} s; weights {'identical to' if same else 'DIFFERENT from'} {SHIPPED}"
        shutil.rmtree(SHIPPED, ignore_errors=True)
        shutil.copytree(built, SHIPPED)
        return f"built {SHIPPED} in {report['seconds']} s"


if __name__ == "__main__":  # python -m liser.teachers.tiny_synth
    print(rebuild_shipped())
