"""Shared helpers of the experiment configs: strict YAML, one-line errors, hashing, merging, plain names.

Used by :mod:`experiments.config` (the schema) and :mod:`experiments.grid`
(points); neither imports the other's private names, and this module imports
neither (no import cycle).

YAML is read with a safe loader that follows YAML 1.2 where YAML 1.1 silently
surprises: ``10:2:20`` stays the string ``"10:2:20"`` (YAML 1.1 reads it as the
base-60 number 36140), ``20e6`` is a float, and a key given twice is an error
naming the key and both lines (YAML 1.1 keeps the last one silently).

Example
-------
>>> yaml_load("snr_db: 10:2:20")
{'snr_db': '10:2:20'}
>>> yaml_load("bandwidth_hz: 20e6")
{'bandwidth_hz': 20000000.0}
>>> try:
...     yaml_load("a: 1\\nb: 2\\na: 3")
... except ValueError as err:
...     print(err)
duplicate key 'a' (lines 1 and 3); give each key once
>>> check_plain_name("run-1", "--run-id")
'run-1'
>>> try:
...     check_plain_name("../other", "--run-id")
... except ValueError as err:
...     print(err)                                  # doctest: +ELLIPSIS
--run-id: '../other' is not a plain name; ...
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import typing
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError


class ConfigError(ValueError):
    """A configuration file is invalid. The message is one line naming the key(s) and the allowed values."""


# --------------------------------------------------------------------------- YAML
_INT_RE = re.compile(r"""^(?:[-+]?0b[0-1_]+
    |[-+]?0[0-7_]+
    |[-+]?(?:0|[1-9][0-9_]*)
    |[-+]?0x[0-9a-fA-F_]+)$""", re.X)          # YAML 1.1's int without the base-60 form
_FLOAT_RE = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)[eE][-+]?[0-9]+
    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X)             # YAML 1.1's float without base 60, exponents as in 1.2


class StrictLoader(yaml.SafeLoader):
    """Safe YAML loader without the sexagesimal (base-60) resolvers that rejects duplicate keys."""

    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers
                if tag not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    hash(key)
                except TypeError:
                    continue                    # the base class reports unhashable keys
                if key in seen:
                    raise ValueError(f"duplicate key {key!r} (lines {seen[key] + 1} and "
                                     f"{key_node.start_mark.line + 1}); give each key once")
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


StrictLoader.add_implicit_resolver("tag:yaml.org,2002:int", _INT_RE, list("-+0123456789"))
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789."))


def yaml_load(text: str):
    """Parse YAML text with :class:`StrictLoader` (a ValueError for a duplicate key)."""
    return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass


# --------------------------------------------------------------------------- names and hashes
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def check_plain_name(value: str, what: str) -> str:
    """``value`` if it is a plain file name (letters, digits, ``_ . -``; no separators, no ``..``).

    A run id or experiment name becomes a directory under ``--out``; anything
    else could write outside it.
    """
    if not isinstance(value, str) or not _PLAIN_NAME.match(value) or ".." in value:
        raise ValueError(f"{what}: {value!r} is not a plain name; use letters, digits, '_', '.' and '-' "
                         f"(not starting with '.' or '-', no '/' or '..', at most 128 characters)")
    return value


def check_output_folder(path: str, option: str = "--out") -> Path:
    """``path`` as a folder that exists or can be created, and can be written; checked before any work.

    >>> check_output_folder("results").name
    'results'
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {path}: exists and is not a directory")
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{option} {path}: {probe} is a file, so the folder cannot be created; give another path")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{option} {path}: {probe} is not writable; give a folder you can write to")
    if probe != folder:  # os.access trusts the permission bits (root passes them); try a real subfolder
        import tempfile  # pylint: disable=import-outside-toplevel

        try:
            os.rmdir(tempfile.mkdtemp(prefix=".distdiff-check-", dir=probe))
        except OSError as err:
            raise ValueError(f"{option} {path}: a folder cannot be created in {probe} ({err.strerror}); "
                             "give a folder you can write to") from None
    return folder


def check_output_file(path: str, option: str = "--output") -> Path:
    """``path`` as a file that can be written into an existing folder; checked before any work.

    >>> check_output_file("link.csv").name
    'link.csv'
    """
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"{option} {path}: is a directory; give a file name")
    folder = file.parent
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist; create it first")
    if not os.access(file if file.exists() else folder, os.W_OK):
        raise ValueError(f"{option} {path}: {file if file.exists() else folder} is not writable")
    return file


def stable_hash(obj) -> str:
    """SHA-256 hex digest of the canonical JSON of ``obj`` (sorted keys)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"),
                                     default=str).encode()).hexdigest()


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged in, recursively for nested dicts."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def set_dotted(d: dict, path: str, value) -> None:
    """Set ``d['a']['b'] = value`` for ``path='a.b'``, creating dicts on the way."""
    parts = path.split(".")
    for p in parts[:-1]:
        if not isinstance(d.get(p), dict):
            d[p] = {}
        d = d[p]
    d[parts[-1]] = value


# --------------------------------------------------------------------------- pydantic errors
def models_in(annotation) -> list[type[BaseModel]]:
    """pydantic models reachable through an annotation (Optional, Union, list, dict)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out = []
    for arg in typing.get_args(annotation):
        out.extend(models_in(arg))
    return out


def allowed_keys_at(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names of the pydantic model at ``loc`` (a ValidationError location), if any."""
    candidates = [model]
    for part in loc:
        owners = [m for m in candidates if isinstance(part, str) and part in m.model_fields]
        if not owners:      # list index or dict key: the same models one level down
            continue
        candidates = [sub for m in owners for sub in models_in(m.model_fields[part].annotation)]
        if not candidates:
            return None
    return sorted({f for m in candidates for f in m.model_fields})


class _ErrorList:
    """Duck-typed stand-in for a ValidationError holding a chosen subset of its errors."""

    def __init__(self, errors: list[dict]):
        self._errors = errors

    def errors(self) -> list[dict]:
        return self._errors


def format_validation_error(err: ValidationError, model: type[BaseModel], source: str) -> str:
    """One line that names every bad key, what is wrong and the allowed keys/values.

    Each error is worded by the project's one formatter, :func:`phy.config.format_validation_error`;
    an unknown key also lists the keys allowed at its place (:func:`allowed_keys_at`).
    """
    from phy.config import format_validation_error as one_line

    errors = []
    for e in err.errors():
        loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and ("[" in p or p in (
            "list", "dict", "str", "int", "float", "bool", "none"))))
        errors.append((loc, e))
    # a union reports every branch: keep the deepest errors (drop a location that prefixes another)
    locs = [loc for loc, _ in errors]
    errors = [(loc, e) for loc, e in errors
              if not any(len(o) > len(loc) and o[:len(loc)] == loc for o in locs)]
    parts: list[str] = []
    for loc, e in errors:
        if e["type"] == "extra_forbidden":
            where = ".".join(map(str, loc[:-1])) or "top level"
            allowed = allowed_keys_at(model, loc[:-1])
            msg = f"unknown key '{loc[-1]}' at {where}; allowed keys: {', '.join(allowed or [])}"
        else:
            quiet = e["type"] == "missing" or isinstance(e.get("input"), (dict, list))
            msg = one_line(_ErrorList([{**e, "loc": loc, **({"type": "value_error"} if quiet else {})}]),
                           model.__name__)          # value errors are worded without '(got ...)'

        if msg not in parts:
            parts.append(msg)
    return f"config {source}: " + "; ".join(parts)


__all__ = ["ConfigError", "StrictLoader", "yaml_load", "check_plain_name", "check_output_folder",
           "check_output_file", "stable_hash", "deep_merge",
           "set_dotted", "models_in", "allowed_keys_at", "format_validation_error"]
