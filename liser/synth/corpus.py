"""Write a synthetic stand-in for RAVDESS, MSP-Face and the two teachers' outputs.

Layout under ``out_dir`` (see :func:`generate`)::

    ravdess/Actor_XX/03-01-EE-II-SS-RR-AA.wav   labeled acted speech, exact RAVDESS naming
    avclips/MSP-FACE_vvvv_ssss.mp4              unlabeled talking-face videos with audio
    avclips_truth.csv                           hidden emotions of the videos (diagnostics only)
    oracle-teachers/speech.npz, video.npz       noisy oracle teacher outputs (TeacherOutputs)
    cremad/AudioWAV/1001_DFA_ANG_XX.wav         (``cremad_actors`` > 0) CREMA-D naming, 6 classes
    cremad/VideoDemographics.csv                the actors' sex, as CREMA-D ships it
    oracle-teachers-cremad/speech.npz, video.npz  oracles with a CREMA-D-class speech teacher
    transcribed.csv                             the ravdess/ clips as a ``table:`` corpus whose
                                                transcripts carry emotion (liser.synth.transcripts)
    oracle-teachers-emodistill/prosodic.npz, linguistic.npz   oracle EmoDistill teachers (ClipOutputs)
                                                for transcribed.csv
    oracle-teachers-nsl/upstream.npz            (``cremad_actors`` > 0) oracle NSL upstream embeddings
                                                of the cremad/ clips
    README.txt

Everything is derived from ``seed`` through per-item random streams keyed by the item's
name, so a clip's content does not depend on worker count or scheduling, and the same
seed gives byte-identical wav files.
"""

from __future__ import annotations

import math
import multiprocessing
import time
import wave as wave_module
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import pandas as pd
from tqdm import tqdm

from liser.constants import CREMAD_CODES, CREMAD_EMOTIONS, RAVDESS_EMOTIONS, TEACHER_SEGMENT_SECONDS, VIDEO_FPS
from liser.synth import conversation, face, speech
from liser.synth.oracle import oracle_accuracy, oracle_teachers
from liser.synth.seeds import named_rng
from liser.synth.transcripts import transcript
from liser.errors import DataError

STATEMENT_TEXT = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}

# Hidden emotion prior of the in-the-wild clips: mostly neutral and happy, as in vlogs.
AVCLIP_EMOTION_PRIOR = {
    "neutral": 0.28,
    "calm": 0.1,
    "happy": 0.2,
    "sad": 0.1,
    "angry": 0.08,
    "fearful": 0.06,
    "disgust": 0.06,
    "surprised": 0.12,
}
NO_FACE_SHARE = 0.1  # share of videos with a stretch where no face can be found
# avclips_truth.csv: the first six are the contract; the last two help diagnose teachers.
TRUTH_COLUMNS = ["clip_id", "source_video", "emotion", "ferv_class", "duration", "face_visible_fraction", "expression_intensity", "no_face"]
MIN_SECONDS, MAX_SECONDS = 3.0, 8.0  # video clip length

# H.264 is what real vlog videos carry; PyAV wheels ship libx264. mpeg4 is FFmpeg-native.
VIDEO_CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
CODEC_NAMES = {"libx264": "H.264", "mpeg4": "MPEG-4 Part 2"}
AUDIO_CODEC = "aac"  # FFmpeg's native AAC encoder


# --- RAVDESS -------------------------------------------------------------------------


def ravdess_name(emotion: int, intensity: int, statement: int, repetition: int, actor: int) -> str:
    """RAVDESS file name: modality 03 (audio-only), vocal channel 01 (speech), then the codes."""
    return f"03-01-{emotion:02d}-{intensity:02d}-{statement:02d}-{repetition:02d}-{actor:02d}.wav"


def ravdess_codes() -> list[tuple[int, int, int, int]]:
    """(emotion, intensity, statement, repetition) of one actor's 60 clips; neutral has no strong."""
    return [
        (e, i, s, r)
        for e in range(1, len(RAVDESS_EMOTIONS) + 1)
        for i in ((1,) if RAVDESS_EMOTIONS[e - 1] == "neutral" else (1, 2))
        for s in (1, 2)
        for r in (1, 2)
    ]


def actor_speaker(seed: int, actor: int) -> speech.Speaker:
    """The voice of RAVDESS actor ``actor``: odd actors are male, even are female."""
    return speech.draw_speaker(named_rng(seed, "actor", actor), female=actor % 2 == 0)


def _write_wav(path: Path, wave: np.ndarray, sr: int) -> None:
    """16-bit PCM mono, quantised here so the bytes depend on nothing but the samples.

    The stdlib writer, because libsndfile syncs every file to disk on close (slow).
    """
    pcm = np.round(np.clip(wave, -1, 1) * 32767).astype("<i2")
    with wave_module.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sr)
        out.writeframes(pcm.tobytes())


def _write_actor(out_dir: Path, actor: int, seed: int, sr: int) -> int:
    """All 60 clips of one actor; returns how many were written."""
    folder = out_dir / f"Actor_{actor:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    voice = actor_speaker(seed, actor)
    codes = ravdess_codes()
    for e, i, s, r in codes:
        name = ravdess_name(e, i, s, r, actor)
        wave = speech.acted_clip(voice, RAVDESS_EMOTIONS[e - 1], i == 2, s, named_rng(seed, "ravdess", name), sr)
        _write_wav(folder / name, wave, sr)
    return len(codes)


TRANSCRIBED_CSV = "transcribed.csv"


def _write_oracle_clip_teachers(out: Path, transcribed_csv: Path, seed: int, cremad: bool) -> dict[str, str]:
    """Oracle EmoDistill teachers for the transcribed corpus and an oracle NSL upstream for the CREMA-D one."""
    from liser.corpora import load_corpus
    from liser.synth.oracle_clips import oracle_clip_outputs

    written = {}
    corpus = load_corpus(f"table:{transcribed_csv}")
    for kind in ("prosodic", "linguistic"):
        written[kind] = str(oracle_clip_outputs(corpus, kind, seed).save(out / "oracle-teachers-emodistill" / f"{kind}.npz"))
    if cremad:
        target = load_corpus(f"cremad:{out / 'cremad'}")
        written["upstream"] = str(oracle_clip_outputs(target, "upstream", seed).save(out / "oracle-teachers-nsl" / "upstream.npz"))
    return written


def _write_transcribed(out_dir: Path, actors: int, seed: int) -> Path:
    """``transcribed.csv``: the RAVDESS-layout clips as a generic ``table:`` corpus whose
    transcripts carry emotion as conversational speech does (see :mod:`liser.synth.transcripts`).

    Same audio, speakers spelled as the ravdess adapter spells them ("01"); each transcript is
    keyed by the clip's RAVDESS file stem, so it does not depend on where the corpus lies.
    """
    rows = []
    for actor in range(1, actors + 1):
        for e, i, s, r in ravdess_codes():
            name = ravdess_name(e, i, s, r, actor)
            emotion = RAVDESS_EMOTIONS[e - 1]
            rows.append(
                {
                    "path": f"ravdess/Actor_{actor:02d}/{name}",
                    "speaker": f"{actor:02d}",
                    "label": emotion,
                    "gender": "female" if actor % 2 == 0 else "male",
                    "transcript": transcript(emotion, Path(name).stem, seed),
                }
            )
    path = out_dir / TRANSCRIBED_CSV
    pd.DataFrame(rows, columns=["path", "speaker", "label", "gender", "transcript"]).to_csv(path, index=False)
    return path


# --- CREMA-D-like speech ------------------------------------------------------------
CREMAD_SENTENCES = ("IEO", "TIE", "IOM", "DFA")  # four of the corpus's 12 sentence codes


def _write_cremad_actor(out_dir: Path, actor: int, seed: int, sr: int) -> int:
    """One CREMA-D-style actor: every emotion on each sentence, level unspecified (XX)."""
    folder = out_dir / "AudioWAV"
    folder.mkdir(parents=True, exist_ok=True)
    voice = speech.draw_speaker(named_rng(seed, "cremad-actor", actor), female=actor % 2 == 0)
    n = 0
    for i, sentence in enumerate(CREMAD_SENTENCES):
        for code, emotion in zip(CREMAD_CODES, CREMAD_EMOTIONS):
            name = f"{actor}_{sentence}_{code}_XX.wav"
            _write_wav(folder / name, speech.acted_clip(voice, emotion, False, 1 + i % 2, named_rng(seed, "cremad", name), sr), sr)
            n += 1
    return n


def _write_cremad_demographics(out_dir: Path, actors: list[int]) -> None:
    rows = [{"ActorID": a, "Age": 30, "Sex": "Female" if a % 2 == 0 else "Male", "Race": "Unknown", "Ethnicity": "Unknown"} for a in actors]
    pd.DataFrame(rows).to_csv(out_dir / "VideoDemographics.csv", index=False)


# --- MSP-Face-like videos ------------------------------------------------------------


@dataclass(frozen=True)
class AvClipPlan:
    """One video to render: who speaks, the hidden emotion, length, and any face-less stretch."""

    clip_id: str
    source_video: str
    emotion: str
    n_frames: int
    intensity: float  # expression strength 0..1 (subtle faces make the video teacher unsure)
    no_face: str | None


def plan_avclips(n: int, seed: int) -> list[AvClipPlan]:
    """Group ``n`` clips into source videos of 2-8 segments each and draw their hidden truth."""
    rng = named_rng(seed, "avclip-plan")
    emotions, prior = list(AVCLIP_EMOTION_PRIOR), np.array(list(AVCLIP_EMOTION_PRIOR.values()))
    hidden = set(rng.choice(n, min(n, max(1, round(NO_FACE_SHARE * n))), replace=False).tolist()) if n else set()
    plans: list[AvClipPlan] = []
    video = 0
    while len(plans) < n:
        video += 1
        segment = int(rng.integers(1, 5))
        for _ in range(int(rng.integers(2, 9))):
            if len(plans) == n:
                break
            k = len(plans)
            plans.append(
                AvClipPlan(
                    clip_id=f"MSP-FACE_{video:04d}_{segment:04d}",
                    source_video=f"{video:04d}",
                    emotion=str(rng.choice(emotions, p=prior / prior.sum())),
                    n_frames=int(rng.integers(int(MIN_SECONDS * VIDEO_FPS), int(MAX_SECONDS * VIDEO_FPS) + 1)),
                    intensity=float(rng.uniform(*face.EXPRESSION_INTENSITY)),
                    no_face=str(face.NO_FACE_KINDS[k % len(face.NO_FACE_KINDS)]) if k in hidden else None,
                )
            )
            segment += int(rng.integers(1, 4))  # gaps, as segments without speech were dropped
    return plans


def video_person(seed: int, source_video: str) -> tuple[speech.Speaker, face.FaceStyle]:
    """The speaker of a source video: voice and look (55 % male, as in the paper's MSP-Face)."""
    rng = named_rng(seed, "video", source_video)
    return speech.draw_speaker(rng, female=bool(rng.random() < 0.45)), face.draw_face_style(rng)


def _write_mp4(path: Path, frames: np.ndarray, audio: np.ndarray, sr: int) -> None:
    """H.264 (or MPEG-4 Part 2) video at VIDEO_FPS plus an AAC mono track, interleaved in time."""
    with av.open(str(path), "w", format="mp4") as out:
        vstream = out.add_stream(VIDEO_CODEC, rate=VIDEO_FPS)
        vstream.width, vstream.height = frames.shape[2], frames.shape[1]
        vstream.pix_fmt = "yuv420p"
        if VIDEO_CODEC == "libx264":  # one thread: deterministic output and no oversubscription
            vstream.options = {"preset": "ultrafast", "crf": "23", "threads": "1"}
        else:
            vstream.bit_rate = 500_000
        astream = out.add_stream(AUDIO_CODEC, rate=sr, layout="mono")
        astream.options = {"aac_coder": "fast"}
        audio = audio.astype(np.float32)
        chunk, pos = 1024, 0  # AAC frame size: hand the encoder whole frames
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            out.mux(vstream.encode(vf))
            while pos < len(audio) and pos < (i + 1) * sr / VIDEO_FPS:
                af = av.AudioFrame.from_ndarray(audio[None, pos : pos + chunk], format="fltp", layout="mono")
                af.sample_rate, af.pts = sr, pos
                out.mux(astream.encode(af))
                pos += chunk
        out.mux(vstream.encode())
        out.mux(astream.encode())


def _segment_fractions(mask: np.ndarray, per_segment: float, n_segments: int) -> np.ndarray:
    """Share of True in each 0.5 s segment of a per-sample (or per-frame) mask."""
    idx = np.minimum((np.arange(len(mask)) / per_segment).astype(int), n_segments - 1)
    hits = np.bincount(idx, weights=mask.astype(float), minlength=n_segments)
    return hits / np.maximum(np.bincount(idx, minlength=n_segments), 1)


def _write_avclip(
    out_dir: Path, plan: AvClipPlan, seed: int, sr: int, size: int, style: conversation.ConversationStyle = conversation.CONVERSATION
) -> dict[str, Any]:
    """Render one talking-face video; return its truth row and per-segment activity."""
    rng = named_rng(seed, "avclip", plan.clip_id)
    voice, look = video_person(seed, plan.source_video)
    n_samples = round(plan.n_frames / VIDEO_FPS * sr)
    talk = conversation.conversational_clip(voice, plan.emotion, n_samples, rng, sr, style)
    mouth = face.mouth_track(talk.voice, plan.n_frames, VIDEO_FPS, sr)
    ferv = face.FERV_OF_EMOTION[plan.emotion]
    frames, visible = face.render_clip(look, ferv, plan.intensity, mouth, rng, size, VIDEO_FPS, plan.no_face)
    _write_mp4(out_dir / f"{plan.clip_id}.mp4", frames, talk.wave, sr)
    duration = plan.n_frames / VIDEO_FPS
    n_seg = math.ceil(duration / TEACHER_SEGMENT_SECONDS - 1e-9)
    return {
        "clip_id": plan.clip_id,
        "source_video": plan.source_video,
        "emotion": plan.emotion,
        "ferv_class": ferv,
        "duration": duration,
        "face_visible_fraction": float(visible.mean()),
        "expression_intensity": plan.intensity,
        "no_face": plan.no_face or "",
        "_speech_activity": _segment_fractions(talk.voice > 0.2, TEACHER_SEGMENT_SECONDS * sr, n_seg),
        "_face_fraction": _segment_fractions(visible, TEACHER_SEGMENT_SECONDS * VIDEO_FPS, n_seg),
    }


# --- Driver --------------------------------------------------------------------------
README = """Synthetic LiSER corpus (liser.synth, seed {seed}).

ravdess/          {n_wav} labeled speech clips in the RAVDESS layout:
                  Actor_XX/03-01-EE-II-SS-RR-AA.wav
                    EE emotion 01-08: neutral, calm, happy, sad, angry, fearful, disgust, surprised
                    II intensity 01 normal / 02 strong (neutral has only 01)
                    SS statement 01 "{s1}" / 02 "{s2}"
                    RR repetition 01/02;  AA actor, odd = male, even = female
                  16-bit PCM mono, {sr} Hz, 3-4 s with near-silence around the speech.
avclips/          {n_mp4} unlabeled talking-face videos MSP-FACE_vvvv_ssss.mp4 (vvvv = source
                  video = one speaker, ssss = segment): {codec} video {size}x{size} at 30 fps
                  with an AAC mono audio track at {sr} Hz. Some have stretches with no face.
avclips_truth.csv hidden emotion of every video (emotion, ferv_class, ...). HIDDEN TRUTH for
                  tests and diagnostics only: never train on it; it lives outside avclips/
                  so the corpus adapter cannot read it.
transcribed.csv   the same {n_wav} ravdess/ clips as a generic CSV corpus (load it as
                  table:transcribed.csv) with a transcript per clip that carries emotion
                  as conversational speech does: 70 % words of the clip's own emotion,
                  15 % of another emotion, 15 % none (liser.synth.transcripts). The real
                  RAVDESS statements carry none, so use this file for a linguistic teacher.
oracle-teachers/  speech.npz and video.npz in the TeacherOutputs format: NOISY ORACLE
                  softmaxes (one per 0.5 s segment) made from the hidden truth, standing in
                  for the real HuBERT / S2D teachers. Video segments without a face are
                  marked invalid.
oracle-teachers-emodistill/  prosodic.npz and linguistic.npz (ClipOutputs: logits and an
                  embedding per clip of transcribed.csv): NOISY ORACLES for EmoDistill's
                  teachers, so `liser train --config emodistill` runs at once.
oracle-teachers-nsl/  upstream.npz (when CREMA-D-layout actors were made): oracle NSL
                  upstream embeddings of the cremad/ clips.

Speech is a source-filter synthesis whose prosody (pitch, range, rate, loudness,
brightness, jitter) follows the emotion. The videos' talk is a realistic shift from the
acted clips, carried by the same cues: rooms a few dB noisier, breath groups of
pseudo-words between pauses, weaker and more varied emotion, a vlog-like emotion prior
(liser.synth.conversation.ConversationStyle). Faces are drawn with expression-shaped brows,
eyes and mouth that move with the speech.
"""


def _run_jobs(jobs: list[tuple[Callable[..., Any], tuple]], workers: int, progress: bool) -> list[Any]:
    """Run (function, args) jobs, in worker processes when ``workers`` > 1; results in job order."""
    bar = tqdm(total=len(jobs), desc="synth", unit="job", disable=not progress)
    results: list[Any] = [None] * len(jobs)
    if workers <= 1:
        for i, (fn, args) in enumerate(jobs):
            results[i] = fn(*args)
            bar.update()
    else:
        # fork where there is one (as torch's DataLoader does): spawn would re-run the
        # caller's __main__ and fails for stdin scripts; workers only use numpy, scipy, av.
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
            futures = {pool.submit(fn, *args): i for i, (fn, args) in enumerate(jobs)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update()
    bar.close()
    return results


def generate(
    out_dir: str | Path,
    *,
    actors: int = 24,
    unlabeled_clips: int = 200,
    seed: int = 0,
    sample_rate: int = 16_000,
    video_size: int = 112,
    workers: int = 2,
    cremad_actors: int = 0,
    progress: bool = True,
    style: conversation.ConversationStyle = conversation.CONVERSATION,
) -> dict[str, Any]:
    """Write the synthetic corpus under ``out_dir`` and return a summary (counts, paths, seconds).

    ``style`` is how the unlabeled clips' talk departs from acted speech; other styles than
    the default serve diagnosis (``benchmarks/synthetic_world.py --legacy``).
    Existing files with the same names are overwritten; nothing else is deleted.
    """
    if video_size % 2:
        raise DataError(f"video_size must be even for yuv420p video, got {video_size}")
    if not 0 <= cremad_actors <= 91:
        raise DataError(f"cremad_actors must be 0..91 (CREMA-D actor ids 1001..1091), got {cremad_actors}")
    if not 1 <= actors <= 99:
        raise DataError(f"actors must be 1..99 (two-digit RAVDESS actor codes), got {actors}")
    start = time.perf_counter()
    out = Path(out_dir)
    ravdess_dir, clips_dir, teacher_dir = out / "ravdess", out / "avclips", out / "oracle-teachers"
    clips_dir.mkdir(parents=True, exist_ok=True)
    plans = plan_avclips(unlabeled_clips, seed)
    # Videos first: they are the longest jobs, so the pool ends with short ones.
    jobs: list[tuple[Callable[..., Any], tuple]] = [(_write_avclip, (clips_dir, p, seed, sample_rate, video_size, style)) for p in plans]
    jobs += [(_write_actor, (ravdess_dir, a, seed, sample_rate)) for a in range(1, actors + 1)]
    cremad_ids = list(range(1001, 1001 + cremad_actors))
    jobs += [(_write_cremad_actor, (out / "cremad", a, seed, sample_rate)) for a in cremad_ids]
    results = _run_jobs(jobs, workers, progress)
    rows = results[: len(plans)]
    n_wav = sum(results[len(plans) : len(plans) + actors])
    if cremad_ids:
        _write_cremad_demographics(out / "cremad", cremad_ids)
        for t in oracle_teachers(rows, seed, CREMAD_EMOTIONS):
            t.save(out / "oracle-teachers-cremad" / f"{t.kind}.npz")

    truth = pd.DataFrame([{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], columns=TRUTH_COLUMNS)
    truth_csv = out / "avclips_truth.csv"
    truth.to_csv(truth_csv, index=False)
    sp, vid = oracle_teachers(rows, seed)
    sp_path, vid_path = sp.save(teacher_dir / "speech.npz"), vid.save(teacher_dir / "video.npz")
    transcribed_csv = _write_transcribed(out, actors, seed)
    clip_teachers = _write_oracle_clip_teachers(out, transcribed_csv, seed, bool(cremad_ids))
    (out / "README.txt").write_text(
        README.format(
            seed=seed,
            n_wav=n_wav,
            sr=sample_rate,
            s1=STATEMENT_TEXT[1],
            s2=STATEMENT_TEXT[2],
            n_mp4=len(plans),
            codec=CODEC_NAMES[VIDEO_CODEC],
            size=video_size,
        )
    )
    return {
        "out_dir": str(out),
        "ravdess_dir": str(ravdess_dir),
        "avclips_dir": str(clips_dir),
        "truth_csv": str(truth_csv),
        "transcribed_csv": str(transcribed_csv),
        "oracle_clip_teachers": clip_teachers,
        "speech_teacher": str(sp_path),
        "video_teacher": str(vid_path),
        "actors": actors,
        "ravdess_clips": n_wav,
        "cremad_clips": sum(results[len(plans) + actors :]),
        "avclips": len(plans),
        "source_videos": len({p.source_video for p in plans}),
        "no_face_clips": sum(p.no_face is not None for p in plans),
        "sample_rate": sample_rate,
        "video_size": video_size,
        "video_codec": VIDEO_CODEC,
        "audio_codec": AUDIO_CODEC,
        "oracle_accuracy": {
            "speech": oracle_accuracy(sp, dict(zip(truth.clip_id, truth.emotion))),
            "video": oracle_accuracy(vid, dict(zip(truth.clip_id, truth.ferv_class))),
        },
        "seconds": round(time.perf_counter() - start, 2),
    }
