"""The NSL graph (section 2.2.1): exact neighbour lists on hand-made embeddings, blocking,
subgraphs, statistics and the file format."""

from __future__ import annotations

import numpy as np
import pytest

from liser.graph import Graph, build_graph

# 2-D embeddings at known angles: cos(8) .990, cos(12) .978, cos(15) .966, cos(20) .940,
# cos(27) .891, cos(35) .819. b2 duplicates b; c is scaled (cosine ignores the norm).
IDS = ["a", "b", "c", "d", "e", "z", "b2"]


def _at(degrees: float, scale: float = 1.0) -> list[float]:
    return [scale * np.cos(np.radians(degrees)), scale * np.sin(np.radians(degrees))]


EMB = np.array([_at(0), _at(8), _at(20, 5.0), _at(35), _at(90), [0.0, 0.0], _at(8)])


def _lists(graph: Graph) -> dict[str, list[str]]:
    return {i: [graph.ids[k] for k in row if k >= 0] for i, row in zip(graph.ids, graph.neighbors)}


def test_neighbours_follow_equation_1():
    graph = build_graph(IDS, EMB, epsilon=0.9, max_neighbors=2)
    assert _lists(graph) == {
        "a": ["b", "b2"],  # a tie (duplicates) goes to the earlier row; c (.940) is past the cap
        "b": ["b2", "a"],  # the duplicate first (1.0), then a (.990) before c (.978)
        "c": ["b", "b2"],
        "d": ["c"],  # b is at 27 degrees: .891 < epsilon
        "e": [],
        "z": [],  # a zero vector has no direction
        "b2": ["b", "a"],
    }
    row = IDS.index("b")
    np.testing.assert_allclose(graph.similarity[row], [1.0, np.cos(np.radians(8))], atol=1e-6)
    assert graph.neighbors.dtype == np.int64 and graph.similarity.dtype == np.float32
    assert (graph.neighbors[IDS.index("d")] == [IDS.index("c"), -1]).all()
    assert (graph.similarity[IDS.index("e")] == 0).all()
    assert graph.neighbors_of("d") == [("c", pytest.approx(np.cos(np.radians(15)), abs=1e-6))]


def test_epsilon_cuts_and_the_cap_limits():
    strict = _lists(build_graph(IDS, EMB, epsilon=0.95, max_neighbors=3))
    assert strict["a"] == ["b", "b2"]  # c (.940) is below 0.95
    assert strict["b"] == ["b2", "a", "c"] and strict["c"] == ["b", "b2", "d"] and strict["d"] == ["c"]
    one = _lists(build_graph(IDS, EMB, epsilon=0.9, max_neighbors=1))
    assert one == {"a": ["b"], "b": ["b2"], "c": ["b"], "d": ["c"], "e": [], "z": [], "b2": ["b"]}
    # epsilon = -1 and a cap above N: every other non-zero node, most similar first
    every = _lists(build_graph(IDS, EMB, epsilon=-1.0, max_neighbors=10))
    assert every["e"] == ["d", "c", "b", "b2", "a"] and every["z"] == []
    assert all("z" not in v and k not in v for k, v in every.items())


def test_block_size_does_not_change_the_graph():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(60, 4))
    emb[10] = emb[3]  # exact duplicates make ties
    emb[11] = 2 * emb[3]
    emb[20] = 0
    ids = [f"clip{i}" for i in range(60)]
    ref = build_graph(ids, emb, epsilon=0.3, max_neighbors=4, block=2048)
    for block in (1, 7, 59):
        other = build_graph(ids, emb, epsilon=0.3, max_neighbors=4, block=block)
        np.testing.assert_array_equal(other.neighbors, ref.neighbors)
        np.testing.assert_array_equal(other.similarity, ref.similarity)
    # and it agrees with a brute-force reading of equation 1
    unit = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-300)
    for i in range(60):
        cands = [(-float(unit[i] @ unit[k]), k) for k in range(60) if k != i and i != 20 and k != 20 and unit[i] @ unit[k] > 0.3]
        expected = [k for _, k in sorted((round(s, 12), k) for s, k in cands)][:4]
        assert [k for k in ref.neighbors[i] if k >= 0] == expected


def test_stats_and_histogram():
    stats = build_graph(IDS, EMB, epsilon=0.9, max_neighbors=2).stats()
    assert stats == {
        "nodes": 7,
        "edges": 9,
        "mean_degree": pytest.approx(9 / 7),
        "median_degree": 2.0,
        "max_degree": 2,
        "isolated": 2,
        "isolated_fraction": pytest.approx(2 / 7),
        "histogram": {0: 2, 1: 1, 2: 4},
    }
    empty = build_graph([], np.zeros((0, 3)), max_neighbors=3).stats()
    assert empty["nodes"] == 0 and empty["histogram"] == {0: 0, 1: 0, 2: 0, 3: 0}


def test_subgraph_drops_edges_leaving_it():
    graph = build_graph(IDS, EMB, epsilon=0.9, max_neighbors=2)
    sub = graph.subgraph(["b2", "a", "d", "c"])
    assert sub.ids == ["a", "c", "d", "b2"]  # the graph's order
    assert _lists(sub) == {"a": ["b2"], "c": ["b2"], "d": ["c"], "b2": ["a"]}
    assert sub.neighbors[0].tolist() == [3, -1] and sub.similarity[0, 1] == 0
    assert sub.similarity[0, 0] == graph.similarity[0, 1]
    assert (sub.epsilon, sub.max_neighbors) == (0.9, 2)
    with pytest.raises(ValueError, match="2 ids are not nodes of the graph \\(x, y\\)"):
        graph.subgraph(["a", "x", "y"])


def test_save_load_round_trip(tmp_path):
    graph = build_graph(IDS, EMB, epsilon=0.9, max_neighbors=2)
    path = graph.save(tmp_path / "sub" / "graph.npz")
    assert [p.name for p in path.parent.iterdir()] == ["graph.npz"]  # no temporary file left
    back = Graph.load(path)
    assert back.ids == graph.ids and (back.epsilon, back.max_neighbors) == (0.9, 2)
    np.testing.assert_array_equal(back.neighbors, graph.neighbors)
    np.testing.assert_array_equal(back.similarity, graph.similarity)
    assert back.stats() == graph.stats()


def test_corrupt_or_foreign_files_are_named(tmp_path):
    path = build_graph(IDS, EMB).save(tmp_path / "graph.npz")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a graph at all")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    for bad in (truncated, garbage, foreign, single):
        with pytest.raises(ValueError, match=bad.name):
            Graph.load(bad)
    with pytest.raises(ValueError, match="not a liser.graph file"):
        Graph.load(foreign)
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        Graph.load(tmp_path / "missing.npz")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(max_neighbors=0), "max_neighbors must be a positive integer"),
        (dict(epsilon=1.0), "epsilon must be in \\[-1, 1\\)"),
        (dict(epsilon=-1.5), "epsilon must be in"),
        (dict(ids=IDS[:-1]), "6 ids but 7 embeddings"),
        (dict(ids=["a"] * 7), "ids must be unique"),
        (dict(embeddings=np.where(np.arange(14).reshape(7, 2) == 3, np.nan, EMB)), "NaN or inf \\(rows of ids b\\)"),
        (dict(embeddings=EMB[:, 0]), "2-D array"),
        (dict(block=0), "block must be a positive integer"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    args = dict(ids=IDS, embeddings=EMB) | kwargs
    with pytest.raises(ValueError, match=message):
        build_graph(**args)
