"""The hyper-parameter search space, read from YAML and validated before any trial runs.

A space file maps each parameter to one entry::

    hidden:       {type: int, low: 16, high: 128, step: 16}
    lr:           {type: log, low: 1.0e-4, high: 5.0e-2}
    dropout:      {type: float, low: 0.0, high: 0.5}
    layer_type:   {type: categorical, choices: [sage, gat]}

``log`` is a float sampled on a log scale. Only names that training understands are
accepted, so a typo fails at start instead of silently tuning nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import yaml

from sybilgnn.errors import InputError

__all__ = ["ParamSpec", "SearchSpace", "TUNABLE_PARAMS", "DEFAULT_SPACE_FILE", "load_search_space"]

DEFAULT_SPACE_FILE = Path(__file__).with_name("search_space.yaml")

# Parameter -> the settings field it overrides (what ``sybilgnn.training.train(params=...)`` reads).
TUNABLE_PARAMS: dict[str, str] = {
    "hidden": "model.hidden",
    "layers": "model.layers",
    "dropout": "model.dropout",
    "layer_type": "model.layer_type",
    "aggr": "model.aggr",
    "lr": "train.lr",
    "weight_decay": "train.weight_decay",
    "loss": "train.loss",
}
_TYPES = ("int", "float", "log", "categorical")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def contains(self, value: Any) -> bool:
        if self.kind == "categorical":
            return value in self.choices
        assert self.low is not None and self.high is not None
        if not self.low <= float(value) <= self.high:
            return False
        if self.step:
            offset = (float(value) - self.low) / self.step
            return abs(offset - round(offset)) < 1e-9
        return True

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high),
                                     step=int(self.step or 1))
        if self.kind == "log":
            return trial.suggest_float(self.name, self.low, self.high, log=True)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step)


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[ParamSpec, ...]
    source: str

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Draw one value per parameter; the dict goes to ``train(params=...)``."""
        return {spec.name: spec.suggest(trial) for spec in self.params}

    def names(self) -> list[str]:
        return [spec.name for spec in self.params]

    def configured(self, settings: Any) -> dict[str, Any] | None:
        """The configuration's own value of every parameter, or None when one lies outside
        the space (the default configuration then cannot be a trial of this study)."""
        values: dict[str, Any] = {}
        for spec in self.params:
            section, field_name = TUNABLE_PARAMS[spec.name].split(".")
            value = getattr(getattr(settings, section), field_name)
            if not spec.contains(value):
                return None
            values[spec.name] = value
        return values


def _number(where: str, entry: dict[str, Any], key: str) -> float:
    value = entry.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: '{key}' must be a number, got {value!r}")
    return float(value)


def _parse_param(source: str, name: str, entry: Any) -> ParamSpec:
    where = f"search space {source}, parameter {name!r}"
    if name not in TUNABLE_PARAMS:
        raise InputError(f"{where}: unknown parameter; tunable ones are "
                         f"{', '.join(sorted(TUNABLE_PARAMS))}")
    if not isinstance(entry, dict):
        raise InputError(f"{where}: expected a mapping like {{type: int, low: 1, high: 4}}, "
                         f"got {entry!r}")
    kind = entry.get("type")
    if kind not in _TYPES:
        raise InputError(f"{where}: 'type' must be one of {', '.join(_TYPES)}, got {kind!r}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "step"}
    extra = sorted(set(entry) - allowed)
    if extra:
        raise InputError(f"{where}: unexpected key(s) {', '.join(extra)} for type {kind}")
    if kind == "categorical":
        choices = entry.get("choices")
        if not isinstance(choices, list) or not choices:
            raise InputError(f"{where}: 'choices' must be a non-empty list, got {choices!r}")
        if len(set(map(str, choices))) != len(choices):
            raise InputError(f"{where}: 'choices' holds duplicates: {choices!r}")
        return ParamSpec(name, kind, choices=tuple(choices))
    low, high = _number(where, entry, "low"), _number(where, entry, "high")
    if low > high:
        raise InputError(f"{where}: low ({low}) is above high ({high})")
    step = _number(where, entry, "step") if "step" in entry else None
    if kind == "int" and (not low.is_integer() or not high.is_integer()
                          or (step is not None and not step.is_integer())):
        raise InputError(f"{where}: int parameters need whole-number low/high/step")
    if kind == "log":
        if low <= 0:
            raise InputError(f"{where}: a log range needs low > 0, got {low}")
        if step is not None:
            raise InputError(f"{where}: a log range takes no 'step'")
    if step is not None and step <= 0:
        raise InputError(f"{where}: 'step' must be positive, got {step}")
    return ParamSpec(name, kind, low=low, high=high, step=step)


def parse_search_space(tree: Any, source: str) -> SearchSpace:
    if not isinstance(tree, dict) or not tree:
        raise InputError(f"search space {source}: expected a non-empty mapping of parameter "
                         "name -> {type, ...}")
    return SearchSpace(tuple(_parse_param(source, str(k), v) for k, v in tree.items()), source)


def load_search_space(path: str | Path | None = None) -> SearchSpace:
    """Read and validate a space file; ``None`` means the packaged default."""
    file = Path(path) if path is not None else DEFAULT_SPACE_FILE
    if not file.is_file():
        raise InputError(f"search space file {file} does not exist; set tune.search_space to a "
                         "YAML file like training/search_space.yaml")
    try:
        tree = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"search space file {file} is not valid YAML: {exc}") from None
    return parse_search_space(tree, str(file))
