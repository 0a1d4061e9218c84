"""NSL for on-device SER: graph-regularised training of a small student (section 2.2).

An upstream model fine-tuned on a *source* corpus embeds every clip of the target corpus
(:class:`~liser.targets.ClipOutputs` of kind ``upstream``). Per fold, the graph
joins each training clip to at most n training clips whose embeddings have cosine
similarity above ε; its degree distribution is logged with the fold. Training adds
α·Σ(1 − cos) between the student's intermediate embedding of a clip and of each of its
neighbours (eq. 2, :func:`liser.losses.nsl_loss`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from liser.configs import TrainConfig
from liser.data import random_crop
from liser.graph import Graph, build_graph
from liser.losses import nsl_loss
from liser.methods.base import Method
from liser.storage import default_cache_dir
from liser.targets import ClipOutputs, TeacherFileError


def fold_graph(upstream: ClipOutputs, train_ids: list[str], cfg: TrainConfig, cache_dir=None) -> tuple[Graph, int]:
    """The graph over the fold's training clips, and how many of them the upstream file lacks (isolated).

    Built once per (embeddings, training clips, ε, n) and cached under ``<cache>/graphs/``, so the
    trials of a study that share a fold and graph settings (an α sweep, seeds) reuse it.
    """
    have = [c for c in train_ids if c in upstream]
    if not have:
        raise TeacherFileError("the upstream embeddings cover none of this fold's training clips; embed the target corpus with `liser teacher upstream`")
    _, emb = upstream.take(have)
    key = hashlib.sha1(emb.tobytes() + json.dumps([have, cfg.nsl_epsilon, cfg.nsl_neighbors]).encode()).hexdigest()[:16]
    path = Path(cache_dir or default_cache_dir()) / "graphs" / f"{key}.npz"  # --cache-dir when given
    try:
        graph = Graph.load(path)
    except (FileNotFoundError, ValueError):  # not built yet, or a broken file: build it again
        graph = build_graph(have, emb, epsilon=cfg.nsl_epsilon, max_neighbors=cfg.nsl_neighbors)
        graph.save(path)
    return graph, len(train_ids) - len(have)


class NeighbourCrops:
    """Random crops of each batch clip's graph neighbours, for the neighbour term."""

    def __init__(self, graph: Graph, feats: dict[str, np.ndarray]):
        self.graph, self.feats = graph, feats
        self.row = {c: i for i, c in enumerate(graph.ids)}

    def __call__(self, ids, rng: np.random.Generator) -> tuple[np.ndarray | None, np.ndarray]:
        """Crops of the valid neighbours, stacked [M, mels, frames], and the mask [B, n] that places them."""
        n = self.graph.neighbors.shape[1]
        mask = np.zeros((len(ids), n), bool)
        crops = []
        for b, c in enumerate(ids):
            i = self.row.get(c)
            if i is None:
                continue
            for j, k in enumerate(self.graph.neighbors[i]):
                if k >= 0:
                    mask[b, j] = True
                    crops.append(random_crop(self.feats[self.graph.ids[k]], rng))
        return (np.stack(crops) if crops else None), mask


def loss_terms(model, cfg: TrainConfig, device, batch, neighbours: NeighbourCrops, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    """Eq. 2 on one labeled batch ``(x, y, clip_ids)``: one forward pass over the clips and their neighbours."""
    x, y, ids = batch
    nb_x, mask = neighbours(ids, rng)
    inputs = x if nb_x is None else np.concatenate([x, nb_x])
    out = model(torch.from_numpy(inputs).to(device))
    b = len(x)
    emb = out.embedding[:b]
    nb_emb = emb.new_zeros(mask.shape + (emb.shape[1],))
    mask_t = torch.from_numpy(mask).to(device)
    if nb_x is not None:
        nb_emb[mask_t] = out.embedding[b:]
    terms = nsl_loss(out.sup[:b], torch.as_tensor(np.asarray(y)).long().to(device), emb, nb_emb, mask_t, alpha=cfg.nsl_alpha)
    return {"loss": terms.total, "loss_sup": terms.ce, "loss_neighbour": terms.neighbour}


class NSL(Method):
    """Graph-regularised training: each fold's graph over its training clips, from the upstream embeddings."""

    name = "nsl"

    def __init__(self, cfg, teachers, train_ids, feats, cache_dir=None):
        super().__init__(cfg, teachers, train_ids, feats, cache_dir)
        graph, missing = fold_graph(teachers["upstream"], train_ids, cfg, cache_dir)
        self.neighbours = NeighbourCrops(graph, feats)
        stats = graph.stats()
        self.extras["graph"] = stats
        self.counts.update({f"graph_{k}": v for k, v in stats.items() if k != "histogram"}, graph_no_upstream=missing)

    def loss(self, model, device, labeled, unlabeled, rng) -> dict[str, torch.Tensor]:
        return loss_terms(model, self.cfg, device, labeled, self.neighbours, rng)
