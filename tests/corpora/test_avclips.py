"""Unlabeled audio-visual clips (MSP-Face layout), and decoding audio from video containers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from liser.audio import AudioError, audio_info, load_audio
from liser.constants import SAMPLE_RATE
from liser.corpora import load_corpus
from liser.corpora.avclips import prepare


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, make_video: Callable[..., Path]) -> Path:
    root = tmp_path_factory.mktemp("avclips")
    make_video(root / "Segments" / "MSP-FACE_0001_0001.mp4")
    make_video(root / "Segments" / "MSP-FACE_0001_0002.mp4")
    make_video(root / "Segments" / "more" / "MSP-FACE_0042_0007.mp4", seconds=1.0)
    make_video(root / "mine" / "vlog_take3.mkv")
    (root / "mine" / "notes.txt").write_text("not a video")
    return root


def test_msp_face_segments_and_other_videos(clips: Path) -> None:
    corpus = prepare(clips)
    frame = corpus.manifest.set_index("clip_id")
    assert corpus.name == "avclips" and corpus.classes == () and not corpus.labeled
    assert corpus.skipped.empty
    assert sorted(frame.index) == ["MSP-FACE_0001_0001", "MSP-FACE_0001_0002", "MSP-FACE_0042_0007", "vlog_take3"]
    assert frame["speaker"].to_dict() == {
        "MSP-FACE_0001_0001": "0001",
        "MSP-FACE_0001_0002": "0001",
        "MSP-FACE_0042_0007": "0042",
        "vlog_take3": "vlog_take3",  # no source-video id to go by
    }
    assert frame["label"].isna().all() and (frame["label_index"] == -1).all()
    assert (frame["path"] == frame["video_path"]).all()
    assert (frame["fps"] == 30.0).all() and (frame["sample_rate"] == 48_000).all()
    assert frame.loc["MSP-FACE_0001_0001", "n_frames"] == 15
    assert frame.loc["MSP-FACE_0042_0007", "n_frames"] == 30
    assert frame.loc["MSP-FACE_0042_0007", "duration"] == pytest.approx(1.0, abs=0.05)


def test_each_bad_video_is_skipped_with_its_reason(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    make_video(tmp_path / "MSP-FACE_0001_0001.mp4")
    make_video(tmp_path / "MSP-FACE_0002_0001.mp4", audio=False)
    cut = make_video(tmp_path / "MSP-FACE_0003_0001.mp4")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # index (moov) is at the end: lost
    (tmp_path / "MSP-FACE_0004_0001.mp4").touch()
    (tmp_path / "MSP-FACE_0005_0001.mov").write_bytes(b"\x00junk" * 50)
    make_video(tmp_path / "copy" / "MSP-FACE_0001_0001.mp4")

    corpus = prepare(tmp_path)
    assert corpus.manifest["clip_id"].tolist() == ["MSP-FACE_0001_0001"]
    skipped = zip(corpus.skipped["path"], corpus.skipped["reason"], strict=True)
    reasons = {Path(path).relative_to(tmp_path).as_posix(): reason for path, reason in skipped}
    assert reasons["MSP-FACE_0002_0001.mp4"] == "no audio track"
    assert reasons["MSP-FACE_0003_0001.mp4"].startswith("unreadable (")
    assert reasons["MSP-FACE_0004_0001.mp4"] == "empty file"
    assert reasons["MSP-FACE_0005_0001.mov"].startswith("unreadable (")
    assert reasons["copy/MSP-FACE_0001_0001.mp4"] == f"duplicate of {tmp_path / 'MSP-FACE_0001_0001.mp4'}"
    assert len(reasons) == 5


def test_load_corpus_dispatch(clips: Path) -> None:
    assert len(load_corpus(f"avclips:{clips}").manifest) == 4


# --- reading audio from the video's audio track -------------------------------------


def test_audio_track_is_downmixed_and_resampled(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    path = make_video(tmp_path / "tone.mp4", seconds=1.0, freq=1000.0)
    assert audio_info(path).channels == 2
    audio, fixes = load_audio(path, return_fixes=True)
    assert fixes == ["downmixed 2→1 channels", "resampled 48000→16000 Hz"]
    assert audio.dtype == np.float32 and abs(len(audio) - SAMPLE_RATE) < 0.05 * SAMPLE_RATE  # aac adds a frame
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    assert np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)[np.argmax(spectrum)] == pytest.approx(1000.0, abs=3.0)


def test_video_without_audio(tmp_path: Path, make_video: Callable[..., Path]) -> None:
    path = make_video(tmp_path / "mute.mp4", audio=False)
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    assert caught.value.reason == "no audio stream"


def test_truncation_behind_a_valid_index_is_caught_when_decoding(
    tmp_path: Path, make_video: Callable[..., Path]
) -> None:
    path = make_video(tmp_path / "fast.mp4", seconds=2.0, layout="mono", options={"movflags": "faststart"})
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    assert audio_info(path).duration == pytest.approx(2.0, abs=0.05)  # the header still looks whole
    with pytest.raises(AudioError, match="truncated"):
        load_audio(path)
