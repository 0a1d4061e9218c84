"""The NSL similarity graph (NSL paper, section 2.2.1, equation 1).

The neighbours of sample i are the samples k != i whose upstream embeddings h have a
cosine similarity S(h(x_i), h(x_k)) > epsilon, at most ``max_neighbors`` of them (the most
similar). The paper uses epsilon = 0.99 and n in {3, 6, 9} (section 3.2).

A :class:`Graph` stores, per node, its neighbours' row numbers (-1 where it has fewer than
n) and their similarities; it is saved as a plain ``.npz`` (no pickle). Its :meth:`Graph.stats`
are what to log to see whether epsilon is too strict (many isolated nodes).
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from liser.errors import DataError, InputNotFound
from liser.storage import write_atomic

FORMAT = "liser.graph"
VERSION = 1
_DECIMALS = 12  # similarities are rounded so exact ties (duplicate clips) break by row, whatever the BLAS blocking


@dataclass
class Graph:
    """Neighbour lists over ``ids``: row i's neighbours, most similar first, -1 padded."""

    ids: list[str]
    neighbors: np.ndarray  # int64 [N, n]: row numbers into ids, -1 where padded
    similarity: np.ndarray  # float32 [N, n]: cosine similarity of each edge, 0 where padded
    epsilon: float
    max_neighbors: int

    def __post_init__(self) -> None:
        self.ids = [str(i) for i in self.ids]
        self.neighbors = np.asarray(self.neighbors, np.int64)
        self.similarity = np.asarray(self.similarity, np.float32)
        self.epsilon, self.max_neighbors = float(self.epsilon), int(self.max_neighbors)
        n_nodes, n = len(self.ids), self.max_neighbors
        if len(set(self.ids)) != n_nodes:
            raise DataError("graph ids must be unique")
        for name, arr in (("neighbors", self.neighbors), ("similarity", self.similarity)):
            if arr.shape != (n_nodes, n):
                raise DataError(f"graph {name} has shape {arr.shape}, expected ({n_nodes}, {n}) for {n_nodes} ids and max_neighbors={n}")
        if self.neighbors.size and (self.neighbors.min() < -1 or self.neighbors.max() >= n_nodes):
            raise DataError(f"graph neighbors must be row numbers in [0, {n_nodes}) or -1")
        if np.any(self.neighbors == np.arange(n_nodes)[:, None]):
            raise DataError("a graph node cannot be its own neighbour")

    def __len__(self) -> int:
        return len(self.ids)

    def degrees(self) -> np.ndarray:
        """Neighbours per node [N]."""
        return (self.neighbors >= 0).sum(1)

    def stats(self) -> dict:
        """Nodes, edges (neighbour entries: i -> k and k -> i count twice), degree summary and histogram."""
        deg = self.degrees()
        nodes = len(deg)
        isolated = int((deg == 0).sum())
        counts = np.bincount(deg, minlength=self.max_neighbors + 1)
        return {
            "nodes": nodes,
            "edges": int(deg.sum()),
            "mean_degree": float(deg.mean()) if nodes else 0.0,
            "median_degree": float(np.median(deg)) if nodes else 0.0,
            "max_degree": int(deg.max()) if nodes else 0,
            "isolated": isolated,
            "isolated_fraction": isolated / nodes if nodes else 0.0,
            "histogram": {d: int(c) for d, c in enumerate(counts)},
        }

    def neighbors_of(self, node_id: str) -> list[tuple[str, float]]:
        """(neighbour id, similarity) pairs of one node, most similar first."""
        row = self.ids.index(node_id)
        return [(self.ids[k], float(s)) for k, s in zip(self.neighbors[row], self.similarity[row]) if k >= 0]

    def subgraph(self, keep_ids: Sequence[str]) -> "Graph":
        """The graph on the nodes in ``keep_ids`` (in this graph's order), edges to other nodes dropped.

        Neighbours beyond the cap are not promoted into the freed slots: to give every kept
        node up to n neighbours among the kept ones, build the graph from their embeddings.
        """
        keep_set = set(keep_ids)
        missing = keep_set.difference(self.ids)
        if missing:
            shown = ", ".join(sorted(missing)[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise DataError(f"subgraph: {len(missing)} ids are not nodes of the graph ({shown}); was it built on another corpus?")
        kept = np.array([i in keep_set for i in self.ids], bool)
        new_row = np.full(len(self.ids) + 1, -1, np.int64)  # last slot maps the -1 padding
        new_row[np.flatnonzero(kept)] = np.arange(kept.sum())
        nb = new_row[self.neighbors[kept]]
        sim = np.where(nb >= 0, self.similarity[kept], 0).astype(np.float32)
        order = np.argsort(nb < 0, axis=1, kind="stable")  # surviving edges first, their order kept
        return Graph(
            [i for i, k in zip(self.ids, kept) if k],
            np.take_along_axis(nb, order, 1),
            np.take_along_axis(sim, order, 1),
            self.epsilon,
            self.max_neighbors,
        )

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` atomically: a temporary file in the same folder, then renamed."""
        path = Path(path)
        write_atomic(path, lambda f: np.savez(
            f, format=np.array(FORMAT), version=np.array(VERSION), ids=np.array(self.ids, dtype=str),
            neighbors=self.neighbors, similarity=self.similarity,
            epsilon=np.array(self.epsilon), max_neighbors=np.array(self.max_neighbors),
        ))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Graph":
        """Read a graph written by :meth:`save`.

        Raises:
            FileNotFoundError: no such file.
            ValueError: the file is damaged, not a graph, or of another format version.
        """
        path = Path(path)
        if not path.is_file():
            raise InputNotFound(f"graph file not found: {path}")
        try:
            data = np.load(path, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise DataError("it holds a single array, not an .npz archive")
            with data:
                if "format" not in data.files or str(data["format"]) != FORMAT:
                    raise DataError(f"it is not a {FORMAT} file (keys: {', '.join(data.files) or 'none'})")
                if int(data["version"]) != VERSION:
                    raise DataError(f"format version {int(data['version'])}, this liser reads version {VERSION}")
                ids = data["ids"].tolist()
                return cls(ids, data["neighbors"], data["similarity"], float(data["epsilon"]), int(data["max_neighbors"]))
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: not a readable graph ({exc}); rebuild it") from None


def _check_args(ids: Sequence[str], embeddings: np.ndarray, epsilon: float, max_neighbors: int, block: int) -> None:
    if isinstance(max_neighbors, bool) or not isinstance(max_neighbors, (int, np.integer)) or max_neighbors < 1:
        raise DataError(f"max_neighbors must be a positive integer, got {max_neighbors!r}")
    if not -1 <= epsilon < 1:
        raise DataError(f"epsilon must be in [-1, 1) (a cosine similarity threshold), got {epsilon!r}")
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise DataError(f"block must be a positive integer, got {block!r}")
    if embeddings.ndim != 2:
        raise DataError(f"embeddings must be a 2-D array [N, D], got shape {embeddings.shape}")
    if len(ids) != len(embeddings):
        raise DataError(f"{len(ids)} ids but {len(embeddings)} embeddings")
    if not np.all(np.isfinite(embeddings)):
        bad = np.flatnonzero(~np.isfinite(embeddings).all(1))
        raise DataError(f"embeddings hold NaN or inf (rows of ids {', '.join(str(ids[i]) for i in bad[:5])})")


def build_graph(
    ids: Sequence[str], embeddings: np.ndarray, epsilon: float = 0.99, max_neighbors: int = 3, block: int = 2048
) -> Graph:
    """The graph of equation 1: per row, the up to ``max_neighbors`` most similar other rows with
    cosine similarity > ``epsilon``; ties go to the earlier row.

    Similarities are computed ``block`` rows at a time (a [block, N] float64 array), so memory
    grows with N, not N^2. Zero embeddings have no direction: they get no neighbours and are
    no one's neighbour.
    """
    ids = [str(i) for i in ids]
    emb = np.asarray(embeddings, np.float64)
    _check_args(ids, emb, epsilon, max_neighbors, block)
    if len(set(ids)) != len(ids):
        raise DataError("ids must be unique")
    n_nodes, n = len(ids), int(max_neighbors)
    norms = np.linalg.norm(emb, axis=1)
    zero = norms == 0
    unit = emb / np.where(zero, 1.0, norms)[:, None]
    neighbors = np.full((n_nodes, n), -1, np.int64)
    similarity = np.zeros((n_nodes, n), np.float32)
    for lo in range(0, n_nodes, block):
        hi = min(lo + block, n_nodes)
        sim = unit[lo:hi] @ unit.T  # [b, N]
        np.round(sim, _DECIMALS, out=sim)
        sim[np.arange(hi - lo), np.arange(lo, hi)] = -np.inf  # k != i
        sim[:, zero] = -np.inf
        sim[zero[lo:hi]] = -np.inf
        # the n-th largest per row bounds the candidates (ties at it included) before the exact sort
        floor = np.partition(sim, n_nodes - n, axis=1)[:, n_nodes - n] if n < n_nodes else np.full(hi - lo, -np.inf)
        rows, cols = np.nonzero((sim > epsilon) & (sim >= floor[:, None]))
        vals = sim[rows, cols]
        order = np.lexsort((cols, -vals, rows))  # by row, then most similar, then earlier column
        rows, cols, vals = rows[order], cols[order], vals[order]
        rank = np.arange(len(rows)) - np.searchsorted(rows, rows)  # position within its row
        keep = rank < n
        neighbors[lo + rows[keep], rank[keep]] = cols[keep]
        similarity[lo + rows[keep], rank[keep]] = vals[keep]
    return Graph(ids, neighbors, similarity, float(epsilon), n)
