"""The linguistic teacher (EmoDistill): tiny-text fits on the synthetic transcribed corpus,
writes per-fold ClipOutputs, resumes, skips untranscribed clips and refuses what it cannot use."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from liser.corpora import load_corpus
from liser.folds import Fold, folds_for
from liser.teachers.linguistic import (
    SUMMARY_FILE,
    TEACHER_FILE,
    LinguisticTeacherConfig,
    build_vocab,
    fit_linguistic_teachers,
    make_config,
    predict_texts,
)
from liser.targets import ClipOutputs
from liser.teachers.speech import TeacherError

CFG = LinguisticTeacherConfig(threads=1)  # defaults: tiny-text, 20 epochs
QUICK = LinguisticTeacherConfig(threads=1, epochs=2)
SILENT = {"progress": False, "log": lambda *_: None}


@pytest.fixture(scope="module")
def transcribed(synth_root):
    return load_corpus(f"table:{synth_root / 'transcribed.csv'}")


@pytest.fixture(scope="module")
def fitted(transcribed, tmp_path_factory):
    out = tmp_path_factory.mktemp("linguistic")
    folds = folds_for(transcribed.manifest, 5, seed=0)
    t0 = time.perf_counter()
    summary = fit_linguistic_teachers(transcribed, folds, [0, 1], CFG, out, **SILENT)
    return out, folds, summary, time.perf_counter() - t0


def test_writes_per_fold_outputs(fitted, transcribed) -> None:
    out, folds, summary, _ = fitted
    assert [e["fold"] for e in summary["folds"]] == [0, 1]
    assert json.loads((out / SUMMARY_FILE).read_text()) == summary
    for k in (0, 1):
        fold = folds[k]
        outputs = ClipOutputs.load(out / f"linguistic-fold{k}.npz")
        assert outputs.kind == "linguistic" and outputs.classes == transcribed.classes
        assert outputs.clip_ids == transcribed.manifest["clip_id"].tolist()  # every clip has a transcript
        assert outputs.logits.shape == (300, 8) and outputs.embeddings.shape == (300, CFG.tiny_hidden_size)
        assert outputs.meta["train_speakers"] == sorted(fold.train)
        assert not set(outputs.meta["train_speakers"]) & (set(fold.val) | set(fold.test))
        assert outputs.meta["n_skipped"] == 0
        record = json.loads((out / f"fold{k}" / TEACHER_FILE).read_text())
        assert record["checkpoint_hash"] == outputs.meta["checkpoint_hash"]
        used = transcribed.manifest.set_index("clip_id").loc[record["fit_clips"] + record["val_clips"], "speaker"]
        assert set(used) == set(fold.train)
        assert (out / f"fold{k}" / "vocab.txt").exists()


def test_learns_from_informative_transcripts(fitted) -> None:
    _, _, summary, _ = fitted
    for entry in summary["folds"]:
        assert entry["val_uar"] > 0.3, entry  # chance is 1/8; ~70 % of transcripts carry the emotion


def test_embedding_is_pooled_cls_and_model_reloads(fitted, transcribed) -> None:
    out, _, _, _ = fitted
    outputs = ClipOutputs.load(out / "linguistic-fold0.npz")
    tok = AutoTokenizer.from_pretrained(out / "fold0")
    model = AutoModelForSequenceClassification.from_pretrained(out / "fold0").eval()
    assert model.config.id2label == dict(enumerate(transcribed.classes))
    row = transcribed.manifest.iloc[5]
    with torch.inference_mode():
        enc = tok([row["transcript"]], return_tensors="pt")
        pooled = model.bert(**enc).pooler_output[0].numpy()
        logits = model(**enc).logits[0].numpy()
    got_logits, got_emb = outputs.take([row["clip_id"]])
    np.testing.assert_allclose(got_emb[0], pooled, atol=1e-5)
    np.testing.assert_allclose(got_logits[0], logits, atol=1e-5)
    # the model runs once per distinct transcript
    seen: list[int] = []
    hook = model.bert.register_forward_hook(lambda _m, args, kwargs, out: seen.append(len(out.last_hidden_state)), with_kwargs=True)
    texts = transcribed.manifest["transcript"].iloc[:3].tolist()
    logits3, emb3 = predict_texts(model, tok, texts * 4)
    hook.remove()
    assert sum(seen) == 3 and logits3.shape == (12, 8) and emb3.shape == (12, CFG.tiny_hidden_size)
    np.testing.assert_array_equal(logits3[:3], logits3[9:])


def test_second_call_skips(fitted, transcribed) -> None:
    out, folds, summary, first_seconds = fitted
    before = (out / "linguistic-fold0.npz").stat().st_mtime_ns
    messages: list[str] = []
    t0 = time.perf_counter()
    again = fit_linguistic_teachers(transcribed, folds, [0, 1], CFG, out, progress=False, log=messages.append)
    assert time.perf_counter() - t0 < first_seconds / 2
    assert (out / "linguistic-fold0.npz").stat().st_mtime_ns == before
    assert sum("skipped" in m for m in messages) == 2
    assert again["folds"] == summary["folds"]


def test_local_checkpoint_folder_as_backbone(fitted, transcribed, tmp_path) -> None:
    """A local folder loads through AutoTokenizer + AutoModelForSequenceClassification (the hub path)."""
    out, folds, _, _ = fitted
    cfg = LinguisticTeacherConfig(backbone=str(out / "fold0"), epochs=1, threads=1)
    summary = fit_linguistic_teachers(transcribed, folds, [2], cfg, tmp_path, **SILENT)
    assert summary["backbone"] == str(out / "fold0")
    outputs = ClipOutputs.load(tmp_path / "linguistic-fold2.npz")
    assert outputs.logits.shape == (300, 8) and outputs.embeddings.shape == (300, CFG.tiny_hidden_size)
    assert not (tmp_path / "fold2" / "vocab.txt").exists()  # the checkpoint's own tokenizer


def test_deterministic(transcribed, tmp_path) -> None:
    folds = folds_for(transcribed.manifest, 5, seed=0)
    a = fit_linguistic_teachers(transcribed, folds, [2], QUICK, tmp_path / "a", **SILENT)
    b = fit_linguistic_teachers(transcribed, folds, [2], QUICK, tmp_path / "b", **SILENT)
    assert a["folds"][0]["checkpoint_hash"] == b["folds"][0]["checkpoint_hash"]
    la, lb = ClipOutputs.load(tmp_path / "a" / "linguistic-fold2.npz"), ClipOutputs.load(tmp_path / "b" / "linguistic-fold2.npz")
    np.testing.assert_array_equal(la.logits, lb.logits)


def test_untranscribed_clips_are_skipped_and_counted(synth_root, tmp_path) -> None:
    table = pd.read_csv(synth_root / "transcribed.csv")
    table["path"] = [str(synth_root / p) for p in table["path"]]
    blank = table.index[::50]  # 6 clips, across speakers
    table.loc[blank, "transcript"] = ""
    table.to_csv(tmp_path / "corpus.csv", index=False)
    corpus = load_corpus(f"table:{tmp_path}")
    folds = folds_for(corpus.manifest, 5, seed=0)
    fit_linguistic_teachers(corpus, folds, [0], QUICK, tmp_path / "out", **SILENT)
    outputs = ClipOutputs.load(tmp_path / "out" / "linguistic-fold0.npz")
    missing = {Path(p).with_suffix("").as_posix() for p in table.loc[blank, "path"]}
    assert len(outputs) == 300 - 6 and not missing & set(outputs.clip_ids)
    assert outputs.meta["n_skipped"] == 6
    assert {s["reason"] for s in outputs.meta["skipped"]} == {"no transcript"}
    record = json.loads((tmp_path / "out" / "fold0" / TEACHER_FILE).read_text())
    assert not missing & set(record["fit_clips"] + record["val_clips"])


def test_corpus_without_transcripts_is_refused(synth_root, tmp_path) -> None:
    table = pd.read_csv(synth_root / "transcribed.csv").drop(columns="transcript")
    table["path"] = [str(synth_root / p) for p in table["path"]]
    table.to_csv(tmp_path / "corpus.csv", index=False)
    corpus = load_corpus(f"table:{tmp_path}")
    with pytest.raises(TeacherError, match="has no transcripts.*iemocap"):
        fit_linguistic_teachers(corpus, folds_for(corpus.manifest, 5, 0), [0], QUICK, tmp_path / "out", **SILENT)
    assert not (tmp_path / "out").exists()


def test_leaky_fold_is_refused(transcribed, tmp_path) -> None:
    fold = Fold(0, ("01", "02", "03"), ("03",), ("04", "05"))
    with pytest.raises(TeacherError, match="leakage"):
        fit_linguistic_teachers(transcribed, [fold], None, QUICK, tmp_path, **SILENT)


def test_uncached_hub_backbone_fails_fast(transcribed, tmp_path) -> None:
    cfg = LinguisticTeacherConfig(backbone="bert-base-uncased", epochs=1)
    t0 = time.perf_counter()
    with pytest.raises(TeacherError, match=r"(?s)'bert-base-uncased' is not in the local Hugging Face cache.*tiny-text"):
        fit_linguistic_teachers(transcribed, folds_for(transcribed.manifest, 5, 0), [0], cfg, tmp_path, **SILENT)
    assert time.perf_counter() - t0 < 10
    with pytest.raises(TeacherError, match="not found"):
        missing = cfg.model_copy(update={"backbone": str(tmp_path / "nope")})
        fit_linguistic_teachers(transcribed, folds_for(transcribed.manifest, 5, 0), [0], missing, tmp_path, **SILENT)


def test_config_errors_name_the_field() -> None:
    with pytest.raises(TeacherError, match="tiny_heads"):
        make_config(tiny_hidden_size=64, tiny_heads=3)
    with pytest.raises(TeacherError, match="epochs"):
        make_config(epochs=0)
    assert build_vocab(["Wow, so GREAT!"])[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    assert set(build_vocab(["Wow, so GREAT!"])[5:]) == {"wow", ",", "so", "great", "!"}


def test_ravdess_statements_leave_the_teacher_at_chance(synth_root, tmp_path) -> None:
    """RAVDESS's two statements carry no emotion: the honest result is chance (1/8)."""
    corpus = load_corpus(f"ravdess:{synth_root / 'ravdess'}")
    summary = fit_linguistic_teachers(corpus, folds_for(corpus.manifest, 5, 0), [0], CFG, tmp_path, **SILENT)
    assert summary["folds"][0]["val_uar"] < 0.25
    outputs = ClipOutputs.load(tmp_path / "linguistic-fold0.npz")
    assert outputs.meta["distinct_transcripts"] == 2
    assert len(np.unique(outputs.logits.round(5), axis=0)) == 2
