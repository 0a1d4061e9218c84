"""The Hugging Face helpers every transformer-backed teacher uses (speech, linguistic, upstream).

Quiet loading, telling a local checkpoint folder from a hub id, the identity hash of a
module's weights, and the one message for a checkpoint that is not cached offline.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from contextlib import contextmanager
from typing import Iterator

import torch
from transformers.utils import logging as hf_logging


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load reports and progress bars (a fresh head is always 'missing')."""
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def looks_like_path(backbone: str) -> bool:
    """A local path rather than a hub id ('org/name' has one slash and no leading ./ ~ /)."""
    return backbone.startswith(("/", ".", "~")) or "\\" in backbone or backbone.count("/") > 1 or os.path.exists(backbone)


def state_hash(module: torch.nn.Module) -> str:
    """sha1 of a module's parameters and buffers, by name: the backbone's identity."""
    digest = hashlib.sha1()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().float().numpy().tobytes())
    return digest.hexdigest()[:16]


def not_cached_message(what: str, backbone: str, err: Exception, offline: str) -> str:
    """Why a hub id failed offline, and the three ways out (copy a cache, a local folder, the offline stand-in)."""
    return (
        f"{what} {backbone!r} is not in the local Hugging Face cache and cannot be downloaded here ({err}). "
        f"On a connected machine run `huggingface-cli download {backbone}` (or `hf download {backbone}`) and copy "
        f"the cache (~/.cache/huggingface) over, or pass a local checkpoint folder as the backbone, or use {offline}."
    )


def adopt_head(model, source: str, checkpoint_labels: list[str] | None, classes: list[str], *, present: bool, loaded: bool) -> bool:
    """Keep a checkpoint's classification head where it names the teacher's classes; else start fresh.

    ``model`` is a ``*ForSequenceClassification`` just loaded from ``source`` with ``classes`` as
    its labels; ``present`` says whether the checkpoint has a head at all, ``loaded`` whether it
    came into ``model`` (it does whenever the shapes match, even for other classes). A head fitted for a superset of the classes (an
    8-emotion head for CREMA-D's 6) gives its rows by name. Returns whether the head is the
    checkpoint's.
    """
    names = checkpoint_labels or []
    if loaded and names == classes:
        return True
    if present and names and set(classes) <= set(names):
        with quiet_transformers():
            full = type(model).from_pretrained(source, dtype=torch.float32)
        rows = torch.tensor([names.index(c) for c in classes])
        with torch.no_grad():
            model.projector.load_state_dict(full.projector.state_dict())
            model.classifier.weight.copy_(full.classifier.weight[rows])
            model.classifier.bias.copy_(full.classifier.bias[rows])
        return True
    if loaded:  # the shapes matched but the classes are others (or unnamed): a fresh head, as HF initialises one
        with torch.no_grad():
            for layer in (model.projector, model.classifier):
                layer.weight.normal_(0.0, model.config.initializer_range)
                layer.bias.zero_()
    return False
