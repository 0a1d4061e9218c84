"""Upstream embeddings (NSL section 3.2): the speech teacher's pooled projector output, checked
against the model's own forward pass on a tiny random HuBERT."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from liser.constants import SAMPLE_RATE
from liser.teachers.speech import SpeechTeacher, build_model, predict_clips, torch_threads
from liser.teachers.waves import normalize_wave
from liser.teachers.upstream import clip_embedding

CLASSES = ("angry", "calm", "happy")
PROJ = 24  # classifier_proj_size: the embedding's width


@pytest.fixture(scope="module")
def peft_model(tmp_path_factory):
    """A LoRA-wrapped tiny HuBERT classifier, its LoRA moved off zero so merging matters."""
    path = tmp_path_factory.mktemp("tiny-hubert")
    torch.manual_seed(0)
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=PROJ, layerdrop=0.0,
    )
    HubertModel(config).save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(path)
    model = build_model(str(path), CLASSES)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return model.eval()


def _teacher(model, normalize: bool = True) -> SpeechTeacher:
    return SpeechTeacher(model, {"classes": list(CLASSES), "checkpoint_hash": "test", "normalize": normalize}, threads=1)


def _waves(seconds=(0.6, 1.3)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [(0.1 * rng.normal(size=round(s * SAMPLE_RATE)) + 0.05).astype(np.float32) for s in seconds]


def test_embeddings_are_what_the_classifier_reads(peft_model):
    waves = _waves()
    emb, logits = clip_embedding(_teacher(peft_model), waves)
    assert emb.shape == (2, PROJ) and logits.shape == (2, len(CLASSES))
    assert emb.dtype == np.float32 and logits.dtype == np.float32
    base = peft_model.get_base_model()
    with torch.no_grad(), torch_threads(1):
        for i, wave in enumerate(waves):
            x = torch.from_numpy(normalize_wave(wave))[None]
            own = peft_model(input_values=x).logits[0].numpy()
            np.testing.assert_allclose(logits[i], own, atol=1e-5)
            # the projector's output averaged over time, recomputed by hand
            hidden = base.hubert(x).last_hidden_state
            np.testing.assert_allclose(emb[i], base.projector(hidden).mean(1)[0].numpy(), atol=1e-5)
            np.testing.assert_allclose(base.classifier(torch.from_numpy(emb[i])).numpy(), own, atol=1e-5)
        np.testing.assert_allclose(logits, predict_clips(peft_model, waves, normalize=True), atol=1e-5)


def test_the_teachers_normalization_is_used(peft_model):
    # HuBERT's group norm hides most of the input scale; a quiet wave on a large offset does not
    waves = [(0.01 * np.random.default_rng(1).normal(size=9600) + 0.5).astype(np.float32)]
    raw_emb, raw = clip_embedding(_teacher(peft_model, normalize=False), waves)
    with torch.no_grad():
        own = peft_model(input_values=torch.from_numpy(waves[0])[None]).logits[0].numpy()
    np.testing.assert_allclose(raw[0], own, atol=1e-6)
    normalized_emb, normalized = clip_embedding(_teacher(peft_model), waves)
    assert np.abs(raw_emb - normalized_emb).max() > 1e-3 and np.abs(raw - normalized).max() > 1e-5


def test_a_merged_teacher_gives_the_same_embeddings(peft_model):
    """SpeechTeacher.load merges the adapter into a plain HubertForSequenceClassification."""
    waves = _waves()
    merged = copy.deepcopy(peft_model).merge_and_unload()
    assert not hasattr(merged, "get_base_model")
    for a, b in zip(clip_embedding(_teacher(peft_model), waves), clip_embedding(_teacher(merged), waves)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_eval_mode_is_used_and_the_mode_restored(peft_model):
    waves = _waves((0.6,))
    teacher = _teacher(peft_model)
    peft_model.train()  # dropout on: a forward in this mode would be random
    try:
        first = clip_embedding(teacher, waves)
        assert peft_model.training
        second = clip_embedding(teacher, waves)
    finally:
        peft_model.eval()
    np.testing.assert_array_equal(first[0], second[0])


def test_empty_and_bad_inputs(peft_model):
    emb, logits = clip_embedding(_teacher(peft_model), [])
    assert emb.shape == (0, PROJ) and logits.shape == (0, len(CLASSES))
    good = _waves((0.6,))[0]
    for bad, message in (
        (np.zeros((2, 400), np.float32), "clip 1: expected a mono waveform"),
        (np.full(800, np.nan, np.float32), "clip 1: waveform holds NaN"),
        (np.zeros(300, np.float32), "clip 1: 300 samples is shorter than one HuBERT frame \\(400 samples\\)"),
    ):
        with pytest.raises(ValueError, match=message):
            clip_embedding(_teacher(peft_model), [good, bad])
    with pytest.raises(TypeError, match="no projector and classifier"):
        clip_embedding(_teacher(torch.nn.Linear(2, 2)), [good])


# ---------------------------------------------------------------------------- the CLI, end to end
def test_upstream_cli_fits_on_the_source_embeds_the_target_once_and_refuses_the_target_itself(synth_root, tmp_path, monkeypatch):
    """`liser teacher upstream`: fit on the RAVDESS-layout source, embed the CREMA-D-layout target into
    upstream.npz; a second run does no teacher work; the target corpus cannot be its own source."""
    from click.testing import CliRunner

    from liser.cli import main
    from liser.corpora import load_corpus
    from liser.targets import ClipOutputs

    monkeypatch.setenv("LISER_CACHE", str(tmp_path / "cache"))
    backbone = tmp_path / "tiny-hubert"
    torch.manual_seed(0)
    config = HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
                          num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=24, layerdrop=0.0)
    HubertModel(config).save_pretrained(backbone)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(backbone)
    args = ["teacher", "upstream", "--source", f"ravdess:{synth_root / 'ravdess'}", "--target", f"cremad:{synth_root / 'cremad'}",
            "--backbone", str(backbone), "--epochs", "1", "--set", "crop_seconds=1.0", "--set", "threads=1", "--out", str(tmp_path / "nsl"), "-q"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    target = load_corpus(f"cremad:{synth_root / 'cremad'}")
    out = ClipOutputs.load(tmp_path / "nsl" / "upstream.npz")
    assert out.kind == "upstream" and set(out.clip_ids) == set(target.manifest["clip_id"]) and out.embeddings.shape[1] == 24
    assert out.meta["source_corpus"] == "ravdess" and out.meta["target_corpus"] == "cremad" and "train_speakers" not in out.meta
    assert f"ran on {len(target.manifest)}" in first.output

    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and "reusing" in again.output and "ran on 0," in again.output  # no fit, no teacher work
    np.testing.assert_array_equal(ClipOutputs.load(tmp_path / "nsl" / "upstream.npz").embeddings, out.embeddings)

    same = CliRunner().invoke(main, ["teacher", "upstream", "--teacher", str(tmp_path / "nsl" / "upstream-teacher"),
                                     "--target", f"ravdess:{synth_root / 'ravdess'}", "--out", str(tmp_path / "leak"), "-q"])
    assert same.exit_code != 0 and "the target corpus itself" in same.output
