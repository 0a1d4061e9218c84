"""EmoDistill's linguistic teacher (section 3, 4.2): a BERT-family text encoder fine-tuned for SER.

What it supports:

* backbones: a Hugging Face hub id (the paper uses ``bert-base-uncased``, section 4.2) or a
  local checkpoint folder, loaded offline-first with ``AutoTokenizer`` +
  ``AutoModelForSequenceClassification``; or ``"tiny-text"``, a small randomly initialised
  BERT (:class:`~transformers.BertConfig`) whose word-level vocabulary is built from the
  fold's fit transcripts only, for tests and machines without the weights.
* fine-tuning: the whole network (the paper's "supervised fine-tuning"), AdamW with a
  cosine schedule after a linear warm-up, on 80 % of the fold's training clips that have a
  transcript; the epoch with the best UAR on the other 20 % is kept.
  :func:`fit_linguistic_teachers` fits one teacher per fold from that fold's training
  speakers only and refuses any clip of its validation or test speakers.
* outputs: per fold, ``linguistic-fold{k}.npz`` (:class:`~liser.targets.ClipOutputs`,
  kind ``"linguistic"``) with the logits (before the softmax: the student applies the
  temperature, section 3) and the embedding z_L, the input of the classification layer
  (BERT's pooled [CLS] output, ``[N, hidden]``), for every clip of the corpus with a
  transcript. Clips without one are listed in the file's ``meta["skipped"]``; the trainer
  masks the linguistic terms for them. The model runs once per distinct transcript
  (RAVDESS says one of two statements in all its 1440 clips).

Layout of ``out_dir``::

    fold0/                   save_pretrained of tokenizer and model, teacher.json, vocab.txt (tiny-text)
    linguistic-fold0.npz     ClipOutputs for every transcribed clip of the corpus
    linguistic.json          one entry per fold fitted so far (val UAR/WAR, speakers, hashes)

Usage (Python; the CLI wraps it)::

    fit_linguistic_teachers(load_corpus("table:synth/transcribed.csv"), folds, out_dir="teachers/linguistic")
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from tokenizers.normalizers import BertNormalizer
from tokenizers.pre_tokenizers import BertPreTokenizer
from tqdm.auto import tqdm
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizerFast,
    PretrainedConfig,
    PreTrainedModel,
    get_cosine_schedule_with_warmup,
)

import liser
from liser.corpora.manifest import Corpus
from liser.evaluate import uar, war
from liser.folds import Fold
from liser.targets import ClipOutputs
from liser.storage import write_json
from liser.teachers.fitting import TeacherError, best_epoch_loop, fit_folds, split_fit_val, torch_threads, training_clips
from liser.teachers.hf import looks_like_path, not_cached_message, quiet_transformers

BERT_BASE = "bert-base-uncased"  # the paper's backbone (section 4.2)
TINY_TEXT = "tiny-text"  # the offline stand-in, built per fold from its fit transcripts
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
TEACHER_FILE = "teacher.json"
SUMMARY_FILE = "linguistic.json"
VOCAB_FILE = "vocab.txt"
PRETRAINED_LR = 1e-4  # the paper's base LR with AdamW (section 4.2)
TINY_LR = 3e-3  # a randomly initialised network needs larger steps (best of 1e-3, 3e-3 on the synthetic corpus)
TRANSCRIPT_LAYOUTS = (
    "iemocap (its transcription files), ravdess and cremad (the statement / sentence the file name "
    "codes; they carry no emotion), and table (an optional 'transcript' column; `liser synth` writes "
    "transcribed.csv, whose transcripts do)"
)


class LinguisticTeacherConfig(BaseModel):
    """How a linguistic teacher is fine-tuned; ``tiny_*`` shape the ``tiny-text`` backbone only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backbone: str = Field(TINY_TEXT, description=f"'{TINY_TEXT}', a hub id such as {BERT_BASE}, or a local checkpoint folder")
    epochs: int = Field(20, ge=1, description="epochs; the best on the 20 % is kept")
    lr: float | None = Field(None, gt=0, description=f"AdamW learning rate (default {PRETRAINED_LR:g} pretrained, {TINY_LR:g} tiny-text)")
    warmup_fraction: float = Field(0.1, ge=0, lt=1, description="share of the steps with a linear warm-up, then cosine decay")
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(16, ge=1)
    eval_batch_size: int = Field(128, ge=1, description="distinct transcripts per forward pass when predicting")
    max_length: int = Field(64, ge=4, description="tokens per transcript, [CLS] and [SEP] included; longer ones are cut")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="class-stratified share of the training clips held out")
    threads: int | None = Field(None, ge=1, description="torch threads while fitting (default: torch's)")
    seed: int = 0
    tiny_hidden_size: int = Field(64, ge=4)
    tiny_layers: int = Field(2, ge=1)
    tiny_heads: int = Field(2, ge=1)
    tiny_intermediate_size: int = Field(128, ge=4)

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> "LinguisticTeacherConfig":
        if self.tiny_hidden_size % self.tiny_heads:
            raise TeacherError(f"tiny_hidden_size {self.tiny_hidden_size} is not a multiple of tiny_heads {self.tiny_heads}")
        return self

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else TINY_LR if self.backbone == TINY_TEXT else PRETRAINED_LR


def make_config(**fields) -> LinguisticTeacherConfig:
    """A :class:`LinguisticTeacherConfig` whose validation errors are TeacherErrors naming the field."""
    try:
        return LinguisticTeacherConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        raise TeacherError(f"invalid linguistic teacher configuration: {problems}") from None


# ------------------------------------------------------------------------------- transcripts
def transcripts_of(manifest: pd.DataFrame) -> pd.Series:
    """Each clip's transcript stripped, or None where there is none (missing column, NaN, blank)."""
    if "transcript" not in manifest:
        return pd.Series([None] * len(manifest), index=manifest.index, dtype=object)
    return manifest["transcript"].map(lambda t: t.strip() or None if isinstance(t, str) else None)


def _transcripts_hash(clip_ids: Sequence[str], texts: Sequence[str]) -> str:
    digest = hashlib.sha1()
    for cid, text in zip(clip_ids, texts):
        digest.update(f"{cid}\t{text}\n".encode())
    return digest.hexdigest()[:12]


_NORMALIZER = BertNormalizer(lowercase=True)  # what BERT's uncased tokenizer does before splitting
_PRE_TOKENIZER = BertPreTokenizer()


def words(text: str) -> list[str]:
    """The words BERT's uncased tokenizer sees: lower-cased, split at spaces and punctuation."""
    return [w for w, _ in _PRE_TOKENIZER.pre_tokenize_str(_NORMALIZER.normalize_str(text))]


def build_vocab(texts: Sequence[str]) -> list[str]:
    """Word-level vocabulary: the special tokens, then every word of ``texts``, sorted."""
    return list(SPECIAL_TOKENS) + sorted({w for t in texts for w in words(t)} - set(SPECIAL_TOKENS))


# ------------------------------------------------------------------------------- backbones
def _not_cached_message(backbone: str, err: Exception) -> str:
    return not_cached_message("text backbone", backbone, err, f"backbone {TINY_TEXT!r} for the small offline text encoder")


def tiny_text_model(fit_texts: Sequence[str], classes: Sequence[str], cfg: LinguisticTeacherConfig, vocab_dir: Path):
    """A random-init BERT classifier and a word-level tokenizer over ``fit_texts``' words.

    The vocabulary is written to ``vocab_dir/vocab.txt``; words it lacks become [UNK]
    (a WordPiece vocabulary without ``##`` pieces never splits a word).
    """
    vocab = build_vocab(fit_texts)
    vocab_dir.mkdir(parents=True, exist_ok=True)
    vocab_path = vocab_dir / VOCAB_FILE
    vocab_path.write_text("\n".join(vocab) + "\n")
    tokenizer = BertTokenizerFast(vocab=str(vocab_path), do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=cfg.tiny_hidden_size,
        num_hidden_layers=cfg.tiny_layers,
        num_attention_heads=cfg.tiny_heads,
        intermediate_size=cfg.tiny_intermediate_size,
        max_position_embeddings=cfg.max_length,
        num_labels=len(classes),
        id2label=dict(enumerate(classes)),
        label2id={c: i for i, c in enumerate(classes)},
    )
    return tokenizer, BertForSequenceClassification(config)


def load_text_backbone(backbone: str, classes: Sequence[str]):
    """Tokenizer and ``AutoModelForSequenceClassification`` with a fresh K-class head, offline-first.

    Raises:
        TeacherError: not cached (offline), missing folder, or weights that do not load.
    """
    if looks_like_path(backbone):
        path = Path(backbone).expanduser()
        if not (path / "config.json").exists():
            raise TeacherError(f"text backbone folder {path} not found or not a Hugging Face checkpoint (no config.json)")
        source = str(path)
    else:
        source = backbone
    try:
        PretrainedConfig.get_config_dict(source)  # fails at once when offline and not cached
        with quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(source)
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=len(classes),
                id2label=dict(enumerate(classes)),
                label2id={c: i for i, c in enumerate(classes)},
                ignore_mismatched_sizes=True,  # a head fitted for other classes is replaced
                dtype=torch.float32,
            )
    except OSError as exc:
        raise TeacherError(_not_cached_message(backbone, exc)) from None
    except (RuntimeError, ValueError) as exc:
        raise TeacherError(f"text backbone {backbone!r} does not load as a sequence classifier ({exc})") from None
    return tokenizer, model


def classification_layer(model: PreTrainedModel) -> torch.nn.Linear:
    """The last linear layer with one output per class: its input is the embedding z_L."""
    k = model.config.num_labels
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == k]
    if not layers:
        raise TeacherError(f"{type(model).__name__} has no linear layer with {k} outputs to read the embedding from")
    return layers[-1]


# ------------------------------------------------------------------------------- model runs
def encode(tokenizer, texts: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Token ids and masks [N, L] (L = longest, at most ``max_length``)."""
    enc = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_length, return_tensors="pt")
    return {k: v for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}


def _batch(enc: dict[str, torch.Tensor], idx, device) -> dict[str, torch.Tensor]:
    idx = torch.as_tensor(np.asarray(idx), dtype=torch.long)
    length = int(enc["attention_mask"][idx].sum(1).max())  # trim padding the batch does not need
    return {k: v[idx, :length].to(device) for k, v in enc.items()}


@torch.inference_mode()
def predict_encoded(
    model: PreTrainedModel, enc: dict[str, torch.Tensor], batch_size: int = 128, device="cpu", progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, K] and embeddings z_L [N, D] of encoded texts."""
    model.eval()
    captured: list[torch.Tensor] = []
    handle = classification_layer(model).register_forward_pre_hook(lambda _m, args: captured.append(args[0].detach()))
    logits = []
    try:
        n = len(enc["input_ids"])
        for lo in tqdm(range(0, n, batch_size), desc="linguistic teacher", unit="batch", disable=not progress, leave=False):
            logits.append(model(**_batch(enc, range(lo, min(n, lo + batch_size)), device)).logits.float().cpu())
    finally:
        handle.remove()
    if not logits:
        return np.zeros((0, model.config.num_labels), np.float32), np.zeros((0, 0), np.float32)
    emb = torch.cat([c.float().cpu().reshape(len(c), -1) for c in captured])
    return torch.cat(logits).numpy(), emb.numpy()


def predict_texts(
    model: PreTrainedModel,
    tokenizer,
    texts: Sequence[str],
    max_length: int = 64,
    batch_size: int = 128,
    device="cpu",
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Logits [N, K] and embeddings [N, D] of ``texts``, running the model once per distinct text."""
    distinct = list(dict.fromkeys(texts))
    if not distinct:
        return np.zeros((0, model.config.num_labels), np.float32), np.zeros((0, 0), np.float32)
    logits, emb = predict_encoded(model, encode(tokenizer, distinct, max_length), batch_size, device, progress)
    where = {t: i for i, t in enumerate(distinct)}
    rows = [where[t] for t in texts]
    return logits[rows], emb[rows]


def _checkpoint_hash(fold_dir: Path) -> str:
    """sha1 of every saved file of the teacher (weights, config, tokenizer), by name."""
    digest = hashlib.sha1()
    for path in sorted(p for p in fold_dir.iterdir() if p.is_file() and p.name != TEACHER_FILE):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------- fitting
def fit_linguistic_teacher(
    corpus: Corpus,
    train_speakers: Sequence[str],
    cfg: LinguisticTeacherConfig | None = None,
    out_dir: str | Path = "linguistic-teacher",
    *,
    forbidden_speakers: Sequence[str] = (),
    device: torch.device | str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[dict, PreTrainedModel, object]:
    """Fine-tune a text classifier on the transcripts of ``train_speakers``' clips; save it to ``out_dir``.

    Returns (the teacher.json record, the model at its best epoch, its tokenizer).

    Raises:
        TeacherError: unlabeled corpus, no transcripts, unknown or forbidden speakers, too few clips.
    """
    cfg = cfg or LinguisticTeacherConfig()
    with torch_threads(cfg.threads):
        return _fit(corpus, train_speakers, cfg, Path(out_dir), tuple(map(str, forbidden_speakers)), device, progress, log)


def _check_corpus(corpus: Corpus) -> pd.Series:
    if not corpus.labeled:
        raise TeacherError(f"corpus {corpus.name} at {corpus.root} is unlabeled; a linguistic teacher is fitted on labeled clips")
    texts = transcripts_of(corpus.manifest)
    if texts.isna().all():
        raise TeacherError(
            f"corpus {corpus.name} at {corpus.root} has no transcripts, and the linguistic teacher reads what is said. "
            f"Layouts that carry transcripts: {TRANSCRIPT_LAYOUTS}."
        )
    return texts


def _fit(corpus, train_speakers, cfg, out_dir: Path, forbidden_speakers, device, progress, log):
    texts = _check_corpus(corpus)
    train, table = training_clips(corpus, train_speakers, forbidden_speakers, "linguistic teacher", usable=texts.notna())
    table_texts = transcripts_of(table).tolist()
    labels = table["label_index"].to_numpy(int)
    fit_idx, val_idx = split_fit_val(labels, cfg.val_fraction, cfg.seed)
    if not len(fit_idx) or not len(val_idx):
        raise TeacherError(f"{len(table)} transcribed clips of speakers {list(train)} cannot be split into fit and validation parts")

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TEACHER_FILE).unlink(missing_ok=True)  # a folder without teacher.json is an unfinished fit
    (out_dir / VOCAB_FILE).unlink(missing_ok=True)  # a tiny-text vocabulary left by an earlier fit
    torch.manual_seed(cfg.seed)  # tiny-text weights, a pretrained model's fresh head, dropout
    if cfg.backbone == TINY_TEXT:
        tokenizer, model = tiny_text_model([table_texts[i] for i in fit_idx], corpus.classes, cfg, out_dir)
    else:
        tokenizer, model = load_text_backbone(cfg.backbone, corpus.classes)
    model.to(device)

    distinct = list(dict.fromkeys(table_texts))  # each distinct transcript is encoded once
    where = {t: i for i, t in enumerate(distinct)}
    text_row = np.asarray([where[t] for t in table_texts])
    enc = encode(tokenizer, distinct, cfg.max_length)
    val_rows = np.unique(text_row[val_idx])
    val_enc = {k: v[val_rows] for k, v in enc.items()}
    val_pos = np.searchsorted(val_rows, text_row[val_idx])

    steps_per_epoch = math.ceil(len(fit_idx) / cfg.batch_size)
    total = cfg.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay)
    schedule = get_cosine_schedule_with_warmup(optimizer, round(cfg.warmup_fraction * total), total)
    n_params = sum(p.numel() for p in model.parameters())
    log(
        f"linguistic teacher {out_dir.name}: {cfg.backbone}, {n_params:,} parameters, "
        f"{len(fit_idx)} fit / {len(val_idx)} val clips, {len(distinct)} distinct transcripts"
    )
    rng = np.random.default_rng([cfg.seed, 12, 11])
    y_all = torch.from_numpy(labels.copy())
    bar = tqdm(total=total, desc=f"linguistic teacher {out_dir.name}", unit="step", disable=not progress)

    def train_epoch(epoch: int) -> dict:
        model.train()
        losses, order = [], rng.permutation(fit_idx)
        for lo in range(0, len(order), cfg.batch_size):
            idx = order[lo : lo + cfg.batch_size]
            logits = model(**_batch(enc, text_row[idx], device)).logits
            loss = torch.nn.functional.cross_entropy(logits, y_all[idx].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.item()))
            bar.update()
        return {"loss": float(np.mean(losses))}

    def validate() -> tuple[tuple[float, float], dict]:
        pred = predict_encoded(model, val_enc, cfg.eval_batch_size, device)[0][val_pos].argmax(1)
        score = (uar(labels[val_idx], pred), war(labels[val_idx], pred))
        return score, {"val_uar": score[0], "val_war": score[1]}

    best = best_epoch_loop(cfg.epochs, train_epoch, validate, lambda: {k: v.detach().clone() for k, v in model.state_dict().items()}, bar=bar)
    model.load_state_dict(best.state)
    model.eval()

    with quiet_transformers():
        model.save_pretrained(out_dir)
        tokenizer.save_pretrained(out_dir)
    record = {
        "kind": "linguistic",
        "backbone": cfg.backbone,
        "classes": list(corpus.classes),
        "corpus": corpus.name,
        "corpus_root": str(corpus.root),
        "manifest_hash": corpus.manifest_hash(),
        "transcripts_hash": _transcripts_hash(corpus.manifest["clip_id"], texts.fillna("")),
        "train_speakers": list(train),
        "n_fit": int(len(fit_idx)),
        "n_val": int(len(val_idx)),
        "fit_clips": table["clip_id"].iloc[fit_idx].tolist(),
        "val_clips": table["clip_id"].iloc[val_idx].tolist(),
        "untranscribed_train_clips": int((corpus.manifest["speaker"].isin(train) & texts.isna()).sum()),
        "distinct_transcripts": len(distinct),
        "vocab_size": int(model.config.vocab_size),
        "best_epoch": best.epoch,
        "val_uar": best.score[0],
        "val_war": best.score[1],
        "history": best.history,
        "config": cfg.model_dump(),
        "learning_rate": cfg.learning_rate,
        "parameters": n_params,
        "fit_seconds": best.seconds,
        "checkpoint_hash": _checkpoint_hash(out_dir),
        "liser_version": liser.__version__,
    }
    write_json(out_dir / TEACHER_FILE, record)
    return record, model, tokenizer


def corpus_outputs(
    corpus: Corpus, model: PreTrainedModel, tokenizer, cfg: LinguisticTeacherConfig, meta: dict, *, device="cpu", progress: bool = False
) -> ClipOutputs:
    """ClipOutputs (kind "linguistic") for every clip with a transcript; the others in ``meta["skipped"]``."""
    texts = transcripts_of(corpus.manifest)
    has = texts.notna().to_numpy()
    ids = corpus.manifest["clip_id"].to_numpy()
    with torch_threads(cfg.threads):
        logits, emb = predict_texts(model, tokenizer, texts[has].tolist(), cfg.max_length, cfg.eval_batch_size, device, progress)
    rows = {cid: (logits[i], emb[i]) for i, cid in enumerate(ids[has])}
    skipped = [{"clip_id": str(cid), "reason": "no transcript"} for cid in ids[~has]]
    meta = dict(meta, n_clips=int(has.sum()), n_skipped=len(skipped), skipped=skipped, distinct_transcripts=int(texts[has].nunique()))
    return ClipOutputs.from_rows("linguistic", corpus.classes, rows, meta)


class _LinguisticFolds:
    """The linguistic teacher's part of :func:`~liser.teachers.fitting.fit_folds`: a fold is its
    checkpoint folder plus its outputs over every transcribed clip, written right after the fit."""

    kind, summary_file = "linguistic", SUMMARY_FILE

    def __init__(self, corpus: Corpus, cfg: LinguisticTeacherConfig, out_dir: Path, device, progress: bool, log) -> None:
        self.corpus, self.cfg, self.out_dir, self.device, self.progress, self.log = corpus, cfg, out_dir, device, progress, log
        self.identity, self.header = {"backbone": cfg.backbone}, {"config": cfg.model_dump()}

    def _paths(self, k: int) -> tuple[Path, Path]:
        return self.out_dir / f"fold{k}", self.out_dir / f"linguistic-fold{k}.npz"

    def up_to_date(self, k: int, fold: Fold, train: list[str]) -> dict | None:
        fold_dir, npz = self._paths(k)
        try:
            record = json.loads((fold_dir / TEACHER_FILE).read_text())
            meta = ClipOutputs.load(npz).meta
        except (OSError, ValueError):
            return None
        texts = transcripts_of(self.corpus.manifest).fillna("")
        same = (
            record.get("config") == self.cfg.model_dump()
            and record.get("manifest_hash") == self.corpus.manifest_hash()
            and record.get("transcripts_hash") == _transcripts_hash(self.corpus.manifest["clip_id"], texts)
            and record.get("classes") == list(self.corpus.classes)
            and record.get("train_speakers") == train
            and meta.get("checkpoint_hash") == record.get("checkpoint_hash") == _checkpoint_hash(fold_dir)
        )
        return record if same else None

    def fit(self, k: int, fold: Fold, train: list[str], held_out: list[str]) -> dict:
        fold_dir, npz = self._paths(k)
        record, model, tokenizer = fit_linguistic_teacher(
            self.corpus, train, self.cfg, fold_dir, forbidden_speakers=held_out, device=self.device, progress=self.progress, log=self.log
        )
        meta = {
            "teacher": "linguistic", "fold": k, "backbone": self.cfg.backbone, "train_speakers": record["train_speakers"],
            "val_speakers": list(fold.val), "test_speakers": list(fold.test), "val_uar": record["val_uar"], "val_war": record["val_war"],
            "best_epoch": record["best_epoch"], "checkpoint_hash": record["checkpoint_hash"], "manifest_hash": record["manifest_hash"],
            "corpus": self.corpus.name,
        }
        corpus_outputs(self.corpus, model, tokenizer, self.cfg, meta, device=self.device, progress=self.progress).save(npz)
        return record

    def entry(self, k: int, record: dict) -> dict:
        fold_dir, npz = self._paths(k)
        return {"dir": fold_dir.name, "outputs": npz.name, "fit_seconds": record["fit_seconds"], "checkpoint_hash": record["checkpoint_hash"]}


def fit_linguistic_teachers(
    corpus: Corpus,
    folds: Sequence[Fold],
    fold_indices: Sequence[int] | None = None,
    cfg: LinguisticTeacherConfig | None = None,
    out_dir: str | Path = "linguistic-teachers",
    *,
    device: torch.device | str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """One linguistic teacher per fold, each fitted on ``fold.train`` speakers' transcripts only.

    Writes ``out_dir/fold{k}/`` and ``out_dir/linguistic-fold{k}.npz`` per fold and
    ``out_dir/linguistic.json`` (merged with folds fitted before), and returns the summary.
    A fold whose files exist with the same settings, manifest and transcripts is skipped.

    Raises:
        TeacherError: a corpus without labels or transcripts, a fold index that does not
            exist, or a fold whose training speakers overlap its validation or test speakers.
    """
    cfg = cfg or LinguisticTeacherConfig()
    _check_corpus(corpus)
    return fit_folds(_LinguisticFolds(corpus, cfg, Path(out_dir), device, progress, log), corpus, folds, fold_indices, out_dir, log=log)
