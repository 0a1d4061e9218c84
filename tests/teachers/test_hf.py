"""A checkpoint's classification head: kept where it names the teacher's classes, by name where it
names more, fresh otherwise; and the shipped tiny-synth build carries its emotion head."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import HubertConfig, HubertForSequenceClassification, Wav2Vec2FeatureExtractor

from liser.constants import CREMAD_EMOTIONS, RAVDESS_EMOTIONS, SAMPLE_RATE
from liser.teachers import hubert, tiny_synth


@pytest.fixture(scope="module")
def headed(tmp_path_factory):
    """A tiny HuBERT checkpoint with a random 8-emotion head, labelled with RAVDESS's classes."""
    path = tmp_path_factory.mktemp("headed")
    config = HubertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, classifier_proj_size=32,
        num_labels=8, id2label=dict(enumerate(RAVDESS_EMOTIONS)), label2id={c: i for i, c in enumerate(RAVDESS_EMOTIONS)},
    )
    torch.manual_seed(0)
    model = HubertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.normal_()
        model.classifier.bias.normal_()
    model.save_pretrained(path)
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(path)
    return str(path), model


def test_a_head_for_the_same_classes_is_kept(headed):
    path, saved = headed
    model, info = hubert.load_backbone(path, RAVDESS_EMOTIONS)
    assert info.pretrained_head
    assert torch.equal(model.classifier.weight, saved.classifier.weight)
    assert torch.equal(model.projector.weight, saved.projector.weight)


def test_a_head_for_more_classes_gives_its_rows_by_name(headed):
    path, saved = headed
    model, info = hubert.load_backbone(path, CREMAD_EMOTIONS)
    assert info.pretrained_head and model.classifier.weight.shape[0] == len(CREMAD_EMOTIONS)
    for i, c in enumerate(CREMAD_EMOTIONS):
        j = RAVDESS_EMOTIONS.index(c)
        assert torch.equal(model.classifier.weight[i], saved.classifier.weight[j]), c
        assert model.classifier.bias[i] == saved.classifier.bias[j]
    # the same classes in another order are taken by name, not by position
    order = list(reversed(RAVDESS_EMOTIONS))
    model, info = hubert.load_backbone(path, order)
    assert info.pretrained_head and torch.equal(model.classifier.weight[0], saved.classifier.weight[7])


def test_a_head_for_other_classes_is_replaced(headed):
    path, saved = headed
    others = [f"class{i}" for i in range(8)]  # same shape, other meaning: the weights must not be reused
    model, info = hubert.load_backbone(path, others)
    assert not info.pretrained_head
    assert not torch.allclose(model.classifier.weight, saved.classifier.weight)
    assert model.classifier.weight.abs().max() < 1.0  # a fresh init (std 0.02), not the saved N(0, 1) draw


def test_the_shipped_tiny_synth_is_the_default_recipe_with_its_emotion_head():
    shipped = tiny_synth.shipped_backbone()
    assert shipped is not None, "liser/assets/tiny-synth is missing or stale: run python -m liser.teachers.tiny_synth"
    report = json.loads((shipped / "tiny_synth.json").read_text())
    assert report["key"] == tiny_synth.DEFAULT_TINY_SYNTH.key() and report["version"] == tiny_synth._TINY_SYNTH_VERSION
    config = json.loads((shipped / "config.json").read_text())
    assert [config["id2label"][str(i)] for i in range(8)] == list(RAVDESS_EMOTIONS)
    assert tiny_synth.tiny_synth_built()
    _, info = hubert.load_backbone(tiny_synth.TINY_SYNTH, RAVDESS_EMOTIONS)
    assert info.pretrained_head and info.source == str(shipped)


def test_pretraining_labels_only_the_crops_that_hold_speech():
    k = len(RAVDESS_EMOTIONS)
    logits = torch.zeros(2, k + len(tiny_synth.PROSODY_TARGETS))
    labels, prosody, heard = torch.tensor([0, 1]), torch.zeros(2, len(tiny_synth.PROSODY_TARGETS)), torch.tensor([1.0, 0.0])
    base = tiny_synth._emotion_and_prosody_loss(logits, labels, prosody, heard, 1.0)
    noisy = logits.clone()
    noisy[1] = 5.0  # anything on the room-noise crop
    assert tiny_synth._emotion_and_prosody_loss(noisy, labels, prosody, heard, 1.0) == base
    assert base == pytest.approx(torch.log(torch.tensor(float(k))).item())  # uniform on the heard crop


def test_a_bare_backbone_naming_the_classes_still_gets_a_fresh_head(tmp_path, headed):
    """Labels in the config but no head in the weights: nothing to adopt (no random rows passed off as one)."""
    _, saved = headed
    saved.hubert.save_pretrained(tmp_path)  # the backbone alone; its config still lists the 8 emotions
    Wav2Vec2FeatureExtractor(sampling_rate=SAMPLE_RATE, do_normalize=True).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["id2label"]["0"] == RAVDESS_EMOTIONS[0]
    _, info = hubert.load_backbone(str(tmp_path), CREMAD_EMOTIONS)
    assert not info.pretrained_head
