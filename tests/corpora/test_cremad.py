"""CREMA-D adapter: labels from the name, demographics when present, skips, silence by content."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from liser.audio import AudioError, load_audio
from liser.constants import CREMAD_CODES, CREMAD_EMOTIONS
from liser.corpora import load_corpus
from liser.corpora.cremad import SENTENCES, prepare

ACTORS = (1001, 1002, 1091)


@pytest.fixture(scope="module")
def cremad(tmp_path_factory: pytest.TempPathFactory, make_wav: Callable[..., Path]) -> Path:
    """Three actors, every emotion, every sentence at level XX, plus IEO at graded levels."""
    root = tmp_path_factory.mktemp("cremad")
    for actor, sentence, code in itertools.product(ACTORS, SENTENCES, CREMAD_CODES):
        make_wav(root / "AudioWAV" / f"{actor}_{sentence}_{code}_XX.wav", sr=16_000)
    for level in ("LO", "MD", "HI"):
        make_wav(root / "AudioWAV" / f"1001_IEO_ANG_{level}.wav", sr=16_000)
    return root


def test_every_code_of_three_actors(cremad: Path) -> None:
    corpus = prepare(cremad)
    frame = corpus.manifest
    assert corpus.name == "cremad" and corpus.classes == CREMAD_EMOTIONS
    assert corpus.skipped.empty
    assert len(frame) == len(ACTORS) * 12 * 6 + 3
    assert set(frame["speaker"]) == {"1001", "1002", "1091"}
    assert {"sentence", "level", "transcript"} <= set(frame.columns)
    assert "gender" not in frame.columns  # no demographics table, so no guess
    assert (frame["sample_rate"] == 16_000).all() and frame["video_path"].isna().all()
    assert set(frame["sentence"]) == set(SENTENCES)
    assert frame.set_index("clip_id").loc["1001_IEO_ANG_MD", "level"] == "MD"


@pytest.mark.parametrize("code", CREMAD_CODES)
def test_emotion_codes_map_to_classes(cremad: Path, code: str) -> None:
    frame = prepare(cremad).manifest
    rows = frame[frame["clip_id"].str.split("_").str[2] == code]
    index = CREMAD_CODES.index(code)
    assert set(rows["label"]) == {CREMAD_EMOTIONS[index]}
    assert set(rows["label_index"]) == {index}


def test_sentences_are_written_out(cremad: Path) -> None:
    row = prepare(cremad).manifest.set_index("clip_id").loc["1002_DFA_HAP_XX"]
    assert (row["sentence"], row["transcript"], row["label"]) == ("DFA", "Don't forget a jacket", "happy")
    assert len(SENTENCES) == 12


def test_root_may_be_the_audiowav_folder(cremad: Path) -> None:
    assert len(prepare(cremad / "AudioWAV").manifest) == len(prepare(cremad).manifest)


def test_gender_from_demographics_table(tmp_path: Path, make_wav: Callable[..., Path]) -> None:
    make_wav(tmp_path / "AudioWAV" / "1001_TIE_SAD_XX.wav")
    make_wav(tmp_path / "AudioWAV" / "1002_TIE_SAD_XX.wav")
    make_wav(tmp_path / "AudioWAV" / "1003_TIE_SAD_XX.wav")
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n"
    )
    for root in (tmp_path, tmp_path / "AudioWAV"):
        genders = prepare(root).manifest.set_index("speaker")["gender"]
        assert genders[["1001", "1002"]].tolist() == ["male", "female"]
        assert pd.isna(genders["1003"])  # an actor the table lacks is unknown, not guessed


def test_each_bad_case_is_skipped_with_its_reason(tmp_path: Path, make_wav: Callable[..., Path]) -> None:
    audio = tmp_path / "AudioWAV"
    make_wav(audio / "1001_DFA_ANG_XX.wav")
    bad = {
        "1001-DFA-ANG-XX.wav": "is not AAAA_SSS_EEE_LL",
        "1001_DFA_ANG.wav": "is not AAAA_SSS_EEE_LL",
        "1001_DFA_SUR_XX.wav": "unknown emotion code SUR",
        "1001_XYZ_ANG_XX.wav": "unknown sentence code XYZ",
        "1001_DFA_ANG_ZZ.wav": "unknown level code ZZ",
        "1000_DFA_ANG_XX.wav": "actor 1000 out of range 1001..1091",
        "1092_DFA_ANG_XX.wav": "actor 1092 out of range 1001..1091",
    }
    for name in bad:
        make_wav(audio / name)
    (audio / "1001_DFA_DIS_XX.wav").write_bytes(b"\x00" * 64)
    bad["1001_DFA_DIS_XX.wav"] = "unreadable ("
    (audio / "1001_DFA_FEA_XX.wav").touch()
    bad["1001_DFA_FEA_XX.wav"] = "empty file"

    corpus = prepare(tmp_path)
    assert corpus.manifest["clip_id"].tolist() == ["1001_DFA_ANG_XX"]
    reasons = dict(zip(corpus.skipped["path"], corpus.skipped["reason"], strict=True))
    assert len(reasons) == len(bad)
    for name, expected in bad.items():
        assert expected in reasons[str(audio / name)], (name, reasons[str(audio / name)])


def test_silent_clip_is_found_by_content_at_decode_time(tmp_path: Path) -> None:
    silent = tmp_path / "AudioWAV" / "1076_MTI_SAD_XX.wav"
    silent.parent.mkdir()
    sf.write(silent, np.zeros(32_000, np.float32), 16_000)
    corpus = prepare(tmp_path)
    assert corpus.manifest["clip_id"].tolist() == ["1076_MTI_SAD_XX"]  # the header is fine
    with pytest.raises(AudioError, match="silent"):
        load_audio(corpus.manifest["path"][0])


def test_load_corpus_dispatch(cremad: Path) -> None:
    assert load_corpus(f"cremad:{cremad}").name == "cremad"
