"""Run a distdiff link inside Sionna's Monte-Carlo tools: :func:`mc_fun`.

``sionna.phy.utils.sim_ber`` and ``sionna.phy.utils.PlotBER`` take a
callable ``mc_fun(batch_size, ebno_db) -> (b, b_hat)``; :func:`mc_fun` builds
one from a :class:`~phy.DigitalLink`, so a distdiff link runs there unchanged.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from .link import DigitalLink
from .seeding import derive_seed

__all__ = ["mc_fun"]


def mc_fun(
    link: DigitalLink,
    num_bits: Optional[int] = None,
    *,
    generator: Optional[torch.Generator] = None,
    seed: int = 0,
) -> Callable[[int, float], tuple[torch.Tensor, torch.Tensor]]:
    r"""A ``sim_ber``-compatible Monte-Carlo function for ``link``.

    :param link: a :class:`~phy.DigitalLink` with a symbol channel (not the
        BSC) and a fixed MCS.
    :param num_bits: information bits per row (one "block" of ``sim_ber``);
        default: the configuration's ``block_length``.
    :param generator: the `torch.Generator` all draws (payload bits and
        channel) come from; default: a new one seeded with
        ``derive_seed(f"phy.mc_fun/{seed}")``.
    :param seed: seed of the default generator.
    :output fn: ``fn(batch_size, ebno_db) -> (b, b_hat)``: ``b`` and
        ``b_hat`` are float32 0/1 ``[batch_size, num_bits]``; ``ebno_db``
        [dB] is :math:`E_b/N_0` per information bit (a float or a 0-d
        tensor, as ``sim_ber`` passes it), converted to the link's ``snr_db``
        with its spectral efficiency (code rate, CRC, pilots).

    Example::

        >>> import torch
        >>> from phy import DigitalLink, LinkConfig, mc_fun
        >>> fn = mc_fun(DigitalLink(LinkConfig(code="none", block_length=100)), seed=1)
        >>> b, b_hat = fn(batch_size=4, ebno_db=torch.tensor(30.0))
        >>> b.shape, bool((b == b_hat).all())
        (torch.Size([4, 100]), True)
    """
    if not isinstance(link, DigitalLink):
        raise ValueError(f"link must be a phy.DigitalLink, got {type(link).__name__}")
    cfg = link.config
    if cfg.channel == "bsc" or cfg.mcs == "auto":
        raise ValueError("mc_fun needs a link with a symbol channel and a fixed MCS (not channel='bsc', mcs='auto')")
    n = int(num_bits if num_bits is not None else cfg.block_length)
    if n < 1:
        raise ValueError(f"num_bits must be >= 1, got {n}")
    gen = generator if generator is not None else torch.Generator(device=link.device).manual_seed(
        derive_seed(f"phy.mc_fun/{seed}")
    )
    offset_db = link.chain().config.info_bits_per_channel_use

    def fn(batch_size: int, ebno_db) -> tuple[torch.Tensor, torch.Tensor]:
        import math  # pylint: disable=import-outside-toplevel

        snr_db = float(ebno_db) + 10.0 * math.log10(offset_db)
        b = torch.randint(0, 2, (int(batch_size), n), generator=gen, device=link.device).to(torch.float32)
        return b, link(b, snr_db=snr_db, generator=gen).bits_hat

    return fn
