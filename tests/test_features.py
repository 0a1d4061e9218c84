import numpy as np
import pytest
import soundfile as sf

from liser.constants import CROP_FRAMES, N_MELS, SAMPLE_RATE
from liser.corpora.manifest import Corpus, make_manifest
from liser.features import featurize, log_mel, mel_filterbank


def _speechish(seconds=3.0, f0=140.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * h * f0 * t) / h for h in range(1, 20)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.1 * wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ref = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=2048, n_mels=N_MELS, htk=False, norm="slaney")
    np.testing.assert_allclose(mel_filterbank(), ref, rtol=1e-4, atol=1e-7)


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    wave = _speechish()
    ours = log_mel(wave)
    mel = librosa.feature.melspectrogram(
        y=wave, sr=SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=N_MELS, center=True, pad_mode="constant", power=2.0, htk=False, norm="slaney"
    )
    ref = librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None)
    assert ours.shape == ref.shape == (N_MELS, CROP_FRAMES)  # 3 s -> 94 frames
    assert np.max(np.abs(ours - ref)) < 1e-3  # dB


def _corpus(tmp_path, files):
    rows = [dict(clip_id=p.stem, path=str(p), speaker="01", label="x", label_index=0, duration=1.0, sample_rate=SAMPLE_RATE) for p in files]
    return Corpus("toy", tmp_path, ("x",), make_manifest(rows))


def test_featurize_caches_by_content_and_skips_bad_clips(tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, _speechish(2.0), SAMPLE_RATE)
    stereo48 = tmp_path / "stereo48.wav"
    sf.write(stereo48, np.repeat(np.stack([_speechish(2.0, seed=1)] * 2, 1), 3, axis=0), 48000)  # 2 s, 48 kHz stereo
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(SAMPLE_RATE), SAMPLE_RATE)
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.full(SAMPLE_RATE, np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT")
    corpus = _corpus(tmp_path, [good, stereo48, silent, nan])
    cache = tmp_path / "cache"

    first = featurize(corpus, cache, progress=False)
    assert set(first.features) == {"good", "stereo48"}
    assert first.features["good"].shape == (N_MELS, 1 + 2 * SAMPLE_RATE // 512)
    reasons = dict(zip(first.skipped["path"].map(lambda p: p.split("/")[-1]), first.skipped["reason"]))
    assert reasons["silent.wav"].startswith("silent") and "NaN" in reasons["nan.wav"]
    assert any("resampled 48000" in f for f in first.fixes) and any("downmix" in f for f in first.fixes)
    assert first.computed == 4

    second = featurize(corpus, cache, progress=False)  # warm cache: nothing decoded
    assert second.computed == 0
    np.testing.assert_array_equal(second.features["good"], first.features["good"])
    assert second.fixes == first.fixes and len(second.skipped) == 2

    entry = next((cache / "features").rglob("*.npz"))
    entry.write_bytes(b"not a zip")  # a corrupt entry is recomputed, not trusted
    third = featurize(corpus, cache, progress=False)
    assert third.computed == 1 and set(third.features) == {"good", "stereo48"}
