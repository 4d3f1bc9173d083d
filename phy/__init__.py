"""distdiff's PHY layer: a link-level simulator on Sionna 2.x (PyTorch).

It moves bits (:class:`DigitalLink`) or complex symbols (:class:`SymbolLink`)
over a simulated wireless link and returns bits, LLRs or equalised symbols.
It knows nothing about diffusion or latents.

Conventions used everywhere in this package:

* bits are ``torch.float32`` tensors of 0/1 with shape ``[batch, n]``;
* LLRs are Sionna's logits ``log(p(b=1)/p(b=0))``: positive means bit 1;
* ``snr_db`` is Es/N0 per received complex symbol, ``ebno_db`` is Eb/N0 per
  information bit (see :mod:`phy.snr`);
* every random draw comes from an explicit ``torch.Generator``.

Your own channel: any object following :class:`Channel` (symbols and noise
variance in, :class:`ChannelOutput` out) plugs into ``DigitalLink(config,
channel=...)`` and ``SymbolLink(config, channel=...)``.  :func:`mc_fun` runs a
link inside Sionna's ``sim_ber`` and ``PlotBER``.  :func:`tune_malloc` is an
explicit opt-in (nothing here changes process-wide state on construction).
"""

from ._malloc import tune_malloc
from .config import (
    CHANNELS,
    CODES,
    CSI_MODES,
    DECODERS,
    DEMAPPING_METHODS,
    MODULATION_NAMES,
    SYMBOL_CHANNELS,
    LinkConfig,
    LinkConfigError,
)
from .channels import Channel, ChannelOutput
from .link import DigitalLink, LinkChain, LinkResult, SymbolLink, SymbolLinkResult
from .montecarlo import mc_fun
from .mcs import McsChoice, select_mcs
from .nr_tables import MCS_TABLES, MODULATIONS, McsEntry, mcs_entry, mcs_table
from .seeding import derive_generator, derive_seed
from .snr import ebno_db_from_snr_db, noise_variance_from_snr_db, snr_db_from_ebno_db
from .sweep import SWEEP_COLUMNS, parse_snr_db_list, sweep_link
from . import theory

__all__ = [
    "Channel",
    "ChannelOutput",
    "mc_fun",
    "CHANNELS",
    "SYMBOL_CHANNELS",
    "CODES",
    "CSI_MODES",
    "DECODERS",
    "DEMAPPING_METHODS",
    "MODULATION_NAMES",
    "LinkConfig",
    "LinkConfigError",
    "DigitalLink",
    "LinkChain",
    "LinkResult",
    "SymbolLink",
    "SymbolLinkResult",
    "McsChoice",
    "McsEntry",
    "select_mcs",
    "mcs_entry",
    "mcs_table",
    "MCS_TABLES",
    "MODULATIONS",
    "ebno_db_from_snr_db",
    "snr_db_from_ebno_db",
    "noise_variance_from_snr_db",
    "sweep_link",
    "parse_snr_db_list",
    "SWEEP_COLUMNS",
    "theory",
    "tune_malloc",
]
