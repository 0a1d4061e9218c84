"""The methods a study can select (``method:`` in a configuration), as one table behind one loop.

Each entry is a :class:`~liser.methods.base.Method` in its own module: the student it
trains, the loss of one mini-batch and what a fold reports. Adding a method is one
module and one line here (README, "Adding a method").

- ``liser``: the paper this platform is named after; labeled CE plus distillation on
  unlabeled audio-visual clips (eq. 4/5, :func:`liser.methods.liser.compute_loss`).
- ``emodistill``: prosodic + linguistic teachers on the labeled clips (:mod:`.emodistill`).
- ``nsl``: a graph over the labeled clips from an upstream model's embeddings (:mod:`.nsl`).
"""

from __future__ import annotations

import numpy as np
from torch import nn

from liser.configs import TrainConfig
from liser.methods.base import Method
from liser.methods.emodistill import EmoDistill
from liser.methods.liser import LiSER
from liser.methods.nsl import NSL
from liser.model import build_student

METHODS: dict[str, type[Method]] = {m.name: m for m in (LiSER, EmoDistill, NSL)}


def build_model(cfg: TrainConfig, n_classes: int, teachers: dict | None = None) -> nn.Module:
    """The student ``cfg``'s method trains."""
    return METHODS[cfg.method].build_model(cfg, n_classes, teachers or {})


def make_method(cfg: TrainConfig, teachers: dict, train_ids: list[str], feats: dict[str, np.ndarray], cache_dir=None) -> Method:
    """``cfg``'s method for one fold, its per-fold state built."""
    return METHODS[cfg.method](cfg, teachers, train_ids, feats, cache_dir)


def rebuild_student(config: dict) -> nn.Module:
    """A student from the ``model_config`` its checkpoint holds (any method, any architecture)."""
    for method in METHODS.values():
        model = method.rebuild(config)
        if model is not None:
            return model
    return build_student(config)
