"""liser: knowledge-distillation studies for speech emotion recognition."""

__version__ = "0.1.0"
