"""Teachers scored on the data they teach on, where a hidden truth exists.

The built-in synthetic corpus keeps the emotion of every unlabeled clip in
``avclips_truth.csv``, next to (never inside) its ``avclips/`` folder, so the corpus
adapter cannot read it and no student trains on it. A teacher's validation score is on
its own labeled split; what decides whether distillation can help is how often it is
right on the unlabeled clips it labels, so that score goes into the teacher file's
metadata (``hidden_truth``) whenever the truth file is there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from liser.evaluate import confusion, uar, war
from liser.targets import TeacherOutputs

TRUTH_FILE = "avclips_truth.csv"
# The truth column each teacher kind is scored against: speech in the labeled corpus's
# emotions, video in FERV39k's seven classes.
TRUTH_COLUMN = {"speech": "emotion", "video": "ferv_class"}


def find_truth(corpus_root: str | Path) -> Path | None:
    """The hidden-truth file of an unlabeled corpus folder (its sibling), or None."""
    path = Path(corpus_root).parent / TRUTH_FILE
    return path if path.is_file() else None


def clip_probs(outputs: TeacherOutputs) -> tuple[list[str], np.ndarray]:
    """Clip ids with at least one valid segment, and their valid segment softmaxes averaged [n, K] (how the trainer reads a crop)."""
    ids, rows = [], []
    for cid in outputs.clip_ids:
        probs, valid = outputs.segments(cid)
        if valid.any():
            ids.append(cid)
            rows.append(probs[valid].mean(0))
    return ids, np.asarray(rows, np.float64).reshape(len(ids), len(outputs.classes))


def clip_predictions(outputs: TeacherOutputs) -> dict[str, int]:
    """Per clip with at least one valid segment: the argmax of its averaged valid segment softmaxes."""
    ids, probs = clip_probs(outputs)
    return dict(zip(ids, map(int, probs.argmax(1)))) if ids else {}


def truth_scores(outputs: TeacherOutputs, truth: pd.DataFrame) -> dict:
    """Accuracy and UAR of a teacher's per-clip calls against the hidden truth, and what it calls most.

    Clips whose true class the teacher does not have (a six-class CREMA-D teacher on a
    "calm" clip) are left out and counted; so are clips the teacher gave no valid segment.
    """
    column = TRUTH_COLUMN.get(outputs.kind)
    if column is None or column not in truth:
        return {}
    scores = score_calls(clip_predictions(outputs), truth.set_index("clip_id")[column].astype(str), outputs.classes)
    if scores:
        scores.update(truth_file=TRUTH_FILE, column=column, not_scored=int(len(outputs.clip_ids) - scores["clips"]))
    return scores


def score_calls(calls: dict[str, int], true: pd.Series, classes) -> dict:
    """Accuracy, UAR, the confusion matrix and the most called class of per-clip class indices against true class names (any model: teacher or student)."""
    classes = list(classes)
    scored = [(classes.index(true[c]), p) for c, p in calls.items() if c in true.index and true[c] in classes]
    if not scored:
        return {}
    y, p = (np.asarray(v) for v in zip(*scored))
    shares = np.bincount(p, minlength=len(classes)) / len(p)
    top = int(shares.argmax())
    return {
        "clips": int(len(y)),
        "accuracy": war(y, p),
        "uar": uar(y, p),
        "top_class": classes[top],
        "top_class_share": float(shares[top]),
        "shares": {c: round(float(v), 3) for c, v in zip(classes, shares)},
        "confusion": confusion(y, p, len(classes)).tolist(),  # rows: true class, columns: called class
    }


def add_truth_scores(outputs: TeacherOutputs, corpus_root: str | Path) -> dict:
    """Score ``outputs`` against the corpus's hidden truth, if it has one, into ``outputs.meta['hidden_truth']``."""
    path = find_truth(corpus_root)
    if path is None:
        return {}
    scores = truth_scores(outputs, pd.read_csv(path))
    if scores:
        outputs.meta["hidden_truth"] = scores
    return scores


def load_truth(corpus_root: str | Path, kind: str = "speech") -> pd.Series | None:
    """The hidden true class per clip id (the column ``kind`` is scored against), or None without a truth file."""
    return load_truths(corpus_root).get(kind)


def load_truths(corpus_root: str | Path) -> dict[str, pd.Series]:
    """:func:`load_truth` for every kind the truth file has a column for, from one read of it ({} without one)."""
    path = find_truth(corpus_root)
    if path is None:
        return {}
    table = pd.read_csv(path)
    if "clip_id" not in table:
        return {}
    ids = table["clip_id"].astype(str)
    return {kind: table.set_index(ids)[column].astype(str) for kind, column in TRUTH_COLUMN.items() if column in table}


# Windows 1 s apart, not the test's 0.1 s: a diagnosis over every unlabeled clip after every
# fold must stay cheap (about 10x fewer windows on the demo's 5.5 s clips).
TRUTH_STRIDE_SECONDS = 1.0


def student_truth_scores(model, clips: dict[str, np.ndarray], truth: pd.Series, classes, device="cpu") -> dict:
    """A trained student scored on the unlabeled clips against the hidden truth (its g_sup head, the mean
    of windows 1 s apart): the figure to set beside its teachers' on the same clips. Scoring only,
    after training; nothing here reaches a loss or a model choice."""
    return student_head_scores(model, clips, {"sup": (truth, classes)}, device).get("sup", {})


def student_head_scores(model, clips: dict[str, np.ndarray], truths: dict[str, tuple[pd.Series, Any]], device="cpu") -> dict[str, dict]:
    """Each named head of a student against its own truth, from one pass over the clips' windows.

    ``truths`` maps a head to (true class per clip id, the head's class names): ``sup`` and ``sd``
    to the speech emotion in the labeled corpus's classes, ``vd`` to the FERV39k class in the video
    teacher's. g_sd and g_vd are the heads eq. 2-3 fit to the teachers; g_sup predicts. Scoring
    them apart shows where knowledge arrived, and each score's UAR and top-class share whether a
    head learned its teacher's calls or only its class prior (the 5-epoch demo's g_vd calls one
    class on every clip). A head the model lacks, or with no clip in its truth, is absent.
    """
    from liser.evaluate import predict_heads

    ids = sorted({c for t, _ in truths.values() for c in clips if c in t.index})
    if not ids:
        return {}
    logits = predict_heads(model, [clips[c] for c in ids], device, stride_s=TRUTH_STRIDE_SECONDS, heads=tuple(truths))
    out = {}
    for head, (truth, classes) in truths.items():
        if head in logits:
            scores = score_calls(dict(zip(ids, map(int, logits[head].argmax(1)))), truth, classes)
            if scores:
                out[head] = scores
    return out
