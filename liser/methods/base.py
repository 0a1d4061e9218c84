"""The interface every training method implements; :data:`liser.methods.METHODS` lists them.

The loop in :mod:`liser.train` asks a method three things: which student to train
(:meth:`Method.build_model`), the loss of one mini-batch (:meth:`Method.loss`) and what the
fold should report besides its metrics (:attr:`Method.counts`, :attr:`Method.extras`). A method
object lives for one fold, so per-fold state (NSL's graph) is built in its constructor.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

from liser.configs import TrainConfig
from liser.constants import FERV39K_CLASSES
from liser.model import build_student


class Method:
    """One method: subclass it in its own module and add it to ``METHODS``."""

    name: ClassVar[str] = ""

    def __init__(self, cfg: TrainConfig, teachers: dict, train_ids: list[str], feats: dict[str, np.ndarray], cache_dir=None):
        self.cfg, self.teachers = cfg, teachers
        self.counts: dict = {}  # per-fold counts for results.json and MLflow (drops are named on the console)
        self.extras: dict = {}  # per-fold objects results.json keeps beside the fold (NSL's graph statistics)

    @classmethod
    def build_model(cls, cfg: TrainConfig, n_classes: int, teachers: dict) -> nn.Module:
        """The student ``cfg.student`` names; LiSER's CNN-LSTM gets a video head as wide as its teacher's classes."""
        if cfg.student == "cnn-lstm":
            video = teachers.get("video")
            n_video = len(video.classes) if video is not None and hasattr(video, "segments") else len(FERV39K_CLASSES)
            return build_student({"arch": "cnn-lstm", "n_classes": n_classes, "n_video_classes": n_video})
        return build_student({"arch": cfg.student, "n_classes": n_classes})

    @classmethod
    def rebuild(cls, config: dict) -> nn.Module | None:
        """The student a checkpoint's ``model_config`` describes, if this method wrapped it (else None)."""
        return None

    def loss(self, model: nn.Module, device, labeled, unlabeled, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        """``{"loss": total, "loss_<term>": ...}`` of one mini-batch; the loop back-propagates ``loss``."""
        raise NotImplementedError
