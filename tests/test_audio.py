"""liser.audio: header probes, decoding fixes, and every way a clip is refused."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from liser.audio import AudioError, AudioInfo, audio_info, load_audio
from liser.constants import MIN_CLIP_SECONDS, SAMPLE_RATE


def sine(seconds: float, sr: int, freq: float = 440.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, data: np.ndarray, sr: int, subtype: str = "PCM_16") -> Path:
    sf.write(path, data, sr, subtype=subtype)
    return path


def peak_hz(audio: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / sr)[np.argmax(spectrum)])


def reason_of(path: Path) -> str:
    with pytest.raises(AudioError) as caught:
        load_audio(path)
    return caught.value.reason


def test_audio_info_reads_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "a.wav", np.stack([sine(1.5, 48_000)] * 2, axis=1), 48_000)
    assert audio_info(path) == AudioInfo(duration=1.5, sample_rate=48_000, channels=2)


def test_downmix_and_resample_keep_frequency_and_length(tmp_path: Path) -> None:
    tone = sine(1.0, 48_000, freq=1000.0)
    path = write(tmp_path / "stereo48k.wav", np.stack([tone, tone], axis=1), 48_000)
    audio, fixes = load_audio(path, return_fixes=True)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == SAMPLE_RATE
    assert peak_hz(audio, SAMPLE_RATE) == pytest.approx(1000.0, abs=2.0)
    assert np.max(np.abs(audio)) == pytest.approx(0.3, abs=0.01)
    assert fixes == ["downmixed 2→1 channels", "resampled 48000→16000 Hz"]
    assert np.array_equal(load_audio(path), audio)  # fixes are silent without return_fixes


def test_non_integer_ratio_resample(tmp_path: Path) -> None:
    path = write(tmp_path / "cd.wav", sine(1.0, 44_100, freq=300.0), 44_100)
    audio, fixes = load_audio(path, return_fixes=True)
    assert len(audio) == SAMPLE_RATE
    assert peak_hz(audio, SAMPLE_RATE) == pytest.approx(300.0, abs=2.0)
    assert fixes == ["resampled 44100→16000 Hz"]


def test_native_rate_mono_needs_no_fix(tmp_path: Path) -> None:
    tone = sine(0.8, SAMPLE_RATE)
    path = write(tmp_path / "ok.wav", tone, SAMPLE_RATE, subtype="FLOAT")
    audio, fixes = load_audio(path, return_fixes=True)
    assert fixes == []
    np.testing.assert_array_equal(audio, tone)


def test_multichannel_downmix_averages(tmp_path: Path) -> None:
    tone = sine(1.0, SAMPLE_RATE, amp=1.0)
    data = np.stack([0.4 * tone, 0.2 * tone, 0.0 * tone], axis=1)
    audio, fixes = load_audio(write(tmp_path / "3ch.wav", data, SAMPLE_RATE, "FLOAT"), return_fixes=True)
    np.testing.assert_allclose(audio, 0.2 * tone, atol=1e-6)
    assert fixes == ["downmixed 3→1 channels"]


def test_opposite_phase_channels_downmix_to_silence(tmp_path: Path) -> None:
    tone = sine(1.0, SAMPLE_RATE)
    path = write(tmp_path / "phase.wav", np.stack([tone, -tone], axis=1), SAMPLE_RATE)
    assert reason_of(path).startswith("silent")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_samples_are_refused(tmp_path: Path, bad: float) -> None:
    data = sine(1.0, SAMPLE_RATE)
    data[100] = bad
    assert reason_of(write(tmp_path / "nan.wav", data, SAMPLE_RATE, "FLOAT")) == "NaN samples"


def test_all_zero_is_silent(tmp_path: Path) -> None:
    path = write(tmp_path / "zero.wav", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    assert reason_of(path) == "silent (peak 0)"


def test_near_silence_reports_its_peak(tmp_path: Path) -> None:
    data = np.full(SAMPLE_RATE, 3e-6, np.float32)
    assert reason_of(write(tmp_path / "hush.wav", data, SAMPLE_RATE, "FLOAT")) == "silent (peak 3e-06)"


def test_too_short(tmp_path: Path) -> None:
    path = write(tmp_path / "short.wav", sine(0.31, SAMPLE_RATE), SAMPLE_RATE)
    assert reason_of(path) == f"too short (0.31 s < {MIN_CLIP_SECONDS:g} s)"


def test_too_short_is_judged_after_resampling(tmp_path: Path) -> None:
    path = write(tmp_path / "exact.wav", sine(MIN_CLIP_SECONDS, 48_000), 48_000)
    assert len(load_audio(path)) == round(MIN_CLIP_SECONDS * SAMPLE_RATE)


def test_truncated_wav_is_refused_not_read_in_part(tmp_path: Path) -> None:
    path = write(tmp_path / "cut.wav", sine(1.0, SAMPLE_RATE), SAMPLE_RATE)
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 2 * 6000])  # 44-byte header, then 6000 of 16000 frames
    with pytest.raises(AudioError, match="truncated") as caught:
        audio_info(path)
    assert caught.value.reason == "truncated (header claims 16000 frames, file holds 6000)"
    assert reason_of(path) == caught.value.reason


def test_streaming_header_is_not_truncation(tmp_path: Path) -> None:
    path = write(tmp_path / "stream.wav", sine(1.0, SAMPLE_RATE), SAMPLE_RATE)
    data = bytearray(path.read_bytes())
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)  # data size unknown, as streaming writers leave it
    path.write_bytes(bytes(data))
    assert len(load_audio(path)) == SAMPLE_RATE


def test_header_without_frames(tmp_path: Path) -> None:
    path = write(tmp_path / "hollow.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError) as caught:
        audio_info(path)
    assert caught.value.reason == "no audio frames"


def test_empty_garbage_and_missing_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not a wav file " * 40)
    assert reason_of(empty) == "empty file"
    assert reason_of(garbage).startswith("unreadable (")
    assert reason_of(tmp_path / "missing.wav").startswith("unreadable (")


def test_audio_error_names_the_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.flac"
    empty.touch()
    with pytest.raises(AudioError) as caught:
        audio_info(empty)
    assert caught.value.path == empty
    assert str(caught.value) == f"{empty}: empty file"
