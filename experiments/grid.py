"""Grid expansion: an :class:`~experiments.config.ExperimentConfig` -> the list of points to run.

A *point* is one combination of the grid's axes and one seed. Its chain
configuration is the base ``chain`` of the config, deep-merged with the named
``variant`` (if any) and then with the axis values, each set at the axis's path
in :class:`pipeline.ChainConfig` (``snr_db`` -> ``snr_db``, ``modulation`` ->
``link.modulation``, ``bits`` -> ``codec.bits`` ...; a dotted path such as
``link.carrier_frequency_hz`` works too). A point's ``key`` is a hash of
everything that determines its numbers (model, device, resolved chain, users,
seed), so a rerun recognises finished points.

Example
-------
>>> from experiments.config import parse_config
>>> from experiments.grid import expand_grid
>>> cfg = parse_config({"name": "t", "seeds": [0, 1], "grid": {"snr_db": [0, 10]},
...     "users": [{"shared_prompt": "a red apple on a wooden table",
...                "receiver_prompts": ["a yellow lemon on a wooden table"]}]}, chain_model=None)
>>> points = expand_grid(cfg, chain_model=None)
>>> [(p.params["snr_db"], p.seed) for p in points]
[(0, 0), (0, 1), (10, 0), (10, 1)]
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ValidationError

from .configtools import ConfigError, deep_merge, format_validation_error, models_in, set_dotted, stable_hash

if TYPE_CHECKING:      # the schema imports this module to check every point
    from .config import ExperimentConfig

#: axes handled by the runner itself rather than set in the chain config
SPECIAL_AXES = ("variant", "user_set")

#: the issue's axis names -> the chain-config field they set, where the names differ.
#: Checked against the real ChainConfig on use (an alias to a missing field is skipped).
ALIASES: dict[str, str] = {
    "bits": "codec.bits",
    "quantiser_bits": "codec.bits",
    "soft": "soft_decoding",
}


@dataclass(frozen=True)
class Point:
    """One unit of work: one grid combination and one seed.

    ``params``: the axis values (column name -> value) shown in results;
    ``chain``: the chain config's explicitly set fields (JSON-able dict, what the
    worker validates); ``extra["chain_resolved"]``: every field, defaults included
    (part of the key); ``groups``: user groups
    ``[{"name", "shared_prompt", "receiver_prompts"}]`` or None when ``grouping``
    (free prompts grouped by meaning at run time) is used.
    """

    index: int
    key: str
    seed: int
    params: dict[str, Any]
    chain: dict[str, Any]
    groups: list[dict] | None
    grouping: dict | None
    model: str | None
    device: str
    latency_energy: dict | None = None
    save_images: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def _has_path(model: type[BaseModel], path: str) -> bool:
    cands = [model]
    for part in path.split("."):
        owners = [m for m in cands if part in m.model_fields]
        if not owners:
            return False
        cands = [s for m in owners for s in models_in(m.model_fields[part].annotation)]
        # the last part may be a plain field (no sub-models): fine
    return True


def axis_paths(chain_model: type[BaseModel] | None) -> dict[str, str]:
    """Every axis name allowed with ``chain_model`` -> its dotted path in the chain config."""
    if chain_model is None:
        return {}
    paths: dict[str, str] = {}
    for name, info in chain_model.model_fields.items():
        for sub in models_in(info.annotation):
            for sub_name in sub.model_fields:
                paths.setdefault(sub_name, f"{name}.{sub_name}")
    for name in chain_model.model_fields:      # top-level fields win over nested ones
        paths[name] = name
    for alias, path in ALIASES.items():
        if alias not in paths and _has_path(chain_model, path):
            paths[alias] = path
    return paths


def resolve_axis(name: str, chain_model: type[BaseModel] | None) -> str | None:
    """The chain-config path an axis sets (None for the runner's special axes).

    Raises :class:`ConfigError` naming the allowed axes for an unknown name.
    """
    if name in SPECIAL_AXES:
        return None
    if chain_model is None:
        return name
    if "." in name:
        if _has_path(chain_model, name):
            return name
        raise ConfigError(f"grid axis '{name}': no such field path in {chain_model.__name__}")
    paths = axis_paths(chain_model)
    if name in paths:
        return paths[name]
    allowed = sorted(set(paths) | set(SPECIAL_AXES))
    raise ConfigError(f"unknown grid axis '{name}'; allowed axes: {', '.join(allowed)} "
                      f"(or a dotted path into the chain config)")


def _groups_for(cfg: ExperimentConfig, user_set: str | None) -> list[dict] | None:
    if cfg.users is None:
        return None
    groups = cfg.users[user_set] if isinstance(cfg.users, dict) else cfg.users
    out = []
    for i, g in enumerate(groups):
        d = g.model_dump()
        d["name"] = d["name"] or f"group{i}"
        out.append(d)
    return out


def resolve_chain(cfg: ExperimentConfig, params: dict, chain_model: type[BaseModel] | None) -> dict:
    """The chain config of one grid combination: base <- variant <- axis values (validated).

    Returns the validated config's explicitly set fields (``exclude_unset``), which
    re-validate to the same object in the worker; :func:`full_chain` adds the defaults.
    """
    chain = copy.deepcopy(cfg.chain)
    if "variant" in params:
        chain = deep_merge(chain, cfg.variants[params["variant"]])
    for axis, value in params.items():
        path = resolve_axis(axis, chain_model)
        if path is not None:
            set_dotted(chain, path, value)
    if chain_model is None:
        return chain
    try:
        return chain_model.model_validate(chain).model_dump(mode="json", exclude_unset=True)
    except ValueError as err:      # pydantic's ValidationError, or a chain's own one-line ValueError
        if isinstance(err, ValidationError):
            msg = format_validation_error(err, chain_model, "chain").removeprefix("config chain: ")
        else:
            msg = str(err)
        where = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise ConfigError(f"chain config at grid point ({where}): {msg}") from None


def full_chain(chain: dict, chain_model: type[BaseModel] | None) -> dict:
    """Every field of the chain config, defaults included (for the point key and the resolved config)."""
    if chain_model is None:
        return chain
    return chain_model.model_validate(chain).model_dump(mode="json")


def count_points(cfg: ExperimentConfig) -> int:
    """How many points :func:`iter_points` yields, counted without expanding the grid."""
    return cfg.num_points()


def iter_points(cfg: ExperimentConfig, chain_model: type[BaseModel] | None | str = "auto") -> Iterator[Point]:
    """The experiment's points one at a time, in a fixed order: the grid's axes (first slowest), then seeds.

    Lazy: a caller can show the first points of a large grid at once. Each
    combination's chain is validated as it is reached.
    """
    if chain_model == "auto":
        from pipeline import ChainConfig as chain_model  # noqa: N813
    axes = list(cfg.grid)
    for axis in axes:
        resolve_axis(axis, chain_model)   # unknown axes fail before anything runs
    le = cfg.latency_energy.model_dump() if cfg.latency_energy else None
    grouping = cfg.grouping.model_dump() if cfg.grouping else None
    index = 0
    for combo in itertools.product(*(cfg.grid[a] for a in axes)):
        params = dict(zip(axes, combo))
        chain = resolve_chain(cfg, params, chain_model)
        resolved = full_chain(chain, chain_model)
        groups = _groups_for(cfg, params.get("user_set"))
        for seed in cfg.seeds:
            key = stable_hash({"model": cfg.model, "device": cfg.device, "chain": resolved, "groups": groups,
                               "grouping": grouping, "seed": seed, "latency_energy": le,
                               "params": params})[:16]
            yield Point(index=index, key=key, seed=seed, params=params, chain=chain,
                        groups=groups, grouping=grouping, model=cfg.model, device=cfg.device,
                        latency_energy=le, save_images=cfg.execution.save_images,
                        extra={"chain_resolved": resolved})
            index += 1


def expand_grid(cfg: ExperimentConfig, chain_model: type[BaseModel] | None | str = "auto") -> list[Point]:
    """All points of the experiment (see :func:`iter_points`); refuses two points with one configuration.

    The number of points is checked against ``execution.max_points`` before
    anything is expanded (a config validated by :mod:`experiments.config` is
    within it already).
    """
    n = count_points(cfg)
    if n > cfg.execution.max_points:
        raise ConfigError(f"the grid has {n} points, above the limit execution.max_points = "
                          f"{cfg.execution.max_points}; raise it with --max-points {n}")
    points = list(iter_points(cfg, chain_model))
    keys = [p.key for p in points]
    if len(set(keys)) != len(keys):
        raise ConfigError("two grid points resolve to the same configuration; remove the duplicate axis values")
    return points


#: tidy columns every results row carries: column -> dotted path in the resolved chain config
RESOLVED_COLUMNS: dict[str, str] = {
    "transmission": "transmission", "channel": "link.channel", "speed_mps": "link.speed_mps",
    "modulation": "link.modulation", "code": "link.code", "code_rate": "link.code_rate", "mcs": "link.mcs",
    "codec": "codec.name", "bits": "codec.bits", "snr_db": "snr_db", "num_inference_steps": "num_inference_steps",
    "num_shared_steps": "num_shared_steps", "scheduler": "scheduler",
}


def resolved_columns(point: Point) -> dict[str, Any]:
    """The point's resolved settings as tidy columns (:data:`RESOLVED_COLUMNS` present in its chain).

    A value set by a ``variant`` or a default appears here as well as one set by a grid axis.

    >>> p = Point(0, "k", 0, {"variant": "v"}, {}, None, None, None, "cpu",
    ...           extra={"chain_resolved": {"snr_db": 5.0, "link": {"channel": "awgn"}, "codec": {"bits": 8}}})
    >>> resolved_columns(p)
    {'channel': 'awgn', 'bits': 8, 'snr_db': 5.0}
    """
    chain = point.extra.get("chain_resolved") or {}
    out = {}
    for column, path in RESOLVED_COLUMNS.items():
        value, found = chain, True
        for part in path.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                found = False
                break
        if found and not isinstance(value, (dict, list)):
            out[column] = value
    return out


#: chain fields that determine a point's sender state, error-free references and stand-alone images
#: (everything before and beside the link): points equal in these, the seed, the users and the model share them
SENDER_FIELDS = ("num_inference_steps", "num_shared_steps", "guidance_scale", "scheduler", "compare_alone")


def sender_key(point: Point) -> str:
    """Hash of what the point's sender state, references and stand-alone images depend on.

    Points with one sender key recompute nothing of each other's when they run in one
    worker (the pipeline memoises those per process): :func:`plan_chunks` keeps them together.
    """
    chain = point.extra.get("chain_resolved", point.chain)
    return stable_hash({"model": point.model, "device": point.device, "seed": point.seed,
                        "groups": point.groups, "grouping": point.grouping,
                        "chain": {k: chain.get(k) for k in SENDER_FIELDS}})


def plan_chunks(points: list[Point], workers: int, max_chunk: int = 16) -> list[list[Point]]:
    """Cut ``points`` into chunks of one sender key each, in the order a pool should start them.

    Points of one sender key (:func:`sender_key`) form a group; groups go whole (biggest
    first) as long as every worker gets one; the groups of the last, partial round are
    split so that every worker has work (each split repeats the group's shared work once,
    cheaper than an idle worker); no chunk holds more than ``max_chunk`` points, so an
    interrupted sweep loses little. Within a chunk the points keep their grid order, rotated so
    that the chunks started together begin at different points of the grid (another SNR: a
    worker then measures the adaptive-MCS probes the other one has not, and they share them
    through the probe store, see :mod:`phy.probe_store`); ``results.csv`` is sorted at the end,
    so the order never shows in the results.

    >>> from types import SimpleNamespace as P
    >>> pts = [P(index=i, seed=i % 3, model=None, device="cpu", groups=None, grouping=None, chain={}, extra={})
    ...        for i in range(21)]
    >>> [[p.index for p in c] for c in plan_chunks(pts, workers=2)]
    [[0, 3, 6, 9, 12, 15, 18], [10, 13, 16, 19, 1, 4, 7], [2, 5, 8, 11], [17, 20, 14]]
    """
    groups: dict[str, list[Point]] = {}
    for p in points:
        groups.setdefault(sender_key(p), []).append(p)
    ordered = sorted(groups.values(), key=len, reverse=True)      # stable: grid order among equals
    workers = max(1, int(workers))
    whole = len(ordered) - len(ordered) % workers if len(ordered) >= workers else 0
    chunks: list[list[Point]] = []
    for i, group in enumerate(ordered):
        pieces = 1 if i < whole else max(1, -(-workers // (len(ordered) - whole)))
        pieces = min(len(group), max(pieces, -(-len(group) // max_chunk)))
        size = -(-len(group) // pieces)
        chunks.extend(group[j:j + size] for j in range(0, len(group), size))
    chunks.sort(key=len, reverse=True)                            # slowest first (stable)
    for i, chunk in enumerate(chunks):                            # workers start at different grid points
        offset = (i % workers) * len(chunk) // workers
        chunks[i] = chunk[offset:] + chunk[:offset]
    return chunks


@dataclass
class PointResult:
    """What one point returns.

    ``rows``: one dict of flat scalars per user (the runner adds the point's
    bookkeeping columns, seed, axis values and :func:`resolved_columns`); ``images``: name -> uint8
    [H, W, 3] image, saved as ``images/<point_key>/<name>.png``.
    """

    rows: list[dict]
    images: dict[str, np.ndarray] = field(default_factory=dict)


__all__ = ["Point", "PointResult", "SPECIAL_AXES", "ALIASES", "RESOLVED_COLUMNS", "axis_paths", "resolve_axis",
           "resolve_chain", "full_chain", "count_points", "iter_points", "expand_grid", "resolved_columns",
           "SENDER_FIELDS", "sender_key", "plan_chunks"]
