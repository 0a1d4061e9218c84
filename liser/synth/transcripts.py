"""Synthetic transcripts that carry emotion the way conversational speech does.

RAVDESS's two statements say nothing about emotion, so a linguistic teacher (EmoDistill,
section 3) has nothing to learn from them. Conversational corpora such as IEMOCAP carry
emotion in their words, informatively but imperfectly. This small deterministic grammar
gives every synthetic clip such a transcript, drawn from its own random stream keyed by
``(seed, clip id)``:

=============  ======  ==========================================================
share          kind    what the sentence says
=============  ======  ==========================================================
0.70           own     words of the clip's own emotion (``EMOTION_WORDS``), in a
                       template with neutral filler
0.15           other   words of one other emotion, drawn uniformly (misleading,
                       as when the words and the voice disagree)
0.15           none    neutral filler only: no emotion words at all
=============  ======  ==========================================================

So a text-only classifier can reach about 0.7 + 0.15 / 8 of the clips at best; the rest
only the voice can tell. Each emotion has its own words (no word is shared between two
emotions), and the filler is shared by all.
"""

from __future__ import annotations

from dataclasses import dataclass


from liser.constants import RAVDESS_EMOTIONS
from liser.errors import DataError
from liser.synth.seeds import named_rng

OWN_SHARE = 0.70  # transcripts with words of the clip's own emotion
OTHER_SHARE = 0.15  # with words of one other emotion (misleading)
NONE_SHARE = 0.15  # with neutral filler only
KINDS = ("own", "other", "none")

# Per emotion: adjectives and interjections that say it (RAVDESS's 8 emotions).
EMOTION_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "neutral": {"adj": ("okay", "ordinary", "normal", "routine", "standard", "average"), "interj": ("anyway", "alright")},
    "calm": {"adj": ("relaxed", "peaceful", "gentle", "serene", "soothing", "tranquil"), "interj": ("mm", "ahh")},
    "happy": {"adj": ("wonderful", "delighted", "fantastic", "lovely", "glad", "thrilled"), "interj": ("yay", "hooray")},
    "sad": {"adj": ("miserable", "lonely", "hopeless", "gloomy", "heartbroken", "sorry"), "interj": ("sigh", "alas")},
    "angry": {"adj": ("furious", "annoyed", "ridiculous", "outrageous", "livid", "infuriating"), "interj": ("damn", "ugh")},
    "fearful": {"adj": ("scared", "afraid", "terrified", "nervous", "worried", "frightened"), "interj": ("help", "please")},
    "disgust": {"adj": ("gross", "disgusting", "revolting", "nasty", "sickening", "vile"), "interj": ("eww", "yuck")},
    "surprised": {"adj": ("unbelievable", "unexpected", "shocking", "astonishing", "incredible", "sudden"), "interj": ("wow", "whoa")},
}
SUBJECTS = ("i", "we", "she", "he", "they", "my sister", "our neighbour", "the teacher")
TOPICS = ("the meeting", "the trip", "the letter", "dinner", "the weekend", "the test", "the flat", "the car", "the door", "the garden")
TIMES = ("today", "yesterday", "this morning", "last night", "on monday", "after lunch")
VERBS = ("talked about", "looked at", "walked past", "thought about", "waited for", "asked about")

# {a}, {b}: two words of the cue emotion; {x}: its interjection; the rest is filler.
CUE_TEMPLATES = (
    "{x}, {s} felt so {a} about {t}",
    "{s} said {t} was {a} and {b}",
    "honestly {t} {m} was {a}",
    "{x}, {t} is just {a}",
    "{s} {v} {t} {m} and it was {a}",
    "it was {a}, really {b}, {x}",
)
NONE_TEMPLATES = (
    "{s} {v} {t} {m}",
    "did you see {t} {m}",
    "{s} mentioned {t} {m}",
    "{m} {s} {v} {t}",
    "so {s} {v} {t} and then {t2}",
)


@dataclass(frozen=True)
class Transcript:
    """One clip's sentence and what it says: ``kind`` (own/other/none) and the cue emotion."""

    text: str
    kind: str
    cue: str | None  # the emotion whose words it carries, None for "none"


def draw_transcript(emotion: str, clip_id: str, seed: int = 0) -> Transcript:
    """The transcript of clip ``clip_id`` with hidden emotion ``emotion`` (deterministic).

    Raises:
        ValueError: ``emotion`` is not one of RAVDESS's 8.
    """
    if emotion not in EMOTION_WORDS:
        raise DataError(f"no transcript words for emotion {emotion!r}; known: {', '.join(EMOTION_WORDS)}")
    rng = named_rng(seed, "transcript", clip_id)
    kind = KINDS[int(rng.choice(3, p=[OWN_SHARE, OTHER_SHARE, NONE_SHARE]))]

    def pick(words):
        return str(words[int(rng.integers(len(words)))])

    filler = {"s": pick(SUBJECTS), "t": pick(TOPICS), "t2": pick(TOPICS), "m": pick(TIMES), "v": pick(VERBS)}
    if kind == "none":
        return Transcript(pick(NONE_TEMPLATES).format(**filler), kind, None)
    cue = emotion if kind == "own" else pick([e for e in RAVDESS_EMOTIONS if e != emotion])
    words = EMOTION_WORDS[cue]
    a, b = rng.choice(len(words["adj"]), 2, replace=False)
    text = pick(CUE_TEMPLATES).format(a=words["adj"][a], b=words["adj"][b], x=pick(words["interj"]), **filler)
    return Transcript(text, kind, cue)


def transcript(emotion: str, clip_id: str, seed: int = 0) -> str:
    """Just the sentence of :func:`draw_transcript`."""
    return draw_transcript(emotion, clip_id, seed).text
