"""EmoDistill and NSL through the one training loop, on the generated corpus (tiny sizes, 1 epoch).

The teachers are the oracle clip-level files `liser data synth` writes; the fitted ones
have their own tests (tests/teachers/). What is checked here is what the loop does with
them: which outputs it reads, what it counts and logs, what it saves, and what it refuses.
"""

from dataclasses import replace

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from liser.cli import main
from liser.configs import ConfigError, make_config
from liser.data import CorpusData, load_corpus_data, load_teachers, teachers_for_fold
from liser.export import check_equivalence, equivalence_inputs, export_onnx
from liser.folds import folds_for
from liser.methods import build_model
from liser.targets import ClipOutputs, TeacherFileError, find_teacher_files
from liser.train import load_student, train, train_fold


def _small(data: CorpusData, per_speaker: int) -> CorpusData:
    m = data.corpus.manifest
    keep = m.groupby("speaker", group_keys=False).head(per_speaker).reset_index(drop=True)
    return CorpusData(replace(data.corpus, manifest=keep), data.features)


@pytest.fixture(scope="module")
def transcribed(synth_root):
    return _small(load_corpus_data(f"table:{synth_root / 'transcribed.csv'}", progress=False), 24)


@pytest.fixture(scope="module")
def cremad(synth_root):
    return _small(load_corpus_data(f"cremad:{synth_root / 'cremad'}", progress=False), 24)


def _teachers(folder, classes):
    return {kind: by_fold[None] for kind, by_fold in load_teachers(find_teacher_files(folder), classes).items()}


def test_emodistill_fold_distils_from_both_teachers_and_saves_a_loadable_student(synth_root, transcribed, tmp_path):
    teachers = _teachers(synth_root / "oracle-teachers-emodistill", transcribed.corpus.classes)
    folds = folds_for(transcribed.table, 5, 0)
    cfg = make_config("emodistill", epochs=1, batch_size=16)
    results = train(cfg, transcribed, folds, [0], tmp_path / "run", teachers={k: {None: t} for k, t in teachers.items()}, progress=False, log=lambda _: None)
    fold = results["folds"][0]
    row = fold["history"][-1]
    assert row["loss_logits"] > 0 and row["loss_embeddings"] < 0  # both KD terms measured (-cos of roughly aligned heads)
    assert row["loss"] == pytest.approx(2 * row["loss_sup"] + 1 * row["loss_logits"] + 10 * row["loss_embeddings"], rel=0.05)
    assert fold["counts"]["train_no_prosodic_output"] == fold["counts"]["train_no_linguistic_output"] == 0
    model, payload = load_student(fold["checkpoint"])
    assert payload["model_config"]["arch"] == "emodistill"
    assert payload["model_config"]["dims"] == {"prosodic": 32, "linguistic": 24}  # each head as wide as its teacher's embedding
    x = torch.randn(2, 64, 94) * 20 - 60
    out = model(x)
    assert out.sup.shape == (2, len(transcribed.corpus.classes)) and out.prosodic.shape == (2, 32) and out.linguistic.shape == (2, 24)
    path = export_onnx(model, tmp_path / "emodistill.onnx", n_mels=64)  # the deployable student: speech in, emotion out
    assert check_equivalence(model, path, equivalence_inputs(64)) < 1e-4


def test_a_clip_without_teacher_output_masks_only_that_term(synth_root, transcribed):
    full = _teachers(synth_root / "oracle-teachers-emodistill", transcribed.corpus.classes)
    folds = folds_for(transcribed.table, 5, 0)
    train_ids = transcribed.table[transcribed.table["speaker"].isin(folds[0].train)]["clip_id"].tolist()
    lin = full["linguistic"]
    keep = [c for c in lin.clip_ids if c not in set(train_ids[:7])]
    logits, emb = lin.take(keep)
    partial = ClipOutputs("linguistic", lin.classes, keep, logits, emb, {})
    result = train_fold(make_config("emodistill", epochs=1), transcribed, folds[0], teachers={"prosodic": full["prosodic"], "linguistic": partial}, progress=False)
    assert result.counts["train_no_linguistic_output"] == 7 and result.counts["train_no_prosodic_output"] == 0
    assert np.isfinite(result.history[-1]["loss"])


def test_nsl_fold_builds_its_graph_on_training_clips_and_logs_degrees(synth_root, cremad):
    upstream = _teachers(synth_root / "oracle-teachers-nsl", cremad.corpus.classes)["upstream"]
    folds = folds_for(cremad.table, 5, 0)
    cfg = make_config("nsl-cnn-lstm", epochs=1, nsl_epsilon=0.5, nsl_neighbors=4)
    result = train_fold(cfg, cremad, folds[0], teachers={"upstream": upstream}, progress=False)
    n_train = result.counts["train"]
    assert result.counts["graph_nodes"] == n_train  # only the fold's training clips are nodes
    hist = result.extras["graph"]["histogram"]
    assert sum(hist.values()) == n_train and max(int(d) for d in hist) <= 4
    assert result.counts["graph_mean_degree"] == pytest.approx(sum(int(d) * n for d, n in hist.items()) / n_train)
    assert result.history[-1]["loss_neighbour"] > 0
    strict = train_fold(cfg.model_copy(update={"nsl_epsilon": 0.999999}), cremad, folds[0], teachers={"upstream": upstream}, progress=False)
    assert strict.counts["graph_isolated_fraction"] > result.counts["graph_isolated_fraction"]  # a stricter ε: fewer neighbours


def test_nsl_graph_is_built_once_per_fold_and_settings(synth_root, cremad):
    from liser.methods.nsl import fold_graph
    from liser.storage import default_cache_dir

    upstream = _teachers(synth_root / "oracle-teachers-nsl", cremad.corpus.classes)["upstream"]
    train = cremad.table["clip_id"].tolist()[:40]
    cfg = make_config("nsl-cnn-lstm", nsl_epsilon=0.3)
    first, _ = fold_graph(upstream, train, cfg)
    files = set((default_cache_dir() / "graphs").glob("*.npz"))
    again, _ = fold_graph(upstream, train, cfg.model_copy(update={"nsl_alpha": 1.0}))  # another α: the same graph, from the cache
    assert set((default_cache_dir() / "graphs").glob("*.npz")) == files
    np.testing.assert_array_equal(again.neighbors, first.neighbors)
    assert again.ids == first.ids
    fold_graph(upstream, train, cfg.model_copy(update={"nsl_neighbors": 2}))  # another n: another graph
    assert len(set((default_cache_dir() / "graphs").glob("*.npz")) - files) == 1


def test_cnn6_baseline_reports_its_size(cremad):
    folds = folds_for(cremad.table, 5, 0)
    result = train_fold(make_config("cnn6", epochs=1), cremad, folds[0], progress=False)
    assert result.counts["parameters"] == sum(p.numel() for p in build_model(make_config("cnn6"), len(cremad.corpus.classes)).parameters())
    assert result.model_config["arch"] == "cnn6"


def test_teacher_leak_is_refused_for_clip_teachers_too(synth_root, transcribed):
    full = _teachers(synth_root / "oracle-teachers-emodistill", transcribed.corpus.classes)
    folds = folds_for(transcribed.table, 5, 0)
    leaky = ClipOutputs("prosodic", full["prosodic"].classes, full["prosodic"].clip_ids, full["prosodic"].logits,
                        full["prosodic"].embeddings, {"train_speakers": list(folds[0].test)})
    with pytest.raises(TeacherFileError, match="validation or test speakers"):
        teachers_for_fold({"prosodic": {None: leaky}}, folds[0])


def test_method_knobs_of_another_method_are_refused():
    with pytest.raises(ConfigError, match="do not apply to method 'liser'"):
        make_config("no-dstl", nsl_alpha=1.0)
    with pytest.raises(ConfigError, match="do not apply to method 'emodistill'"):
        make_config("emodistill", lambda_sd=1.0)
    assert make_config("emodistill-no-teachers").teacher_kinds == () and not make_config("emodistill").uses_unlabeled


def test_train_cli_names_the_missing_teacher_files(synth_root, tmp_path):
    res = CliRunner().invoke(main, [
        "train", "--labeled", f"table:{synth_root / 'transcribed.csv'}", "--teachers", str(synth_root / "oracle-teachers-nsl"),
        "--config", "emodistill", "--fold", "0", "--epochs", "1", "--out", str(tmp_path / "run"), "-q",
    ])
    assert res.exit_code != 0
    assert "prosodic and linguistic teacher outputs" in res.output and "liser teacher prosodic fit" in res.output


def test_nsl_graph_cache_follows_the_feature_cache(synth_root, cremad, tmp_path):
    """The graph goes under the cache root the features came from (``--cache-dir``), not $LISER_CACHE."""
    from liser.data import load_corpus_data

    data = load_corpus_data(cremad.corpus.spec, tmp_path / "cache", progress=False)
    assert data.features.cache_dir == tmp_path / "cache"
    folds = folds_for(data.table, 5, 0)
    teachers = _teachers(synth_root / "oracle-teachers-nsl", data.corpus.classes)
    train_fold(make_config("nsl-cnn-lstm", epochs=1, nsl_epsilon=0.3), data, folds[0], None, teachers, progress=False)
    assert len(list((tmp_path / "cache" / "graphs").glob("*.npz"))) == 1


def test_the_methods_table_is_what_configs_and_the_loop_use():
    """One table: every method a configuration may name has one Method class, in its own module."""
    from liser.configs import METHOD_FIELDS, METHODS as CONFIG_METHODS
    from liser.methods import METHODS, Method

    assert tuple(METHODS) == CONFIG_METHODS == tuple(METHOD_FIELDS)
    modules = {cls.__module__ for cls in METHODS.values()}
    assert modules == {f"liser.methods.{name}" for name in METHODS}
    for name, cls in METHODS.items():
        assert issubclass(cls, Method) and cls.name == name and cls.loss is not Method.loss


def test_a_new_method_is_one_class_and_one_table_entry(transcribed, monkeypatch):
    """What the README's contributor section promises: register a Method and the one loop trains it."""
    import liser.configs as configs
    from liser.methods import METHODS, Method
    from liser.methods.liser import LiSER

    class Halved(Method):
        """LiSER's labeled loss at half weight: a method with nothing but a loss."""

        name = "halved"
        calls = 0

        def __init__(self, cfg, teachers, train_ids, feats, cache_dir=None):
            super().__init__(cfg, teachers, train_ids, feats, cache_dir)
            self.counts["halved_train_clips"] = len(train_ids)

        def loss(self, model, device, labeled, unlabeled, rng):
            Halved.calls += 1
            terms = LiSER.loss(self, model, device, labeled, None, rng)
            return {k: v * 0.5 for k, v in terms.items() if v is not None}

    monkeypatch.setitem(METHODS, "halved", Halved)
    monkeypatch.setitem(configs.METHOD_FIELDS, "halved", ())
    cfg = make_config("no-dstl", method="halved", epochs=1, batch_size=16)
    fold = folds_for(transcribed.corpus.manifest, 5, 0)[0]
    result = train_fold(cfg, transcribed, fold, progress=False)
    assert Halved.calls == result.counts["steps_per_epoch"] > 0
    assert result.counts["halved_train_clips"] == result.counts["train"]
    assert 0 <= result.test.uar <= 1 and result.history[-1]["loss"] > 0


def test_the_old_student_name_still_loads(transcribed, tmp_path):
    """'liser' named the CNN-LSTM student before 'cnn-lstm' did: configs and checkpoints that say so still work."""
    from liser.configs import TrainConfig
    from liser.model import Student

    assert make_config("no-dstl", student="liser").student == "cnn-lstm"
    cfg = make_config("no-dstl", epochs=1)
    fold = folds_for(transcribed.corpus.manifest, 5, 0)[0]
    out = train(cfg, transcribed, [fold], [0], tmp_path, progress=False, log=lambda *_: None)
    ckpt = out["folds"][0]["checkpoint"]
    payload = torch.load(ckpt, weights_only=True)
    assert payload["model_config"]["arch"] == "cnn-lstm" and payload["train_config"]["student"] == "cnn-lstm"
    payload["model_config"]["arch"] = "liser"  # as written before the rename
    payload["train_config"]["student"] = "liser"
    torch.save(payload, ckpt)
    model, meta = load_student(ckpt)
    assert isinstance(model, Student)
    assert TrainConfig.model_validate(meta["train_config"]).student == "cnn-lstm"
