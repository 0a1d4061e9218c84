"""Contract tests for the synthetic corpus: layout, determinism, speech-likeness,
emotion in prosody and faces, the videos, and the oracle teacher files."""

from __future__ import annotations

import math
import re
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from liser.constants import FERV39K_CLASSES, RAVDESS_EMOTIONS, TEACHER_SEGMENT_SECONDS, VIDEO_FPS
from liser.synth import corpus, face, generate
from liser.targets import TeacherOutputs

RAVDESS_NAME = re.compile(r"^03-01-(0[1-8])-(0[12])-(0[12])-(0[12])-(\d\d)\.wav$")
MSP_NAME = re.compile(r"^MSP-FACE_\d{4}_\d{4}$")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """Two actors (one male, one female) and six videos, one of them with a face-less stretch."""
    out = tmp_path_factory.mktemp("synth")
    summary = generate(out, actors=2, unlabeled_clips=6, seed=0, workers=1, progress=False)
    return out, summary


def _wav(out: Path, actor: int, emotion: int, intensity: int = 1, statement: int = 1, rep: int = 1) -> tuple[np.ndarray, int]:
    x, sr = sf.read(out / "ravdess" / f"Actor_{actor:02d}" / corpus.ravdess_name(emotion, intensity, statement, rep, actor))
    return x, sr


def _frames(x: np.ndarray, sr: int, seconds: float, hop_seconds: float = 0.01) -> np.ndarray:
    win, hop = int(seconds * sr), int(hop_seconds * sr)
    return np.lib.stride_tricks.sliding_window_view(x, win)[::hop]


def _f0(frame: np.ndarray, sr: int, fmin: float = 60, fmax: float = 500) -> float | None:
    """Autocorrelation pitch of one frame, or None when it is not clearly periodic."""
    f = (frame - frame.mean()) * np.hanning(len(frame))
    ac = np.correlate(f, f, "full")[len(f) - 1 :]
    if ac[0] <= 0:
        return None
    ac = ac / ac[0]
    lo, hi = int(sr / fmax), int(sr / fmin)
    lag = lo + int(np.argmax(ac[lo:hi]))
    return sr / lag if ac[lag] > 0.5 else None


def _clip_f0(x: np.ndarray, sr: int) -> float:
    """Median pitch over the loud frames of a clip."""
    frames = _frames(x, sr, 0.04)
    rms = np.sqrt((frames**2).mean(1))
    pitches = [_f0(frames[i], sr) for i in np.flatnonzero(rms > 0.3 * rms.max())]
    pitches = [p for p in pitches if p is not None]
    assert len(pitches) >= 5, "too few voiced frames"
    return float(np.median(pitches))


def _active_rms(x: np.ndarray, sr: int) -> float:
    frames = _frames(x, sr, 0.02)
    rms = np.sqrt((frames**2).mean(1))
    return float(rms[rms > 0.1 * rms.max()].mean())


# --- Layout --------------------------------------------------------------------------


def test_ravdess_layout(tiny: tuple[Path, dict]) -> None:
    out, summary = tiny
    assert summary["ravdess_clips"] == 120
    for actor in (1, 2):
        files = sorted((out / "ravdess" / f"Actor_{actor:02d}").iterdir())
        assert len(files) == 60
        codes = set()
        for f in files:
            m = RAVDESS_NAME.match(f.name)
            assert m, f.name
            emotion, intensity, statement, rep, who = (int(g) for g in m.groups())
            assert who == actor
            if RAVDESS_EMOTIONS[emotion - 1] == "neutral":
                assert intensity == 1, f"neutral has no strong intensity: {f.name}"
            codes.add((emotion, intensity, statement, rep))
            info = sf.info(f)
            assert (info.subtype, info.samplerate, info.channels) == ("PCM_16", 16000, 1)
            assert 3.0 <= info.duration <= 4.0, (f.name, info.duration)
        assert codes == set(corpus.ravdess_codes())


def test_wavs_are_never_silent_or_exactly_zero(tiny: tuple[Path, dict]) -> None:
    out, _ = tiny
    for f in (out / "ravdess" / "Actor_01").iterdir():
        pcm, _ = sf.read(f, dtype="int16")
        assert np.abs(pcm).max() > 1000, f.name  # speech is there
        lead = pcm[:1600]  # the first 0.1 s is near-silence, but a noise floor, not digital zero
        assert np.abs(lead).max() < 500 and np.count_nonzero(lead) > 800, f.name


def test_requested_sample_rate(tmp_path: Path) -> None:
    generate(tmp_path, actors=1, unlabeled_clips=0, sample_rate=22050, workers=1, progress=False)
    info = sf.info(next((tmp_path / "ravdess" / "Actor_01").iterdir()))
    assert info.samplerate == 22050 and 3.0 <= info.duration <= 4.0


def test_avclip_layout_and_truth(tiny: tuple[Path, dict]) -> None:
    out, summary = tiny
    clips = sorted((out / "avclips").iterdir())
    assert len(clips) == 6 and all(c.suffix == ".mp4" and MSP_NAME.match(c.stem) for c in clips)
    truth = pd.read_csv(out / "avclips_truth.csv", dtype={"source_video": str})
    assert list(truth.columns[:6]) == ["clip_id", "source_video", "emotion", "ferv_class", "duration", "face_visible_fraction"]
    assert sorted(truth.clip_id) == [c.stem for c in clips]
    assert all(cid.split("_")[1] == sv for cid, sv in zip(truth.clip_id, truth.source_video))
    assert truth.emotion.isin(RAVDESS_EMOTIONS).all()
    assert (truth.ferv_class == truth.emotion.map(face.FERV_OF_EMOTION)).all()
    assert truth.duration.between(3.0, 8.0).all()
    assert (truth.face_visible_fraction < 1).sum() == summary["no_face_clips"] >= 1
    assert (out / "README.txt").read_text().count("HIDDEN TRUTH") == 1


def test_plan_groups_segments_by_source_video() -> None:
    plans = corpus.plan_avclips(200, seed=3)
    assert len({p.clip_id for p in plans}) == 200
    per_video = pd.Series([p.source_video for p in plans]).value_counts()
    assert per_video.max() > 1 and len(per_video) < 100
    assert 15 <= sum(p.no_face is not None for p in plans) <= 25


# --- Determinism ---------------------------------------------------------------------


def test_same_seed_same_bytes_any_workers(tiny: tuple[Path, dict], tmp_path: Path) -> None:
    generate(tmp_path, actors=1, unlabeled_clips=6, seed=0, workers=2, progress=False)
    for f in (tiny[0] / "ravdess" / "Actor_01").iterdir():
        assert (tmp_path / "ravdess" / "Actor_01" / f.name).read_bytes() == f.read_bytes(), f.name
    for f in (tiny[0] / "avclips").iterdir():  # the same clip contents too
        assert (tmp_path / "avclips" / f.name).read_bytes() == f.read_bytes(), f.name


def test_different_seed_differs(tiny: tuple[Path, dict], tmp_path: Path) -> None:
    generate(tmp_path, actors=1, unlabeled_clips=0, seed=1, workers=1, progress=False)
    names = [f.name for f in (tiny[0] / "ravdess" / "Actor_01").iterdir()]
    same = [n for n in names if (tmp_path / "ravdess" / "Actor_01" / n).read_bytes() == (tiny[0] / "ravdess" / "Actor_01" / n).read_bytes()]
    assert not same


# --- Speech-likeness -----------------------------------------------------------------


@pytest.mark.parametrize("actor", [1, 2])
def test_pitch_in_speaker_range(tiny: tuple[Path, dict], actor: int) -> None:
    out, _ = tiny
    low, high = (150, 330) if actor % 2 == 0 else (75, 190)
    voice = corpus.actor_speaker(0, actor)
    for statement in (1, 2):
        f0 = _clip_f0(*_wav(out, actor, 1, statement=statement))
        assert low <= f0 <= high, f0
        assert abs(math.log2(f0 / voice.f0_hz)) < 0.5  # within half an octave of the speaker's level


def test_harmonic_structure(tiny: tuple[Path, dict]) -> None:
    """A voiced frame has spectral peaks at multiples of F0, with valleys between them."""
    x, sr = _wav(tiny[0], 1, 1)
    frames = _frames(x, sr, 0.064)
    frame = frames[np.argmax((frames**2).sum(1))]
    f0 = _f0(frame, sr)
    assert f0 is not None
    spec = 20 * np.log10(np.abs(np.fft.rfft(frame * np.hanning(len(frame)), 8 * len(frame))) + 1e-12)
    freqs = np.fft.rfftfreq(8 * len(frame), 1 / sr)

    def level(f: float, tol: float) -> float:
        band = (freqs > f - tol) & (freqs < f + tol)
        return float(spec[band].max())

    contrast = [level(k * f0, 0.04 * f0) - level((k + 0.5) * f0, 0.1 * f0) for k in range(1, 6)]
    assert np.mean(contrast) > 10, contrast
    assert sum(c > 3 for c in contrast) >= 4, contrast


def test_syllable_rate_envelope(tiny: tuple[Path, dict]) -> None:
    """The energy envelope of the spoken part is modulated at a syllable rate (2-8 Hz)."""
    out, _ = tiny
    hop = 0.005
    for actor in (1, 2):
        for emotion in (1, 4, 5, 8):  # neutral, sad (slow), angry (fast), surprised
            for statement in (1, 2):
                x, sr = _wav(out, actor, emotion, statement=statement)
                frames = _frames(x, sr, 0.02, hop)
                env = np.sqrt((frames**2).mean(1))
                active = np.flatnonzero(env > 0.05 * env.max())
                env = env[active[0] : active[-1] + 1]
                k = int(0.4 / hop)  # remove the utterance-level contour (< 2.5 Hz)
                env = env - np.convolve(env, np.ones(k) / k, mode="same")
                power = np.abs(np.fft.rfft((env - env.mean()) * np.hanning(len(env)), 4096)) ** 2
                rates = np.fft.rfftfreq(4096, hop)
                band = (rates > 1) & (rates < 20)
                peak = rates[band][np.argmax(power[band])]
                assert 2 <= peak <= 8, (actor, emotion, statement, peak)


# --- Emotion in prosody and faces ----------------------------------------------------


@pytest.mark.parametrize("actor", [1, 2])
def test_prosody_carries_emotion(tiny: tuple[Path, dict], actor: int) -> None:
    out, _ = tiny
    codes = corpus.ravdess_codes()

    def clips(name: str) -> list[tuple[np.ndarray, int]]:
        e = RAVDESS_EMOTIONS.index(name) + 1
        return [_wav(out, actor, e, i, s, r) for (ee, i, s, r) in codes if ee == e]

    def mean_f0(names: list[str]) -> float:
        return float(np.mean([np.log2(_clip_f0(*c)) for n in names for c in clips(n)]))

    aroused, low = mean_f0(["angry", "happy", "surprised"]), mean_f0(["sad", "calm"])
    assert aroused > low + 0.15, (aroused, low)  # > ~2 semitones apart
    angry = np.mean([_active_rms(*c) for c in clips("angry")])
    sad = np.mean([_active_rms(*c) for c in clips("sad")])
    assert angry > 1.5 * sad, (angry, sad)


def test_face_shows_expression_in_mouth_region() -> None:
    style = face.draw_face_style(np.random.default_rng(7))
    mouth = np.zeros(10)
    happy, _ = face.render_clip(style, "happy", 1.0, mouth, np.random.default_rng(1), 112, VIDEO_FPS)
    sad, _ = face.render_clip(style, "sad", 1.0, mouth, np.random.default_rng(1), 112, VIDEO_FPS)
    diff = np.abs(happy.astype(int) - sad.astype(int)).sum(-1)
    rows = np.flatnonzero(diff.max((0, 2)) > 30)
    assert rows.size, "happy and sad faces look the same"
    size = 112
    centre = size * 0.44 + style.head_size * size * style.aspect * style.mouth_y
    mouth_rows = diff[:, int(centre - 12) : int(centre + 12)].mean()
    top_rows = diff[:, : int(size * 0.15)].mean()
    assert mouth_rows > 5 * max(top_rows, 0.1), (mouth_rows, top_rows)


def test_talking_mouth_follows_speech() -> None:
    style = face.draw_face_style(np.random.default_rng(2))
    closed, _ = face.render_clip(style, "neutral", 0.5, np.zeros(4), np.random.default_rng(0), 112, VIDEO_FPS)
    opened, _ = face.render_clip(style, "neutral", 0.5, np.ones(4), np.random.default_rng(0), 112, VIDEO_FPS)
    assert np.abs(closed.astype(int) - opened.astype(int)).sum() > 1000


# --- Videos --------------------------------------------------------------------------


def test_mp4_streams_and_frame_counts(tiny: tuple[Path, dict]) -> None:
    out, _ = tiny
    truth = pd.read_csv(out / "avclips_truth.csv").set_index("clip_id")
    for path in sorted((out / "avclips").iterdir()):
        with av.open(str(path)) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.average_rate == VIDEO_FPS and (video.width, video.height) == (112, 112)
            assert audio.codec_context.name == "aac" and audio.sample_rate == 16000
            frames = sum(1 for _ in container.decode(video=0))
        assert frames == round(truth.loc[path.stem, "duration"] * VIDEO_FPS)
        with av.open(str(path)) as container:
            samples = np.concatenate([f.to_ndarray().ravel() for f in container.decode(audio=0)])
        assert abs(len(samples) / 16000 - truth.loc[path.stem, "duration"]) < 0.2
        assert np.abs(samples).max() > 0.01  # there is speech in the track


def test_no_face_stretch_has_no_face(tiny: tuple[Path, dict]) -> None:
    style = face.draw_face_style(np.random.default_rng(4))
    for kind in face.NO_FACE_KINDS:
        frames, visible = face.render_clip(style, "happy", 0.8, np.zeros(150), np.random.default_rng(5), 112, VIDEO_FPS, kind)
        assert 0 < visible.sum() < len(visible), kind
        assert frames.shape == (150, 112, 112, 3)
        # where no face is visible the frame differs strongly from a face frame
        gone = frames[~visible].astype(int).mean(0)
        there = frames[visible].astype(int).mean(0)
        assert np.abs(gone - there).mean() > 10, kind


# --- Oracle teachers -----------------------------------------------------------------


def test_oracle_teacher_files(tiny: tuple[Path, dict]) -> None:
    out, summary = tiny
    truth = pd.read_csv(out / "avclips_truth.csv").set_index("clip_id")
    speech_t = TeacherOutputs.load(out / "oracle-teachers" / "speech.npz")
    video_t = TeacherOutputs.load(out / "oracle-teachers" / "video.npz")
    assert (speech_t.kind, speech_t.classes) == ("speech", RAVDESS_EMOTIONS)
    assert (video_t.kind, video_t.classes) == ("video", FERV39K_CLASSES)
    assert speech_t.meta["teacher"] == "synthetic-oracle" and "note" in speech_t.meta
    for teacher in (speech_t, video_t):
        assert sorted(teacher.clip_ids) == sorted(truth.index)
        for cid, row in truth.iterrows():
            probs, valid = teacher.segments(cid)
            assert len(probs) == math.ceil(row.duration / TEACHER_SEGMENT_SECONDS - 1e-9)
            if teacher is speech_t or row.face_visible_fraction == 1:
                assert valid.all()
    hidden = truth[truth.face_visible_fraction < 1]
    assert len(hidden) >= 1
    for cid in hidden.index:
        assert not video_t.segments(cid)[1].all()
    assert set(summary["oracle_accuracy"]) == {"speech", "video"}


# ---------------------------------------------------------------- the conversational shift
def _conversation(style, seed: int, sr: int = 16_000):
    from liser.synth import conversation, speech

    spk = speech.draw_speaker(np.random.default_rng(seed), female=bool(seed % 2))
    return conversation.conversational_clip(spk, "happy", 6 * sr, np.random.default_rng(100 + seed), sr, style)


def test_conversation_style_sets_the_room_noise_and_the_speech_density():
    """The style's knobs are what the clips hold: room noise before the first breath group in
    its range, and LEGACY_STYLE's near back-to-back phrases fill far more of a clip with voice."""
    from liser.synth.conversation import CONVERSATION, LEGACY_STYLE

    for style in (CONVERSATION, LEGACY_STYLE):
        lead = [_conversation(style, s).wave[:800] for s in range(6)]  # the first 50 ms: room noise only
        db = [20 * np.log10(np.sqrt(np.mean(w.astype(float) ** 2))) for w in lead]
        assert style.noise_db[0] - 1.5 < min(db) and max(db) < style.noise_db[1] + 1.5, (style, db)
    density = {st: np.mean([np.mean(_conversation(st, s).voice > 0.2) for s in range(6)]) for st in (CONVERSATION, LEGACY_STYLE)}
    assert density[CONVERSATION] < 0.75 * density[LEGACY_STYLE], density


def test_a_conversation_style_changes_the_unlabeled_clips_only(tmp_path):
    from liser.synth.conversation import LEGACY_STYLE

    a = generate(tmp_path / "a", actors=1, unlabeled_clips=2, workers=1, progress=False)
    b = generate(tmp_path / "b", actors=1, unlabeled_clips=2, workers=1, progress=False, style=LEGACY_STYLE)
    wavs = sorted((tmp_path / "a" / "ravdess").rglob("*.wav"))
    assert wavs and all(p.read_bytes() == (tmp_path / "b" / p.relative_to(tmp_path / "a")).read_bytes() for p in wavs)
    clip = sorted((tmp_path / "a" / "avclips").glob("*.mp4"))[0].name
    assert (tmp_path / "a" / "avclips" / clip).read_bytes() != (tmp_path / "b" / "avclips" / clip).read_bytes()
    plan = ["clip_id", "source_video", "emotion", "ferv_class", "duration"]
    assert pd.read_csv(a["truth_csv"])[plan].equals(pd.read_csv(b["truth_csv"])[plan])  # same plan: same emotions
