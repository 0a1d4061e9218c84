"""Noisy oracle teachers made from the hidden truth: what a good speech (HuBERT) and video (S2D)
teacher would say about each unlabeled clip, one softmax per 0.5 s segment (`oracle-teachers/`).

They stand in for real teachers where a test or benchmark needs teachers of known quality
(`benchmarks/synthetic_world.py`); the demo fits real ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from liser.constants import FERV39K_CLASSES, RAVDESS_EMOTIONS
from liser.synth.seeds import named_rng
from liser.targets import TeacherOutputs

CREMAD_FOLD_IN = {"calm": "neutral", "surprised": "fearful"}  # RAVDESS-only emotions, as a CREMA-D teacher would see them
# What each oracle teacher most often mistakes a class for.
SPEECH_CONFUSION = {
    "neutral": "calm",
    "calm": "neutral",
    "happy": "surprised",
    "sad": "calm",
    "angry": "disgust",
    "fearful": "surprised",
    "disgust": "angry",
    "surprised": "happy",
}
VIDEO_CONFUSION = {
    "angry": "disgust",
    "disgust": "angry",
    "fear": "surprise",
    "happy": "neutral",
    "neutral": "sad",
    "sad": "neutral",
    "surprise": "fear",
}


def _oracle_probs(rng: np.random.Generator, truth: int, confusable: int, k: int, strengths: np.ndarray) -> np.ndarray:
    """Softmax of (truth one-hot x strength + a pull toward the confusable class + noise).

    A per-clip logit bias makes a clip's segments err together, as a real teacher's do.
    """
    n = len(strengths)
    logits = rng.normal(0, 0.7, k)[None, :] + rng.normal(0, 1.0, (n, k))
    logits[:, truth] += strengths
    logits[:, confusable] += 0.35 * strengths
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    return (p / p.sum(1, keepdims=True)).astype(np.float32)


def _clip_strength(rng: np.random.Generator) -> float:
    """How sure the teacher is about this clip: most clips clear, a quarter close to uniform."""
    return float(rng.uniform(3.0, 6.0)) if rng.random() < 0.75 else float(rng.uniform(0.3, 2.0))


def oracle_teachers(rows: list[dict[str, Any]], seed: int, speech_classes: tuple[str, ...] = RAVDESS_EMOTIONS) -> tuple[TeacherOutputs, TeacherOutputs]:
    """Noisy stand-ins for the speech (HuBERT) and video (S2D) teachers, one softmax per 0.5 s.

    ``speech_classes`` are the labeled corpus's classes the speech teacher was fitted on;
    emotions outside them count as their nearest class (``CREMAD_FOLD_IN``).
    """
    sp_probs, vid_probs, vid_valid = {}, {}, {}
    for row in rows:
        cid = row["clip_id"]
        rng = named_rng(seed, "oracle-speech", cid)
        emotion = row["emotion"] if row["emotion"] in speech_classes else CREMAD_FOLD_IN[row["emotion"]]
        confused = SPEECH_CONFUSION[row["emotion"]]
        confused = confused if confused in speech_classes else CREMAD_FOLD_IN[confused]
        truth, conf = speech_classes.index(emotion), speech_classes.index(confused)
        strength = _clip_strength(rng) * (0.55 + 0.45 * row["_speech_activity"])  # silence says little
        sp_probs[cid] = _oracle_probs(rng, truth, conf, len(speech_classes), strength)
        rng = named_rng(seed, "oracle-video", cid)
        truth, conf = FERV39K_CLASSES.index(row["ferv_class"]), FERV39K_CLASSES.index(VIDEO_CONFUSION[row["ferv_class"]])
        strength = _clip_strength(rng) * (0.5 + 0.6 * row["expression_intensity"]) * np.ones(len(row["_face_fraction"]))
        probs = _oracle_probs(rng, truth, conf, len(FERV39K_CLASSES), strength)
        valid = row["_face_fraction"] >= 0.5  # a 16-frame window needs most of its faces
        probs[~valid] = 1.0 / len(FERV39K_CLASSES)
        vid_probs[cid], vid_valid[cid] = probs, valid
    note = "noisy oracle from the hidden truth in avclips_truth.csv; stands in for real teachers"
    meta = {"teacher": "synthetic-oracle", "note": note, "seed": seed}
    return (
        TeacherOutputs.from_segments("speech", speech_classes, sp_probs, meta=meta),
        TeacherOutputs.from_segments("video", FERV39K_CLASSES, vid_probs, vid_valid, meta=meta),
    )


def oracle_accuracy(outputs: TeacherOutputs, truth: dict[str, str]) -> float:
    """Share of valid segments whose argmax is the clip's hidden class."""
    hits, total = 0, 0
    for cid in outputs.clip_ids:
        probs, valid = outputs.segments(cid)
        hits += int(np.sum(probs[valid].argmax(1) == outputs.classes.index(truth[cid])))
        total += int(valid.sum())
    return hits / max(total, 1)
