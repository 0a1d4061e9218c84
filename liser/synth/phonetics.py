"""The synthesizer's phonetics: vowel formants, consonants, syllables, the two RAVDESS statements,
and random pseudo-word phrases for conversational speech (data for :mod:`liser.synth.speech`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- Phonetic tables (data) ----------------------------------------------------------
# Adult male formants F1-F4 in Hz (Hillenbrand et al. 1995 averages, F4 nominal).
# Diphthongs glide from their first to their second vowel (see DIPHTHONGS).
VOWEL_FORMANTS: dict[str, tuple[float, float, float, float]] = {
    "i": (342, 2322, 3000, 3700),
    "ɪ": (427, 2034, 2684, 3600),
    "ɛ": (580, 1799, 2605, 3600),
    "æ": (588, 1952, 2601, 3600),
    "ɑ": (768, 1333, 2522, 3500),
    "ɔ": (652, 997, 2538, 3500),
    "ʊ": (469, 1122, 2434, 3500),
    "u": (378, 997, 2343, 3400),
    "ʌ": (623, 1200, 2550, 3500),
    "ɝ": (474, 1379, 1710, 3300),
    "ə": (500, 1500, 2500, 3500),
}
DIPHTHONGS: dict[str, tuple[str, str]] = {"aɪ": ("ɑ", "ɪ"), "eɪ": ("ɛ", "ɪ"), "oʊ": ("ɔ", "ʊ"), "aʊ": ("ɑ", "ʊ")}
BANDWIDTHS = (70.0, 100.0, 140.0, 200.0, 300.0)  # formant bandwidths F1-F5, Hz
F5_HZ = 4500.0  # fixed fifth formant (male), the cascade's higher-pole correction
FEMALE_TRACT = 1.15  # female formants are ~15 % higher (shorter vocal tract)


@dataclass(frozen=True)
class Consonant:
    """How a consonant sounds: its manner, noise band and the formant locus it pulls toward."""

    kind: str  # "stop" | "fricative" | "nasal" | "approximant"
    voiced: bool
    seconds: float  # typical duration at neutral rate
    band: tuple[float, float]  # burst / frication noise band, Hz
    level: float  # noise level relative to a vowel peak
    locus: tuple[float, float, float]  # F1-F3 the neighbouring vowel glides from/to (male)


CONSONANTS: dict[str, Consonant] = {
    "p": Consonant("stop", False, 0.08, (500, 3000), 0.30, (250, 900, 2300)),
    "b": Consonant("stop", True, 0.06, (500, 3000), 0.20, (250, 900, 2300)),
    "t": Consonant("stop", False, 0.08, (3000, 7000), 0.40, (250, 1800, 2700)),
    "d": Consonant("stop", True, 0.06, (3000, 7000), 0.30, (250, 1800, 2700)),
    "k": Consonant("stop", False, 0.08, (1500, 4000), 0.40, (250, 2000, 2500)),
    "g": Consonant("stop", True, 0.06, (1500, 4000), 0.30, (250, 2000, 2500)),
    "s": Consonant("fricative", False, 0.11, (4000, 7500), 0.35, (300, 1700, 2700)),
    "z": Consonant("fricative", True, 0.08, (4000, 7500), 0.20, (300, 1700, 2700)),
    "ʃ": Consonant("fricative", False, 0.11, (2000, 5000), 0.40, (300, 1800, 2400)),
    "f": Consonant("fricative", False, 0.10, (1500, 7500), 0.12, (300, 1000, 2300)),
    "v": Consonant("fricative", True, 0.07, (1500, 7500), 0.08, (300, 1000, 2300)),
    "ð": Consonant("fricative", True, 0.05, (2000, 7000), 0.08, (300, 1600, 2600)),
    "h": Consonant("fricative", False, 0.07, (500, 4000), 0.15, (500, 1500, 2500)),
    "m": Consonant("nasal", True, 0.07, (0, 0), 0.0, (250, 1000, 2300)),
    "n": Consonant("nasal", True, 0.06, (0, 0), 0.0, (250, 1700, 2600)),
    "ŋ": Consonant("nasal", True, 0.07, (0, 0), 0.0, (250, 2000, 2400)),
    "l": Consonant("approximant", True, 0.06, (0, 0), 0.0, (350, 1000, 2700)),
    "r": Consonant("approximant", True, 0.07, (0, 0), 0.0, (350, 1200, 1600)),
    "w": Consonant("approximant", True, 0.06, (0, 0), 0.0, (300, 700, 2200)),
    "j": Consonant("approximant", True, 0.05, (0, 0), 0.0, (280, 2200, 3000)),
}
# Voice amplitude during a consonant, relative to a vowel peak: the dips between
# syllables that give the energy envelope its syllable-rate modulation.
VOICE_IN_CONSONANT = {"stop": 0.04, "fricative": 0.22, "nasal": 0.32, "approximant": 0.5}


@dataclass(frozen=True)
class Syllable:
    onset: tuple[str, ...]
    vowel: str
    coda: tuple[str, ...]
    stress: float  # 0 unstressed .. 1 nuclear accent: sets pitch accent and loudness
    length: float  # relative duration (1.0 = an average syllable)


def _syl(onset: str, vowel: str, coda: str, stress: float, length: float) -> Syllable:
    """Compact constructor: consonant strings are split into single symbols."""
    return Syllable(tuple(onset), vowel, tuple(coda), stress, length)


# The two RAVDESS statements, syllable by syllable (vowels ɪ ɑ ɔ ɪ aɪ ə ɔ).
STATEMENTS: dict[int, tuple[Syllable, ...]] = {
    1: (  # "Kids are talking by the door"
        _syl("k", "ɪ", "dz", 0.7, 1.0),
        _syl("", "ɑ", "r", 0.1, 0.7),
        _syl("t", "ɔ", "", 1.0, 1.0),
        _syl("k", "ɪ", "ŋ", 0.1, 0.8),
        _syl("b", "aɪ", "", 0.5, 1.0),
        _syl("ð", "ə", "", 0.0, 0.55),
        _syl("d", "ɔ", "r", 0.8, 1.5),
    ),
    2: (  # "Dogs are sitting by the door"
        _syl("d", "ɔ", "gz", 0.7, 1.0),
        _syl("", "ɑ", "r", 0.1, 0.7),
        _syl("s", "ɪ", "", 1.0, 0.95),
        _syl("t", "ɪ", "ŋ", 0.1, 0.8),
        _syl("b", "aɪ", "", 0.5, 1.0),
        _syl("ð", "ə", "", 0.0, 0.55),
        _syl("d", "ɔ", "r", 0.8, 1.5),
    ),
}


# --- Random text for conversational speech -------------------------------------------
_ONSETS = ("p", "b", "t", "d", "k", "g", "s", "z", "ʃ", "f", "v", "ð", "h", "m", "n", "l", "r", "w", "j")
_CODAS = ("t", "d", "k", "s", "z", "n", "m", "ŋ", "l", "r")
_VOWELS = tuple(VOWEL_FORMANTS) + tuple(DIPHTHONGS)


def random_phrase(rng: np.random.Generator, n_syllables: int) -> list[Syllable]:
    """A pseudo-word phrase: random (C)V(C) syllables, ~40 % stressed, the last one lengthened."""
    out = []
    for i in range(n_syllables):
        onset = (str(rng.choice(_ONSETS)),) if rng.random() < 0.75 else ()
        coda = (str(rng.choice(_CODAS)),) if rng.random() < 0.35 else ()
        stress = float(rng.uniform(0.5, 1.0)) if rng.random() < 0.4 else float(rng.uniform(0.0, 0.2))
        length = float(rng.uniform(0.7, 1.1)) * (1.4 if i == n_syllables - 1 else 1.0)
        out.append(Syllable(onset, str(rng.choice(_VOWELS)), coda, stress, length))
    return out
