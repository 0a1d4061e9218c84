"""A small source-filter speech synthesizer whose prosody carries emotion.

Tests and demos need speech that a spectrogram CNN can learn emotion from, without
shipping RAVDESS or MSP-Face. Tones would be too easy and too unlike speech, so this
module builds a crude but real source-filter model:

* source: a Rosenberg glottal pulse driven by an integrated F0 phase (so harmonics are
  present), with declination, per-syllable pitch accents, jitter and shimmer, plus
  aspiration noise shaped by the glottal opening;
* spectral tilt: a double one-pole low-pass whose pole follows vocal effort ("brightness");
* vocal tract: five cascaded formant resonators (F1-F4 move per 10 ms frame along the
  syllables' vowels and consonant loci; F5 is fixed), applied as a causal block
  convolution in the frequency domain (one FFT per frame instead of a per-sample loop),
  plus a weak parallel high-frequency branch;
* consonants: closures, band-passed bursts and frication noise between vowels, so the
  energy envelope is modulated at the syllable rate (about 3-6 Hz).

Emotion acts only through prosody (:data:`EMOTION_PROSODY`), as in acted corpora where the
words are fixed; per-clip perturbations and a random recording gain keep the classes
overlapping, so no classifier reaches 100 %.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
import scipy.fft
from scipy.signal import butter, lfilter, sosfilt

from liser.synth.phonetics import (
    BANDWIDTHS, CONSONANTS, DIPHTHONGS, F5_HZ, FEMALE_TRACT, STATEMENTS, VOICE_IN_CONSONANT, VOWEL_FORMANTS, Consonant, Syllable,
)

# --- Speakers and emotions -----------------------------------------------------------


@dataclass(frozen=True)
class Speaker:
    """Per-speaker voice traits, fixed across all of that speaker's clips."""

    female: bool
    f0_hz: float  # neutral pitch level
    tract: float  # formant scale: vocal-tract length factor (female ~1.15)
    breathiness: float  # aspiration noise share, 0..1
    rate: float  # syllables per second in neutral speech
    jitter: float  # cycle-to-cycle F0 perturbation (fraction of F0)
    shimmer: float  # cycle-to-cycle amplitude perturbation (fraction)
    brightness: float  # speaker's own spectral tilt offset
    accent_st: float  # size of a full pitch accent in semitones


def draw_speaker(rng: np.random.Generator, female: bool) -> Speaker:
    """Draw voice traits: male F0 ~100-130 Hz, female ~190-240 Hz, and their spreads."""
    f0 = rng.uniform(190, 240) if female else rng.uniform(100, 130)
    tract = (FEMALE_TRACT if female else 1.0) * rng.uniform(0.94, 1.06)
    return Speaker(
        female=female,
        f0_hz=float(f0),
        tract=float(tract),
        breathiness=float(rng.uniform(0.05, 0.35) + (0.08 if female else 0.0)),
        rate=float(rng.uniform(3.6, 4.8)),
        jitter=float(rng.uniform(0.004, 0.012)),
        shimmer=float(rng.uniform(0.03, 0.08)),
        brightness=float(rng.normal(0.0, 0.3)),
        accent_st=float(rng.uniform(2.0, 3.5)),
    )


@dataclass(frozen=True)
class Prosody:
    """How one clip departs from the speaker's neutral voice."""

    pitch_st: float = 0.0  # pitch level shift, semitones
    range_scale: float = 1.0  # multiplies pitch-accent size
    rate_scale: float = 1.0  # multiplies speaking rate
    energy_db: float = 0.0  # loudness
    brightness: float = 0.0  # spectral tilt: + brighter (pressed, loud), - darker (soft)
    jitter_scale: float = 1.0  # multiplies the speaker's jitter
    final_st: float = -2.0  # utterance-final pitch movement (declarative fall < 0 < rise)


# Emotion profiles relative to neutral, after the acoustic-correlate literature
# (Juslin & Laukka 2003; Banse & Scherer 1996): anger and joy raise pitch, range, rate,
# loudness and brightness; sadness and calm lower them; fear is high, fast and jittery;
# surprise is high with a very wide range and a rising end; disgust is low and slow.
# Values are deliberately moderate: with per-clip spread they overlap, as real emotions do.
EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(),
    "calm": Prosody(pitch_st=-1.0, range_scale=0.75, rate_scale=0.9, energy_db=-3.0, brightness=-0.3, jitter_scale=0.9, final_st=-2.5),
    "happy": Prosody(pitch_st=3.0, range_scale=1.6, rate_scale=1.08, energy_db=3.0, brightness=0.4, jitter_scale=1.1, final_st=-1.0),
    "sad": Prosody(pitch_st=-1.5, range_scale=0.55, rate_scale=0.8, energy_db=-5.0, brightness=-0.6, jitter_scale=1.3, final_st=-3.0),
    "angry": Prosody(pitch_st=3.5, range_scale=1.7, rate_scale=1.12, energy_db=6.0, brightness=0.9, jitter_scale=1.3, final_st=-3.0),
    "fearful": Prosody(pitch_st=5.0, range_scale=1.2, rate_scale=1.18, energy_db=1.0, brightness=0.2, jitter_scale=2.2, final_st=0.5),
    "disgust": Prosody(pitch_st=-1.0, range_scale=1.1, rate_scale=0.85, energy_db=0.5, brightness=0.0, jitter_scale=1.4, final_st=-3.5),
    "surprised": Prosody(pitch_st=4.0, range_scale=2.0, rate_scale=1.0, energy_db=3.0, brightness=0.4, jitter_scale=1.1, final_st=5.0),
}
STRONG = 1.5  # RAVDESS intensity 02 exaggerates the deviations from neutral this much
MIN_RATE = 2.4  # syllables per second: keeps the slowest statement inside a 4 s clip

# Per-clip random spread of each prosodic parameter (additive for st/dB/brightness,
# log-normal sigma for the scales): what keeps emotion classes overlapping.
PROSODY_SPREAD = {
    "pitch_st": 1.5,
    "range_scale": 0.3,
    "rate_scale": 0.1,
    "energy_db": 3.0,
    "brightness": 0.45,
    "jitter_scale": 0.3,
    "final_st": 2.0,
}
_LOG_FIELDS = ("range_scale", "rate_scale", "jitter_scale")


def emotion_prosody(emotion: str, strength: float = 1.0, rng: np.random.Generator | None = None, spread: float = 1.0) -> Prosody:
    """The emotion's profile, deviations from neutral scaled by ``strength``, then jittered per clip."""
    base, target = EMOTION_PROSODY["neutral"], EMOTION_PROSODY[emotion]
    values = {}
    for name, sigma in PROSODY_SPREAD.items():
        b, t = getattr(base, name), getattr(target, name)
        if name in _LOG_FIELDS:  # exaggerate scales in the log domain so 0.5x stays symmetric to 2x
            value = np.log(b) + (np.log(t) - np.log(b)) * strength
            value += rng.normal(0, sigma * spread) if rng is not None else 0.0
            values[name] = float(np.exp(value))
        else:
            value = b + (t - b) * strength
            values[name] = float(value + (rng.normal(0, sigma * spread) if rng is not None else 0.0))
    return replace(base, **values)


# --- Rendering ------------------------------------------------------------------------


@dataclass
class Utterance:
    """A rendered phrase: the waveform and its voicing amplitude (drives the mouth)."""

    wave: np.ndarray  # float [n]
    voice: np.ndarray  # float [n], 0..~1.4, the syllable envelope of the voice source


@dataclass
class _Tracks:
    """Per-sample control tracks plus formant keypoints, built syllable by syllable."""

    voice: np.ndarray
    aspiration: np.ndarray
    frication: np.ndarray
    key_t: list[float]
    key_f: list[tuple[float, float, float, float]]


def _vowel_targets(vowel: str) -> tuple[tuple, tuple]:
    """Start and end formants of a vowel (equal for monophthongs)."""
    first, last = DIPHTHONGS.get(vowel, (vowel, vowel))
    return VOWEL_FORMANTS[first], VOWEL_FORMANTS[last]


@lru_cache(maxsize=64)
def _band_sos(low: float, high: float, sr: int) -> np.ndarray:
    """Band-pass for a consonant's noise, its upper edge kept under Nyquist."""
    nyq = sr / 2
    high = min(high, 0.92 * nyq)
    low = min(max(low, 100.0), 0.7 * high)
    return butter(2, [low / nyq, high / nyq], btype="band", output="sos")


@lru_cache(maxsize=64)
def _band_noise(low: float, high: float, sr: int) -> np.ndarray:
    """One second of unit-variance band-passed noise per band, from a fixed seed.

    Consonants cut random slices from it: far cheaper than filtering fresh noise each time.
    """
    noise = sosfilt(_band_sos(low, high, sr), np.random.default_rng(0).standard_normal(sr + 256))[256:]
    return (noise / noise.std()).astype(np.float32)


@lru_cache(maxsize=1)
def _white_bank() -> np.ndarray:
    """Twenty seconds' worth (at 16 kHz) of unit white noise from a fixed seed."""
    return np.random.default_rng(1).standard_normal(320_000).astype(np.float32)


def white_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Unit white noise of length ``n``: a random slice of a fixed bank (cheap, still seeded)."""
    bank = _white_bank()
    if n >= len(bank):
        return rng.standard_normal(n, np.float32)
    start = int(rng.integers(0, len(bank) - n))
    return bank[start : start + n]


def _noise_burst(rng: np.random.Generator, n: int, cons: Consonant, sr: int, decay: bool) -> np.ndarray:
    """Band-passed noise for a burst (decaying) or a fricative (rise-hold-fall)."""
    bank = _band_noise(cons.band[0], cons.band[1], sr)
    start = int(rng.integers(0, len(bank) - n)) if n < len(bank) else 0
    noise = np.resize(bank[start:], n)
    if decay:
        shape = np.exp(-np.arange(n) / max(n / 3, 1))
    else:
        shape = np.sin(np.pi * (np.arange(n) + 0.5) / n) ** 0.5
    return noise * shape * cons.level


def _consonant(tr: _Tracks, start: int, n: int, cons: Consonant, vowel_f: tuple, rng: np.random.Generator, sr: int, tract: float) -> None:
    """Write one consonant of ``n`` samples at ``start`` into the tracks."""
    end = min(start + n, len(tr.voice))
    n = end - start
    if n <= 0:
        return
    tr.voice[start:end] = VOICE_IN_CONSONANT[cons.kind] if cons.voiced else 0.0
    if cons.kind == "stop":  # closure, then the release burst
        burst = max(int(0.012 * sr), 1)
        b0 = max(end - burst, start)
        tr.frication[b0:end] += _noise_burst(rng, end - b0, cons, sr, decay=True)
    elif cons.kind == "fricative":
        tr.frication[start:end] += _noise_burst(rng, n, cons, sr, decay=False)
    locus = tuple(f * tract for f in cons.locus) + (vowel_f[3] * tract,)
    mid = (start + end) / 2 / sr
    tr.key_t.append(mid)
    tr.key_f.append(locus)


def _syllable_durations(syl: Syllable, seconds: float, cons_scale: float) -> tuple[list[float], float, list[float]]:
    """Onset consonant, vowel and coda consonant durations filling ``seconds``."""
    onset = [CONSONANTS[c].seconds * cons_scale for c in syl.onset]
    coda = [CONSONANTS[c].seconds * cons_scale * 0.8 for c in syl.coda]
    vowel = max(seconds - sum(onset) - sum(coda), 0.4 * seconds)
    return onset, vowel, coda


def _build_tracks(
    syllables: list[Syllable] | tuple[Syllable, ...], speaker: Speaker, prosody: Prosody, rng: np.random.Generator, sr: int
) -> tuple[_Tracks, list[tuple[float, float, float]]]:
    """Lay syllables out in time; return the tracks and (vowel centre s, duration s, stress)."""
    rate = max(speaker.rate * prosody.rate_scale, MIN_RATE)
    cons_scale = 1.0 / np.sqrt(prosody.rate_scale)  # consonants shorten less than vowels
    plan = []
    for syl in syllables:
        seconds = syl.length / rate * float(np.exp(rng.normal(0, 0.08)))
        plan.append((syl, *_syllable_durations(syl, seconds, cons_scale)))
    total = sum(sum(on) + v + sum(co) for _, on, v, co in plan) + 0.06
    n = int(np.ceil(total * sr))
    tr = _Tracks(np.zeros(n), np.zeros(n), np.zeros(n), [], [])
    accents = []
    t = 0.0
    for syl, onset, vowel_s, coda in plan:
        f_start, f_end = _vowel_targets(syl.vowel)
        f_start = tuple(f * speaker.tract for f in f_start)
        f_end = tuple(f * speaker.tract for f in f_end)
        for c, d in zip(syl.onset, onset):
            _consonant(tr, int(t * sr), int(d * sr), CONSONANTS[c], f_start, rng, sr, speaker.tract)
            if c in "ptk":  # aspiration between burst and voicing (voice onset time)
                a0 = int((t + d) * sr)
                tr.aspiration[a0 : a0 + int(0.035 * sr)] += 0.4
            t += d
        v0, v1 = int(t * sr), int((t + vowel_s) * sr)
        x = (np.arange(v1 - v0) + 0.5) / max(v1 - v0, 1)
        peak = 10 ** (3.0 * syl.stress / 20) * rng.uniform(0.85, 1.15)
        tr.voice[v0:v1] = np.maximum(tr.voice[v0:v1], peak * np.sin(np.pi * x) ** 0.6)
        if syl.onset and syl.onset[-1] in "ptk":  # voicing starts after the aspiration (VOT)
            vot = min(int(0.035 * sr), v1 - v0)
            tr.voice[v0 : v0 + vot] *= np.linspace(0, 1, vot) ** 2
        tr.key_t += [t + 0.2 * vowel_s, t + 0.8 * vowel_s]
        tr.key_f += [f_start, f_end]
        accents.append((t + 0.5 * vowel_s, vowel_s, syl.stress))
        t += vowel_s
        for c, d in zip(syl.coda, coda):
            _consonant(tr, int(t * sr), int(d * sr), CONSONANTS[c], f_end, rng, sr, speaker.tract)
            t += d
    return tr, accents


def _f0_track(
    n: int, accents: list[tuple[float, float, float]], speaker: Speaker, prosody: Prosody, rng: np.random.Generator, sr: int
) -> np.ndarray:
    """F0 in Hz per sample: level, declination, pitch accents, final movement, slow drift."""
    dur = n / sr
    t = np.arange(0.0, dur + 0.002, 0.001)  # contour on a 1 ms grid, interpolated below
    st = prosody.pitch_st - 2.5 * t / max(dur, 1e-3)  # declination
    for centre, width, stress in accents:
        height = stress * speaker.accent_st * prosody.range_scale * rng.uniform(0.7, 1.2)
        st += height * np.exp(-0.5 * ((t - centre) / max(0.6 * width, 0.03)) ** 2)
    if accents:  # final fall or rise over the last vowel and what follows it
        start = accents[-1][0] - 0.5 * accents[-1][1]
        ramp = np.clip((t - start) / max(dur - start, 1e-3), 0, 1)
        st += prosody.final_st * ramp**1.5
    for _ in range(2):  # slow wander, as no speaker holds pitch perfectly
        st += 0.3 * np.sin(2 * np.pi * rng.uniform(0.5, 2.0) * t + rng.uniform(0, 2 * np.pi))
    return speaker.f0_hz * 2 ** (np.interp(np.arange(n) / sr, t, st) / 12)


def _glottal_source(f0: np.ndarray, speaker: Speaker, prosody: Prosody, rng: np.random.Generator, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Rosenberg pulse derivative with jitter and shimmer; also returns the glottal opening."""
    phase0 = np.cumsum(f0) / sr
    cycles = int(phase0[-1]) + 2
    jitter = speaker.jitter * prosody.jitter_scale
    f0 = f0 * (1 + jitter * rng.standard_normal(cycles)[phase0.astype(int)])
    phase = np.cumsum(f0) / sr
    frac = (phase % 1.0).astype(np.float32)
    open_q = float(np.clip(0.6 - 0.08 * (prosody.brightness + speaker.brightness) + 0.25 * speaker.breathiness, 0.35, 0.85))
    tp, tn = 0.62 * open_q, 0.38 * open_q
    rising = 0.5 * (1 - np.cos(np.pi * np.minimum(frac / tp, 1.0)))
    falling = np.cos(0.5 * np.pi * np.clip((frac - tp) / tn, 0.0, 1.0))
    flow = np.where(frac < tp, rising, np.where(frac < tp + tn, falling, 0.0))
    shimmer = 1 + speaker.shimmer * rng.standard_normal(int(phase[-1]) + 2, np.float32)[phase.astype(int)]
    deriv = np.diff(flow, prepend=np.float32(0)) * shimmer
    return deriv / (np.std(deriv) + 1e-12), flow


@lru_cache(maxsize=8)
def _delay(nfft: int) -> np.ndarray:
    """z^-1 on the rfft grid [1, bins], reused by every frame of every clip."""
    return np.exp(-2j * np.pi * np.fft.rfftfreq(nfft)).astype(np.complex64)[None, :]


def _formant_response(nfft: int, formants: np.ndarray, bandwidths: np.ndarray, sr: int) -> np.ndarray:
    """Complex response [frames, bins] of cascaded unity-DC-gain two-pole resonators.

    The sections' denominators are multiplied into one polynomial in z^-1 per frame and
    evaluated by Horner's rule (a BLAS product would spawn threads in every worker).
    """
    r = np.exp(-np.pi * bandwidths / sr)
    b = 2 * r * np.cos(2 * np.pi * formants / sr)
    c = -(r**2)
    n_frames, n_sections = formants.shape
    poly = np.zeros((n_frames, 2 * n_sections + 1))
    poly[:, 0] = 1.0
    for k in range(n_sections):  # multiply by (1 - b z^-1 - c z^-2)
        old = poly.copy()
        poly[:, 1:] -= b[:, k : k + 1] * old[:, :-1]
        poly[:, 2:] -= c[:, k : k + 1] * old[:, :-2]
    poly = poly.astype(np.float32)
    z = _delay(nfft)
    den = np.broadcast_to(poly[:, -1:], (n_frames, z.shape[1])).astype(np.complex64)
    for j in range(poly.shape[1] - 2, -1, -1):
        den *= z
        den += poly[:, j : j + 1]
    gain = np.prod(1 - b - c, axis=1, keepdims=True).astype(np.float32)
    return gain / den


def _vocal_tract(x: np.ndarray, key_t: list[float], key_f: list[tuple], tract: float, breathiness: float, sr: int) -> np.ndarray:
    """Filter ``x`` through time-varying formants: windowed 10 ms blocks, FFT, overlap-add.

    Hann windows at 50 % overlap sum to one, so with a fixed filter this is exact causal
    convolution; each block uses the formants interpolated at its centre. The FFT leaves
    30 ms after each block for the resonators' ringing (their decay time is ~5 ms).
    """
    hop = sr // 100
    win_len = 2 * hop
    taps = int(np.ceil((win_len + 0.03 * sr) / hop))  # block output length, in hops
    nfft = taps * hop
    n_frames = int(np.ceil(len(x) / hop)) + 1
    padded = np.zeros((n_frames + 1) * hop)
    padded[hop : hop + len(x)] = x
    window = np.hanning(win_len + 1)[:win_len]
    starts = np.arange(n_frames) * hop
    frames = padded[starts[:, None] + np.arange(win_len)] * window
    order = np.argsort(key_t, kind="stable")
    kt, kf = np.asarray(key_t)[order], np.asarray(key_f, float)[order]
    centres = starts / sr  # frame i covers original samples [starts_i - hop, starts_i + hop)
    formants = np.stack([np.interp(centres, kt, kf[:, k]) for k in range(4)] + [np.full(n_frames, F5_HZ * tract)], 1)
    formants = np.minimum(formants, 0.45 * sr - 300 * np.arange(4, -1, -1))  # stay below Nyquist, in order
    bandwidths = np.broadcast_to(np.asarray(BANDWIDTHS) * (1 + 0.6 * breathiness), formants.shape)
    spectrum = scipy.fft.rfft(frames.astype(np.float32), nfft) * _formant_response(nfft, formants, bandwidths, sr)
    blocks = scipy.fft.irfft(spectrum, nfft).reshape(n_frames, taps, hop)
    out = np.zeros((n_frames + taps, hop))
    for j in range(taps):  # overlap-add: hop-sized pieces of every block at once
        out[j : j + n_frames] += blocks[:, j]
    return out.reshape(-1)[hop : hop + len(x)]


HF_BRANCH = 0.04  # level of the differentiated source mixed past the formants


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average (via cumulative sums, O(n)) that removes clicks from gain steps."""
    c = np.cumsum(np.concatenate([np.zeros(width // 2 + 1), x, np.zeros(width - width // 2)]))
    return (c[width:] - c[:-width])[: len(x)] / width


def render_phrase(
    syllables: list[Syllable] | tuple[Syllable, ...], speaker: Speaker, prosody: Prosody, rng: np.random.Generator, sr: int
) -> Utterance:
    """One breath group of speech, normalised so the voiced RMS is 1 before loudness is applied."""
    tr, accents = _build_tracks(syllables, speaker, prosody, rng, sr)
    n = len(tr.voice)
    voice = _smooth(tr.voice, int(0.008 * sr))
    f0 = _f0_track(n, accents, speaker, prosody, rng, sr)
    pulses, flow = _glottal_source(f0, speaker, prosody, rng, sr)
    breath = white_noise(rng, n) * (0.15 + flow) * speaker.breathiness
    aspiration = white_noise(rng, n) * _smooth(tr.aspiration, int(0.008 * sr))
    source = voice * (pulses + breath) + 1.5 * aspiration
    # Spectral tilt from vocal effort: a double one-pole low-pass, about -13 dB at 2 kHz
    # for a soft dark voice, -3 dB for a neutral one, flat for a pressed loud one.
    pole = float(np.clip(0.35 - 0.25 * (prosody.brightness + speaker.brightness), 0.0, 0.85))
    source = lfilter([(1 - pole) ** 2], [1, -2 * pole, pole**2], source)
    wave = _vocal_tract(source, tr.key_t, tr.key_f, speaker.tract, speaker.breathiness, sr)
    # Parallel high-frequency branch: the cascade alone leaves almost nothing above 5 kHz.
    wave += HF_BRANCH * np.diff(source, prepend=source[:1])
    voiced = voice > 0.3
    scale = 1.0 / (np.sqrt(np.mean(wave[voiced] ** 2)) + 1e-12) if voiced.any() else 1.0
    wave = wave * scale + tr.frication * 0.5
    return Utterance(wave, voice)


# --- Whole clips ----------------------------------------------------------------------
REFERENCE_RMS = 0.04  # voiced RMS of neutral speech at 0 dB gain (about -28 dBFS)
LIMIT = 0.7  # soft-limit peaks above this, as a recording chain would


def soft_limit(x: np.ndarray) -> np.ndarray:
    """Leave |x| < LIMIT alone and squash larger peaks smoothly below 1."""
    mag = np.abs(x)
    if mag.max() <= LIMIT:
        return x
    over = mag > LIMIT
    squashed = LIMIT + (0.99 - LIMIT) * np.tanh((mag - LIMIT) / (0.99 - LIMIT))
    return np.where(over, np.sign(x) * squashed, x)


def noise_floor(rng: np.random.Generator, n: int, level_db: float) -> np.ndarray:
    """Slightly low-passed room noise at ``level_db`` dBFS RMS: near-silence, never zero."""
    noise = lfilter([0.5], [1, -0.5], white_noise(rng, n))  # variance 1/3
    return noise * np.float32(np.sqrt(3) * 10 ** (level_db / 20))


def loudness_gain(prosody: Prosody, gain_db: float) -> float:
    """Linear gain: emotion loudness plus the clip's random recording gain."""
    return REFERENCE_RMS * 10 ** ((prosody.energy_db + gain_db) / 20)


def acted_clip(speaker: Speaker, emotion: str, strong: bool, statement: int, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A RAVDESS-like clip: 3-4 s, near-silence, one statement, then near-silence."""
    prosody = emotion_prosody(emotion, STRONG if strong else 1.0, rng)
    return render_acted(speaker, prosody, STATEMENTS[statement], rng, sr)


def render_acted(speaker: Speaker, prosody: Prosody, words, rng: np.random.Generator, sr: int, gain_db: float | None = None) -> np.ndarray:
    """:func:`acted_clip` with its prosody (and, optionally, recording gain) given, for who needs to know them."""
    speech = render_phrase(words, speaker, prosody, rng, sr).wave
    speech_s = len(speech) / sr
    total = rng.uniform(max(3.05, min(speech_s + 0.7, 3.9)), 3.95)
    lead = max(0.0, min(rng.uniform(0.45, 1.1), (total - speech_s) * rng.uniform(0.4, 0.7)))
    n = round(total * sr)
    out = noise_floor(rng, n, rng.uniform(-66, -56))
    i0 = int(lead * sr)
    speech = speech[: n - i0] * loudness_gain(prosody, rng.uniform(-6, 6) if gain_db is None else gain_db)
    out[i0 : i0 + len(speech)] += speech
    return soft_limit(out)
