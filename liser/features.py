"""Log-Mel features (section 3.3), computed once per clip and cached on disk.

The spectrogram matches librosa's ``melspectrogram`` + ``power_to_db(top_db=None)``:
periodic Hann window, ``center=True`` with constant (zero) padding, power 2, Slaney
mel scale and norm. librosa stays a test reference only (its first call spends ~18 s
compiling with numba).

Cache layout, under ``cache_dir`` (default ``$LISER_CACHE`` or ``~/.cache/liser``)::

    features/<settings-key>/<content-sha1[:2]>/<content-sha1>.npz    log-Mel [n_mels, frames] + fixes
    features/<settings-key>/<content-sha1[:2]>/<content-sha1>.json   why a clip is unusable
    hashes.json                                                      path+size+mtime -> sha1

Keys are the file's content hash and the feature settings, so a renamed file is not
re-decoded and a changed setting never reads stale features.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from liser.audio import load_audio
from liser.constants import HOP_LENGTH, LOG_FLOOR, N_FFT, N_MELS, SAMPLE_RATE
from liser.corpora.manifest import Corpus, make_skips
from liser.storage import ClipStore, ContentHashes, PerClip, default_cache_dir

FEATURE_SETTINGS = {
    "kind": "log-mel-db",
    "sample_rate": SAMPLE_RATE,
    "n_fft": N_FFT,
    "hop_length": HOP_LENGTH,
    "n_mels": N_MELS,
    "window": "hann-periodic",
    "center": True,
    "pad_mode": "constant",
    "mel": "slaney",
    "floor": LOG_FLOOR,
    "version": 1,
}


def settings_key(settings: dict = FEATURE_SETTINGS) -> str:
    return hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------- log-Mel
def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


@lru_cache(maxsize=4)
def mel_filterbank(sample_rate: int = SAMPLE_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Slaney-normalised triangular filters [n_mels, n_fft // 2 + 1], as librosa.filters.mel."""
    fft_freqs = np.linspace(0, sample_rate / 2, 1 + n_fft // 2)
    mel_f = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(sample_rate / 2), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = np.subtract.outer(mel_f, fft_freqs)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2 : n_mels + 2] - mel_f[:n_mels]))[:, None]
    return weights.astype(np.float32)


def log_mel(wave: np.ndarray) -> np.ndarray:
    """Log-Mel spectrogram in dB, [n_mels, 1 + len(wave) // hop], float32."""
    x = torch.as_tensor(np.asarray(wave, dtype=np.float32))
    spec = torch.stft(
        x,
        n_fft=N_FFT,
        hop_length=HOP_LENGTH,
        window=torch.hann_window(N_FFT, periodic=True),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    power = spec.real**2 + spec.imag**2
    mel = torch.from_numpy(mel_filterbank()) @ power
    return (10.0 * torch.log10(torch.clamp(mel, min=LOG_FLOOR))).numpy().astype(np.float32)


# ----------------------------------------------------------------------- cache
@dataclass
class FeatureSet:
    """Features of the usable clips of one corpus, plus what was skipped or fixed and why."""

    features: dict[str, np.ndarray]
    skipped: pd.DataFrame  # path, reason: unusable at decode time
    fixes: Counter = field(default_factory=Counter)  # "resampled 48000->16000 Hz" -> count
    computed: int = 0  # clips decoded in this call (0 on a warm cache)
    cache_dir: Path | None = None  # the cache root they came from; derived caches (NSL graphs) go there too

    def __len__(self) -> int:
        return len(self.features)


# Decoding and featurizing runs at ~100 clips/s a core; a local Ray costs seconds to start (README, bench_workers).
FEATURES_AUTO_MIN_CLIPS = 2000


def clip_features(path: Path) -> dict[str, np.ndarray]:
    """One clip's cache entry: its log-Mel and the fixes decoding applied (AudioError carries a skip reason)."""
    wave, clip_fixes = load_audio(path, return_fixes=True)
    return {"mel": log_mel(wave), "fixes": np.asarray(clip_fixes, dtype=str)}


def _valid(entry: dict[str, np.ndarray]) -> bool:
    return "mel" in entry and entry["mel"].ndim == 2


def featurize(corpus: Corpus, cache_dir: str | Path | None = None, progress: bool = True, pool=None) -> FeatureSet:
    """Decode and featurize every clip of ``corpus`` once; later calls read the cache.

    Unusable clips (unreadable, empty, NaN, silent, too short) are skipped with their
    reason; fixes (downmix, resample) are counted. A corrupt cache entry is recomputed.
    ``pool`` (:class:`liser.workers.Pool`) decodes the clips the cache lacks in worker processes.
    """
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    store = ClipStore(root / "features" / settings_key(), ContentHashes(root / "hashes.json"))
    rows = corpus.manifest[["clip_id", "path"]].itertuples(index=False)
    run = store.map(
        rows, PerClip(clip_features, batch_size=8, auto_min_clips=FEATURES_AUTO_MIN_CLIPS), check=_valid, total=len(corpus.manifest),
        desc=f"features {corpus.name}", progress=progress, pool=pool,
    )
    fixes: Counter = Counter()
    for entry in run.arrays.values():
        fixes.update(str(f) for f in entry.get("fixes", ()))
    features = {clip_id: entry["mel"] for clip_id, entry in run.arrays.items()}
    return FeatureSet(features, make_skips(run.skipped), fixes, run.computed, root)
