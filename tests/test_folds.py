import pytest

from liser.folds import folds_for, load_folds, make_folds, make_group_folds, save_folds

SPEAKERS = [f"{i:02d}" for i in range(1, 25)]
GENDER = {s: "male" if int(s) % 2 else "female" for s in SPEAKERS}


def test_folds_are_speaker_independent_and_test_everyone_once():
    folds = make_folds(SPEAKERS, 5, seed=3, strata=GENDER)
    assert len(folds) == 5
    tested = []
    for f in folds:
        train, val, test = set(f.train), set(f.val), set(f.test)
        assert not (train & val) and not (train & test) and not (val & test)
        assert train | val | test == set(SPEAKERS)
        assert {GENDER[s] for s in test} == {"male", "female"}
        tested += f.test
    assert sorted(tested) == SPEAKERS  # every speaker in test exactly once


def test_folds_deterministic_from_seed_and_roundtrip(tmp_path):
    assert make_folds(SPEAKERS, seed=1) == make_folds(SPEAKERS, seed=1)
    assert make_folds(SPEAKERS, seed=1) != make_folds(SPEAKERS, seed=2)
    folds = make_folds(SPEAKERS, seed=1)
    path = save_folds(folds, tmp_path / "folds.json", corpus="ravdess")
    assert load_folds(path, SPEAKERS) == folds
    with pytest.raises(ValueError, match="does not match the corpus"):
        load_folds(path, SPEAKERS[:-1])


def test_too_few_speakers_is_a_clear_error():
    with pytest.raises(ValueError, match="3 speakers cannot fill 5"):
        make_folds(["a", "b", "c"], 5)


def test_group_folds_rotate_over_the_groups():
    groups = {f"Session{n}": [f"Ses0{n}_F", f"Ses0{n}_M"] for n in range(1, 6)}
    folds = make_group_folds(groups)
    assert len(folds) == 5
    for k, f in enumerate(folds):
        train, val, test = set(f.train), set(f.val), set(f.test)
        assert not (train & val) and not (train & test) and not (val & test)
        assert test == set(groups[f"Session{k + 1}"]) and val == set(groups[f"Session{(k + 1) % 5 + 1}"])
        assert train | val | test == {s for spk in groups.values() for s in spk}
    assert sorted(s for f in folds for s in f.test) == sorted(s for spk in groups.values() for s in spk)


def test_group_folds_refuse_a_speaker_in_two_groups():
    with pytest.raises(ValueError, match="speaker 'x' is in fold groups 'a' and 'b'"):
        make_group_folds({"a": ["x"], "b": ["x", "y"], "c": ["z"]})
    with pytest.raises(ValueError, match="2 fold groups"):
        make_group_folds({"a": ["x"], "b": ["y"]})


def test_folds_for_uses_the_group_column_only_when_there_is_one():
    import pandas as pd

    manifest = pd.DataFrame({"speaker": SPEAKERS, "gender": [GENDER[s] for s in SPEAKERS]})
    assert folds_for(manifest, 5, seed=3) == make_folds(SPEAKERS, 5, seed=3, strata=GENDER)
    manifest["fold_group"] = [f"g{int(s) % 3}" for s in SPEAKERS]
    folds = folds_for(manifest, 3, seed=3)
    assert [set(f.test) for f in folds] == [{s for s in SPEAKERS if int(s) % 3 == k} for k in range(3)]


def test_record_folds_keeps_the_same_split_and_refuses_another(tmp_path):
    """A run folder records one split: the same one is kept as is, another is refused, a damaged record rewritten."""
    from liser.errors import DataError
    from liser.folds import record_folds

    folds, other = make_folds(SPEAKERS, seed=1), make_folds(SPEAKERS, seed=2)
    path = record_folds(folds, tmp_path / "folds.json", corpus="ravdess", seed=1)
    stamp = path.stat().st_mtime_ns
    assert record_folds(folds, path, corpus="ravdess", seed=1) == path and path.stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match=r"records another fold split.*--fold-file"):
        record_folds(other, path, corpus="ravdess", seed=2)
    assert load_folds(path) == folds  # the refused split did not replace the record
    path.write_text('{"folds": 3')
    record_folds(other, path, corpus="ravdess", seed=2)
    assert load_folds(path) == other


def test_resolve_folds_and_the_fold_list():
    import pandas as pd

    from liser.folds import parse_fold_list, resolve_folds

    manifest = pd.DataFrame({"speaker": SPEAKERS, "gender": [GENDER[s] for s in SPEAKERS]})
    assert resolve_folds(manifest, seed=4) == folds_for(manifest, 5, 4)
    assert parse_fold_list("all", 5) == [0, 1, 2, 3, 4] and parse_fold_list("3,1,3", 5) == [1, 3]
    with pytest.raises(ValueError, match=r"fold\(s\) \[7\] do not exist; folds are 0..4"):
        parse_fold_list("1,7", 5)
    with pytest.raises(ValueError, match="comma-separated fold numbers"):
        parse_fold_list("first", 5)
