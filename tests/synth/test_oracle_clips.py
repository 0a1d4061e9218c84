"""The oracle EmoDistill and NSL teachers `liser data synth` writes: label-bearing, deterministic, every clip."""

import numpy as np

from liser.corpora import load_corpus
from liser.synth.oracle_clips import DIMS, oracle_clip_outputs
from liser.targets import ClipOutputs


def test_oracle_clip_teachers_know_the_labels_but_not_perfectly(synth_root):
    corpus = load_corpus(f"table:{synth_root / 'transcribed.csv'}")
    y = corpus.manifest.set_index("clip_id")["label_index"]
    for kind in ("prosodic", "linguistic"):
        out = ClipOutputs.load(synth_root / "oracle-teachers-emodistill" / f"{kind}.npz")
        assert set(out.clip_ids) == set(corpus.manifest["clip_id"]) and out.embeddings.shape[1] == DIMS[kind]
        acc = float(np.mean(out.logits.argmax(1) == y.loc[out.clip_ids].to_numpy()))
        assert 0.4 < acc < 0.98, f"{kind}: accuracy {acc}"  # informative, not a copy of the labels
        again = oracle_clip_outputs(corpus, kind, seed=0)
        np.testing.assert_array_equal(again.logits, out.logits)  # deterministic given the seed
    upstream = ClipOutputs.load(synth_root / "oracle-teachers-nsl" / "upstream.npz")
    target = load_corpus(f"cremad:{synth_root / 'cremad'}")
    assert set(upstream.clip_ids) == set(target.manifest["clip_id"])
    emb = upstream.embeddings / np.linalg.norm(upstream.embeddings, axis=1, keepdims=True)
    labels = target.manifest.set_index("clip_id").loc[upstream.clip_ids, "label_index"].to_numpy()
    sim = emb @ emb.T
    same, other = sim[labels[:, None] == labels[None, :]].mean(), sim[labels[:, None] != labels[None, :]].mean()
    assert same > other + 0.1  # same-emotion clips are closer: the graph has something to find
