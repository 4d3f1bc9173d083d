"""Experiment configuration files: schema, loading, validation and overrides.

One YAML file per experiment (``experiments/configs/*.yaml``) names the model,
the users (groups of prompts, or free prompts grouped by meaning), the seeds,
the base chain configuration (:class:`pipeline.ChainConfig`: steps, shared
steps, codec, link ...) and the grid to sweep. Every level of the schema is a
pydantic v2 model with ``extra="forbid"``: a typo in a key is an error that
names the bad key and the allowed ones, never silently ignored. The chain of
every grid point is validated by :class:`pipeline.ChainConfig` when the config
is loaded, so a bad value fails before anything runs.

Schema (every key but ``name``, ``seeds``, ``grid`` and one of ``users``/``grouping`` optional)::

    name: my_experiment             # results go to results/<name>/<run-id>/
    description: free text          # shown at the top of report.md
    model: null                     # null: shipped model; tiny-random; embedded-random; a path or hub id
    device: cpu
    seeds: [0, 1]                   # every grid point runs once per seed
    users:                          # groups: the sender's shared prompt -> each receiver's prompt
      - {name: fruit, shared_prompt: "a red apple on a wooden table",
         receiver_prompts: ["a yellow lemon on a wooden table"]}
    # users: {within: [...], across: [...]}   named user sets -> a 'user_set' grid axis
    # grouping: {prompts: [...], threshold: 0.5, max_group_size: 4, embedder: vocabulary,
    #            auto_shared_steps: false}   free prompts grouped by meaning instead of 'users'
    chain: {num_inference_steps: 20, num_shared_steps: 8, transmission: digital, bandwidth_hz: 20e6,
            codec: {name: uniform, bits: 8}, link: {channel: tdl-c, speed_mps: 10, mcs: auto}}
    variants:                       # named chain overrides -> a 'variant' grid axis
      float16: {codec: {name: float16}}
    grid:                           # Cartesian product; a list, or "start:step:stop" (inclusive)
      snr_db: "-5:5:25"             # any ChainConfig / LinkConfig / CodecConfig field by name,
      mcs: [auto, 9]                # an alias (bits, soft), or a dotted path (link.fft_size)
    latency_energy: {edge_step_time_s: 0.006, device_step_time_s: 0.06, ...}
    plots: [{x: snr_db, y: [psnr_db, ssim], hue: mcs, title: "..."}]
    headline: [psnr_db, ssim]       # metrics of the report's headline numbers
    execution: {workers: 2, torch_threads: 1, executor: process, save_images: true}

Example
-------
>>> from experiments.config import load_config
>>> cfg = load_config("default")                  # a name under experiments/configs/ or a path
>>> cfg.name, sorted(cfg.grid)
('default', ['snr_db'])
>>> try:
...     parse_config({"name": "x", "seeds": [0], "users": [{"shared_prompt": "a", "receiver_prompts": ["b"]}],
...                   "grdi": {}}, chain_model=None)
... except ConfigError as err:
...     print(err)                                # doctest: +ELLIPSIS
config <dict>: ExperimentConfig.grid: Field required; unknown key 'grdi' at top level; allowed keys: ..., grid, ...
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .configtools import (ConfigError, check_plain_name, format_validation_error, set_dotted, stable_hash,
                          yaml_load)
from .grid import expand_grid

#: where the shipped configs live
CONFIG_DIR = Path(__file__).resolve().parent / "configs"

#: default limit on the number of points (grid combinations x seeds) of one experiment; raise it with
#: ``execution.max_points`` (``--max-points``). A grid above it is refused before anything is expanded.
MAX_POINTS = 10_000

Scalar = Union[bool, int, float, str, None]


# --------------------------------------------------------------------------- schema
class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class UserGroup(_Strict):
    """One group of users: the sender's shared prompt and each receiver's own prompt.

    The sender (edge server or first device) runs the first ``num_shared_steps``
    with ``shared_prompt``; each receiver finishes with its own prompt.
    """

    name: str | None = None
    shared_prompt: str = Field(min_length=1)
    receiver_prompts: list[str] = Field(min_length=1)


class GroupingConfig(_Strict):
    """Free user prompts grouped by meaning with :class:`pipeline.grouping.PromptGrouper`.

    Each group's representative (medoid) prompt is the shared prompt; every
    member of the group is a receiver.
    """

    prompts: list[str] = Field(min_length=2)
    threshold: float | None = Field(default=None, gt=-1.0, le=1.0)
    max_group_size: int | None = Field(default=None, ge=1)
    embedder: Literal["default", "text_encoder", "vocabulary"] = Field(
        default="vocabulary",
        description="default: sentence-transformers if installed, else the model's text encoder; "
                    "vocabulary: the scene vocabulary's knowledge graph (same on every machine)")
    auto_shared_steps: bool = Field(
        default=False, description="each group's num_shared_steps from the pipeline's similarity rule")


class ExecutionConfig(_Strict):
    """How points run. None of these change the numbers, so they are not part of the run id.

    Every point computes with one torch thread (:func:`experiments.evaluate.evaluate_point`
    pins it), so ``torch_threads`` and the executor (serial or worker processes)
    change only the speed, never a digit of the results.
    """

    executor: str = Field(default="process", pattern=r"^[A-Za-z_][\w.-]*(:[A-Za-z_]\w*)?$",
                          description="process (local workers), serial, ray (a Ray cluster), or a plug-in registered "
                                      "in the 'distdiff.executors' entry-point group")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="the executor's own keywords; ray: address, num_cpus, num_gpus, "
                                                "runtime_env")
    workers: int = Field(default=2, ge=1, le=256)
    torch_threads: int = Field(default=1, ge=1, le=256)
    start_method: Literal["spawn", "forkserver", "fork"] = "spawn"
    save_images: bool = True
    max_retries: int = Field(default=1, ge=0, le=10)
    max_points: int = Field(default=MAX_POINTS, ge=1,
                            description="refuse a grid with more points (combinations x seeds) than this")


class PlotSpec(_Strict):
    """One figure.

    ``kind: lines`` (default): ``y`` metrics (one panel each) against ``x``; one
    line per value of ``hue``; values averaged over every other column (seeds,
    users) with a 95% confidence band.

    ``kind: frontier`` (:mod:`experiments.frontier`): each ``y`` against the
    channel uses ``x`` (log axis), one panel per value of the ``panel`` columns,
    each ``arm`` (a grid axis, e.g. ``variant``) a point with its 95% interval;
    the report adds a table per panel: the budget of ``x`` below which the
    ``reference`` arm gives the better ``y``, and each arm's ``y`` at ``<= budget``.

    ``kind: steps`` (:func:`experiments.frontier.step_table`, no plot): for
    each ``arm`` and ``panel``, ``y`` between consecutive values of ``x`` (e.g.
    SNR steps), paired on seed and receiver: the mean change with its 95%
    interval and p; a step whose interval lies below 0 is a fall, and below
    ``below`` (e.g. the lowest training SNR) a fall of more than ``max_drop``
    per 5 units of ``x`` is a cliff.

    ``kind: latent_nmse``: latent NMSE of codecs against the JSCC bounds from
    the table ``data`` (a CSV beside ``results.csv``, written by
    ``benchmarks/bench_codec.py --section bounds --csv ...``; see
    :func:`experiments.frontier.plot_latent_nmse`).
    """

    kind: Literal["lines", "frontier", "latent_nmse", "steps"] = "lines"
    x: str
    y: list[str] = Field(min_length=1)
    hue: str | None = None
    logx: bool = False
    title: str | None = None
    arm: str | None = Field(None, description="frontier: the column naming the arms (e.g. variant)")
    panel: list[str] = Field(default_factory=list, description="frontier: one panel per value of these columns")
    reference: str | None = Field(None, description="frontier: the arm whose crossover budget is tabulated")
    budget: float | None = Field(None, gt=0, description="frontier: tabulate each arm's y at <= budget of x")
    data: str | None = Field(None, description="latent_nmse: the CSV file (relative to the run directory)")
    spectrum: str | None = Field(None, description="latent_nmse: a CSV of the latent's DCT spectrum (k, "
                                                   "coefficient, variance) to put every arm's latent_mse against "
                                                   "the OPTA bound at its own channel uses")
    below: float | None = Field(None, description="steps: the x under which a fall is checked against max_drop")
    max_drop: float | None = Field(None, gt=0, description="steps: the largest fall of y per 5 units of x "
                                                            "allowed below 'below'")

    @model_validator(mode="after")
    def _kind_fields(self):
        if self.kind in ("frontier", "steps") and not self.arm:
            raise ValueError(f"a {self.kind} entry needs 'arm' (the column naming the arms, e.g. variant)")
        if self.kind != "latent_nmse" and self.spectrum:
            raise ValueError("spectrum applies to kind 'latent_nmse'")
        if self.kind != "steps" and (self.below is not None or self.max_drop is not None):
            raise ValueError("below and max_drop apply to kind 'steps'")
        if self.kind == "latent_nmse" and not self.data:
            raise ValueError("a latent_nmse plot needs 'data' (a CSV file in the run directory)")
        if self.kind == "lines" and (self.arm or self.panel or self.reference or self.budget or self.data):
            raise ValueError("arm, panel, reference, budget and data apply to kind 'frontier', 'steps' or "
                             "'latent_nmse'")
        return self


class LatencyEnergyConfig(_Strict):
    """Parameters of the end-to-end latency and energy model (see :mod:`experiments.latency_energy`).

    Times are per UNet evaluation (one denoising step of one image, classifier-free
    guidance included) [s]; energies in [J]. The airtime comes from the chain
    (MCS spectral efficiency and the link bandwidth).
    """

    edge_step_time_s: float = Field(gt=0)
    device_step_time_s: float = Field(gt=0)
    edge_step_energy_j: float = Field(ge=0)
    device_step_energy_j: float = Field(ge=0)
    tx_energy_per_bit_j: float = Field(default=0.0, ge=0)
    rx_energy_per_bit_j: float = Field(default=0.0, ge=0)


class ExperimentConfig(_Strict):
    """A whole experiment: model, users, seeds, base chain, grid, plots, execution."""

    name: str
    description: str = ""
    model: str | None = Field(
        default=None,
        description="None: the shipped embedded model; 'tiny-random': a random tiny model of the same "
                    "architecture (tests, smoke runs); 'embedded-random': the shipped architecture with "
                    "random weights (timing); otherwise a diffusers folder or hub id")
    device: str = "cpu"
    seeds: list[int] = Field(min_length=1)
    users: list[UserGroup] | dict[str, list[UserGroup]] | None = None
    grouping: GroupingConfig | None = None
    chain: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, Any]
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    latency_energy: LatencyEnergyConfig | None = None
    plots: list[PlotSpec] = Field(default_factory=list)
    headline: list[str] = Field(default_factory=lambda: [
        "psnr_db", "ssim", "adherent", "compute_saved_fraction", "airtime_s"])
    image_grid_max_points: int = Field(default=8, ge=1)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v):
        return check_plain_name(v, "name")

    @field_validator("seeds")
    @classmethod
    def _unique_seeds(cls, v):
        if len(set(v)) != len(v):
            raise ValueError(f"seeds must be distinct, got {v}")
        return v

    @field_validator("users")
    @classmethod
    def _nonempty_users(cls, v):
        if v is None:
            return v
        if isinstance(v, dict):
            if not v:
                raise ValueError("users: the set of user sets is empty; give at least one")
            for name, groups in v.items():
                if not groups:
                    raise ValueError(f"users['{name}'] is empty; give at least one group")
        elif not v:
            raise ValueError("users is empty; give at least one group")
        return v

    @field_validator("grid")
    @classmethod
    def _grid_shape(cls, v):
        if not v:
            raise ValueError("the grid is empty; give at least one axis with at least one value, "
                             "e.g. grid: {snr_db: [0, 10]}")
        return v

    @model_validator(mode="after")
    def _grid_values(self):
        """Ranges counted before they are expanded; the whole grid counted against ``execution.max_points``."""
        limit = self.execution.max_points
        out = {}
        for axis, values in self.grid.items():
            if isinstance(values, str):
                values = parse_range(values, f"grid axis '{axis}'", max_count=limit)
            elif isinstance(values, (bool, int, float)) or values is None:
                values = [values]
            if not isinstance(values, list):
                raise ValueError(f"grid axis '{axis}' must be a list of values or a 'start:step:stop' "
                                 f"string, got {type(values).__name__}")
            bad = [x for x in values if not (isinstance(x, (bool, int, float, str)) or x is None)]
            if bad:
                raise ValueError(f"grid axis '{axis}': values must be numbers, strings, booleans or null, "
                                 f"got {bad[0]!r}")
            if len(values) == 0:
                raise ValueError(f"grid axis '{axis}' has no values; give at least one")
            if len(set(map(_canon, values))) != len(values):
                raise ValueError(f"grid axis '{axis}' repeats a value: {values}")
            out[axis] = list(values)
        self.grid = out
        n = self.num_points()
        if n > limit:
            sizes = " x ".join(f"{a} {len(v) if isinstance(v, list) else 1}" for a, v in self.grid.items())
            raise ValueError(f"the grid has {n} points ({sizes} x {len(self.seeds)} seeds), above the limit "
                             f"execution.max_points = {limit}; make the grid coarser, or raise the limit with "
                             f"--max-points {n} (or execution.max_points: {n})")
        return self

    @model_validator(mode="after")
    def _consistency(self):
        if (self.users is None) == (self.grouping is None):
            raise ValueError("give exactly one of 'users' (explicit groups) or 'grouping' (free prompts)")
        if "variant" in self.grid:
            unknown = [v for v in self.grid["variant"] if v not in self.variants]
            if unknown:
                raise ValueError(f"grid axis 'variant' names unknown variants {unknown}; "
                                 f"defined: {list(self.variants)}")
        elif self.variants:
            self.grid["variant"] = list(self.variants)
        if "user_set" in self.grid:
            if not isinstance(self.users, dict):
                raise ValueError("grid axis 'user_set' needs 'users' as a mapping of named user sets")
            unknown = [u for u in self.grid["user_set"] if u not in self.users]
            if unknown:
                raise ValueError(f"grid axis 'user_set' names unknown user sets {unknown}; "
                                 f"defined: {list(self.users)}")
        elif isinstance(self.users, dict):
            self.grid["user_set"] = list(self.users)
        return self

    # ------------------------------------------------------------------ helpers
    def num_points(self) -> int:
        """Grid combinations x seeds, counted without expanding anything (variants/user sets included)."""
        n = len(self.seeds)
        for values in self.grid.values():
            n *= len(values) if isinstance(values, list) else 1
        for axis, named in (("variant", self.variants), ("user_set", self.users)):
            if axis not in self.grid and isinstance(named, dict) and named:
                n *= len(named)
        return n

    def results_relevant(self) -> dict:
        """The part of the config that determines the numbers (for the run id)."""
        d = self.model_dump(mode="json")
        for k in ("description", "plots", "headline", "execution", "image_grid_max_points"):
            d.pop(k, None)
        return d

    def config_hash(self) -> str:
        """Stable 12-hex-digit hash of :meth:`results_relevant` (the default run id)."""
        return stable_hash(self.results_relevant())[:12]


# --------------------------------------------------------------------------- helpers
def _canon(value) -> str:
    return json.dumps(value, sort_keys=True)


def parse_range(text: str, name: str = "value", max_count: int | None = None) -> list[float]:
    """``"start:step:stop"`` (inclusive) or ``"a,b,c"`` as a list of numbers.

    The values come from :func:`phy.sweep.parse_float_list` (the project's one
    range parser); a range is counted before it is expanded and refused above
    ``max_count`` values.

    >>> parse_range("0:5:20")
    [0.0, 5.0, 10.0, 15.0, 20.0]
    >>> parse_range("1,2.5")
    [1.0, 2.5]
    >>> parse_range("0:0.00001:10", "snr_db", max_count=10_000)       # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: snr_db: range '0:0.00001:10' has 1000001 values, above the limit of 10000; ...
    """
    from phy.sweep import parse_float_list

    text = text.strip()
    parts = text.split(":")
    if max_count is not None and len(parts) == 3:
        try:
            start, step, stop = (float(t) for t in parts)
            count = math.floor((stop - start) / step + 1e-9) + 1 if step else 0
        except (ValueError, OverflowError, ZeroDivisionError):
            count = 0                           # malformed: parse_float_list names the problem
        if isinstance(count, int) and count > max_count:
            raise ValueError(f"{name}: range '{text}' has {count} values, above the limit of {max_count}; "
                             f"use a coarser step, or raise the limit with --max-points")
    return parse_float_list(text, name)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """Apply ``key.path=value`` overrides (values parsed as YAML) to a raw config dict.

    >>> apply_overrides({"grid": {"snr_db": [0]}}, ["grid.snr_db=[0, 10]", "seeds=[1]"])
    {'grid': {'snr_db': [0, 10]}, 'seeds': [1]}
    """
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key.path=value")
        key, text = item.split("=", 1)
        try:
            value = yaml_load(text)
        except (yaml.YAMLError, ValueError) as exc:
            raise ConfigError(f"override '{item}': cannot parse value: {exc}".splitlines()[0]) from None
        set_dotted(out, key.strip(), value)
    return out


def find_config(name_or_path: str | Path | None) -> Path:
    """Path of a config given a path, or a name under :data:`CONFIG_DIR` (None: ``default``)."""
    if name_or_path is None:
        name_or_path = "default"
    p = Path(name_or_path)
    if p.is_file():
        return p
    for cand in (CONFIG_DIR / p, CONFIG_DIR / f"{p}.yaml"):
        if cand.is_file():
            return cand
    shipped = sorted(c.stem for c in CONFIG_DIR.glob("*.yaml"))
    raise ConfigError(f"config '{name_or_path}' not found: not a file, nor a shipped config ({', '.join(shipped)})")


def read_raw(path: Path) -> dict:
    """The YAML mapping in ``path``; a clear error if it is not a mapping."""
    try:
        raw = yaml_load(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not a text file (not UTF-8); give a YAML config file") from None
    except IsADirectoryError:
        raise ConfigError(f"config {path}: is a directory; give a YAML config file") from None
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read it: {exc.strerror}") from None
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"config {path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: the top level must be a mapping of keys, got {type(raw).__name__}")
    return raw


def parse_config(raw: dict, source: str = "<dict>", chain_model: type[BaseModel] | None | str = "auto"
                 ) -> ExperimentConfig:
    """Validate a raw dict into an :class:`ExperimentConfig` and check every grid point.

    ``chain_model``: the pydantic class the resolved ``chain`` of every point must
    validate against ("auto": :class:`pipeline.ChainConfig`; None: skip, for the
    runner's own tests with a fake point function).
    """
    try:
        cfg = ExperimentConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, ExperimentConfig, source)) from None
    if chain_model == "auto":
        from pipeline import ChainConfig as chain_model  # noqa: N813
    try:
        expand_grid(cfg, chain_model=chain_model)
    except ConfigError as err:
        raise ConfigError(f"config {source}: {err}") from None
    return cfg


def load_config(name_or_path: str | Path | None = None, overrides: list[str] | None = None,
                chain_model: type[BaseModel] | None | str = "auto") -> ExperimentConfig:
    """Load, override and validate a config (a path, or a shipped config's name; None = default)."""
    path = find_config(name_or_path)
    raw = apply_overrides(read_raw(path), overrides or [])
    return parse_config(raw, source=str(path.name if path.parent == CONFIG_DIR else path), chain_model=chain_model)


def shipped_configs() -> list[Path]:
    """Every config file shipped under :data:`CONFIG_DIR`."""
    return sorted(CONFIG_DIR.glob("*.yaml"))


__all__ = [
    "CONFIG_DIR", "ConfigError", "UserGroup", "GroupingConfig", "ExecutionConfig", "PlotSpec",
    "LatencyEnergyConfig", "ExperimentConfig", "parse_config", "load_config", "apply_overrides",
    "find_config", "read_raw", "parse_range", "stable_hash", "set_dotted", "shipped_configs",
    "format_validation_error", "MAX_POINTS",
]
