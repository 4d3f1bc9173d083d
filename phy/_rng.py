"""Explicit random generators for Sionna blocks.

Sionna 2.x blocks draw their randomness from the generator that
``sionna.phy.config.torch_rng(device)`` returns (a process-wide generator per
device).  This project insists on explicit generators: every random draw of a
link comes from the :class:`torch.Generator` passed to its ``forward``.  The
context manager :func:`sionna_generator` installs such a generator as Sionna's
generator for the duration of a call and restores the previous one afterwards,
so that Sionna's own blocks (AWGN, TDL, Rayleigh fading, the binary symmetric
channel) draw from it.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

import torch
from sionna.phy import config as sionna_config

from ._sionna_compat import torch_rng_table

__all__ = ["sionna_generator", "sionna_device", "resolve_generator", "device_key"]

_LOCK = threading.RLock()


def resolve_generator(
    generator: torch.Generator | None, device: torch.device | str
) -> torch.Generator:
    """Return ``generator`` or, when it is `None`, torch's default generator.

    :param generator: `None` or a :class:`torch.Generator`.
    :param device: device of the tensors that will be drawn.
    :raises ValueError: if the generator lives on another device.
    """
    device = torch.device(device)
    if generator is None:
        if device.type == "cpu":
            return torch.default_generator
        return torch.cuda.default_generators[device.index or 0]
    if not isinstance(generator, torch.Generator):
        raise ValueError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )
    if generator.device.type != device.type:
        raise ValueError(
            f"generator is on device {generator.device} but the data is on {device}"
        )
    return generator


@contextlib.contextmanager
def sionna_generator(
    generator: torch.Generator, device: torch.device | str
) -> Iterator[torch.Generator]:
    """Make Sionna's blocks draw from ``generator`` inside the ``with`` body.

    :param generator: the generator to install.
    :param device: the device whose Sionna generator is replaced.

    Example::

        g = torch.Generator().manual_seed(1)
        with sionna_generator(g, "cpu"):
            y = sionna.phy.channel.AWGN()(x, 0.1)
    """
    device = torch.device(device)
    key = "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"
    with _LOCK:
        sionna_config.torch_rng(key)  # make sure Sionna has built its table
        rngs = torch_rng_table()
        previous = rngs.get(key)
        rngs[key] = generator
        try:
            yield generator
        finally:
            if previous is None:
                rngs.pop(key, None)
            else:
                rngs[key] = previous


def device_key(device: torch.device | str | None) -> str:
    """Sionna's name of a device ("cpu", "cuda:0", ...); `None` means "cpu"."""
    device = torch.device(device or "cpu")
    return "cpu" if device.type == "cpu" else f"{device.type}:{device.index or 0}"


@contextlib.contextmanager
def sionna_device(device: torch.device | str | None) -> Iterator[str]:
    """Build Sionna blocks on ``device`` inside the ``with`` body.

    Sionna blocks take their device from ``sionna.phy.config.device`` when
    they are built (the first GPU if there is one); the links build theirs on
    the device they are given (CPU by default) instead.
    """
    key = device_key(device)
    with _LOCK:
        previous = sionna_config.device
        if key not in sionna_config.available_devices:
            raise ValueError(f"device must be one of {sionna_config.available_devices}, got {key!r}")
        sionna_config.device = key
        try:
            yield key
        finally:
            sionna_config.device = previous
