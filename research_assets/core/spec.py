"""The strategy spec (the seeds' v3 format), validated with pydantic.

A spec is data: it is parsed and validated, never evaluated. Every name in it becomes part of a
path, a column or a run tag, so names are checked against a safe pattern.

>>> spec = StrategySpec.from_yaml(EXAMPLE_YAML)
>>> spec.name
'rsi_trend_eurusd'
>>> StrategySpec.from_yaml(spec.to_yaml()) == spec
True
"""

import hashlib
import json
import math
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from research_assets.core.errors import SpecError
from research_assets.core.indicator_catalog import CATALOG

# Safe in a path segment, a Dagster tag value and a column name: no "/", no "..", no control chars.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,47}$")
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")


def check_safe_name(value: str, what: str) -> str:
    """Reject names that are not safe as file names and run tags."""
    if not isinstance(value, str) or not _NAME.match(value) or ".." in value:
        raise ValueError(
            f"{what} {value!r} is not allowed: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit, with no '/', '..' or control characters"
        )
    return value


def _check_ident(value: str, what: str) -> str:
    if not _IDENT.match(value):
        raise ValueError(
            f"{what} {value!r} is not allowed: use letters, digits and '_', starting with a letter"
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DateRange(_Strict):
    start: date | None = None
    end: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "DateRange":
        if self.start and self.end and self.start >= self.end:
            raise ValueError(f"start {self.start} must be before end {self.end}")
        return self


class TrainingData(_Strict):
    symbols: list[str] = Field(min_length=1, max_length=10)
    timeframes: list[str] = Field(min_length=1, max_length=4)
    date_range: DateRange | None = None

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str]) -> list[str]:
        for s in v:
            check_safe_name(s, "symbol")
        if len(set(v)) != len(v):
            raise ValueError("symbols must not repeat")
        return v

    @field_validator("timeframes")
    @classmethod
    def _timeframes(cls, v: list[str]) -> list[str]:
        for tf in v:
            if tf not in TIMEFRAMES:
                raise ValueError(f"timeframe {tf!r} is not one of {', '.join(TIMEFRAMES)}")
        if len(set(v)) != len(v):
            raise ValueError("timeframes must not repeat")
        return v


class IndicatorSpec(BaseModel):
    """``{type: rsi, period: 14}``: a catalog type plus its parameters (defaults filled in)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    type: str

    @model_validator(mode="after")
    def _params(self) -> "IndicatorSpec":
        info = CATALOG.get(self.type)
        if info is None:
            raise ValueError(
                f"indicator type {self.type!r} is unknown; available: {', '.join(sorted(CATALOG))}"
            )
        extra = dict(self.__pydantic_extra__ or {})
        for key in extra:
            if key not in info.params:
                raise ValueError(
                    f"{self.type} has no parameter {key!r}; its parameters are "
                    f"{', '.join(info.params) or 'none'}"
                )
        for key, p in info.params.items():
            value = extra.get(key, p.default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.type}.{key} must be a number, got {value!r}")
            if p.kind is int and float(value) != int(value):
                raise ValueError(f"{self.type}.{key} must be a whole number, got {value!r}")
            if not p.minimum <= value <= p.maximum:
                raise ValueError(f"{self.type}.{key}={value} is outside [{p.minimum}, {p.maximum}]")
            extra[key] = p.kind(value)
        if self.type == "macd" and extra["fast_period"] >= extra["slow_period"]:
            raise ValueError("macd.fast_period must be smaller than macd.slow_period")
        self.__pydantic_extra__.clear()  # type: ignore[union-attr]
        self.__pydantic_extra__.update(extra)  # type: ignore[union-attr]
        return self

    @property
    def params(self) -> dict[str, int | float]:
        return dict(self.__pydantic_extra__ or {})


class Membership(_Strict):
    """A fuzzy membership function: triangular [a, b, c], trapezoidal [a, b, c, d], gaussian
    [mean, sigma]."""

    type: Literal["triangular", "trapezoidal", "gaussian"]
    parameters: list[float]

    @model_validator(mode="after")
    def _shape(self) -> "Membership":
        n = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}[self.type]
        p = self.parameters
        if len(p) != n:
            raise ValueError(f"{self.type} needs {n} parameters, got {len(p)}")
        if not all(math.isfinite(x) for x in p):
            raise ValueError(f"{self.type} parameters must be finite numbers")
        if self.type == "gaussian":
            if p[1] <= 0:
                raise ValueError("gaussian sigma (the second parameter) must be positive")
        elif any(a > b for a, b in zip(p, p[1:], strict=False)):
            raise ValueError(f"{self.type} parameters must be in ascending order, got {p}")
        elif p[0] == p[-1]:
            raise ValueError(f"{self.type} parameters must not all be equal, got {p}")
        return self


class FuzzySet(BaseModel):
    """``{indicator: rsi_14, low: {...}, high: {...}}``: an indicator output and its named
    memberships."""

    model_config = ConfigDict(frozen=True)
    indicator: str
    memberships: dict[str, Membership] = Field(min_length=1, max_length=7)

    @model_validator(mode="before")
    @classmethod
    def _split_labels(cls, data: Any) -> Any:
        if isinstance(data, dict) and "memberships" not in data:
            data = dict(data)
            indicator = data.pop("indicator", None)
            return {"indicator": indicator, "memberships": data}
        return data

    @field_validator("memberships")
    @classmethod
    def _labels(cls, v: dict[str, Membership]) -> dict[str, Membership]:
        for label in v:
            _check_ident(label, "fuzzy label")
        return v

    def model_dump_yaml(self) -> dict[str, Any]:
        out: dict[str, Any] = {"indicator": self.indicator}
        out.update({k: m.model_dump() for k, m in self.memberships.items()})
        return out


class NNInput(_Strict):
    fuzzy_set: str


class Architecture(_Strict):
    hidden_layers: list[Annotated[int, Field(ge=2, le=512)]] = Field(
        default_factory=lambda: [32, 16], min_length=1, max_length=4
    )
    activation: Literal["relu", "tanh", "gelu", "leaky_relu"] = "relu"
    dropout: float = Field(default=0.2, ge=0.0, le=0.9)


class ModelSpec(_Strict):
    type: Literal["mlp"] = "mlp"
    architecture: Architecture = Field(default_factory=Architecture)


class ZigzagLabels(_Strict):
    """Direction of the next move of at least ``threshold`` (a fraction) within ``lookahead`` bars:
    up, down, or flat when no such move comes."""

    source: Literal["zigzag"]
    threshold: float = Field(default=0.02, gt=0.0, le=0.5)
    lookahead: int = Field(default=20, ge=1, le=500)

    @property
    def horizon(self) -> int:
        return self.lookahead


class ForwardReturnLabels(_Strict):
    """Sign of the return over the next ``horizon`` bars: up above ``threshold``, down below
    ``-threshold``, flat between."""

    source: Literal["forward_return"]
    horizon: int = Field(default=5, ge=1, le=500)
    threshold: float = Field(default=0.0, ge=0.0, le=0.5)


LabelSpec = Annotated[ZigzagLabels | ForwardReturnLabels, Field(discriminator="source")]


class EarlyStopping(_Strict):
    enabled: bool = True
    patience: int = Field(default=10, ge=1, le=500)
    min_delta: float = Field(default=0.0, ge=0.0)


class TrainingSpec(_Strict):
    labels: LabelSpec
    epochs: int = Field(default=50, ge=1, le=1000)
    learning_rate: float = Field(default=1e-3, gt=0.0, le=1.0)
    batch_size: int = Field(default=256, ge=1, le=65536)
    early_stopping: EarlyStopping = Field(default_factory=EarlyStopping)
    seed: int = Field(default=42, ge=0, le=2**31 - 1)


class BacktestSpec(_Strict):
    commission: float = Field(default=0.001, ge=0.0, le=0.1)
    slippage: float = Field(default=0.0005, ge=0.0, le=0.1)


class Decisions(_Strict):
    """How the model's class probabilities become positions: the most probable class's
    position (up +1, down -1, flat 0), and no position where that class's probability is below
    ``confidence_threshold`` (0, the default, always takes the most probable class)."""

    confidence_threshold: float = Field(default=0.0, ge=0.0, lt=1.0)


class StrategySpec(_Strict):
    name: str
    description: str = Field(default="", max_length=2000)
    hypothesis: str = Field(default="", max_length=2000)
    training_data: TrainingData
    indicators: dict[str, IndicatorSpec] = Field(min_length=1, max_length=20)
    fuzzy_sets: dict[str, FuzzySet] = Field(min_length=1, max_length=30)
    nn_inputs: list[NNInput] = Field(min_length=1, max_length=30)
    model: ModelSpec = Field(default_factory=ModelSpec)
    training: TrainingSpec
    backtest: BacktestSpec = Field(default_factory=BacktestSpec)
    # None (left out) is the default decisions; a spec without it keeps its fingerprint.
    decisions: Decisions | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_safe_name(v, "strategy name")

    @field_validator("indicators")
    @classmethod
    def _indicator_ids(cls, v: dict[str, IndicatorSpec]) -> dict[str, IndicatorSpec]:
        for key in v:
            _check_ident(key, "indicator id")
        return v

    @field_validator("fuzzy_sets")
    @classmethod
    def _set_ids(cls, v: dict[str, FuzzySet]) -> dict[str, FuzzySet]:
        for key in v:
            _check_ident(key, "fuzzy set id")
        return v

    @model_validator(mode="after")
    def _references(self) -> "StrategySpec":
        for set_id, fs in self.fuzzy_sets.items():
            ind_id, _, output = fs.indicator.partition(".")
            if ind_id not in self.indicators:
                raise ValueError(
                    f"fuzzy_sets.{set_id}.indicator: {fs.indicator!r} names no indicator; "
                    f"defined indicators: {', '.join(self.indicators)}"
                )
            info = CATALOG[self.indicators[ind_id].type]
            if output and output not in info.outputs:
                raise ValueError(
                    f"fuzzy_sets.{set_id}.indicator: {info.name} has no output {output!r}; "
                    f"outputs: {', '.join(info.outputs)}"
                )
        seen: set[str] = set()
        for i, item in enumerate(self.nn_inputs):
            if item.fuzzy_set not in self.fuzzy_sets:
                raise ValueError(
                    f"nn_inputs[{i}].fuzzy_set: {item.fuzzy_set!r} names no fuzzy set; "
                    f"defined sets: {', '.join(self.fuzzy_sets)}"
                )
            if item.fuzzy_set in seen:
                raise ValueError(f"nn_inputs[{i}].fuzzy_set: {item.fuzzy_set!r} is listed twice")
            seen.add(item.fuzzy_set)
        return self

    # -- derived -------------------------------------------------------------------------------

    def indicator_column(self, set_id: str) -> str:
        """The indicator column a fuzzy set reads, with the default output filled in."""
        ref = self.fuzzy_sets[set_id].indicator
        ind_id, _, output = ref.partition(".")
        return f"{ind_id}.{output or CATALOG[self.indicators[ind_id].type].default_output}"

    @property
    def label_horizon(self) -> int:
        """Bars of future a label looks at: the gap kept between split periods."""
        return self.training.labels.horizon

    def dataset_keys(self) -> list[str]:
        """``SYMBOL/TIMEFRAME`` for every dataset the spec trains and backtests on."""
        data = self.training_data
        return [f"{s}/{tf}" for s in data.symbols for tf in data.timeframes]

    def fingerprint(self) -> str:
        """A hash of everything that affects results (not name, description or hypothesis), so
        that a designer can tell a repeat from a new idea."""
        body = self.to_dict()
        for key in ("name", "description", "hypothesis"):
            body.pop(key, None)
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]

    # -- (de)serialisation ---------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude_none=True)
        data["indicators"] = {k: {"type": v.type, **v.params} for k, v in self.indicators.items()}
        data["fuzzy_sets"] = {k: v.model_dump_yaml() for k, v in self.fuzzy_sets.items()}
        return data

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_dict(cls, data: Any) -> "StrategySpec":
        """Validate plain data; a ``SpecError`` names every field that is wrong."""
        if not isinstance(data, dict):
            raise SpecError(f"a strategy spec must be a mapping, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise SpecError(format_validation_error(e)) from None

    @classmethod
    def from_yaml(cls, text: str) -> "StrategySpec":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SpecError(f"the strategy spec is not valid YAML: {e}") from None
        return cls.from_dict(data)

    @classmethod
    def from_file(cls, path: str | Path) -> "StrategySpec":
        p = Path(path)
        try:
            text = p.read_text()
        except OSError as e:
            raise SpecError(f"cannot read strategy spec {p}: {e.strerror}") from None
        try:
            return cls.from_yaml(text)
        except SpecError as e:
            raise SpecError(f"{p}: {e}") from None


def format_validation_error(e: ValidationError) -> str:
    """One line per problem, each naming the field: ``training.epochs: must be >= 1``."""
    lines = []
    for err in e.errors():
        loc = ".".join(str(x) for x in err["loc"] if x not in ("function-after", "tagged-union"))
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"{loc or '(spec)'}: {msg}")
    return "invalid strategy spec:\n  " + "\n  ".join(lines)


EXAMPLE_YAML = """
name: rsi_trend_eurusd
description: RSI zones with distance from a 50-bar average.
hypothesis: Oversold readings inside an uptrend revert upwards within a day.
training_data:
  symbols: [EURUSD]
  timeframes: [1h]
indicators:
  rsi_14: {type: rsi, period: 14}
  sma_50: {type: sma, period: 50}
fuzzy_sets:
  rsi_zone:
    indicator: rsi_14
    oversold: {type: triangular, parameters: [0, 20, 40]}
    neutral: {type: triangular, parameters: [30, 50, 70]}
    overbought: {type: triangular, parameters: [60, 80, 100]}
  trend:
    indicator: sma_50
    below: {type: trapezoidal, parameters: [-1, -1, -0.005, 0]}
    above: {type: trapezoidal, parameters: [0, 0.005, 1, 1]}
nn_inputs:
  - fuzzy_set: rsi_zone
  - fuzzy_set: trend
model:
  type: mlp
  architecture: {hidden_layers: [32, 16], activation: relu, dropout: 0.2}
training:
  labels: {source: zigzag, threshold: 0.005, lookahead: 24}
  epochs: 40
  learning_rate: 0.001
  batch_size: 256
  early_stopping: {enabled: true, patience: 8}
  seed: 7
"""
