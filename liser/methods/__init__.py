"""The methods a study can select (``method:`` in a configuration), behind one training loop.

Each method decides three things the loop in :mod:`liser.train` asks for: the student it
trains (:func:`build_model`), what it needs besides labeled clips (teacher outputs, an
unlabeled corpus, a graph) and the loss of one mini-batch (:func:`FoldMethod.loss`).

- ``liser``: the paper this platform is named after; labeled CE plus distillation on
  unlabeled audio-visual clips (:func:`liser.methods.liser.compute_loss`).
- ``emodistill``: prosodic + linguistic teachers on the labeled clips (:mod:`.emodistill`).
- ``nsl``: a graph over the labeled clips from an upstream model's embeddings (:mod:`.nsl`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from liser.configs import TrainConfig
from liser.constants import FERV39K_CLASSES
from liser.model import build_student


def build_model(cfg: TrainConfig, n_classes: int, teachers: dict | None = None) -> nn.Module:
    """The student of ``cfg``: its architecture (``student``), with EmoDistill's heads when asked."""
    teachers = teachers or {}
    if cfg.student == "liser":
        video = teachers.get("video")
        n_video = len(video.classes) if video is not None and hasattr(video, "segments") else len(FERV39K_CLASSES)
        config = {"arch": "liser", "n_classes": n_classes, "n_video_classes": n_video}
    else:
        config = {"arch": cfg.student, "n_classes": n_classes}
    model = build_student(config)
    if cfg.method == "emodistill":
        from liser.methods.emodistill import ProjectionStudent, head_dims

        model = ProjectionStudent(model, n_classes, head_dims(teachers))
    return model


def rebuild_student(config: dict) -> nn.Module:
    """A student from the ``model_config`` its checkpoint holds (any method, any architecture)."""
    if config.get("arch") == "emodistill":
        from liser.methods.emodistill import ProjectionStudent

        return ProjectionStudent(build_student(config["backbone"]), config["n_classes"], config["dims"], config.get("hidden", 64))
    return build_student(config)


class FoldMethod:
    """What one fold's training loop needs from its method: the batch loss and what to report."""

    def __init__(self, cfg: TrainConfig, teachers: dict, train_ids: list[str], feats: dict[str, np.ndarray], cache_dir=None):
        self.cfg, self.teachers = cfg, teachers
        self.counts: dict = {}
        self.neighbours = None
        if cfg.method == "nsl":
            from liser.methods.nsl import NeighbourCrops, fold_graph

            graph, missing = fold_graph(teachers["upstream"], train_ids, cfg, cache_dir)
            self.neighbours = NeighbourCrops(graph, feats)
            stats = graph.stats()
            self.graph_stats = stats
            self.counts.update({f"graph_{k}": v for k, v in stats.items() if k != "histogram"}, graph_no_upstream=missing)
        elif cfg.method == "emodistill":
            from liser.methods.emodistill import coverage

            self.counts.update(coverage({k: teachers[k] for k in cfg.teacher_kinds}, train_ids))

    def loss(self, model: nn.Module, device, labeled, unlabeled, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        if self.cfg.method == "emodistill":
            from liser.methods import emodistill

            return emodistill.loss_terms(model, self.cfg, device, labeled, self.teachers)
        if self.cfg.method == "nsl":
            from liser.methods import nsl

            return nsl.loss_terms(model, self.cfg, device, labeled, self.neighbours, rng)
        from liser.methods.liser import compute_loss

        t = compute_loss(model, self.cfg, device, labeled, unlabeled)
        return {"loss": t.total, "loss_sup": t.sup, "loss_sd": t.sd, "loss_vd": t.vd}
