"""Synthetic transcripts: deterministic, the documented shares, and transcribed.csv as a table: corpus."""

from __future__ import annotations

import re
from collections import Counter

import pandas as pd
import pytest

from liser.constants import RAVDESS_EMOTIONS
from liser.corpora import load_corpus
from liser.synth import transcripts
from liser.synth.transcripts import EMOTION_WORDS, draw_transcript


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_deterministic_given_seed_and_clip() -> None:
    a = [draw_transcript("happy", f"clip{i}", seed=3) for i in range(50)]
    assert a == [draw_transcript("happy", f"clip{i}", seed=3) for i in range(50)]
    assert a != [draw_transcript("happy", f"clip{i}", seed=4) for i in range(50)]
    assert len({t.text for t in a}) > 40  # varied sentences, not a few fixed ones


def test_shares_and_cues() -> None:
    n = 8000
    kinds: Counter = Counter()
    for i in range(n):
        emotion = RAVDESS_EMOTIONS[i % 8]
        t = draw_transcript(emotion, f"c{i}", seed=0)
        kinds[t.kind] += 1
        said = set(words(t.text))
        cued = {e for e, w in EMOTION_WORDS.items() if said & set(w["adj"] + w["interj"])}
        if t.kind == "own":
            assert cued == {emotion}, t
        elif t.kind == "other":
            assert cued == {t.cue} and t.cue != emotion, t
        else:
            assert cued == set() and t.cue is None, t
    assert kinds["own"] / n == pytest.approx(transcripts.OWN_SHARE, abs=0.02)
    assert kinds["other"] / n == pytest.approx(transcripts.OTHER_SHARE, abs=0.02)
    assert kinds["none"] / n == pytest.approx(transcripts.NONE_SHARE, abs=0.02)


def test_emotion_words_are_disjoint() -> None:
    seen: dict[str, str] = {}
    for emotion, lists in EMOTION_WORDS.items():
        for w in lists["adj"] + lists["interj"]:
            assert seen.setdefault(w, emotion) == emotion, f"{w!r} cues both {seen[w]} and {emotion}"
    assert set(EMOTION_WORDS) == set(RAVDESS_EMOTIONS)


def test_unknown_emotion_is_refused() -> None:
    with pytest.raises(ValueError, match="no transcript words"):
        draw_transcript("bored", "x")


def test_transcribed_csv_is_a_table_corpus(synth_root) -> None:
    csv = synth_root / "transcribed.csv"
    table = load_corpus(f"table:{csv}")
    ravdess = load_corpus(f"ravdess:{synth_root / 'ravdess'}")
    assert table.skipped.empty
    assert table.classes == tuple(sorted(RAVDESS_EMOTIONS))
    assert len(table.manifest) == len(ravdess.manifest) == 300
    # the same wav files, labels and speakers (spelled "01" as the ravdess adapter does)
    t = table.manifest.set_index("path")[["speaker", "label", "gender", "transcript"]]
    r = ravdess.manifest.set_index("path")[["speaker", "label", "gender"]]
    assert set(t.index) == set(r.index)
    pd.testing.assert_frame_equal(t.loc[r.index, ["speaker", "label", "gender"]], r, check_dtype=False)
    assert t["transcript"].notna().all()
    # each transcript is the grammar's, keyed by the RAVDESS file stem
    row = ravdess.manifest.iloc[7]
    assert t.loc[row["path"], "transcript"] == transcripts.transcript(row["label"], row["clip_id"], seed=0)
    assert "transcribed.csv" in (synth_root / "README.txt").read_text()
