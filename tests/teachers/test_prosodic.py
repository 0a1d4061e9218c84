"""The prosodic teacher: cached eGeMAPS LLDs, the 4-block ResNet, and per-fold fitting
without leakage on an 80-clip subset of the synthetic corpus (its emotions are carried by
prosody, so LLDs can learn them)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf
import torch

from liser.constants import SAMPLE_RATE
from liser.corpora import load_corpus
from liser.corpora.manifest import Corpus, make_manifest
from liser.folds import Fold, make_folds
from liser.targets import ClipOutputs
from liser.teachers.prosodic import (
    CHECKPOINT,
    MIN_FRAMES,
    N_LLD,
    SUMMARY_FILE,
    BasicBlock,
    ProsodicResNet,
    ProsodicTeacher,
    ProsodicTeacherConfig,
    fit_prosodic_teachers,
    lld_features,
)

# Small and quick: ~5 s a fold on one thread. The defaults are for real corpora.
QUICK = dict(channels=(8, 16, 32, 64), embedding=32, lr=3e-3, epochs=15, crop_frames=150, batch_size=8, threads=1)


def _speechish(seconds=1.5, f0=140.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * h * f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)) * t) / h for h in range(1, 15))
    return (0.1 * wave * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


# ------------------------------------------------------------------------------- LLDs
def test_lld_features_are_cached_and_bad_clips_skipped(tmp_path):
    files = {"good": _speechish(), "silent": np.zeros(SAMPLE_RATE, np.float32), "short": _speechish(0.2)}
    rows = []
    for name, wave in files.items():
        path = str(tmp_path / f"{name}.wav")
        sf.write(path, wave, SAMPLE_RATE)
        rows.append(dict(clip_id=name, path=path, speaker="01", label="x", label_index=0, duration=1.0, sample_rate=SAMPLE_RATE))
    corpus = Corpus("toy", tmp_path, ("x",), make_manifest(rows))
    cache = tmp_path / "cache"

    llds, run = lld_features(corpus, cache, progress=False)
    assert set(llds) == {"good"} and run.computed == 3
    lld = llds["good"]
    assert lld.dtype == np.float32 and lld.shape == (146, N_LLD) and np.isfinite(lld).all()  # 1.5 s: 100 frames/s, 20 ms window
    reasons = {p.rsplit("/", 1)[-1]: r for p, r in run.skipped}
    assert reasons["silent.wav"].startswith("silent") and reasons["short.wav"].startswith("too short")

    again, run = lld_features(corpus, cache, progress=False)  # warm cache: nothing computed
    assert run.computed == 0 and run.cached == 3
    np.testing.assert_array_equal(again["good"], lld)

    entry = next((cache / "prosody").rglob("*.npz"))
    entry.write_bytes(b"not a zip")  # a corrupt entry is recomputed, not trusted
    again, run = lld_features(corpus, cache, progress=False)
    assert run.corrupt == 1 and run.computed == 1
    np.testing.assert_array_equal(again["good"], lld)


# ------------------------------------------------------------------------------- network
def test_resnet_has_four_residual_blocks_and_takes_any_length():
    torch.manual_seed(0)
    model = ProsodicResNet(n_classes=8).eval()
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 4
    assert isinstance(blocks[0].shortcut, torch.nn.Identity) and all(not isinstance(b.shortcut, torch.nn.Identity) for b in blocks[1:])
    for frames in (MIN_FRAMES - 11, 337):  # shorter than the minimum is padded
        out = model(torch.randn(3, frames, N_LLD))
        assert out.logits.shape == (3, 8) and out.embedding.shape == (3, 128)
        assert (out.embedding >= 0).all()  # z_P is ReLU-activated
    with pytest.raises(ValueError, match="frames"):
        model(torch.randn(2, 50, 24))


# ------------------------------------------------------------------------------- fitting
@pytest.fixture(scope="module")
def corpus(synth_root):
    full = load_corpus(f"ravdess:{synth_root / 'ravdess'}")
    sub = full.manifest.groupby(["speaker", "label"], group_keys=False).head(2).reset_index(drop=True)
    return replace(full, manifest=sub)  # 5 actors x 8 emotions x 2 clips


@pytest.fixture(scope="module")
def folds(corpus):
    return make_folds(corpus.manifest["speaker"].unique(), n_folds=5, seed=0)


@pytest.fixture(scope="module")
def fitted(corpus, folds, tmp_path_factory):
    out, cache = tmp_path_factory.mktemp("prosodic"), tmp_path_factory.mktemp("prosodic-cache")
    cfg = ProsodicTeacherConfig(**QUICK)
    logs: list[str] = []
    summary = fit_prosodic_teachers(corpus, folds, [0, 1], cfg, out, cache_dir=cache, progress=False, log=logs.append)
    return out, cache, cfg, summary, logs


def test_fit_writes_outputs_for_every_clip_from_training_speakers_only(corpus, folds, fitted):
    out, _, _, summary, _ = fitted
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    assert json.loads((out / SUMMARY_FILE).read_text()) == summary
    for k in (0, 1):
        fold = folds[k]
        outputs = ClipOutputs.load(out / f"prosodic-fold{k}.npz")
        assert outputs.kind == "prosodic" and outputs.classes == corpus.classes
        assert sorted(outputs.clip_ids) == sorted(corpus.manifest["clip_id"])  # every usable clip, held-out ones too
        assert outputs.logits.shape == (80, 8) and outputs.embeddings.shape == (80, 32)
        meta = outputs.meta
        assert meta["train_speakers"] == sorted(fold.train)
        assert not set(meta["train_speakers"]) & (set(fold.val) | set(fold.test))
        speaker = dict(zip(corpus.manifest["clip_id"], corpus.manifest["speaker"]))
        assert {speaker[c] for c in meta["fit_clips"] + meta["val_clips"]} == set(fold.train)
        assert len(meta["fit_clips"]) + len(meta["val_clips"]) == 48 and meta["skipped"] == []
        assert 0 <= meta["val_uar"] <= 1 and 1 <= meta["best_epoch"] <= QUICK["epochs"]


def test_checkpoint_loads_with_weights_only_and_reproduces_outputs(corpus, fitted):
    out, cache, _, _, _ = fitted
    payload = torch.load(out / "fold0" / CHECKPOINT, map_location="cpu", weights_only=True)
    assert {"state_dict", "config", "classes", "mean", "std", "train_speakers", "val_uar", "val_war", "best_epoch"} <= set(payload)
    teacher = ProsodicTeacher.load(out / "fold0")
    outputs = ClipOutputs.load(out / "prosodic-fold0.npz")
    llds, run = lld_features(corpus, cache, progress=False)
    assert run.computed == 0
    ids = outputs.clip_ids[:6]
    logits, emb = teacher.predict([llds[c] for c in ids])
    want_logits, want_emb = outputs.take(ids)
    np.testing.assert_allclose(logits, want_logits, atol=1e-5)
    np.testing.assert_allclose(emb, want_emb, atol=1e-5)


def test_teacher_learns_emotion_from_prosody(corpus, fitted):
    """Accuracy of the kept checkpoints on their own fit clips, pooled over both folds (76 clips).

    A teacher that learned nothing sits near 1/8 (sd ~0.04 here); 0.28 is 4 sd above it.
    Observed 0.42 with these settings.
    """
    out = fitted[0]
    label = dict(zip(corpus.manifest["clip_id"], corpus.manifest["label_index"]))
    hits = []
    for k in (0, 1):
        outputs = ClipOutputs.load(out / f"prosodic-fold{k}.npz")
        fit = outputs.meta["fit_clips"]
        logits, _ = outputs.take(fit)
        hits.extend(logits.argmax(1) == np.asarray([label[c] for c in fit]))
    assert np.mean(hits) >= 0.28, f"fit-clip accuracy {np.mean(hits):.3f}"


def test_second_call_skips_fitted_folds(corpus, folds, fitted):
    out, cache, cfg, summary, _ = fitted
    stamp = (out / "prosodic-fold1.npz").stat().st_mtime_ns
    logs: list[str] = []
    again = fit_prosodic_teachers(corpus, folds, [1], cfg, out, cache_dir=cache, progress=False, log=logs.append)
    assert any("fold 1" in line and "skipped" in line for line in logs)
    assert (out / "prosodic-fold1.npz").stat().st_mtime_ns == stamp
    assert again["folds"] == summary["folds"]  # fold 0 stays in the merged summary


def test_fitting_is_deterministic(corpus, folds, fitted, tmp_path):
    cache = fitted[1]
    cfg = ProsodicTeacherConfig(**(QUICK | dict(epochs=1, crop_frames=40)))
    runs = []
    for name in ("a", "b"):
        fit_prosodic_teachers(corpus, folds, [2], cfg, tmp_path / name, cache_dir=cache, progress=False, log=lambda _: None)
        runs.append(ClipOutputs.load(tmp_path / name / "prosodic-fold2.npz"))
    np.testing.assert_array_equal(runs[0].logits, runs[1].logits)
    assert runs[0].meta["weights_sha1"] == runs[1].meta["weights_sha1"]


def test_leaky_fold_is_refused_before_any_work(corpus, tmp_path):
    leaky = Fold(0, ("01", "02", "03"), ("03",), ("04",))
    with pytest.raises(ValueError, match="leakage.*03"):
        fit_prosodic_teachers(corpus, [leaky], cfg=ProsodicTeacherConfig(**QUICK), out_dir=tmp_path, progress=False)
    assert not any(tmp_path.iterdir())
