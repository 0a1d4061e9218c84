"""Synthetic corpora for tests and demos: RAVDESS-like acted speech, MSP-Face-like talking
faces, and noisy oracle teacher outputs, all generated from a seed (see :func:`generate`)."""

from liser.synth.corpus import generate

__all__ = ["generate"]
