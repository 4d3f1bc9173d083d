"""Command-line options generated from the pydantic models they configure.

One option per model field: the help is the field's ``description`` (or its
entry in the class docstring: ``:param name: ...`` or a numpy-style
``name : type`` block), the default is the model's, printed once, the
choices come from ``Literal`` types and the bounds (``ge``, ``gt``, ``le``,
``lt``) are checked when the option is parsed, so a bad value is argparse's
one-line error. The argparse default of every generated option is `None`
and :func:`given_values` returns only what the user typed: the model, not
the parser, fills in (and validates) everything else.

Fail fast: importing the configuration models imports torch and Sionna
(seconds). :func:`model_specs` therefore keeps the extracted option specs
in a small JSON cache keyed by a hash of the source of the packages that
define the models (and the pydantic version); a changed source rebuilds it,
so help and checks cannot drift from the models. The cache lives in
``$DISTDIFF_CACHE_DIR`` (default ``~/.cache/distdiff``); an unwritable cache
only costs the import.

API
---
``model_specs("pkg.module:Model", include=None, exclude=()) -> list[OptionSpec]``
``specs_from_model(Model) -> list[OptionSpec]`` (no cache)
``add_options(parser_or_group, specs, *, flags=None, help=None, metavars=None) -> list[OptionSpec]``
``given_values(args, specs) -> dict`` (field name -> value, only the options given)

Example
-------
>>> import argparse
>>> from typing import Literal
>>> from pydantic import BaseModel, Field
>>> class Cfg(BaseModel):
...     mode: Literal["a", "b"] = Field("a", description="the mode")
...     steps: int = Field(4, ge=1, description="how many steps")
>>> parser = argparse.ArgumentParser(prog="demo", exit_on_error=False)
>>> specs = add_options(parser, specs_from_model(Cfg))
>>> given_values(parser.parse_args(["--steps", "3"]), specs)
{'steps': 3}
>>> [a.help for a in parser._actions if a.dest == "mode"]
['the mode (default: a)']
>>> try:
...     parser.parse_args(["--steps", "0"])
... except argparse.ArgumentError as exc:
...     print(exc)
argument --steps: must be >= 1, got 0
"""



import argparse
import hashlib
import importlib
import importlib.util
import json
import math
import os
import re
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

__all__ = ["OptionSpec", "model_specs", "specs_from_model", "add_options", "given_values", "cache_dir"]

_CACHE_VERSION = 1
_CACHE_KEEP = 8  #: source versions kept in the cache


@dataclass(frozen=True)
class OptionSpec:
    """One command-line option derived from one model field (JSON-serialisable)."""

    name: str  #: field name
    kind: str  #: "bool" | "int" | "float" | "str" | "list[int]" | "list[float]"
    default: Any = None  #: the model's default (`None` when it has none or it is computed)
    help: str = ""
    choices: Optional[tuple] = None  #: allowed values (from Literal), or `None`
    words: tuple = ()  #: extra literal words accepted beside a number ("auto" in ``Literal["auto"] | int``)
    bounds: dict = field(default_factory=dict)  #: {"ge"|"gt"|"le"|"lt": number}

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, text: str):
        """Convert and check one command-line value; raises :class:`argparse.ArgumentTypeError`."""
        if text in self.words:
            return text
        base = self.kind[5:-1] if self.kind.startswith("list[") else self.kind
        items = text.split(",") if self.kind.startswith("list[") else [text]
        out = [self._one(base, item.strip()) for item in items]
        return out if self.kind.startswith("list[") else out[0]

    def _one(self, base: str, text: str):
        conv = {"int": int, "float": float, "str": str}[base]
        try:
            value = conv(text)
        except ValueError:
            want = {"int": "an integer", "float": "a number", "str": "a string"}[base]
            alt = " or ".join(repr(w) for w in self.words)
            raise argparse.ArgumentTypeError(f"must be {want}{' or ' + alt if alt else ''}, got {text!r}") from None
        if self.choices is not None and value not in self.choices:
            raise argparse.ArgumentTypeError(
                f"invalid choice {text!r} (choose from {', '.join(str(c) for c in self.choices)})")
        if base == "float" and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        ops = {"ge": (lambda v, b: v >= b, ">="), "gt": (lambda v, b: v > b, ">"),
               "le": (lambda v, b: v <= b, "<="), "lt": (lambda v, b: v < b, "<")}
        for key, bound in self.bounds.items():
            ok, sign = ops[key]
            if not ok(value, bound):
                raise argparse.ArgumentTypeError(f"must be {sign} {bound:g}, got {text}")
        return value


# ----------------------------------------------------------------------------- extraction
def _doc_entries(doc: str) -> dict[str, str]:
    """Field help from a class docstring: ``:param name: text`` and numpy ``name : type`` blocks."""
    out: dict[str, str] = {}
    lines = (doc or "").expandtabs().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        m = re.match(r":param (\w+):\s*(.*)", stripped)
        names, text = None, ""
        if m:
            names, text = [m.group(1)], m.group(2)
        else:
            m = re.match(r"([\w, ]+?)\s+:\s+\S.*$", stripped)
            if m and not stripped.startswith(("-", ">>>")):
                names = [n.strip() for n in m.group(1).split(",")]
        if names is None:
            i += 1
            continue
        body = [text] if text else []
        i += 1
        while i < len(lines) and lines[i].strip() and len(lines[i]) - len(lines[i].lstrip()) > indent:
            body.append(lines[i].strip())
            i += 1
        for name in names:
            if re.fullmatch(r"\w+", name):
                out.setdefault(name, " ".join(body))
    return out


def _first_sentence(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``?([^`]+)``?", r"\1", text)
    text = " ".join(text.split())
    return re.split(r"(?<=[.;])\s+(?=[A-Z(])", text)[0].rstrip(".;")


def _kind_of(annotation) -> tuple[str, Optional[tuple], tuple]:
    """(kind, choices, words) for a field annotation; raises TypeError when not representable."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _kind_of(args[0])
        words, number = [], None
        for a in args:
            if typing.get_origin(a) is typing.Literal and all(isinstance(v, str) for v in typing.get_args(a)):
                words.extend(typing.get_args(a))
            elif a in (int, float):
                number = "float" if float in (a, number) else "int"
            else:
                raise TypeError(f"cannot make an option of {annotation!r}")
        if number is None:
            return "str", tuple(words), ()
        return number, None, tuple(words)
    if origin is typing.Literal:
        values = typing.get_args(annotation)
        kinds = {type(v) for v in values}
        if kinds == {str}:
            return "str", values, ()
        if kinds == {int}:
            return "int", values, ()
        raise TypeError(f"cannot make an option of {annotation!r}")
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        if len(set(args)) == 1 and args[0] in (int, float):
            return f"list[{args[0].__name__}]", None, ()
        raise TypeError(f"cannot make an option of {annotation!r}")
    if annotation in (bool, int, float, str):
        return annotation.__name__, None, ()
    raise TypeError(f"cannot make an option of {annotation!r}")


def specs_from_model(model, include: Optional[Iterable[str]] = None, exclude: Iterable[str] = ()) -> list[OptionSpec]:
    """The option specs of a pydantic model class (fields that are models themselves are skipped
    unless named in ``include``, which then raises: nested models need options of their own)."""
    from pydantic import BaseModel  # pylint: disable=import-outside-toplevel
    from pydantic_core import PydanticUndefined  # pylint: disable=import-outside-toplevel

    doc = _doc_entries(model.__doc__ or "")
    names = list(include) if include is not None else list(model.model_fields)
    specs = []
    for name in names:
        if name in exclude:
            continue
        info = model.model_fields[name]
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if include is not None:
                raise TypeError(f"{model.__name__}.{name} is a model; give its fields options of their own")
            continue
        kind, choices, words = _kind_of(annotation)
        bounds = {}
        for meta in info.metadata:
            for key in ("ge", "gt", "le", "lt"):
                if getattr(meta, key, None) is not None:
                    bounds[key] = getattr(meta, key)
        default = None if info.default is PydanticUndefined else info.default
        if isinstance(default, tuple):
            default = list(default)
        if not isinstance(default, (type(None), bool, int, float, str, list)):
            default = None
        text = _first_sentence(info.description or doc.get(name, ""))
        specs.append(OptionSpec(name, kind, default, text, choices, words, bounds))
    return specs


# ----------------------------------------------------------------------------- the cache
def cache_dir() -> Path:
    """Where :func:`model_specs` keeps its cache (``$DISTDIFF_CACHE_DIR`` or ``~/.cache/distdiff``)."""
    return Path(os.environ.get("DISTDIFF_CACHE_DIR") or Path.home() / ".cache" / "distdiff")


#: packages whose source decides the configuration models (a change rebuilds the cache)
SOURCE_PACKAGES = ("phy", "latent_codec", "pipeline", "experiments")


def _source_hash() -> str:
    from importlib.metadata import version  # pylint: disable=import-outside-toplevel

    digest = hashlib.sha256(f"{_CACHE_VERSION} {version('pydantic')}".encode())
    for pkg in SOURCE_PACKAGES:
        spec = importlib.util.find_spec(pkg)
        for root in (spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(root).rglob("*.py")):
                digest.update(str(path.relative_to(root)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:24]


def model_specs(ref: str, include: Optional[Sequence[str]] = None, exclude: Iterable[str] = ()) -> list[OptionSpec]:
    """Option specs of the model ``"package.module:ClassName"``, from the cache when the source is unchanged.

    Importing the model (torch, Sionna, ...) happens only when the cache is missing or stale.
    """
    key = f"{ref}|{','.join(include) if include is not None else '*'}|{','.join(sorted(exclude))}"
    path = cache_dir() / f"cli-options-{_source_hash()}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if key in cached:
        return [OptionSpec(**{**d, "choices": None if d["choices"] is None else tuple(d["choices"]),
                              "words": tuple(d["words"])}) for d in cached[key]]
    module, _, name = ref.partition(":")
    specs = specs_from_model(getattr(importlib.import_module(module), name), include, exclude)
    cached[key] = [asdict(s) for s in specs]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # keep a few source versions (several checkouts may share the cache), drop older ones
        others = sorted((p for p in path.parent.glob("cli-options-*.json") if p != path),
                        key=lambda p: p.stat().st_mtime, reverse=True)
        for old in others[_CACHE_KEEP - 1:]:
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass
    return specs


# ----------------------------------------------------------------------------- argparse
def _show(value) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_options(parser, specs: Sequence[OptionSpec], *, flags: Optional[dict] = None,
                help: Optional[dict] = None, metavars: Optional[dict] = None,
                defaults: Optional[dict] = None, prefix: str = "") -> list[OptionSpec]:
    """Add one option per spec to ``parser`` (a parser or an argument group); returns ``specs``.

    ``flags`` renames options (field -> ``"--flag"``), ``help`` replaces help texts (a text
    mentioning a default is printed as is), ``metavars`` sets metavars, ``defaults`` gives a
    command-line default that differs from the model's (it is then passed to the model).
    Booleans become ``--flag/--no-flag``. Otherwise the argparse default is `None` (see
    :func:`given_values`); the model's default is printed once in the help. ``prefix`` is put
    before each destination (two models with a field of the same name in one parser).
    """
    flags, help, metavars, defaults = flags or {}, help or {}, metavars or {}, defaults or {}
    for spec in specs:
        text = help.get(spec.name, spec.help)
        shown = defaults.get(spec.name, spec.default)
        if shown is not None and "default" not in text.lower():
            text = f"{text} (default: {_show(shown)})".strip()
        kwargs: dict[str, Any] = {"dest": prefix + spec.name, "default": defaults.get(spec.name), "help": text}
        if spec.kind == "bool":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = spec.parse
            if spec.name in metavars:
                kwargs["metavar"] = metavars[spec.name]
            elif spec.choices is not None:
                kwargs["metavar"] = "{" + ",".join(str(c) for c in spec.choices + spec.words) + "}"
            elif spec.words:
                kwargs["metavar"] = "{" + ",".join(spec.words) + ",N}"
            else:
                kwargs["metavar"] = spec.name.upper().split("_")[-1] if spec.kind != "str" else "TEXT"
        parser.add_argument(flags.get(spec.name, spec.flag), **kwargs)
    return list(specs)


def given_values(args: argparse.Namespace, specs: Iterable[OptionSpec], prefix: str = "") -> dict:
    """Field name -> value for the options of ``specs`` the user gave (others are left to the model)."""
    return {s.name: getattr(args, prefix + s.name) for s in specs if getattr(args, prefix + s.name, None) is not None}
