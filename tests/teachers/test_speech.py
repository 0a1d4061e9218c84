"""The speech teacher: backbone resolution, LoRA gradient flow, per-fold fitting without
leakage, segment predictions, and the offline tiny-synth backbone.

Unit tests use a randomly initialised tiny HuBERT saved as a local checkpoint; only
``test_tiny_synth_teacher_learns`` (the slowest, ~2.5 min) builds the default tiny-synth backbone.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertModel, HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from liser.audio import load_audio
from liser.constants import RAVDESS_EMOTIONS, SAMPLE_RATE
from liser.corpora import load_corpus
from liser.evaluate import uar
from liser.folds import Fold, make_folds
from liser.teachers import speech, tiny_synth, waves
from liser.teachers.tiny_synth import TinySynthRecipe
from liser.teachers.speech import (
    LORA_TARGETS,
    SpeechTeacher,
    TeacherError,
    build_model,
    fit_speech_teacher,
    fit_speech_teachers,
    make_config,
)

# A tiny pretraining recipe: seconds to build, enough to exercise the build-and-cache path.
MINI_RECIPE = TinySynthRecipe(speakers=2, clips_per_speaker=8, steps=2, batch_size=8)


def _tiny_config(**overrides) -> HubertConfig:
    fields = dict(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=32, layerdrop=0.0,
    )
    return HubertConfig(**(fields | overrides))


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    """A random tiny HuBERT checkpoint folder, saved as a hub backbone is (no head)."""
    path = tmp_path_factory.mktemp("tiny-hubert")
    torch.manual_seed(0)
    HubertModel(_tiny_config()).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def corpus(synth_root):
    return load_corpus(f"ravdess:{synth_root / 'ravdess'}")


@pytest.fixture(scope="module")
def folds(corpus):
    return make_folds(corpus.manifest["speaker"].unique(), n_folds=5, seed=0)


@pytest.fixture(scope="module")
def fitted(corpus, folds, tiny_backbone, tmp_path_factory):
    """Teachers of folds 0 and 1, one quick epoch each."""
    out = tmp_path_factory.mktemp("speech-teachers")
    cfg = make_config(backbone=tiny_backbone, epochs=1, batch_size=16, crop_seconds=1.0, threads=1)
    summary = fit_speech_teachers(corpus, folds, [0, 1], cfg, out, progress=False)
    return out, summary


# ---------------------------------------------------------------------------- backbones
def test_lora_sits_on_every_attention_projection(corpus, tiny_backbone):
    model = build_model(tiny_backbone, corpus.classes)
    layers = model.base_model.model.hubert.encoder.layers
    for layer in layers:
        for name in LORA_TARGETS:
            proj = getattr(layer.attention, name)
            assert hasattr(proj, "lora_A") and hasattr(proj, "lora_B"), f"no LoRA on {name}"
            assert proj.lora_A["default"].weight.requires_grad and not proj.base_layer.weight.requires_grad
    trainable, total = speech.count_parameters(model)
    assert 0 < trainable < total
    assert model.base_model.model.config.id2label == dict(enumerate(corpus.classes))


def test_one_step_moves_lora_and_head_and_nothing_else(corpus, tiny_backbone):
    model = build_model(tiny_backbone, corpus.classes)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    # the frozen set covers the attention base weights, the conv feature extractor and layer norms
    assert any("q_proj.base_layer.weight" in n for n in frozen)
    assert any("feature_extractor.conv_layers.0.conv.weight" in n for n in frozen)
    assert any("layer_norm" in n for n in frozen)
    cfg = make_config(backbone=tiny_backbone, lr=1e-2, weight_decay=0.0)
    optimizer = speech.make_optimizer(model, cfg)
    rng = np.random.default_rng(0)
    x = waves.crop_batch([rng.standard_normal(SAMPLE_RATE).astype(np.float32) for _ in range(4)], 1.0, rng, normalize=True)
    y = torch.tensor([0, 1, 2, 3])

    speech.train_step(model, optimizer, x, y)
    params = dict(model.named_parameters())
    lora_a = [n for n in params if "lora_A" in n]
    lora_b = [n for n in params if "lora_B" in n]
    assert len(lora_a) == len(lora_b) == 4 * 2  # four projections in each of two layers
    for n in lora_b:  # B starts at zero, so the first step must move it
        assert not torch.equal(params[n], before[n]), n
    head = [n for n in params if "modules_to_save" in n]
    assert head and all(not torch.equal(params[n], before[n]) for n in head)
    for n in frozen:
        assert torch.equal(params[n], before[n]), f"frozen weight {n} changed"

    # A's gradient is B^T(...): zero while B is zero, non-zero from the second step on
    speech.train_step(model, optimizer, x, y)
    for n in lora_a:
        assert params[n].grad is not None and params[n].grad.abs().sum() > 0, n
        assert not torch.equal(params[n], before[n]), n
    for n in frozen:
        assert torch.equal(params[n], before[n]), f"frozen weight {n} changed"


def test_uncached_hub_id_fails_fast_with_the_fix(corpus):
    from huggingface_hub import try_to_load_from_cache

    ids = ["liser-tests/no-such-hubert"]
    if not isinstance(try_to_load_from_cache(speech.HUBERT_BASE, "config.json"), str):
        ids.append(speech.HUBERT_BASE)  # only when this machine has not downloaded it
    for hub_id in ids:
        start = time.perf_counter()
        with pytest.raises(TeacherError) as info:
            build_model(hub_id, corpus.classes)
        assert time.perf_counter() - start < 5
        message = str(info.value)
        assert hub_id in message and "not in the local Hugging Face cache" in message
        assert f"download {hub_id}" in message and "tiny-synth" in message and "local checkpoint folder" in message


def test_missing_local_path_is_named(tmp_path, corpus):
    missing = tmp_path / "no" / "such-checkpoint"
    with pytest.raises(TeacherError, match="backbone folder not found") as info:
        build_model(str(missing), corpus.classes)
    assert str(missing) in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TeacherError, match="no config.json"):
        build_model(str(tmp_path / "empty"), corpus.classes)


def test_wrong_architecture_is_refused(tmp_path, corpus):
    bert = tmp_path / "bert"
    BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)).save_pretrained(bert)
    with pytest.raises(TeacherError, match="'bert' checkpoint, not HuBERT"):
        build_model(str(bert), corpus.classes)
    # a HuBERT config whose weights have other shapes: a damaged or mislabeled checkpoint
    odd = tmp_path / "odd"
    HubertModel(_tiny_config()).save_pretrained(odd)
    config = json.loads((odd / "config.json").read_text())
    (odd / "config.json").write_text(json.dumps(config | {"hidden_size": 48, "intermediate_size": 96}))
    with pytest.raises(TeacherError, match="do not fit"):
        build_model(str(odd), corpus.classes)


def test_tiny_synth_is_built_once_and_loads_like_a_checkpoint(monkeypatch, corpus, synth_root):
    from liser.synth.corpus import actor_speaker
    from liser.synth.speech import draw_speaker

    monkeypatch.setattr(tiny_synth, "DEFAULT_TINY_SYNTH", MINI_RECIPE)
    builds = tiny_synth.TINY_SYNTH_BUILDS
    path = tiny_synth.tiny_synth_backbone()
    assert tiny_synth.TINY_SYNTH_BUILDS == builds + 1
    assert path.name.startswith("tiny-synth-") and (path / "model.safetensors").exists()
    assert json.loads((path / "config.json").read_text())["model_type"] == "hubert"
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    model = build_model(speech.TINY_SYNTH, corpus.classes)  # the keyword resolves to the cached folder
    assert tiny_synth.TINY_SYNTH_BUILDS == builds + 1 and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert model.base_model.model.config.name_or_path == str(path)
    assert speech.resolve_backbone(speech.TINY_SYNTH) == str(path)
    # other settings, other folder; no temp folders left behind
    assert tiny_synth.tiny_synth_backbone(replace(MINI_RECIPE, seed=1)) != path
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]
    # its pretraining speakers are not the labeled corpus's actors
    pretrain_f0 = {draw_speaker(np.random.default_rng([0, 999, i]), i % 2 == 0).f0_hz for i in range(MINI_RECIPE.speakers)}
    actor_f0 = {actor_speaker(0, a).f0_hz for a in range(1, 6)}
    assert not pretrain_f0 & actor_f0


def test_tiny_synth_without_normalisation_keeps_loudness_end_to_end(tmp_path):
    """normalize=False: a folder of its own, a feature extractor that says so, and a backbone the
    teacher then feeds raw waves (the default's key is unchanged by the field)."""
    import hashlib
    from dataclasses import asdict

    before = {k: v for k, v in asdict(TinySynthRecipe()).items() if k != "normalize"}  # the recipe before the field
    text = json.dumps({"recipe": before, "version": tiny_synth._TINY_SYNTH_VERSION}, sort_keys=True)
    assert TinySynthRecipe().key() == hashlib.sha1(text.encode()).hexdigest()[:12]  # builds cached before it stay valid
    raw = replace(MINI_RECIPE, normalize=False)
    path = tiny_synth.tiny_synth_backbone(raw, cache_dir=tmp_path)
    assert path != tiny_synth.tiny_synth_backbone(MINI_RECIPE, cache_dir=tmp_path)
    assert json.loads((path / "preprocessor_config.json").read_text())["do_normalize"] is False
    _, info = speech.load_backbone(str(path), RAVDESS_EMOTIONS)
    assert info.normalize is False


def test_tiny_synth_prosody_targets_describe_the_audio():
    """The pretraining's regression targets are the prosody each clip was rendered with."""
    waves, labels, loudness, targets = tiny_synth._pretraining_set(replace(MINI_RECIPE, speakers=4))
    assert sorted(set(labels)) == list(range(8)) and targets.shape == (len(waves), len(tiny_synth.PROSODY_TARGETS))
    np.testing.assert_allclose(targets.mean(0), 0, atol=1e-4)  # standardized
    column = dict(zip(tiny_synth.PROSODY_TARGETS, targets.T))
    measured_db = [20 * np.log10(np.sqrt(np.mean(w**2))) for w in waves]
    assert np.corrcoef(column["level_db"], measured_db)[0, 1] > 0.9
    assert np.corrcoef(20 * np.log10(loudness), measured_db)[0, 1] > 0.9
    female = column["female"] > 0
    assert female.sum() == len(waves) // 2 and column["pitch"][female].min() > column["pitch"][~female].max()


# ---------------------------------------------------------------------------- fitting
def test_each_fold_teacher_sees_only_its_training_speakers(fitted, folds, corpus):
    out, summary = fitted
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    speaker_of = corpus.manifest.set_index("clip_id")["speaker"]
    for k in (0, 1):
        fold = folds[k]
        record = json.loads((out / f"fold{k}" / "teacher.json").read_text())
        assert record["train_speakers"] == list(fold.train)
        assert not set(record["train_speakers"]) & (set(fold.test) | set(fold.val))
        used = set(speaker_of[record["fit_clips"] + record["val_clips"]])
        assert used == set(fold.train)
        n = int(corpus.manifest["speaker"].isin(fold.train).sum())
        assert record["n_fit"] + record["n_val"] == n and abs(record["n_val"] - 0.2 * n) <= len(corpus.classes)
        assert record["best_epoch"] == 1 and len(record["history"]) == 1 and 0 <= record["val_uar"] <= 1
        assert record["checkpoint_hash"] == summary["folds"][k]["checkpoint_hash"]
        assert (out / f"fold{k}" / "adapter_model.safetensors").exists()
    assert json.loads((out / "teachers.json").read_text()) == summary


def test_up_to_date_folds_are_skipped_and_altered_ones_refitted(fitted, folds, corpus, tiny_backbone, tmp_path):
    """The shared fit driver: a second run reuses folds fitted with the same settings, never a changed one."""
    import shutil

    out = tmp_path / "teachers"
    shutil.copytree(fitted[0], out)
    cfg = make_config(backbone=tiny_backbone, epochs=1, batch_size=16, crop_seconds=1.0, threads=1)
    stamps = {k: (out / f"fold{k}" / "adapter_model.safetensors").stat().st_mtime_ns for k in (0, 1)}
    lines = []
    summary = fit_speech_teachers(corpus, folds, [0, 1], cfg, out, progress=False, log=lines.append)
    assert [line.split(":")[0] for line in lines] == ["speech teacher fold 0", "speech teacher fold 1"] and all("up to date" in x for x in lines)
    assert {k: (out / f"fold{k}" / "adapter_model.safetensors").stat().st_mtime_ns for k in (0, 1)} == stamps
    assert summary["folds"] == fitted[1]["folds"]
    with open(out / "fold1" / "adapter_model.safetensors", "ab") as fh:  # a damaged adapter is not up to date
        fh.write(b"\0")
    lines.clear()
    fit_speech_teachers(corpus, folds, [0, 1], cfg, out, progress=False, log=lines.append)
    assert "up to date" in lines[0] and "up to date" not in lines[1] and lines[1].startswith("speech teacher fold 1: val UAR")
    SpeechTeacher.load(out / "fold1")  # refitted: loads and matches its hash again


def test_a_held_out_speaker_cannot_train_the_teacher(corpus, folds, tiny_backbone, tmp_path):
    fold = folds[0]
    cfg = make_config(backbone=tiny_backbone, epochs=1, threads=1)
    with pytest.raises(TeacherError, match="leakage"):
        fit_speech_teacher(corpus, fold.train + fold.test[:1], cfg, tmp_path / "t", forbidden_speakers=fold.test + fold.val, progress=False)
    bad = Fold(0, fold.train + fold.val[:1], fold.val, fold.test)
    with pytest.raises(TeacherError, match="leakage"):
        fit_speech_teachers(corpus, [bad], [0], cfg, tmp_path / "t", progress=False)
    with pytest.raises(TeacherError, match="not in corpus"):
        fit_speech_teacher(corpus, ["no-such-actor"], cfg, tmp_path / "t", progress=False)
    assert not (tmp_path / "t").exists()


def test_unusable_clips_are_skipped_and_listed(corpus, folds, tiny_backbone, tmp_path):
    manifest = corpus.manifest.copy()
    row = manifest.index[manifest["speaker"] == folds[0].train[0]][0]
    (tmp_path / "empty.wav").write_bytes(b"")
    manifest.loc[row, "path"] = str(tmp_path / "empty.wav")
    broken = replace(corpus, manifest=manifest)
    cfg = make_config(backbone=tiny_backbone, epochs=1, batch_size=32, crop_seconds=0.5, threads=1)
    record = fit_speech_teacher(broken, folds[0].train, cfg, tmp_path / "t", progress=False)
    assert record["skipped"] == [{"clip_id": manifest.loc[row, "clip_id"], "path": str(tmp_path / "empty.wav"), "reason": "empty file"}]
    assert record["n_fit"] + record["n_val"] == int(manifest["speaker"].isin(folds[0].train).sum()) - 1


# ---------------------------------------------------------------------------- prediction
def test_segments_cover_the_wave_and_are_softmaxes(fitted, corpus):
    out, summary = fitted
    teacher = SpeechTeacher.load(out / "fold0")
    assert teacher.classes == corpus.classes and teacher.checkpoint_hash == summary["folds"][0]["checkpoint_hash"]
    assert teacher.meta["train_speakers"] == summary["folds"][0]["train_speakers"]
    wave = np.random.default_rng(0).standard_normal(round(2.2 * SAMPLE_RATE)).astype(np.float32) * 0.1
    probs = teacher.predict_segments(wave)
    assert probs.shape == (5, len(corpus.classes))
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and np.all(probs >= 0)
    assert np.array_equal(probs, teacher.predict_segments(wave))  # eval mode: deterministic
    short = wave[:100]  # shorter than a segment: padded to one
    batch = teacher.predict_segments_batch([wave, short, wave[: SAMPLE_RATE]])
    assert [len(p) for p in batch] == [5, 1, 2]
    assert np.allclose(batch[0], probs, atol=1e-5)
    assert teacher.predict_segments(wave[:0]).shape == (0, len(corpus.classes))
    clip = corpus.manifest["path"].iloc[0]
    assert teacher.predict_file(clip).shape[1] == len(corpus.classes)


def test_loading_errors_name_the_path_and_the_fix(fitted, tmp_path):
    out, _ = fitted
    with pytest.raises(TeacherError, match="liser teacher speech fit") as info:
        SpeechTeacher.load(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value)
    with pytest.raises(TeacherError, match="fold0, fold1"):
        SpeechTeacher.load(out)  # the per-fold parent, not a teacher
    (tmp_path / "empty").mkdir()
    with pytest.raises(TeacherError, match="teacher.json not found"):
        SpeechTeacher.load(tmp_path / "empty")
    # altered weights are caught by the checkpoint hash
    copy = tmp_path / "copy"
    copy.mkdir()
    for f in (out / "fold0").iterdir():
        copy.joinpath(f.name).write_bytes(f.read_bytes())
    weights = copy / "adapter_model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(8)
    weights.write_bytes(bytes(data))
    with pytest.raises(TeacherError, match="checkpoint hash"):
        SpeechTeacher.load(copy)


# ---------------------------------------------------------------------------- learning
def test_tiny_synth_teacher_learns(corpus, folds, tmp_path):
    """The slowest speech test: fit fold 0's teacher on the shipped tiny-synth backbone (its
    emotion head adopted) for four epochs with the defaults (0.5 s speech crops, class-weighted)
    and check it beats chance (1/8) on its held-out 20 %, averaged over the clips' speech
    segments as the trainer uses it."""
    cfg = make_config(backbone=speech.TINY_SYNTH, epochs=4, threads=1)
    record = fit_speech_teacher(corpus, folds[0].train, cfg, tmp_path / "fold0", progress=False)
    assert record["backbone"] == "tiny-synth" and record["backbone_source"] == str(tiny_synth.SHIPPED)
    assert record["pretrained_head"] is True
    chance = 1 / len(corpus.classes)
    assert record["val_segment_uar"] > chance + 0.1, record
    teacher = SpeechTeacher.load(tmp_path / "fold0")  # re-resolves the keyword to the same weights
    assert teacher.meta["backbone_hash"] == record["backbone_hash"]
    # the kept epoch is the one whose speech segments, averaged per clip, did best on the 20 %,
    # and the saved checkpoint is that epoch's: its segment UAR re-measured matches the record
    seg = [h["val_segment_uar"] for h in record["history"]]
    assert record["selected_on"] == "segments" and record["best_epoch"] == 1 + seg.index(max(seg))
    rows = corpus.manifest.set_index("clip_id").loc[record["val_clips"]]
    clips = [load_audio(p) for p in rows["path"]]
    probs = teacher.predict_segments_batch(clips)
    calls = np.array([p[waves.speech_segments(w)].mean(0).argmax() for p, w in zip(probs, clips)])
    assert uar(rows["label_index"].to_numpy(), calls) == pytest.approx(record["val_segment_uar"])


def test_class_weights_balance_the_classes():
    labels = np.array([0] * 4 + [1] * 8 + [2] * 8)  # RAVDESS's shape: neutral has half the clips
    w = speech.class_weights(labels, 4).numpy()
    np.testing.assert_allclose(w[:3] * np.bincount(labels), w[0] * 4)  # each class weighs the same in all
    assert w[3] == 0 and w[labels].mean() == pytest.approx(1.0) and w[0] == pytest.approx(2 * w[1])  # 1 per clip on average
