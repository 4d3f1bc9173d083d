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

import importlib
from typing import Any

# Names are loaded on first use (PEP 562), so that ``import phy.config`` (the
# allowed names and LinkConfig, e.g. for building a command line) does not
# import torch and Sionna.
_LAZY = {
    "tune_malloc": "._malloc",
    "CHANNELS": ".config", "CODES": ".config", "CSI_MODES": ".config", "DECODERS": ".config",
    "DEMAPPING_METHODS": ".config", "MODULATION_NAMES": ".config", "SYMBOL_CHANNELS": ".config",
    "LinkConfig": ".config", "LinkConfigError": ".config",
    "Channel": ".channels", "ChannelOutput": ".channels",
    "DigitalLink": ".link", "LinkChain": ".link", "LinkResult": ".link", "SymbolLink": ".link",
    "SymbolLinkResult": ".link",
    "mc_fun": ".montecarlo",
    "McsChoice": ".mcs", "select_mcs": ".mcs",
    "MCS_TABLES": ".nr_tables", "MODULATIONS": ".nr_tables", "McsEntry": ".nr_tables",
    "mcs_entry": ".nr_tables", "mcs_table": ".nr_tables",
    "derive_generator": ".seeding", "derive_seed": ".seeding",
    "ebno_db_from_snr_db": ".snr", "noise_variance_from_snr_db": ".snr", "snr_db_from_ebno_db": ".snr",
    "SWEEP_COLUMNS": ".sweep", "parse_snr_db_list": ".sweep", "sweep_link": ".sweep",
}
_SUBMODULES = ("theory", "sweep", "channels", "coding", "ldpc", "link", "mcs", "config", "snr", "calibrate")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'phy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
