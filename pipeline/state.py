"""The self-describing intermediate state of a split denoising run.

An :class:`IntermediateState` is what the sender transmits after the shared
steps: the latents ``x_k`` and everything a receiver needs to continue the
*same* sampler trajectory bit for bit -- the step reached, the total number of
steps, the scheduler's class, config and internal state (e.g. DPM-Solver++'s
``model_outputs`` and ``lower_order_nums``), the per-sample noise generator
states (ancestral samplers draw fresh noise at every step), the guidance
scale, seeds, prompts, the model's fingerprint, dtype, device and the torch
thread count (bit identity on CPU needs the same count on both sides).

It is batched: ``latents`` is ``[B, C, h, w]`` and the per-sample fields are
lists of length ``B``. Only the latents travel over the link in the
experiments; the rest is the (small) side information a real system would
send in a protected header or agree on beforehand.

Example
-------
>>> import torch
>>> from pipeline.state import IntermediateState
>>> s = IntermediateState(latents=torch.zeros(1, 4, 8, 8), step=2, num_inference_steps=5,
...                       scheduler_name="euler_ancestral", scheduler_class="EulerAncestralDiscreteScheduler",
...                       scheduler_config={}, scheduler_state={}, guidance_scale=7.5, seeds=[0],
...                       prompts=["a red apple on a wooden table"],
...                       generator_states=[torch.Generator().manual_seed(0).get_state()],
...                       model_fingerprint="0" * 16)
>>> s.batch_size, s.remaining_steps
(1, 3)
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import torch

__all__ = ["IntermediateState", "StateError", "FORMAT_VERSION", "cpu_copy", "exactly_equal"]

FORMAT_VERSION = 1

#: bytes of a CPU ``torch.Generator`` state (Mersenne Twister)
_GENERATOR_STATE_SIZE = torch.Generator().get_state().numel()


class StateError(ValueError):
    """A state that is malformed or cannot be resumed exactly by a given pipeline."""


def cpu_copy(value):
    """A detached CPU copy of ``value``: tensors cloned, lists, tuples and dicts copied through.

    Example
    -------
    >>> cpu_copy({"a": [torch.ones(2, requires_grad=True)], "b": 3})
    {'a': [tensor([1., 1.])], 'b': 3}
    """
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, (list, tuple)):
        return type(value)(cpu_copy(v) for v in value)
    if isinstance(value, dict):
        return {k: cpu_copy(v) for k, v in value.items()}
    return value


def exactly_equal(a, b) -> bool:
    """True when ``a`` and ``b`` are equal bit for bit: tensors of the same shape, dtype and values,
    through lists, tuples and dicts.

    Example
    -------
    >>> exactly_equal([torch.zeros(2)], [torch.zeros(2)]), exactly_equal(torch.zeros(2), torch.zeros(2, dtype=torch.float64))
    (True, False)
    """
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                and a.dtype == b.dtype and torch.equal(a.cpu(), b.cpu()))
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(exactly_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(exactly_equal(a[k], b[k]) for k in a)
    return a == b


@dataclass
class IntermediateState:
    """Latents after ``step`` of ``num_inference_steps`` denoising steps, and how to continue.

    Attributes
    ----------
    latents : torch.Tensor
        ``[B, C, h, w]``, the pipeline's dtype: the sample ``x_k`` in the
        scheduler's own parameterisation (for Euler-type samplers
        ``x0 + sigma_k * eps``).
    step : int
        Number of denoising steps already run (``k``), ``0 <= k <= num_inference_steps``.
    num_inference_steps : int
        Total number of steps of the schedule (``N``).
    scheduler_name : str
        Short name (``"euler_ancestral"``, ``"ddim"``, ``"dpmsolver++"``, ...).
    scheduler_class : str
        diffusers class name.
    scheduler_config : dict
        The scheduler's full config (JSON-able).
    scheduler_state : dict
        The scheduler's internal attributes after step ``k`` (tensors, ints,
        lists of tensors), e.g. ``_step_index``, ``model_outputs``.
    guidance_scale : float
        Classifier-free guidance weight used by the shared steps.
    seeds : list[int | None]
        Seed of each sample's noise generator (None where the caller passed
        its own ``torch.Generator``; ``generator_states`` still describe it).
    prompts : list[str]
        Prompt of each sample used for the shared steps.
    generator_states : list[torch.Tensor]
        ``uint8`` state of each sample's CPU ``torch.Generator`` after step ``k``.
    model_fingerprint : str
        :func:`pipeline.loading.model_fingerprint` of the model that produced it.
    model_name : str
        The model's ``name_or_path`` (informative).
    dtype : str
        The latents' dtype name (``"float32"``).
    device : str
        Device type the shared steps ran on (``"cpu"``, ``"cuda"``).
    num_threads : int
        ``torch.get_num_threads()`` on the sender.
    negative_prompt : str | None
        Negative prompt used with classifier-free guidance (``None``: empty).
    versions : dict
        torch and diffusers versions.
    extra : dict
        Free-form annotations (e.g. the noise a channel added), JSON-able.
    """

    latents: torch.Tensor
    step: int
    num_inference_steps: int
    scheduler_name: str
    scheduler_class: str
    scheduler_config: dict
    scheduler_state: dict
    guidance_scale: float
    seeds: list[int | None]
    prompts: list[str]
    generator_states: list[torch.Tensor]
    model_fingerprint: str
    model_name: str = ""
    dtype: str = "float32"
    device: str = "cpu"
    num_threads: int = field(default_factory=torch.get_num_threads)
    negative_prompt: str | None = None
    versions: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`StateError` if the fields are inconsistent."""
        if not isinstance(self.latents, torch.Tensor) or self.latents.dim() != 4:
            raise StateError(f"latents must be a 4-D tensor [B, C, h, w], got "
                             f"{getattr(self.latents, 'shape', type(self.latents).__name__)}")
        if not isinstance(self.num_inference_steps, int) or self.num_inference_steps < 1:
            raise StateError(f"num_inference_steps must be a positive int, got {self.num_inference_steps!r}")
        if not isinstance(self.step, int) or not 0 <= self.step <= self.num_inference_steps:
            raise StateError(f"step must be an int in [0, num_inference_steps={self.num_inference_steps}], "
                             f"got {self.step!r}")
        for name in ("scheduler_name", "scheduler_class", "model_fingerprint"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise StateError(f"{name} must be a non-empty string, got {getattr(self, name)!r}")
        b = self.latents.shape[0]
        for name in ("seeds", "prompts", "generator_states"):
            if not isinstance(getattr(self, name), (list, tuple)):
                raise StateError(f"{name} must be a list of {b} entries, got {type(getattr(self, name)).__name__}")
            if len(getattr(self, name)) != b:
                raise StateError(f"{name} has {len(getattr(self, name))} entries but latents have batch size {b}")
        if not all(s is None or (isinstance(s, int) and not isinstance(s, bool)) for s in self.seeds):
            raise StateError(f"seeds must be ints (or None for a caller's generator), got {self.seeds!r}")
        size = _GENERATOR_STATE_SIZE
        for i, g in enumerate(self.generator_states):
            if not isinstance(g, torch.Tensor) or g.dtype != torch.uint8 or tuple(g.shape) != (size,):
                raise StateError(f"generator_states[{i}] must be a CPU torch.Generator state (uint8 tensor of "
                                 f"{size} bytes), got {getattr(g, 'dtype', type(g).__name__)} "
                                 f"{tuple(getattr(g, 'shape', ()))}")
        if not isinstance(self.scheduler_state, dict) or not isinstance(self.scheduler_config, dict):
            raise StateError("scheduler_state and scheduler_config must be dicts")
        shadowing = sorted(k for k in self.scheduler_state
                           if not isinstance(k, str) or k.startswith("__") or k in ("config", "_internal_dict"))
        if shadowing:
            raise StateError(f"scheduler_state keys {shadowing} are not scheduler attributes (they would shadow "
                             "the scheduler's config or Python internals); the state is malformed")

    # --------------------------------------------------------------- properties
    @property
    def batch_size(self) -> int:
        return int(self.latents.shape[0])

    @property
    def remaining_steps(self) -> int:
        return self.num_inference_steps - self.step

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        return tuple(self.latents.shape[1:])

    # ------------------------------------------------------------ manipulation
    def _is_per_sample(self, value) -> bool:
        """A scheduler-state tensor that carries one row per sample (same shape as the latents)."""
        return isinstance(value, torch.Tensor) and value.shape == self.latents.shape

    def _map_samples(self, fn_tensor, fn_list) -> "IntermediateState":
        def apply(v):
            if self._is_per_sample(v):
                return fn_tensor(v)
            if isinstance(v, (list, tuple)):
                return type(v)(apply(x) for x in v)
            return v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)

        return replace(self, latents=fn_tensor(self.latents),
                       scheduler_state={k: apply(v) for k, v in self.scheduler_state.items()},
                       seeds=fn_list(self.seeds), prompts=fn_list(self.prompts),
                       generator_states=[g.clone() for g in fn_list(self.generator_states)],
                       extra=copy.deepcopy(self.extra))

    def select(self, index: int | list[int]) -> "IntermediateState":
        """The state of sample(s) ``index`` (batch of 1 for an int)."""
        idx = [index] if isinstance(index, int) else list(index)
        for i in idx:
            if not -self.batch_size <= i < self.batch_size:
                raise IndexError(f"sample index {i} out of range for batch size {self.batch_size}")
        return self._map_samples(lambda t: t[idx].clone(), lambda xs: [xs[i] for i in idx])

    def repeat(self, n: int) -> "IntermediateState":
        """A batch-1 state repeated ``n`` times (e.g. one shared state for ``n`` receivers)."""
        if self.batch_size != 1:
            raise StateError(f"repeat needs a batch-1 state, got batch size {self.batch_size}")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        return self._map_samples(lambda t: t.repeat(n, *([1] * (t.dim() - 1))), lambda xs: list(xs) * n)

    def with_latents(self, latents: torch.Tensor, **extra) -> "IntermediateState":
        """The same state with other latents (e.g. as received over a channel)."""
        if not isinstance(latents, torch.Tensor) or latents.shape != self.latents.shape:
            raise StateError(f"latents must have shape {tuple(self.latents.shape)}, got "
                             f"{tuple(getattr(latents, 'shape', ()))}")
        new = self._map_samples(lambda t: t.clone(), lambda xs: list(xs))
        new.latents = latents.to(self.latents.dtype).to(self.latents.device)
        new.extra.update(extra)
        return new

    def clone(self) -> "IntermediateState":
        return self._map_samples(lambda t: t.clone(), lambda xs: list(xs))

    @staticmethod
    def stack(states: list["IntermediateState"]) -> "IntermediateState":
        """Concatenate compatible states (same step, schedule, model) along the batch."""
        if not states:
            raise ValueError("stack needs at least one state")
        first = states[0]
        for s in states[1:]:
            for name in ("step", "num_inference_steps", "scheduler_class", "scheduler_config", "guidance_scale",
                         "model_fingerprint", "dtype", "negative_prompt"):
                if getattr(s, name) != getattr(first, name):
                    raise StateError(f"cannot stack states with different {name}: "
                                     f"{getattr(first, name)!r} vs {getattr(s, name)!r}")
            if s.latent_shape != first.latent_shape:
                raise StateError(f"cannot stack latents of shapes {first.latent_shape} and {s.latent_shape}")
        def merge(key, values):
            v = values[0]
            if first._is_per_sample(v):
                return torch.cat(values)
            if isinstance(v, (list, tuple)) and all(isinstance(x, (list, tuple)) and len(x) == len(v) for x in values):
                return type(v)(merge(key, [x[j] for x in values]) for j in range(len(v)))
            if not all(exactly_equal(x, v) for x in values[1:]):
                raise StateError(f"cannot stack states whose scheduler state {key!r} differs")
            return v

        if any(s.scheduler_state.keys() != first.scheduler_state.keys() for s in states):
            raise StateError("cannot stack states whose scheduler states have different entries")
        state = {k: merge(k, [s.scheduler_state[k] for s in states]) for k in first.scheduler_state}
        return replace(first, latents=torch.cat([s.latents for s in states]), scheduler_state=state,
                       seeds=[x for s in states for x in s.seeds], prompts=[x for s in states for x in s.prompts],
                       generator_states=[g.clone() for s in states for g in s.generator_states],
                       extra=copy.deepcopy(first.extra))

    def equals(self, other: "IntermediateState") -> bool:
        """Bit-exact equality of every field."""
        return all(exactly_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    # ----------------------------------------------------------------- on disk
    def to_dict(self) -> dict:
        d = {f.name: cpu_copy(getattr(self, f.name)) for f in fields(self)}
        d["format_version"] = FORMAT_VERSION
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "IntermediateState":
        d = dict(d)
        version = d.pop("format_version", None)
        if version != FORMAT_VERSION:
            raise StateError(f"state format version {version!r} is not supported (this code reads {FORMAT_VERSION})")
        names = {f.name for f in fields(cls)}
        unknown, missing = set(d) - names, {f.name for f in fields(cls) if f.name not in d}
        if unknown or missing:
            raise StateError(f"state file fields do not match: unknown {sorted(unknown)}, missing {sorted(missing)}")
        return cls(**d)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the state to ``path`` (a torch file of plain tensors and Python values; atomic)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.to_dict(), tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, map_location="cpu") -> "IntermediateState":
        """Read a state written by :meth:`save` (safe loader: no code is unpickled)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no state file at {path}")
        try:
            d = torch.load(path, map_location=map_location, weights_only=True)
        except Exception as err:  # noqa: BLE001
            raise StateError(f"{path} is not a readable state file ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''})") from None
        if not isinstance(d, dict):
            raise StateError(f"{path} does not contain a state dictionary")
        return cls.from_dict(d)

    def describe(self) -> dict:
        """JSON-able summary (no tensors)."""
        skip = {"latents", "generator_states", "scheduler_state"}
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in skip}
        d["latent_shape"] = list(self.latents.shape)
        return json.loads(json.dumps(d, default=str))
