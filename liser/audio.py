"""Reading audio: header probes and decoding to the model's mono 16 kHz float32.

Two readers sit behind one interface: soundfile (libsndfile) for wav/flac/ogg, and
PyAV (ffmpeg) for the audio track of video containers (mp4/mkv/webm/avi/mov/m4a).
torchaudio is deliberately not used.

:func:`load_audio` repairs what can be repaired without changing what was said
(downmix, resample) and refuses what cannot (empty, NaN, silent, too short,
truncated), raising :class:`AudioError` with a short human ``reason`` that
adapters and feature extraction copy into their skip tables. Silent clips, such
as CREMA-D's ``1076_MTI_SAD_XX``, are found by their content, never by name.

Truncated files are refused, not read in part. A wav whose header claims more
frames than the file holds is an interrupted copy or download; its label
describes the whole recording, so training or scoring on whatever prefix
survived would silently change the data set. libsndfile hides the shortfall (it
quietly shortens the frame count), so the RIFF chunk sizes are checked here.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, overload

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from liser.constants import DECODED_FRACTION_MIN, MIN_CLIP_SECONDS, SAMPLE_RATE, SILENCE_PEAK
from liser.errors import MediaError

# Read through PyAV (their audio track); everything else goes through soundfile.
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".webm", ".avi", ".mov"})
_CONTAINER_SUFFIXES = VIDEO_SUFFIXES | {".m4a"}

class AudioError(MediaError):
    """A file whose audio cannot be used; ``reason`` says why in a few words."""


@dataclass(frozen=True)
class AudioInfo:
    """What a file's header says about its audio."""

    duration: float  # seconds; NaN when the container does not say
    sample_rate: int
    channels: int


def audio_info(path: str | Path) -> AudioInfo:
    """Read duration, rate and channel count from the header, without decoding.

    Raises:
        AudioError: empty, unreadable or truncated file, no audio stream, no frames.
    """
    path = Path(path)
    _check_nonempty(path)
    if _uses_pyav(path):
        return _container_info(path)
    try:
        info = sf.info(str(path))
    except (sf.SoundFileError, RuntimeError) as err:
        raise AudioError(f"unreadable ({_sf_message(err)})", path) from err
    shortfall = _wav_shortfall(path)
    if shortfall is not None:
        claimed, present = shortfall
        raise AudioError(f"truncated (header claims {claimed} frames, file holds {present})", path)
    if info.frames == 0:
        raise AudioError("no audio frames", path)
    return AudioInfo(duration=info.frames / info.samplerate, sample_rate=info.samplerate, channels=info.channels)


@overload
def load_audio(path: str | Path, target_sr: int = ..., *, return_fixes: Literal[False] = ...) -> np.ndarray: ...


@overload
def load_audio(
    path: str | Path, target_sr: int = ..., *, return_fixes: Literal[True]
) -> tuple[np.ndarray, list[str]]: ...


def load_audio(
    path: str | Path, target_sr: int = SAMPLE_RATE, *, return_fixes: bool = False
) -> np.ndarray | tuple[np.ndarray, list[str]]:
    """Decode to float32 mono at ``target_sr`` and check that it is usable speech.

    Downmixing and resampling happen silently in the array; with
    ``return_fixes=True`` they are also returned as strings so callers can log
    them (e.g. ``"downmixed 2→1 channels"``, ``"resampled 48000→16000 Hz"``).

    Raises:
        AudioError: unreadable, empty, truncated, NaN/inf samples, silent
            (peak < SILENCE_PEAK) or shorter than MIN_CLIP_SECONDS.
    """
    path = Path(path)
    info = audio_info(path)  # refuses empty, truncated and unreadable files first
    if _uses_pyav(path):
        samples, sr = _decode_container(path, info)
    else:
        try:
            samples, sr = sf.read(str(path), dtype="float32", always_2d=True)
        except (sf.SoundFileError, RuntimeError) as err:
            raise AudioError(f"unreadable ({_sf_message(err)})", path) from err
    if samples.size == 0:
        raise AudioError("empty (no samples decoded)", path)

    fixes: list[str] = []
    channels = samples.shape[1]
    audio = samples[:, 0] if channels == 1 else samples.mean(axis=1)
    if channels > 1:
        fixes.append(f"downmixed {channels}→1 channels")
    if not np.all(np.isfinite(audio)):
        raise AudioError("NaN samples", path)
    if sr != target_sr:
        g = math.gcd(int(sr), int(target_sr))
        audio = resample_poly(audio, target_sr // g, int(sr) // g)
        fixes.append(f"resampled {sr}→{target_sr} Hz")
    audio = np.ascontiguousarray(audio, dtype=np.float32)

    peak = float(np.max(np.abs(audio)))
    if peak < SILENCE_PEAK:
        raise AudioError(f"silent (peak {peak:.1g})", path)
    seconds = len(audio) / target_sr
    if seconds < MIN_CLIP_SECONDS:
        raise AudioError(f"too short ({seconds:.2f} s < {MIN_CLIP_SECONDS:g} s)", path)
    return (audio, fixes) if return_fixes else audio


# --- soundfile side ------------------------------------------------------------------


def _uses_pyav(path: Path) -> bool:
    return path.suffix.lower() in _CONTAINER_SUFFIXES


def _check_nonempty(path: Path) -> None:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise AudioError(f"unreadable ({err.strerror or err})", path) from err
    if size == 0:
        raise AudioError("empty file", path)


def _sf_message(err: Exception) -> str:
    # LibsndfileError carries libsndfile's own words without the "Error opening ..." prefix.
    return str(getattr(err, "error_string", None) or err).strip().rstrip(".")


def _wav_shortfall(path: Path) -> tuple[int, int] | None:
    """(claimed, present) frames when a RIFF wav's data chunk runs past the file's end.

    None for non-RIFF files, RF64, and streaming headers (data size 0 or 0xFFFFFFFF),
    whose length is legitimately unknown.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = 0
        offset = 12
        for _ in range(64):  # real files have a handful of chunks
            f.seek(offset)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"fmt ":
                fmt = f.read(16)
                if len(fmt) == 16:
                    block_align = struct.unpack("<H", fmt[12:14])[0]
            elif chunk_id == b"data":
                if chunk_size in (0, 0xFFFFFFFF) or block_align == 0:
                    return None
                present = size - (offset + 8)
                if present >= chunk_size:
                    return None
                return chunk_size // block_align, max(present, 0) // block_align
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are padded to even sizes
    return None


# --- PyAV side -----------------------------------------------------------------------


def open_container(path: Path, error: type[Exception] = AudioError) -> av.container.InputContainer:
    """Open a media file with PyAV; a file ffmpeg cannot open raises ``error("unreadable (...)", path)``."""
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        message = getattr(err, "strerror", None) or str(err)
        raise error(f"unreadable ({message})", path) from err


def _container_info(path: Path) -> AudioInfo:
    with open_container(path) as container:
        if not container.streams.audio:
            raise AudioError("no audio stream", path)
        stream = container.streams.audio[0]
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = math.nan
        return AudioInfo(duration=duration, sample_rate=int(stream.rate), channels=int(stream.channels))


def _decode_container(path: Path, info: AudioInfo) -> tuple[np.ndarray, int]:
    """Decode the first audio track to (frames, channels) float32 at its native rate."""
    resampler = av.AudioResampler(format="fltp")  # planar float, same layout and rate
    chunks: list[np.ndarray] = []
    with open_container(path) as container:
        stream = container.streams.audio[0]
        sr = int(stream.rate)
        try:
            for frame in container.decode(stream):
                chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
            chunks.extend(out.to_ndarray() for out in resampler.resample(None))
        except (av.error.FFmpegError, OSError, ValueError) as err:
            # A moov-first mp4 cut short opens fine and fails here, mid-stream.
            done = sum(c.shape[1] for c in chunks) / sr
            reason = f"truncated or corrupt (decoding failed at {done:.2f} s of {info.duration:.2f} s)"
            raise AudioError(reason, path) from err
    if not chunks:
        return np.zeros((0, max(info.channels, 1)), np.float32), sr
    samples = np.concatenate(chunks, axis=1).T
    decoded = len(samples) / sr
    if math.isfinite(info.duration) and decoded < DECODED_FRACTION_MIN * info.duration:
        raise AudioError(f"truncated (decoded {decoded:.2f} s of {info.duration:.2f} s)", path)
    return samples, sr
