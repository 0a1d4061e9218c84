"""RAVDESS adapter, plus load_corpus dispatch (exercised through ravdess)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from liser.constants import RAVDESS_EMOTIONS
from liser.corpora import Corpus, available_corpora, load_corpus, parse_spec
from liser.corpora.manifest import MANIFEST_COLUMNS
from liser.corpora.ravdess import prepare


def speech_names(actor: int) -> list[str]:
    """The 60 audio-only speech names one RAVDESS actor has."""
    names = []
    for emotion, intensity, statement, repetition in itertools.product(range(1, 9), (1, 2), (1, 2), (1, 2)):
        if emotion == 1 and intensity == 2:
            continue
        names.append(f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav")
    return names


@pytest.fixture(scope="module")
def ravdess(tmp_path_factory: pytest.TempPathFactory, make_wav: Callable[..., Path]) -> Path:
    root = tmp_path_factory.mktemp("ravdess")
    for actor in (1, 2):
        for name in speech_names(actor):
            make_wav(root / f"Actor_{actor:02d}" / name)
    return root


def test_every_clip_of_two_actors(ravdess: Path) -> None:
    corpus = prepare(ravdess)
    frame = corpus.manifest
    assert corpus.name == "ravdess" and corpus.classes == RAVDESS_EMOTIONS and corpus.labeled
    assert corpus.skipped.empty
    assert len(frame) == 120
    assert frame["speaker"].value_counts().to_dict() == {"01": 60, "02": 60}
    assert list(frame.columns[: len(MANIFEST_COLUMNS)]) == list(MANIFEST_COLUMNS)
    assert {"gender", "intensity", "statement", "repetition"} <= set(frame.columns)
    assert frame["clip_id"].is_unique
    assert frame["path"].map(lambda p: Path(p).is_absolute()).all()
    assert (frame["sample_rate"] == 48_000).all()
    assert frame["duration"].tolist() == pytest.approx([0.05] * 120)
    assert frame["video_path"].isna().all()
    # neutral has only normal intensity: 4 clips per actor, every other emotion 8
    counts = frame.groupby("label").size().to_dict()
    assert counts == {e: (8 if e == "neutral" else 16) for e in RAVDESS_EMOTIONS}


@pytest.mark.parametrize("code", range(1, 9))
def test_emotion_codes_map_in_code_order(ravdess: Path, code: int) -> None:
    frame = prepare(ravdess).manifest
    rows = frame[frame["clip_id"].str.slice(6, 8) == f"{code:02d}"]
    assert set(rows["label"]) == {RAVDESS_EMOTIONS[code - 1]}
    assert set(rows["label_index"]) == {code - 1}


def test_fields_of_one_clip(ravdess: Path) -> None:
    frame = prepare(ravdess).manifest.set_index("clip_id")
    row = frame.loc["03-01-05-02-01-02-02"]
    assert (row["label"], row["speaker"], row["gender"]) == ("angry", "02", "female")
    assert (row["intensity"], row["statement"], row["repetition"]) == ("strong", 1, 2)
    assert row["transcript"] == "Kids are talking by the door"
    assert frame.loc["03-01-01-01-02-01-01", "gender"] == "male"  # odd actors are male


def test_files_directly_under_root_or_nested_deeper(tmp_path: Path, make_wav: Callable[..., Path]) -> None:
    make_wav(tmp_path / "flat" / "03-01-03-01-01-01-07.wav")
    make_wav(tmp_path / "deep" / "audio_speech_actors_01-24" / "Actor_08" / "03-01-04-01-01-01-08.wav")
    assert prepare(tmp_path / "flat").manifest["speaker"].tolist() == ["07"]
    assert prepare(tmp_path / "deep").manifest["label"].tolist() == ["sad"]


def test_each_bad_case_is_skipped_with_its_reason(tmp_path: Path, make_wav: Callable[..., Path]) -> None:
    actor = tmp_path / "Actor_01"
    good = make_wav(actor / "03-01-03-01-01-01-01.wav")
    bad = {
        "readme.wav": "is not MM-VV-EE-II-SS-RR-AA",
        "03-01-09-01-01-01-01.wav": "unknown emotion code 09",
        "03-01-00-01-01-01-01.wav": "unknown emotion code 00",
        "03-02-03-01-01-01-01.wav": "song (vocal channel 02), not speech",
        "01-01-03-01-01-01-01.wav": "full-AV (modality 01), not audio-only",
        "02-01-03-01-01-01-01.wav": "video-only (modality 02), not audio-only",
        "03-01-01-02-01-01-01.wav": "neutral with strong intensity does not exist in RAVDESS",
        "03-01-03-01-01-01-02.wav": "actor 02 in name but folder Actor_01",
        "03-01-03-01-01-01-25.wav": "actor 25 out of range 01..24",
        "03-01-03-03-01-01-01.wav": "unknown intensity code 03",
    }
    for name in bad:
        make_wav(actor / name)
    (actor / "03-01-04-01-01-01-01.wav").write_bytes(b"RIFF garbage, not a wave file")
    bad["03-01-04-01-01-01-01.wav"] = "unreadable ("
    (actor / "03-01-05-01-01-01-01.wav").touch()
    bad["03-01-05-01-01-01-01.wav"] = "empty file"
    cut = make_wav(actor / "03-01-06-01-01-01-01.wav")
    cut.write_bytes(cut.read_bytes()[:100])
    bad["03-01-06-01-01-01-01.wav"] = "truncated (header claims 2400 frames, file holds 28)"
    make_wav(tmp_path / "copy" / "Actor_01" / good.name)
    bad[f"copy/Actor_01/{good.name}"] = f"duplicate of {good}"

    corpus = prepare(tmp_path)
    assert corpus.manifest["clip_id"].tolist() == [good.stem]
    reasons = dict(zip(corpus.skipped["path"], corpus.skipped["reason"], strict=True))
    assert len(reasons) == len(bad)
    for name, expected in bad.items():
        path = str(actor / name) if "/" not in name else str(tmp_path / name)
        assert expected in reasons[path], (name, reasons[path])


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare(tmp_path / "nowhere")


# --- load_corpus -------------------------------------------------------------------


def test_load_corpus_dispatches_by_module_name(ravdess: Path) -> None:
    corpus = load_corpus(f"ravdess:{ravdess}")
    assert isinstance(corpus, Corpus) and corpus.name == "ravdess" and len(corpus.manifest) == 120


def test_available_corpora_are_discovered_not_registered() -> None:
    names = available_corpora()
    assert {"ravdess", "cremad", "avclips"} <= set(names)
    assert "manifest" not in names


def test_parse_spec() -> None:
    assert parse_spec("ravdess:data/synth/ravdess") == ("ravdess", Path("data/synth/ravdess"))
    assert parse_spec("CremaD:C:/data/crema") == ("cremad", Path("C:/data/crema"))
    for bad in ("ravdess", "ravdess:", ":data"):
        with pytest.raises(ValueError, match="name:path"):
            parse_spec(bad)


def test_load_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown corpus 'nosuch'.*available: .*ravdess"):
        load_corpus(f"nosuch:{tmp_path}")
    with pytest.raises(FileNotFoundError, match="absent"):
        load_corpus(f"ravdess:{tmp_path / 'absent'}")
