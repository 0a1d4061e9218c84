import pytest

from liser.folds import load_folds, make_folds, save_folds

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
