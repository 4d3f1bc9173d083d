"""Every private Sionna attribute phy reads, in one place, behind a version guard.

phy builds on Sionna 2.x.  A few things it needs have no public API:

* the process-wide table of Sionna's random generators (to install an
  explicit ``torch.Generator`` for a call, :func:`torch_rng_table`);
* the Tanner-graph index tensors and node-update functions of Sionna's
  belief-propagation decoder, which the early-stopping LDPC decoder
  (:mod:`phy.ldpc`) reuses (:class:`LdpcBpInternals`).

They can change in any Sionna release, so the supported range is checked
once, when this module is imported (:func:`check_sionna_version`); an
unsupported version is one clear error naming the installed and the
supported versions.  Widen :data:`SUPPORTED_SIONNA` only after
``tests/phy`` passes on the new version.

Example::

    >>> from phy._sionna_compat import SUPPORTED_SIONNA, check_sionna_version
    >>> check_sionna_version("2.2.0")
    >>> check_sionna_version("3.0.0")
    Traceback (most recent call last):
    ...
    ImportError: phy needs Sionna >=2.2,<2.3 (it uses Sionna internals checked on that range); installed: Sionna 3.0.0
"""

from __future__ import annotations

from typing import Any, Optional

import sionna
from packaging.version import InvalidVersion, Version
from sionna.phy import config as sionna_config

__all__ = ["SUPPORTED_SIONNA", "check_sionna_version", "torch_rng_table", "LdpcBpInternals", "PRIVATE_NAMES"]

#: the Sionna versions phy is tested on: (lowest included, highest excluded);
#: keep in step with pyproject's ``sionna-no-rt`` pin
SUPPORTED_SIONNA = ("2.2", "2.3")

#: private attributes of Sionna's LDPCBPDecoder that phy.ldpc reads (without
#: the leading underscore)
_LDPC_BP_PRIVATE = frozenset({
    "v2c_perm", "v2c_perm_inv", "cn_gather_idx", "vn_gather_idx",
    "cn_valid_edge_idx", "cn_valid_positions", "vn_valid_edge_idx", "vn_valid_positions",
    "vn_idx_t", "cn_idx", "vn_idx", "cn_mask", "vn_mask", "max_cn_degree", "max_vn_degree",
    "cn_update", "vn_update", "hard_out",
})
#: every private Sionna name read anywhere in phy (this module is the only reader)
PRIVATE_NAMES = tuple(sorted({"_" + n for n in _LDPC_BP_PRIVATE} | {"_torch_rngs"}))


def check_sionna_version(version: Optional[str] = None) -> None:
    """Raise :class:`ImportError` unless ``version`` (default: the installed
    Sionna's) lies in :data:`SUPPORTED_SIONNA`."""
    installed = sionna.__version__ if version is None else version
    low, high = SUPPORTED_SIONNA
    try:
        ok = Version(low) <= Version(installed) < Version(high)
    except InvalidVersion:
        ok = False
    if not ok:
        raise ImportError(
            f"phy needs Sionna >={low},<{high} (it uses Sionna internals checked on that range); "
            f"installed: Sionna {installed}"
        )


check_sionna_version()


def torch_rng_table() -> dict:
    """Sionna's process-wide ``{device name: torch.Generator}`` table (private
    ``sionna.phy.config._torch_rngs``), built if needed."""
    sionna_config.torch_rng("cpu")  # make sure Sionna has built its table
    return sionna_config._torch_rngs  # pylint: disable=protected-access


class LdpcBpInternals:
    """Read-only view of the private state of a Sionna ``LDPCBPDecoder``.

    ``LdpcBpInternals(decoder).cn_mask`` reads ``decoder._cn_mask``; only the
    names phy needs are allowed (a typo is an :class:`AttributeError`).  The
    view is live: it reads the decoder's current attributes.
    """

    __slots__ = ("_decoder",)

    def __init__(self, decoder: Any) -> None:
        self._decoder = decoder

    def __getattr__(self, name: str) -> Any:
        if name not in _LDPC_BP_PRIVATE:
            raise AttributeError(f"LdpcBpInternals has no {name!r} (allowed: {sorted(_LDPC_BP_PRIVATE)})")
        return getattr(self._decoder, "_" + name)
