"""The noisy oracle teachers (liser/synth/oracle.py) and the named random streams (liser/synth/seeds.py)."""

from __future__ import annotations

import zlib

import numpy as np

from liser.constants import RAVDESS_EMOTIONS
from liser.synth import face, oracle
from liser.synth.seeds import named_rng


def test_oracle_accuracy_is_good_not_perfect() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for i in range(300):
        emotion = RAVDESS_EMOTIONS[i % 8]
        n = int(rng.integers(6, 17))
        rows.append(
            {
                "clip_id": f"MSP-FACE_{i // 5 + 1:04d}_{i % 5 + 1:04d}",
                "emotion": emotion,
                "ferv_class": face.FERV_OF_EMOTION[emotion],
                "expression_intensity": float(rng.uniform(0.25, 1.0)),
                "_speech_activity": rng.uniform(0.3, 1.0, n),
                "_face_fraction": np.where(rng.random(n) < 0.05, 0.0, 1.0),
            }
        )
    speech_t, video_t = oracle.oracle_teachers(rows, seed=0)
    for teacher, key in ((speech_t, "emotion"), (video_t, "ferv_class")):
        acc = oracle.oracle_accuracy(teacher, {r["clip_id"]: r[key] for r in rows})
        assert 0.5 <= acc <= 0.95, (teacher.kind, acc)
        confidence = teacher.probs[teacher.valid].max(1)
        assert confidence.min() < 0.4 and confidence.max() > 0.9  # some unsure, some sure


def test_named_streams_are_stable_independent_and_match_the_transcripts_old_stream():
    a, b = named_rng(0, "avclip", "MSP-FACE_0001_0001"), named_rng(0, "avclip", "MSP-FACE_0001_0001")
    assert np.array_equal(a.random(5), b.random(5))
    assert not np.array_equal(named_rng(0, "avclip", 1).random(5), named_rng(0, "avclip", 2).random(5))
    assert not np.array_equal(named_rng(0, "x").random(5), named_rng(1, "x").random(5))
    # transcripts.py used its own copy of this formula; its clips must keep their words
    old = np.random.default_rng([3, zlib.crc32(b"transcript"), zlib.crc32(b"03-01-05-01-01-01-02")])
    assert np.array_equal(named_rng(3, "transcript", "03-01-05-01-01-01-02").random(8), old.random(8))
