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

__all__ = ["sionna_generator", "resolve_generator"]

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
        rngs = sionna_config._torch_rngs  # pylint: disable=protected-access
        previous = rngs.get(key)
        rngs[key] = generator
        try:
            yield generator
        finally:
            if previous is None:
                rngs.pop(key, None)
            else:
                rngs[key] = previous
