"""The speech teacher's backbone: a HuBERT checkpoint by hub id, local folder or ``tiny-synth``,
loaded as ``HubertForSequenceClassification`` with the head the teacher starts from (section 2.1).

Kept apart from :mod:`liser.teachers.speech` (fitting and prediction), so that what a
checkpoint is, where it comes from and which head it brings is decided in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from transformers import HubertForSequenceClassification, PretrainedConfig, Wav2Vec2FeatureExtractor

from liser.teachers.fitting import TeacherError
from liser.teachers.hf import adopt_head, looks_like_path, not_cached_message, quiet_transformers, state_hash
from liser.teachers.tiny_synth import TINY_SYNTH, tiny_synth_backbone

HUBERT_BASE = "facebook/hubert-base-ls960"  # the paper's backbone (section 2.1)
HEAD_MODULES = ("projector", "classifier")  # HubertForSequenceClassification's head, trained in full


def _not_cached_message(backbone: str, err: Exception) -> str:
    return not_cached_message("backbone", backbone, err, f"`--backbone {TINY_SYNTH}` for the small offline backbone")


def resolve_backbone(backbone: str, *, progress: bool = False) -> str:
    """What ``from_pretrained`` gets: ``tiny-synth`` becomes its cached folder (built once)."""
    if backbone == TINY_SYNTH:
        return str(tiny_synth_backbone(progress=progress))
    if looks_like_path(backbone):
        path = Path(backbone).expanduser()
        if not path.exists():
            raise TeacherError(f"backbone folder not found: {path}")
        if not (path / "config.json").exists():
            raise TeacherError(f"{path}: not a Hugging Face checkpoint folder (no config.json)")
        return str(path)
    return backbone


def _wants_normalize(source: str) -> bool:
    """Whether the checkpoint's feature extractor normalizes each input (zero mean, unit variance)."""
    try:
        with quiet_transformers():
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
    pretrained_head: bool = False  # the checkpoint's emotion head, for these classes (:func:`adopt_head`)


def load_backbone(backbone: str, classes: Sequence[str], *, progress: bool = False) -> tuple[HubertForSequenceClassification, BackboneInfo]:
    """``HubertForSequenceClassification`` with a K-class head on the given backbone: the
    checkpoint's own where it names these classes (tiny-synth keeps its emotion head), else fresh.

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
        with quiet_transformers():
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
    absent = any(k.startswith(head) for k in info["missing_keys"])  # a bare backbone, as hub HuBERTs are
    reshaped = any(k.startswith(head) for k in mismatched)
    labels = config_dict.get("id2label") or {}
    names = [labels[str(i)] for i in range(len(labels))] if all(str(i) in labels for i in range(len(labels))) else None
    kept = adopt_head(model, source, names, classes, present=not absent, loaded=not absent and not reshaped)
    return model, BackboneInfo(backbone, source, state_hash(model.hubert), _wants_normalize(source), kept)
