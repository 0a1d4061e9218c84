"""Training configurations as data: the paper's named settings and their knobs.

A configuration is a :class:`TrainConfig`; the named ones of sections 3.5 and 3.6
(Table 2, Table 3) are presets that only set the fields they differ in. Any field
can be overridden from the CLI (``--set lambda_sd=5``) or a YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liser.constants import BATCH_SIZE, LEARNING_RATE, MAX_EPOCHS
from liser.errors import ConfigError

STUDENTS = ("cnn-lstm", "cnn6", "hubert")
# "liser" named LiSER's CNN-LSTM student too, as well as the package and the method; configs,
# logged runs and checkpoints that still say so read as "cnn-lstm".
STUDENT_ALIASES = {"liser": "cnn-lstm"}


def student_name(name: str) -> str:
    """The current name of a student architecture (old spellings accepted)."""
    return STUDENT_ALIASES.get(name, name)


# Which fields belong to which method: a field of another method must keep its default,
# so a study cannot silently search a knob the trial ignores.
METHOD_FIELDS = {
    "liser": ("lambda_sd", "lambda_vd", "distill_loss", "confidence", "schedule", "pretrain_epochs", "unlabeled_batch_size", "epoch_over"),
    "emodistill": ("alpha", "beta", "gamma", "tau_prosodic", "tau_linguistic", "prosodic_teacher", "linguistic_teacher"),
    "nsl": ("nsl_alpha", "nsl_neighbors", "nsl_epsilon"),
}
METHODS = tuple(METHOD_FIELDS)  # the names liser.methods.METHODS implements, one module each


class TrainConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    name: str = "custom"
    method: str = Field("liser", description="LiSER (unlabeled AV distillation), EmoDistill or NSL")
    student: Literal["cnn-lstm", "cnn6", "hubert"] = Field(
        "cnn-lstm", description="the student network: LiSER's CNN-LSTM (105K), CNN-6 (NSL paper) or a HuBERT-architecture transformer (EmoDistill)"
    )
    lambda_sd: float = Field(0.0, ge=0, description="weight of speech distillation, eq. 4")
    lambda_vd: float = Field(0.0, ge=0, description="weight of video distillation, eq. 4")
    distill_loss: Literal["mae", "ce"] = Field("mae", description="MAE between softmaxes (eq. 2-3) or CE to soft labels (Table 3)")
    confidence: bool = Field(False, description="weight each unlabeled sample by the teacher's max probability (eq. 5)")
    schedule: Literal["joint", "two-stage"] = Field("joint", description="joint (LiSER) or distil-then-fine-tune (Table 3)")
    labeled_fraction: float = Field(1.0, gt=0, le=1, description="class-stratified share of each fold's training clips (Fig. 2)")
    epochs: int = Field(MAX_EPOCHS, ge=1)
    pretrain_epochs: int | None = Field(None, ge=1, description="two-stage: distillation epochs (default: epochs)")
    patience: int | None = Field(None, ge=1, description="stop after this many epochs without a better validation UAR")
    batch_size: int = Field(BATCH_SIZE, ge=1, description="labeled clips per mini-batch (N_l)")
    unlabeled_batch_size: int | None = Field(None, ge=1, description="unlabeled clips per mini-batch (N_u; default: batch_size)")
    epoch_over: Literal["labeled", "augmented"] = Field(
        "labeled",
        description="an epoch is one pass over the labeled clips, or over the training set augmented with the unlabeled ones (section 3.6)",
    )
    lr: float = Field(LEARNING_RATE, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    seed: int = 0
    # EmoDistill (eq. 5): alpha * L_logits + beta * L_embeddings + gamma * CE
    alpha: float = Field(1.0, ge=0, description="EmoDistill: weight of logit KD (KL at temperature tau)")
    beta: float = Field(10.0, ge=0, description="EmoDistill: weight of embedding KD (negative cosine)")
    gamma: float = Field(2.0, ge=0, description="EmoDistill: weight of cross-entropy")
    tau_prosodic: float = Field(0.5, gt=0, description="EmoDistill: temperature of the prosodic teacher's KD")
    tau_linguistic: float = Field(5.0, gt=0, description="EmoDistill: temperature of the linguistic teacher's KD")
    prosodic_teacher: bool = Field(True, description="EmoDistill: distil from the prosodic (eGeMAPS ResNet) teacher")
    linguistic_teacher: bool = Field(True, description="EmoDistill: distil from the linguistic (BERT) teacher")
    # NSL (eq. 2): CE + nsl_alpha * sum over graph neighbours of (1 - cosine)
    nsl_alpha: float = Field(0.1, ge=0, description="NSL: neighbour-loss multiplier (paper: 0.01, 0.1, 1)")
    nsl_neighbors: int = Field(3, ge=1, description="NSL: most neighbours per sample (paper: 3, 6, 9)")
    nsl_epsilon: float = Field(0.99, ge=-1, lt=1, description="NSL: cosine similarity a neighbour must exceed")

    @field_validator("method")
    @classmethod
    def _known_method(cls, value: str) -> str:
        if value not in METHOD_FIELDS:
            raise ValueError(f"unknown method {value!r}; choose one of {', '.join(METHOD_FIELDS)}")
        return value

    @field_validator("student", mode="before")
    @classmethod
    def _student_alias(cls, value: Any) -> Any:
        return student_name(value) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> "TrainConfig":
        if self.schedule == "two-stage" and not (self.lambda_sd > 0 or self.lambda_vd > 0):
            raise ValueError("schedule 'two-stage' needs lambda_sd > 0 or lambda_vd > 0 (there is nothing to distil first)")
        defaults = {k: f.default for k, f in TrainConfig.model_fields.items()}
        foreign = [f for m, fields in METHOD_FIELDS.items() if m != self.method for f in fields if getattr(self, f) != defaults[f]]
        if foreign:
            raise ValueError(f"{foreign} do not apply to method {self.method!r}; {self.method} uses {list(METHOD_FIELDS[self.method])}")
        return self

    @property
    def teacher_kinds(self) -> tuple[str, ...]:
        """The teacher outputs this configuration reads."""
        if self.method == "emodistill":
            return tuple(k for k, on in (("prosodic", self.prosodic_teacher), ("linguistic", self.linguistic_teacher)) if on)
        if self.method == "nsl":
            return ("upstream",)
        return tuple(k for k, lam in (("speech", self.lambda_sd), ("video", self.lambda_vd)) if lam > 0)

    def check_inputs(self, teacher_kinds, has_unlabeled: bool) -> None:
        """What this configuration needs besides labeled clips; checked once, for the CLI, studies and the loop."""
        needs, have = list(self.teacher_kinds), set(teacher_kinds)
        if self.uses_unlabeled and (not has_unlabeled or any(k not in have for k in needs)):
            raise ValueError(
                f"configuration {self.name} distils from the {' and '.join(needs)} teacher, so it needs --unlabeled and "
                f"{' and '.join(k + ' teacher outputs' for k in needs)} (--teachers DIR or --{needs[0]}-teacher FILE)"
            )
        lacking = [k for k in needs if k not in have]
        if lacking:
            raise ValueError(
                f"configuration {self.name} (method {self.method}) needs {' and '.join(lacking)} teacher outputs: pass --teachers DIR "
                f"holding {', '.join(k + ('.npz' if k == 'upstream' else '-foldK.npz') for k in lacking)} "
                "(from `liser teacher prosodic fit`, `liser teacher linguistic fit` or `liser teacher upstream`)"
            )

    @property
    def distills(self) -> bool:
        """Whether any teacher is involved."""
        return bool(self.teacher_kinds)

    @property
    def uses_unlabeled(self) -> bool:
        """LiSER distils on an unlabeled corpus; EmoDistill and NSL use the labeled one only."""
        return self.method == "liser" and self.distills

    @property
    def n_unlabeled(self) -> int:
        return self.unlabeled_batch_size or self.batch_size


# The named configurations. Distillation weights default to 1; the paper picks them
# on validation from LAMBDA_GRID, which lambda-grid studies reproduce.
PRESETS: dict[str, dict[str, Any]] = {
    "no-dstl": {},
    "vid-dstl": {"lambda_vd": 1.0},
    "sp-dstl": {"lambda_sd": 1.0},
    "vid-sp-dstl": {"lambda_sd": 1.0, "lambda_vd": 1.0},
    "conf-vid-sp-dstl": {"lambda_sd": 1.0, "lambda_vd": 1.0, "confidence": True},
    # Table 3 ablations, per teacher and for both.
    "distill-ce": {"lambda_sd": 1.0, "lambda_vd": 1.0, "distill_loss": "ce"},
    "vid-distill-ce": {"lambda_vd": 1.0, "distill_loss": "ce"},
    "sp-distill-ce": {"lambda_sd": 1.0, "distill_loss": "ce"},
    "two-stage-train": {"lambda_sd": 1.0, "lambda_vd": 1.0, "schedule": "two-stage"},
    "vid-two-stage-train": {"lambda_vd": 1.0, "schedule": "two-stage"},
    "sp-two-stage-train": {"lambda_sd": 1.0, "schedule": "two-stage"},
    # EmoDistill (ICASSP 2024) and its Table 2 ablations.
    "emodistill": {"method": "emodistill"},
    "emodistill-no-logits": {"method": "emodistill", "alpha": 0.0},
    "emodistill-no-embeddings": {"method": "emodistill", "beta": 0.0},
    "emodistill-no-prosodic": {"method": "emodistill", "prosodic_teacher": False},
    "emodistill-no-linguistic": {"method": "emodistill", "linguistic_teacher": False},
    "emodistill-no-teachers": {"method": "emodistill", "prosodic_teacher": False, "linguistic_teacher": False},
    # NSL (on-device SER): the graph-regularised student and its base model, on CNN-6 as in Table 3.
    "nsl": {"method": "nsl", "student": "cnn6"},
    "cnn6": {"student": "cnn6"},
    "nsl-cnn-lstm": {"method": "nsl"},  # NSL on LiSER's 105K CNN-LSTM; its baseline is no-dstl
    "hubert-ce": {"student": "hubert"},  # the HuBERT-architecture student, labels only
    "emodistill-hubert": {"method": "emodistill", "student": "hubert"},
}



def baseline_of(method: str = "liser", student: str = "cnn-lstm") -> str:
    """The configuration reports compare a trial against: the same student without its teachers."""
    student = student_name(student)
    if method == "emodistill" and student == "cnn-lstm":
        return "emodistill-no-teachers"
    return {"cnn-lstm": "no-dstl", "cnn6": "cnn6"}.get(student, f"{student}-ce")


def _coerce(text: str) -> Any:
    """Parse a ``--set`` value with YAML rules: 5 -> int, 0.5 -> float, true -> bool."""
    return yaml.safe_load(text)


def parse_overrides(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {pair!r} is not KEY=VALUE (e.g. lambda_sd=5)")
        out[key.strip().replace("-", "_")] = _coerce(value)
    return out


def read_config_file(path: Path) -> dict[str, Any]:
    """A config file's fields, or a :class:`ConfigError` naming the file and what is wrong with it."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found" if not path.exists() else f"{path}: is a folder, not a config file")
    try:
        fields = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    if fields is None:
        raise ConfigError(f"{path}: the file is empty; give at least one field, e.g. `preset: no-dstl` or `lambda_vd: 1`")
    if not isinstance(fields, dict):
        raise ConfigError(f"{path}: a config file is a mapping of fields (e.g. `lambda_vd: 1`), not a {type(fields).__name__}")
    bad = [k for k in fields if not isinstance(k, str)]
    if bad:
        raise ConfigError(f"{path}: field names must be text, got {bad}")
    return fields


def check_method_fields(fields: dict[str, Any], where: str) -> None:
    """Refuse a field set explicitly for another method, whatever its value (a default value included)."""
    method = fields.get("method", "liser")
    if not isinstance(method, str) or method not in METHOD_FIELDS:
        return  # the model's own validation names the allowed methods
    foreign = [k for k in fields if k not in METHOD_FIELDS[method] and any(k in f for m, f in METHOD_FIELDS.items() if m != method)]
    if foreign:
        raise ConfigError(f"{where}: {foreign} do not apply to method {method!r}; {method} uses {list(METHOD_FIELDS[method])}")


def make_config(base: str | Path = "no-dstl", **overrides: Any) -> TrainConfig:
    """A preset name or a YAML file, with overrides applied on top."""
    base = str(base)
    if base in PRESETS:
        fields = {"name": base, **PRESETS[base]}
    elif base.endswith((".yaml", ".yml")):
        fields = read_config_file(Path(base))
        check_method_fields(fields, f"{base}")
        fields.setdefault("name", Path(base).stem)
        if "preset" in fields:  # a preset with some fields changed
            fields = {**make_config(fields.pop("preset")).model_dump(), **fields}
    else:
        raise ConfigError(f"unknown configuration {base!r}; choose one of {', '.join(PRESETS)} or give a .yaml file")
    bad_keys = [k for k in overrides if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"configuration {base!r}: field names must be text, got {bad_keys}")
    method = overrides.get("method", fields.get("method", "liser"))
    check_method_fields({**overrides, "method": method}, f"configuration {base!r}")
    try:
        return TrainConfig(**{**fields, **overrides})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "config"
            if err["type"] == "extra_forbidden":
                problems.append(f"{loc}: unknown field; allowed fields are {', '.join(TrainConfig.model_fields)}")
            else:
                problems.append(f"{loc}: {err['msg']} (got {err.get('input')!r})")
        raise ConfigError(f"configuration {base!r}: " + "; ".join(problems)) from None
