"""IEMOCAP adapter: labels from EmoEvaluation, transcripts, speakers, skips, leave-one-session-out folds."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from liser.constants import IEMOCAP_EMOTIONS
from liser.corpora import load_corpus
from liser.corpora.iemocap import prepare
from liser.folds import folds_for

# (utterance suffix, emotion code, transcript) of each dialog; F/M speaks it.
IMPRO = [("F000", "neu", "Excuse me."), ("M000", "exc", "Yeah!"), ("F001", "hap", "Great."), ("M001", "ang", "No way."),
         ("F002", "sad", "I miss him."), ("M002", "fru", "Ugh."), ("F003", "xxx", "Hm.")]
SCRIPT = [("F000", "neu", "What's he going to say?"), ("M000", "sad", "Maybe nothing.")]
USABLE_PER_SESSION = 5 + 2


def _dialog(session_dir: Path, dialog: str, utterances, make_wav) -> None:
    """One dialog's wavs and its EmoEvaluation and transcription files, in the release's line formats."""
    evaluation = ["% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]", ""]
    transcript = []
    for i, (suffix, code, text) in enumerate(utterances):
        utt, start, end = f"{dialog}_{suffix}", 2.0 * i + 0.2901, 2.0 * i + 1.9357
        make_wav(session_dir / "sentences" / "wav" / dialog / f"{utt}.wav", seconds=0.6, sr=16_000)
        evaluation += [
            f"[{start:.4f} - {end:.4f}]\t{utt}\t{code}\t[2.5000, 3.0000, 3.5000]",
            "C-E1:\tNeutral;\t()",
            "C-E2:\tFrustration;\tAnger;\t(angry)",
            "A-E3:\tval 3; act 2; dom  2;\t()",
            "",
        ]
        transcript.append(f"{utt} [{start:07.4f}-{end:07.4f}]: {text}")
    transcript.append("F: [LAUGHTER]")  # unsegmented speech the real files contain
    for sub, lines in (("EmoEvaluation", evaluation), ("transcriptions", transcript)):
        path = session_dir / "dialog" / sub / f"{dialog}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def iemocap(tmp_path_factory: pytest.TempPathFactory, make_wav: Callable[..., Path]) -> Path:
    """Five sessions, an improvised and a scripted dialog each, plus files to skip in Session1."""
    root = tmp_path_factory.mktemp("iemocap") / "IEMOCAP_full_release"
    for n in range(1, 6):
        session = root / f"Session{n}"
        _dialog(session, f"Ses0{n}F_impro01", IMPRO, make_wav)
        _dialog(session, f"Ses0{n}M_script01_1", SCRIPT, make_wav)
    wav = root / "Session1" / "sentences" / "wav"
    make_wav(wav / "Ses01F_impro01" / "Ses01F_impro01_F099.wav", seconds=0.6, sr=16_000)  # no evaluation line
    make_wav(wav / "Ses01F_impro01" / "._Ses01F_impro01_F000.wav", seconds=0.6, sr=16_000)  # macOS metadata
    make_wav(wav / "Ses02F_impro01" / "Ses02F_impro01_F000.wav", seconds=0.6, sr=16_000)  # wrong session folder
    make_wav(wav / "Ses01F_impro01" / "notes.wav", seconds=0.6, sr=16_000)
    return root.parent


def test_four_classes_from_five_sessions(iemocap: Path) -> None:
    corpus = prepare(iemocap)
    frame = corpus.manifest
    assert corpus.name == "iemocap" and corpus.classes == IEMOCAP_EMOTIONS == ("neutral", "happy", "angry", "sad")
    assert len(frame) == 5 * USABLE_PER_SESSION
    assert {"gender", "session", "fold_group", "transcript", "dialog", "valence"} <= set(frame.columns)
    assert frame["label"].value_counts().to_dict() == {"neutral": 10, "happy": 10, "angry": 5, "sad": 10}
    assert (frame["label_index"] == frame["label"].map(IEMOCAP_EMOTIONS.index)).all()
    assert sorted(frame["session"].unique()) == [1, 2, 3, 4, 5]
    assert (frame["sample_rate"] == 16_000).all() and frame["video_path"].isna().all()


def test_hap_and_exc_are_both_happy(iemocap: Path) -> None:
    rows = prepare(iemocap).manifest.set_index("clip_id")
    assert rows.loc["Ses03F_impro01_M000", ["label", "emotion_code"]].tolist() == ["happy", "exc"]
    assert rows.loc["Ses03F_impro01_F001", ["label", "emotion_code"]].tolist() == ["happy", "hap"]


def test_speaker_is_the_gender_of_the_last_part(iemocap: Path) -> None:
    rows = prepare(iemocap).manifest.set_index("clip_id")
    # The dialog prefix (Ses01F / Ses01M) is not the speaker.
    assert rows.loc["Ses01F_impro01_M001", ["speaker", "gender"]].tolist() == ["Ses01_M", "male"]
    assert rows.loc["Ses01M_script01_1_F000", ["speaker", "gender"]].tolist() == ["Ses01_F", "female"]
    assert sorted(rows["speaker"].unique()) == [f"Ses0{n}_{g}" for n in range(1, 6) for g in "FM"]
    assert rows.loc["Ses05M_script01_1_M000", ["session", "fold_group", "dialog"]].tolist() == [5, "Session5", "Ses05M_script01_1"]


def test_transcripts_and_dimensions(iemocap: Path) -> None:
    rows = prepare(iemocap).manifest.set_index("clip_id")
    assert rows.loc["Ses01F_impro01_F000", "transcript"] == "Excuse me."
    assert rows.loc["Ses04M_script01_1_F000", "transcript"] == "What's he going to say?"
    assert rows.loc["Ses02F_impro01_F000", ["valence", "activation", "dominance"]].tolist() == [2.5, 3.0, 3.5]


def test_excluded_labels_and_bad_files_are_counted(iemocap: Path) -> None:
    skipped = prepare(iemocap).skipped
    counts = skipped["reason"].value_counts().to_dict()
    assert counts["label 'fru' (frustrated) is not one of the 4 classes"] == 5
    assert counts["label 'xxx' (no agreement) is not one of the 4 classes"] == 5
    reasons = {Path(p).name: r for p, r in zip(skipped["path"], skipped["reason"])}
    assert reasons["Ses01F_impro01_F099.wav"] == "no line in the dialog's EmoEvaluation file"
    assert "macOS" in reasons["._Ses01F_impro01_F000.wav"]
    assert reasons["Ses02F_impro01_F000.wav"] == "session 2 in name but folder Session1"
    assert "not an utterance id" in reasons["notes.wav"]
    assert len(skipped) == 10 + 4


def test_root_may_be_the_release_folder_itself(iemocap: Path) -> None:
    assert len(prepare(iemocap / "IEMOCAP_full_release").manifest) == 5 * USABLE_PER_SESSION
    assert len(load_corpus(f"iemocap:{iemocap}").manifest) == 5 * USABLE_PER_SESSION


def test_missing_sessions_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Session1..Session5 folders"):
        prepare(tmp_path)


def test_folds_leave_one_session_out(iemocap: Path) -> None:
    folds = folds_for(prepare(iemocap).manifest, 5, seed=7)
    assert len(folds) == 5
    for k, f in enumerate(folds):
        train, val, test = set(f.train), set(f.val), set(f.test)
        assert not (train & val) and not (train & test) and not (val & test)
        assert test == {f"Ses0{k + 1}_F", f"Ses0{k + 1}_M"}
        assert val == {f"Ses0{(k + 1) % 5 + 1}_F", f"Ses0{(k + 1) % 5 + 1}_M"}
        assert len(train) == 6
    assert sorted(s for f in folds for s in f.test) == sorted({s for f in folds for s in f.train + f.val + f.test})
    with pytest.raises(ValueError, match="fixes its folds by 5 groups.*ask for 5"):
        folds_for(prepare(iemocap).manifest, 3)


def test_cli_data_check_and_folds(iemocap: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from liser.cli import main

    def run(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        return result.exit_code, result.output

    code, out = run("data", "check", f"iemocap:{iemocap}", "--cache-dir", tmp_path / "cache")
    assert code == 0, out
    assert "usable clips   35  from 10 speakers" in out and "neutral 10, happy 10, angry 5, sad 10" in out
    assert "label 'fru' (frustrated) is not one of the 4 classes" in out
    code, out = run("data", "folds", f"iemocap:{iemocap}", "--out", tmp_path / "folds.json")
    assert code == 0, out
    folds = json.loads((tmp_path / "folds.json").read_text())["folds"]
    assert [f["test"] for f in folds] == [[f"Ses0{n}_F", f"Ses0{n}_M"] for n in range(1, 6)]
