"""The training loop (sections 2.4, 3.5, 3.6): one fold in :func:`train_fold`, all in :func:`train`.

Per fold: take the fold's training speakers (a class-stratified ``labeled_fraction`` of
their clips), train with AdamW on mini-batches of N_l labeled + N_u unlabeled crops
under eq. 4/5, keep the epoch with the best validation UAR, and evaluate it once on
the test speakers. ``two-stage`` first distils on unlabeled crops only, then trains
on labels only. Knows nothing of Ray, Optuna or MLflow: studies pass ``on_epoch``.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from liser import __version__
from liser.configs import TrainConfig
from liser.data import CorpusData, LabeledSampler, UnlabeledSampler, stratified_subset, teachers_for_fold
from liser.evaluate import Metrics, evaluate
from liser.folds import Fold
from liser.methods import Method, build_model, make_method, rebuild_student
from liser.methods.liser import compute_loss  # noqa: F401  (re-exported: the loss of eq. 4/5)
from liser.model import Student, count_parameters
from liser.targets import TeacherOutputs

EpochCallback = Callable[[int, int, dict], None]  # (fold, epoch, metrics)


from liser.errors import TrainingDiverged  # noqa: E402  (re-exported)
from liser.storage import write_atomic, write_json  # noqa: E402


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto")
    return torch.device(name)


def set_threads() -> None:
    """Use every core for intra-op work; inter-op threads only contend on small CPUs."""
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass


@dataclass
class FoldResult:
    fold: int
    best_epoch: int
    val: Metrics
    test: Metrics
    history: list[dict]
    counts: dict
    seconds: float
    state_dict: dict = field(repr=False, default_factory=dict)
    model_config: dict = field(default_factory=dict)
    extras: dict = field(default_factory=dict)  # method-specific records, e.g. NSL's graph degrees

    def student(self) -> torch.nn.Module:
        """The best-validation student this result holds, rebuilt, in eval mode."""
        model = rebuild_student(self.model_config)
        model.load_state_dict(self.state_dict)
        return model.eval()

    def as_dict(self) -> dict:
        return {
            "fold": self.fold,
            "best_epoch": self.best_epoch,
            "val": self.val.as_dict(),
            "test": self.test.as_dict(),
            "history": self.history,
            "counts": self.counts,
            "seconds": round(self.seconds, 2),
            **self.extras,
        }


def _step(model, opt, method: Method, device, rng, labeled=None, unlabeled=None) -> dict:
    """One optimisation step; a NaN or infinite loss stops the fold with the terms that caused it."""
    model.train()
    terms = method.loss(model, device, labeled, unlabeled, rng)
    values = {k: v.item() for k, v in terms.items()}
    if not torch.isfinite(terms["loss"]):
        raise TrainingDiverged(f"loss became {values['loss']} (" + ", ".join(f"{k} {v:.4g}" for k, v in values.items() if k != "loss") + ")")
    opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    opt.step()
    return values


def _mean_rows(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


def steps_per_epoch(cfg: TrainConfig, n_labeled_batches: int, n_unlabeled: int) -> int:
    """Mini-batches per epoch: one pass over the labeled clips, or (``epoch_over: augmented``)
    over the training set augmented with the unlabeled clips (section 3.6), N_l + N_u per step,
    so an epoch also sees every unlabeled clip about once and the labeled batches repeat."""
    if cfg.epoch_over == "augmented" and cfg.uses_unlabeled and n_unlabeled:
        return max(n_labeled_batches, math.ceil(n_unlabeled / cfg.n_unlabeled))
    return n_labeled_batches


def _labeled_batches(lab: LabeledSampler, rng, steps: int):
    """``steps`` labeled batches: whole shuffled passes over the clips, the last one cut short."""
    done = 0
    while done < steps:
        for batch in lab.epoch(rng):
            yield batch
            done += 1
            if done == steps:
                return


def train_fold(
    cfg: TrainConfig,
    labeled: CorpusData,
    fold: Fold,
    unlabeled: CorpusData | None = None,
    teachers: dict[str, TeacherOutputs] | None = None,
    *,
    device: torch.device | str = "cpu",
    on_epoch: EpochCallback | None = None,
    progress: bool = True,
) -> FoldResult:
    """Train one student on one fold and evaluate its best-validation checkpoint on test."""
    from tqdm.auto import tqdm

    started = time.time()
    device = torch.device(device)
    rng = np.random.default_rng([cfg.seed, fold.index])
    torch.manual_seed(cfg.seed * 1000 + fold.index)
    table = labeled.table
    feats = labeled.features.features
    part = table["speaker"].map(fold.part_of).to_numpy()
    train_rows = table[part == "train"]
    train_rows = train_rows.iloc[stratified_subset(train_rows["label_index"].to_numpy(), cfg.labeled_fraction, rng)]
    val_rows, test_rows = table[part == "val"], table[part == "test"]
    n_classes = len(labeled.corpus.classes)

    # Only the teachers the configuration reads are needed; no-dstl never touches unlabeled data.
    cfg.check_inputs((teachers or {}).keys(), unlabeled is not None)
    needed = {k: teachers[k] for k in cfg.teacher_kinds}
    model = build_model(cfg, n_classes, needed).to(device)
    method = make_method(cfg, needed, train_rows["clip_id"].tolist(), feats, cache_dir=labeled.features.cache_dir)

    lab = LabeledSampler([feats[c] for c in train_rows["clip_id"]], train_rows["label_index"].to_numpy(), cfg.batch_size, train_rows["clip_id"].tolist())
    sampler = UnlabeledSampler(unlabeled, needed, cfg.n_unlabeled) if cfg.uses_unlabeled else None
    unl = sampler if cfg.schedule == "joint" else None
    val_x = [feats[c] for c in val_rows["clip_id"]]
    val_y = val_rows["label_index"].to_numpy()
    steps = steps_per_epoch(cfg, len(lab), len(sampler.ids) if sampler is not None else 0)

    def optimizer():
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    history: list[dict] = []
    if cfg.schedule == "two-stage":  # stage 1: distillation only, as many steps per epoch as stage 2
        opt = optimizer()
        for epoch in tqdm(range(1, (cfg.pretrain_epochs or cfg.epochs) + 1), desc=f"fold {fold.index} distil", disable=not progress, leave=False):
            rows = [_step(model, opt, method, device, rng, unlabeled=sampler.draw(rng)) for _ in range(steps)]
            history.append({"stage": "distil", "epoch": epoch, **_mean_rows(rows)})
            if on_epoch:
                on_epoch(fold.index, epoch, history[-1])

    opt = optimizer()  # joint training, or stage 2 of two-stage: a fresh optimiser
    best_uar, best_epoch, best_state, best_val = -1.0, 0, None, None
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"fold {fold.index}", disable=not progress, leave=False)
    for epoch in bar:
        t0 = time.time()
        rows = [_step(model, opt, method, device, rng, labeled=batch, unlabeled=unl.draw(rng) if unl else None) for batch in _labeled_batches(lab, rng, steps)]
        t1 = time.time()
        val = evaluate(model, val_x, val_y, n_classes, device)
        row = {"stage": "train", "epoch": epoch, **_mean_rows(rows), "val_uar": val.uar, "val_war": val.war}
        row.update(train_seconds=t1 - t0, eval_seconds=time.time() - t1)
        history.append(row)
        if val.uar > best_uar:
            best_uar, best_epoch, best_state, best_val = val.uar, epoch, copy.deepcopy(model.state_dict()), val
        bar.set_postfix(loss=f"{row['loss']:.3f}", val_uar=f"{val.uar:.3f}", best=f"{best_uar:.3f}@{best_epoch}")
        if on_epoch:
            on_epoch(fold.index, epoch, row)
        if cfg.patience and epoch - best_epoch >= cfg.patience:
            break

    model.load_state_dict(best_state)
    val = best_val  # measured on exactly these weights at the best epoch: no second pass
    test = evaluate(model, [feats[c] for c in test_rows["clip_id"]], test_rows["label_index"].to_numpy(), n_classes, device)
    counts = {"train": len(train_rows), "val": len(val_rows), "test": len(test_rows), "parameters": count_parameters(model), "steps_per_epoch": steps, **method.counts}
    if sampler is not None:
        counts.update(
            unlabeled=len(sampler.ids),
            unlabeled_dropped_no_teacher=sampler.dropped,
            **{f"unlabeled_missing_{k}": v for k, v in sampler.missing.items()},
            **{f"unlabeled_no_{k}_target": v for k, v in sampler.no_target.items()},
        )
    return FoldResult(fold.index, best_epoch, val, test, history, counts, time.time() - started, best_state, model.config, dict(method.extras))


# Counts of items a fold could not use; the console names every nonzero one (results.json keeps them all).
DROP_PREFIXES = ("unlabeled_dropped_", "unlabeled_missing_", "unlabeled_no_", "train_no_", "graph_no_")


def dropped(counts: dict) -> dict[str, float]:
    """The nonzero counts of items a fold dropped or masked, from its counts (or a fold run's)."""
    return {k: v for k, v in counts.items() if k.startswith(DROP_PREFIXES) and isinstance(v, (int, float)) and v}


def dropped_line(counts: dict) -> str | None:
    """One line naming what a fold dropped or masked, e.g. ``unlabeled_dropped_no_teacher 12``; None when nothing."""
    parts = [f"{k} {v}" for k, v in dropped(counts).items()]
    return "dropped or masked: " + ", ".join(parts) if parts else None


def summarize(folds: list[dict]) -> dict:
    """Mean and standard deviation (ddof=1) over folds of validation and test UAR/WAR."""
    out = {"n_folds": len(folds)}
    for part in ("val", "test"):
        for metric in ("uar", "war"):
            values = np.array([f[part][metric] for f in folds], dtype=float)
            out[f"{part}_{metric}_mean"] = float(values.mean()) if len(values) else math.nan
            out[f"{part}_{metric}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out


def save_checkpoint(path: Path, result: FoldResult, cfg: TrainConfig, classes: tuple[str, ...]) -> Path:
    """The best student of a fold; plain tensors and primitives, so ``weights_only=True`` loads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "state_dict": result.state_dict,
        "model_config": result.model_config,
        "classes": list(classes),
        "train_config": cfg.model_dump(),
        "fold": result.fold,
        "best_epoch": result.best_epoch,
        "val_uar": result.val.uar,
        "liser_version": __version__,
    }
    return write_atomic(path, lambda f: torch.save(payload, f))


def load_student(path: str | Path, device: str | torch.device = "cpu") -> tuple[Student, dict]:
    """A student saved by :func:`save_checkpoint`, in eval mode, and its checkpoint record."""
    payload = torch.load(path, map_location=device, weights_only=True)
    model = rebuild_student(payload["model_config"]).to(device)
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload


def train(
    cfg: TrainConfig,
    labeled: CorpusData,
    folds: list[Fold],
    fold_indices: list[int],
    out_dir: str | Path,
    *,
    unlabeled: CorpusData | None = None,
    teachers: dict[str, dict[int | None, TeacherOutputs]] | None = None,
    device: torch.device | str = "cpu",
    progress: bool = True,
    log: Callable[[str], None] = print,
    on_epoch: EpochCallback | None = None,
    extra: dict | None = None,
) -> dict:
    """Train the folds in ``fold_indices`` and write ``results.json`` plus a checkpoint per fold.

    Results are rewritten after every fold, so a crash loses at most the fold in
    progress; run again with the same ``out_dir`` and finished folds are reused.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_path = out_dir / "results.json"
    results = {
        "liser_version": __version__,
        "config": cfg.model_dump(),
        "device": str(device),
        "labeled": labeled.report(),
        "unlabeled": unlabeled.report() if unlabeled is not None else None,
        "teachers": {
            kind: {str("all" if f is None else f): {"clips": len(t.clip_ids), "classes": list(t.classes), "meta": t.meta} for f, t in by_fold.items()}
            for kind, by_fold in (teachers or {}).items()
        },
        **(extra or {}),
        "folds": [],
        "summary": {},
    }
    done: dict[int, dict] = {}
    if results_path.exists():
        previous = json.loads(results_path.read_text())
        if previous.get("config") != results["config"]:
            raise ValueError(f"{out_dir} holds results of another configuration; pass a new --out or delete {results_path}")
        done = {f["fold"]: f for f in previous.get("folds", []) if Path(f.get("checkpoint", "")).exists()}

    for k in fold_indices:
        if k in done:
            results["folds"].append(done[k])
            log(f"fold {k}: already finished in {results_path}, reused (test UAR {done[k]['test']['uar']:.3f})")
            continue
        fold_teachers = teachers_for_fold(teachers or {}, folds[k])
        result = train_fold(cfg, labeled, folds[k], unlabeled, fold_teachers, device=device, on_epoch=on_epoch, progress=progress)
        ckpt = save_checkpoint(out_dir / f"fold{k}" / "student.pt", result, cfg, labeled.corpus.classes)
        results["folds"].append({**result.as_dict(), "checkpoint": str(ckpt)})
        results["summary"] = summarize(results["folds"])
        write_json(results_path, results)
        log(
            f"fold {k}: test UAR {result.test.uar:.3f}  WAR {result.test.war:.3f}  "
            f"(val UAR {result.val.uar:.3f}, best epoch {result.best_epoch}, {result.seconds:.0f} s)"
        )
        if line := dropped_line(result.counts):
            log(f"fold {k}: {line} (see {results_path})")
    results["summary"] = summarize(results["folds"])
    write_json(results_path, results)
    s = results["summary"]
    log(
        f"{cfg.name} over {s['n_folds']} fold(s): test UAR {s['test_uar_mean']:.3f} ± {s['test_uar_std']:.3f}  "
        f"WAR {s['test_war_mean']:.3f} ± {s['test_war_std']:.3f}   -> {results_path}"
    )
    return results
