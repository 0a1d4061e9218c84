"""Noisy oracle clip-level teachers for EmoDistill and NSL, so their studies run right after `liser data synth`.

Like the oracle speech and video teachers, they know each clip's label and blur it: a
clip's logits favour its true class (or, for a quarter of the clips, hardly any class),
and its embedding is its class's prototype direction plus per-clip noise. They stand in
for the fitted teachers (`liser teacher prosodic|linguistic fit`, `liser teacher upstream`)
in smoke runs and tests; they carry no ``train_speakers``, so they serve every fold.
"""

from __future__ import annotations

import hashlib

import numpy as np

from liser.corpora.manifest import Corpus
from liser.targets import ClipOutputs

DIMS = {"prosodic": 32, "linguistic": 24, "upstream": 16}
# How strongly each teacher knows the label: the linguistic one is the strongest, as in
# EmoDistill's Table 2; NSL's upstream model was fitted on another corpus.
STRENGTH = {"prosodic": 2.0, "linguistic": 3.0, "upstream": 2.5}


def named_rng(seed: int, kind: str, clip_id: str) -> np.random.Generator:
    return np.random.default_rng([seed, int(hashlib.sha1(f"{kind}/{clip_id}".encode()).hexdigest()[:12], 16)])


def oracle_clip_outputs(corpus: Corpus, kind: str, seed: int = 0) -> ClipOutputs:
    """One ``kind`` teacher's oracle outputs for every clip of a labeled ``corpus``."""
    k, d = len(corpus.classes), DIMS[kind]
    protos = np.random.default_rng([seed, 17, len(kind)]).standard_normal((k, d))
    rows = {}
    for clip_id, label in zip(corpus.manifest["clip_id"], corpus.manifest["label_index"]):
        rng = named_rng(seed, kind, clip_id)
        sure = STRENGTH[kind] * (rng.uniform(0.8, 1.6) if rng.random() < 0.75 else rng.uniform(0.0, 0.4))
        logits = rng.normal(0, 1.0, k)
        logits[int(label)] += 2 * sure
        emb = protos[int(label)] * sure / STRENGTH[kind] + rng.normal(0, 0.8, d)
        rows[clip_id] = (logits, emb)
    return ClipOutputs.from_rows(kind, corpus.classes, rows, {"teacher": f"oracle {kind} (liser.synth)", "seed": seed})
