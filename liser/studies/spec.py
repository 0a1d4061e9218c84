"""Study files (``studies/*.yaml``): what a study trains, searches and logs, as validated data.

A study is a set of *trials*. Each trial is one resolved :class:`~liser.configs.TrainConfig`
trained on every chosen fold for every seed. The trials come either from
``configurations`` crossed with a ``grid`` (each point is one trial, e.g. Table 2's five
settings or the λ grid), or from a ``search`` space that Optuna samples a budget of
trials from. Validation happens on load, so a typo fails before Ray starts, with the
field and the allowed values in the message.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liser.configs import METHOD_FIELDS, PRESETS, ConfigError, TrainConfig, make_config

LAMBDA_KNOBS = ("lambda_sd", "lambda_vd")  # a grid over these tunes only the configurations that distil with them

TRAIN_FIELDS = tuple(TrainConfig.model_fields)
SEARCHABLE = tuple(f for f in TRAIN_FIELDS if f not in ("name", "seed"))


def _known_knobs(names, what: str = "knob(s)") -> None:
    """Reject names that are not TrainConfig fields a study may set, listing the ones it may."""
    bad = sorted(set(names) - set(SEARCHABLE))
    if bad:
        raise ValueError(f"unknown {what} {bad}; allowed: {list(SEARCHABLE)}")


from liser.errors import StudyError  # noqa: E402  (re-exported)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FoldsSpec(_Strict):
    n: int = Field(5, ge=3, description="speaker-independent folds (paper: 5)")
    seed: int = Field(0, description="seed that deals speakers into folds")
    use: Literal["all"] | list[int] = Field("all", description="which folds each trial trains: 'all' or a list")
    file: str | None = Field(None, description="a fold file from `liser data folds` (overrides n and seed)")

    @model_validator(mode="after")
    def _folds_exist(self) -> "FoldsSpec":
        if isinstance(self.use, list):
            if not self.use:
                raise ValueError("use: give at least one fold, or 'all'")
            if len(set(self.use)) != len(self.use):
                raise ValueError(f"use: {self.use} names a fold twice")
            bad = [k for k in self.use if not 0 <= k < self.n] if self.file is None else [k for k in self.use if k < 0]
            if bad:
                raise ValueError(f"use: fold(s) {bad} do not exist; with n: {self.n} folds are 0..{self.n - 1}")
        return self


class Dimension(_Strict):
    """One searched knob: a float/int range (optionally log-scaled) or a list of choices."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    int: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _shape(self) -> "Dimension":
        if self.choices is not None:
            if self.low is not None or self.high is not None:
                raise ValueError("give either choices or low/high, not both")
            if not self.choices:
                raise ValueError("choices must not be empty")
        elif self.low is None or self.high is None or not self.low < self.high:
            raise ValueError("a range needs low < high (or give choices: [...])")
        elif self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class PruningSpec(_Strict):
    after_folds: int = Field(2, ge=1, description="folds a trial always finishes before it may be stopped")
    reduction_factor: int = Field(2, ge=2, description="ASHA: keep the best 1/reduction_factor at each rung")


class SearchSpec(_Strict):
    space: dict[str, Dimension]
    sampler: Literal["tpe", "random"] = "tpe"
    trials: int = Field(20, ge=1, description="budget: trials to finish, counted over every run of the study")
    seed: int = 0
    pruning: PruningSpec | None = Field(None, description="stop weak trials after a few folds (running mean of val UAR)")

    @field_validator("space")
    @classmethod
    def _known(cls, space: dict[str, Dimension]) -> dict[str, Dimension]:
        _known_knobs(space)
        if not space:
            raise ValueError("the search space is empty")
        return space


class Resources(_Strict):
    cpu: float = Field(1.0, gt=0, description="CPUs per trial (fractions allowed)")
    gpu: float = Field(0.0, ge=0, description="GPUs per trial, e.g. 0.25 to share one GPU by four trials")


class Study(_Strict):
    name: str = Field(description="the MLflow experiment and Optuna study name")
    description: str = ""
    labeled: str = Field(description="labeled corpus, NAME:PATH (ravdess, cremad, iemocap, table)")
    unlabeled: str | None = Field(None, description="unlabeled audio-visual corpus, NAME:PATH (avclips)")
    teachers: str | dict[Literal["speech", "video", "prosodic", "linguistic", "upstream"], str] | None = Field(
        None, description="teacher outputs: one folder, or {KIND: PATH} with KIND speech, video (liser), prosodic, linguistic (emodistill), upstream (nsl)"
    )
    folds: FoldsSpec = FoldsSpec()
    fixed: dict[str, Any] = Field(default_factory=dict, description="TrainConfig fields set for every trial")
    configurations: list[str] = Field(default_factory=lambda: ["no-dstl"], description="named configurations (or YAML files)")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="knob -> values, crossed with the configurations")
    search: SearchSpec | None = None
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    resources: Resources = Resources()
    max_concurrent: int = Field(2, ge=1, description="trials running at once")
    max_failures: int = Field(1, ge=0, description="Ray retries of a trial whose worker crashed")
    device: str = Field("auto", description="auto, cpu or cuda")
    subset: list[int] | None = Field(None, description="run only these points (indices into configurations x grid)")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError("use letters, digits, '-', '_' and '.' (it names folders and the MLflow experiment)")
        return name

    @field_validator("fixed")
    @classmethod
    def _fixed(cls, fixed: dict[str, Any]) -> dict[str, Any]:
        _known_knobs(fixed, "setting(s)")
        return fixed

    @field_validator("grid")
    @classmethod
    def _grid(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        _known_knobs(grid)
        empty = [k for k, v in grid.items() if not v]
        if empty:
            raise ValueError(f"grid knob(s) {empty} have no values")
        return grid

    @field_validator("configurations")
    @classmethod
    def _configurations(cls, names: list[str]) -> list[str]:
        for name in names:
            if name not in PRESETS and not name.endswith((".yaml", ".yml")):
                raise ValueError(f"unknown configuration {name!r}; named ones: {sorted(PRESETS)} (or a .yaml file)")
        if len(set(names)) != len(names):
            raise ValueError("a configuration is listed twice")
        return names

    @model_validator(mode="after")
    def _one_mode(self) -> "Study":
        if self.search is not None:
            if self.grid:
                raise ValueError("give a grid or a search, not both")
            if len(self.configurations) != 1:
                raise ValueError("a search starts from one base configuration: configurations: [NAME]")
            both = sorted(set(self.search.space) & set(self.fixed))
            if both:
                raise ValueError(f"{both} are both searched and fixed")
        if self.subset is not None and not self.subset:
            raise ValueError("subset: give at least one point index, or leave subset out to run every point")
        if not self.configurations:
            raise ValueError("configurations: name at least one, e.g. [no-dstl]")
        return self

    # ------------------------------------------------------------------ derived
    @property
    def kind(self) -> str:
        return "search" if self.search is not None else "points"

    def points(self) -> list[dict[str, Any]]:
        """Every trial's parameters of a configurations × grid study, in file order.

        A grid knob that belongs to another method than a configuration's (nsl_alpha for
        the cnn6 baseline, say) does not multiply that configuration's trials. Nor does a
        distillation weight a configuration does not distil with: a λ grid tunes the teachers
        each configuration uses (paper section 3.6: 5 values for one teacher, 5 × 5 for two),
        it never adds one, so no-dstl stays one trial and vid-dstl gets λ^vd only.
        """
        points: list[dict[str, Any]] = []
        for c in self.configurations:
            method = self.fixed.get("method") or _method_of(c)
            keys = [k for k in self.grid if applies(k, method) and self._tunes(c, k)]
            for values in itertools.product(*(self.grid[k] for k in keys)):
                point = {"config": c, **dict(zip(keys, values))}
                if point not in points:
                    points.append(point)
        if self.subset is not None:
            bad = [i for i in self.subset if not 0 <= i < len(points)]
            if bad:
                raise StudyError(f"subset: point(s) {bad} do not exist; this study has points 0..{len(points) - 1}")
            points = [points[i] for i in self.subset]
        return points

    def _tunes(self, config: str, knob: str) -> bool:
        """Whether a grid knob belongs to ``config``: a λ only where the configuration distils with that teacher."""
        if knob not in LAMBDA_KNOBS:
            return True
        try:
            return getattr(self.resolve({"config": config}), knob) > 0
        except ConfigError:
            return True  # check_trials reports the configuration itself

    def resolve(self, params: dict[str, Any]) -> TrainConfig:
        """The TrainConfig of one trial: the configuration, then ``fixed``, then the trial's own knobs.

        ``fixed`` settings of another method than the configuration's are left out for it, so
        one study can hold a method and its baseline (check_trials refuses a fixed setting no
        configuration takes).
        """
        params = dict(params)
        base = params.pop("config", self.configurations[0])
        method = self.fixed.get("method") or _method_of(base)
        return make_config(base, **{**{k: v for k, v in self.fixed.items() if applies(k, method)}, **params})

    def fold_indices(self, n_folds: int) -> list[int]:
        return list(range(n_folds)) if self.folds.use == "all" else list(self.folds.use)

    def teacher_paths(self) -> dict[str, str]:
        """``{"": folder}`` for one teacher folder, else ``{kind: path}``."""
        if self.teachers is None:
            return {}
        return {"": self.teachers} if isinstance(self.teachers, str) else dict(self.teachers)

    def spec_hash(self) -> str:
        return hashlib.sha1(json.dumps(self.model_dump(), sort_keys=True, default=str).encode()).hexdigest()[:12]


def _method_of(config: str) -> str:
    try:
        return make_config(config).method
    except ConfigError:  # reported with its field when the trials are checked
        return "liser"


def applies(knob: str, method: str) -> bool:
    """Whether a knob means something to ``method`` (knobs of no particular method apply to all)."""
    return not any(knob in fields for m, fields in METHOD_FIELDS.items() if m != method)


def trial_key(cfg: TrainConfig, folds: list[int], seeds: list[int]) -> str:
    """What identifies a trial's work: its resolved settings, folds and seeds (not its name)."""
    settings = cfg.model_dump(exclude={"name", "seed"})
    return hashlib.sha1(json.dumps({"cfg": settings, "folds": folds, "seeds": seeds}, sort_keys=True).encode()).hexdigest()[:16]


def _format_error(path: Path, err: ValidationError) -> str:
    lines = [f"{path}: not a valid study file"]
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = f"unknown field; allowed here: {sorted(_allowed_at(e['loc']))}"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e['input']!r})"
        lines.append(f"  {where}: {msg}")
    return "\n".join(lines)


def _allowed_at(loc: tuple) -> list[str]:
    model: type[BaseModel] = Study
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None)
        inner = [a for a in getattr(ann, "__args__", (ann,)) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not inner:
            break
        model = inner[0]
    return list(model.model_fields)


def load_study(path: str | Path, *, fixed: dict[str, Any] | None = None, **overrides: Any) -> Study:
    """Read and validate a study file; ``overrides`` replace top-level fields (CLI flags) and
    ``fixed`` adds to the file's fixed settings (``--set``)."""
    path = Path(path)
    if not path.exists():
        raise StudyError(f"{path}: no such study file (shipped studies are in studies/)")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise StudyError(f"{path}: a study file is a mapping of fields (name, labeled, configurations, ...)")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if fixed:
        held = data.get("fixed") or {}
        data["fixed"] = {**held, **fixed} if isinstance(held, dict) else held  # a bad "fixed:" is reported by validation
    try:
        study = Study.model_validate(data)
    except ValidationError as exc:
        raise StudyError(_format_error(path, exc)) from exc
    check_trials(study, path)
    return study


def check_trials(study: Study, where: str | Path) -> None:
    """Resolve every configuration (and a search's range ends) now, so bad settings fail before Ray starts."""
    methods = {study.fixed.get("method") or _method_of(c) for c in study.configurations}
    for knob in [*study.fixed, *study.grid]:
        if not any(applies(knob, m) for m in methods):
            raise StudyError(f"{where}: {knob} applies to none of the configurations' methods ({', '.join(sorted(methods))})")
    for knob in (k for k in study.grid if k in LAMBDA_KNOBS):
        if not any(study._tunes(c, knob) for c in study.configurations):
            teacher, example = ("speech", "sp-dstl") if knob == "lambda_sd" else ("video", "vid-dstl")
            raise StudyError(
                f"{where}: grid {knob} tunes none of the configurations: none distils from the {teacher} teacher "
                f"(a lambda grid never adds a teacher); add one that does, e.g. {example}"
            )
    probes = study.points() if study.search is None else []
    if study.search is not None:
        ends = {k: (d.choices if d.choices is not None else [d.low, d.high]) for k, d in study.search.space.items()}
        probes = [{"config": study.configurations[0], **{k: v[0] for k, v in ends.items()}}, {"config": study.configurations[0], **{k: v[-1] for k, v in ends.items()}}]
    for params in probes:
        try:
            study.resolve(params)
        except ConfigError as exc:
            raise StudyError(f"{where}: trial {params} is not a valid configuration: {exc}") from exc


def smoke(study: Study, *, max_trials: int = 2, folds: int = 1) -> Study:
    """The same study shrunk to a check: 1 epoch, ``folds`` fold(s), at most ``max_trials`` trials,
    at most one CPU per trial so the trials run side by side even on a laptop.

    A points study keeps its first and last points, so both ends of the file are exercised.
    """
    fixed = {**study.fixed, "epochs": 1}
    if "pretrain_epochs" in fixed:
        fixed["pretrain_epochs"] = 1
    update: dict[str, Any] = {
        "name": f"{study.name}-smoke",
        "fixed": fixed,
        "folds": study.folds.model_copy(update={"use": study.fold_indices(study.folds.n)[:folds]}),  # the file's own first fold(s)
        "seeds": study.seeds[:1],
        "resources": study.resources.model_copy(update={"cpu": min(study.resources.cpu, 1.0)}),
        "max_concurrent": max_trials,
    }
    if study.search is not None:
        update["search"] = study.search.model_copy(update={"trials": min(max_trials, study.search.trials)})
    else:
        idx = study.subset if study.subset is not None else list(range(len(study.points())))
        update["subset"] = sorted({idx[0], idx[-1]})[:max_trials]
    return study.model_copy(update=update)
