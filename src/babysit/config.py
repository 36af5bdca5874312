"""Training configs: TOML files validated with messages that name the key, the bad value and the fix.

A config has the sections ``[data] [model] [train] [optimizer] [schedule] [momentum_annealing] [trackers]`` plus the
top-level keys ``name``, ``seed``, ``device`` and ``runs_dir``. ``examples/*.toml`` are annotated
examples. Command-line overrides use dotted keys: ``--set optimizer.lr=3e-3 --set model.hidden=[256]``
(the value is read as TOML; a bare word is a string).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from babysit._extras import needs
from babysit._factories import extend_import_path
from babysit._names import did_you_mean
from babysit.errors import ConfigError, OptimError

with needs("config", "babysit.config (TOML configs)"):
    from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Section):
    source: str = "digits"  # digits | spiral | path/to/file.npz | path/to/file.csv | package.module:function
    normalize: Literal["standardize", "center", "none"] = "standardize"  # statistics from the train split only
    val_fraction: float = Field(0.2, gt=0, lt=1)  # digits, spiral, CSV: share held out for validation
    test_fraction: float = Field(0.2, ge=0, lt=1)  # digits, spiral, CSV: share held out for testing
    label: str | None = None  # CSV: the name of the label column
    delimiter: str | None = None  # CSV: the column separator (default ",")
    num_classes: int | None = Field(None, ge=2)  # default: max label + 1; a label >= num_classes is an error
    classes: int | None = Field(None, ge=2)  # spiral: number of arms
    points_per_class: int | None = Field(None, ge=1)  # spiral
    noise: float | None = Field(None, ge=0)  # spiral, shapes32
    per_class: int | None = Field(None, ge=1)  # shapes32: images of each shape
    block_size: int | None = Field(None, ge=1)  # pysource: characters per window
    max_chars: int | None = Field(None, ge=1)  # pysource: characters of source read


class ModelConfig(_Section):
    kind: str = "mlp"  # linear | mlp | cnn | resnet | transformer | package.module:function
    hidden: list[int] | int | None = None  # mlp hidden sizes (default [100]); cnn dense width (default 64)
    activation: Literal["relu", "leaky_relu", "tanh", "sigmoid"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    batch_norm: bool = False
    channels: list[int] = [16, 32]  # cnn: conv channels, one block each
    init: Literal["he", "xavier", "normal", "torch"] = "he"
    init_std: float = Field(0.01, gt=0)  # for init = "normal"
    bias_init: float = 0.0
    args: dict[str, Any] = Field(default_factory=dict)  # resnet / transformer settings, or a factory's keywords


class TrainConfig(_Section):
    loss: Literal["softmax", "svm"] = "softmax"
    reg: float = Field(0.0, ge=0)  # L2 strength: 0.5 * reg * sum(W**2), recorded apart from the data loss
    epochs: int = Field(10, ge=1)
    batch_size: int = Field(64, ge=1)
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"  # fp16 with a GradScaler
    clip_grad_norm: float | None = Field(None, gt=0)  # clip the gradients' total norm before every update
    accumulate: int = Field(1, ge=1)  # micro-batches per batch, their gradients accumulated into one update
    checkpoint_every_steps: int | None = Field(None, ge=1)  # also checkpoint inside epochs (resumed at the step)
    checkpoint_every_minutes: float | None = Field(None, gt=0)  # ... or when this long passed since the last
    checkpoint_every_epochs: int | None = Field(None, ge=1)  # None: every epoch within a 1 % time budget
    compile: bool = False  # torch.compile the forward pass
    monitor: bool = True  # babysit every layer
    report: bool = True  # write report.html into the run folder, refreshed at epoch ends while training runs
    tensorboard: bool = False  # also write TensorBoard event files into <run folder>/tensorboard


class OptimizerConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)  # the rule's settings are checked by babysit.optim
    name: str = "sgd"
    lr: float | None = Field(None, gt=0)


class ScheduleConfig(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)  # the schedule's settings are checked by babysit.schedules
    name: str = "constant"
    per_batch: bool = False


class MomentumAnnealingConfig(_Section):
    start: float = Field(0.5, ge=0, lt=1)
    end: float = Field(0.99, ge=0, lt=1)
    epochs: int = Field(..., ge=1)


class SearchConfig(_Section):
    """``[search]``: how ``babysit search`` explores ``[search.space]`` (dotted keys of this config)."""

    strategy: Literal["coarse_to_fine", "random", "grid", "bayes"] = "coarse_to_fine"
    budget_epochs: int | None = Field(None, ge=1)  # total epochs of all trials together
    trials: int | None = Field(None, ge=1)  # the most trials (split over the stages of coarse_to_fine)
    workers: int | None = Field(None, ge=1)  # local worker processes
    seed: int | None = None  # seeds the samplers (default 0)
    pruner: Literal["none", "median", "successive_halving"] | None = None
    storage: str | None = None  # default a journal file in dir (study.journal); postgresql://... for many machines
    dir: str | None = None  # the search folder, default <runs_dir>/<name>-search
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)  # "optimizer.lr" = {loguniform = [1e-4, 1]}
    stages: list[dict[str, Any]] | None = None  # coarse_to_fine: [{epochs = 1, share = 0.2}, ...]

    @field_validator("space")
    @classmethod
    def _valid_space(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        from babysit.hpsearch.space import space_from_dict

        if space:
            space_from_dict(space)  # ConfigError (a ValueError) names the parameter and the fix
        return space

    def settings(self) -> dict[str, Any]:
        """The keyword arguments of ``babysit.search`` this table sets."""
        keys = {"search_dir": self.dir, **self.model_dump(exclude={"dir"})}
        return {k: v for k, v in keys.items() if v is not None and v != {}} | {"strategy": self.strategy}


class MLflowTrackerConfig(_Section):
    """``[trackers.mlflow]``: the run also goes to MLflow (``babysit.integrations.mlflow.MLflowLogger``)."""

    tracking_uri: str | None = None  # http://host:5000, sqlite:///mlflow.db, ...; default MLFLOW_TRACKING_URI
    experiment: str = "babysit"  # created when missing
    run_name: str | None = None  # default: the run folder's name


class WandbTrackerConfig(_Section):
    """``[trackers.wandb]``: the run also goes to Weights & Biases (``babysit.integrations.wandb.WandbLogger``)."""

    project: str = "babysit"
    entity: str | None = None  # default: your W&B default
    name: str | None = None  # default: the run folder's name
    mode: Literal["online", "offline", "disabled"] | None = None  # default: WANDB_MODE, else online
    dir: str | None = None  # W&B's local files, default <run folder>/wandb
    tags: list[str] = []


class TrackersConfig(_Section):
    """``[trackers]``: experiment trackers ``babysit train`` also logs to; an empty ``[trackers.mlflow]`` or
    ``[trackers.wandb]`` table turns one on with its defaults (``pip install 'babysit[trackers]'``)."""

    mlflow: MLflowTrackerConfig | None = None
    wandb: WandbTrackerConfig | None = None


class RunConfig(_Section):
    name: str = "run"  # results go to <runs_dir>/<name>/
    runs_dir: str = "runs"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig | None = None
    momentum_annealing: MomentumAnnealingConfig | None = None
    search: SearchConfig | None = None  # used by `babysit search`, ignored by `babysit train`
    trackers: TrackersConfig | None = None  # used by `babysit train`, not by a search's trials
    # written by babysit into a run folder's config.toml: per dotted key, where a secret removed from this copy
    # lives (the original file, the command line, an environment variable); never the secret, ignored by training
    redacted: dict[str, str] | None = None

    _source: str | None = PrivateAttr(default=None)  # the file it was read from (absolute), for `redacted`
    _overridden: tuple[str, ...] = PrivateAttr(default=())  # keys a --set override gave

    def saved_dict(self) -> dict[str, Any]:
        """The config as a run folder keeps it (``config.toml``, ``history.meta["config"]``, the report): every
        secret replaced by ``***`` and, under ``redacted``, where each one lives (see :mod:`babysit._redact`)."""
        from babysit._redact import redact_config

        return redact_config(self.model_dump(exclude_none=True), source=self._source, overridden=self._overridden)

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name

    def optimizer_spec(self) -> dict[str, Any]:
        return self.optimizer.model_dump(exclude_none=True)

    def schedule_spec(self) -> dict[str, Any] | None:
        return None if self.schedule is None else self.schedule.model_dump()

    def data_options(self) -> dict[str, Any]:
        options = self.data.model_dump(exclude_none=True, exclude={"source"})
        options["seed"] = self.seed
        return options

    def model_options(self) -> dict[str, Any]:
        return {**self.model.model_dump(exclude={"kind", "args"}), **self.model.args}


# --- loading ------------------------------------------------------------------------------------------------
def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read, override and validate a TOML config; raise ConfigError naming the key and the fix."""
    file = Path(path)
    if file.is_dir():
        inside = sorted(p.name for p in file.glob("*.toml"))[:5]
        raise ConfigError(f"{str(file)!r} is a directory, not a config file; give a TOML file"
                          + (f" such as {str(file / inside[0])!r} (it holds {', '.join(inside)})" if inside
                             else ", e.g. examples/digits_mlp.toml") + ".")
    if not file.is_file():
        raise ConfigError(f"config file {str(file)!r} does not exist. See examples/*.toml for templates.")
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    raw.setdefault("name", file.stem)
    cfg = config_from_dict(apply_overrides(raw, overrides or []), source=str(file))
    if ":" in cfg.model.kind or ":" in cfg.data.source:  # a factory module may sit beside the config
        extend_import_path(file.parent)
    cfg._source = str(file.resolve())
    cfg._overridden = tuple(item.partition("=")[0].strip() for item in overrides or [])
    return cfg


def redacted_dump(cfg: RunConfig) -> dict[str, Any]:
    """``cfg`` as a run folder may keep it: :meth:`RunConfig.saved_dict` (secrets replaced by ``***``)."""
    return cfg.saved_dict()


def config_from_dict(raw: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a config given as a dict (the parsed TOML)."""
    try:
        cfg = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: " + "; ".join(_explain(err) for err in exc.errors())) from None
    _check_rule_settings(cfg, source)
    return cfg


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a parsed config dict (values read as TOML)."""
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not key=value; write e.g. --set optimizer.lr=0.01")
        node = raw
        *parents, leaf = key.strip().split(".")
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is a value, not a section.")
            node = child
        value = _parse_value(text.strip())
        if not isinstance(value, str) and _takes_text(parents, leaf):
            value = text.strip()  # --set name=2024 names a run "2024", not the number 2024
        node[leaf] = value
    return raw


def _parse_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text  # a bare word, e.g. --set optimizer.name=adam


def _takes_text(parents: list[str], leaf: str) -> bool:
    """Whether the config key ``parents.leaf`` holds text only (a name, a path, a device), so that an override's
    value is kept as written even where TOML would read a number."""
    section = _section_for(tuple(parents))
    field = None if section is None else section.model_fields.get(leaf)
    if field is None:
        return False
    kinds = set(getattr(field.annotation, "__args__", (field.annotation,))) - {type(None)}
    return kinds == {str}


def _explain(err: Mapping[str, Any]) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        section_model = _section_for(err["loc"][:-1])
        allowed = sorted(section_model.model_fields) if section_model else []
        return (f"unknown key `{key}`; allowed here: {', '.join(allowed)}."
                f"{did_you_mean(str(err['loc'][-1]), allowed)}")
    return f"key `{key}`: {err['msg']}, got {err.get('input')!r}"


def _section_for(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    model: type[BaseModel] = RunConfig
    for part in loc:
        field = model.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        sections = [c for c in candidates if issubclass(c, BaseModel)]
        if not sections:
            return None
        model = sections[0]
    return model


def _check_rule_settings(cfg: RunConfig, source: str) -> None:
    """Build the update rule and schedule on a dummy parameter now, so a typo fails before training."""
    import torch

    from babysit import optim, schedules

    dummy = [torch.nn.Parameter(torch.zeros(1))]
    try:
        opt = optim.build_from_spec(cfg.optimizer_spec(), dummy)
    except OptimError as exc:
        raise ConfigError(f"{source}: [optimizer] {exc}") from None
    spec = cfg.schedule_spec()
    if spec is not None:
        spec.pop("per_batch")
        try:
            schedules.build_from_spec(spec, opt)
        except OptimError as exc:
            raise ConfigError(f"{source}: [schedule] {exc}") from None
