"""5G NR modulation-and-coding-scheme (MCS) tables (TS 38.214, PDSCH).

The tables are read through Sionna's
:func:`sionna.phy.nr.utils.decode_mcs_index`; this module only turns them into
plain Python records and names the modulations the way this project does.
"""

from __future__ import annotations

import dataclasses
import functools


__all__ = [
    "MODULATIONS",
    "MCS_TABLES",
    "McsEntry",
    "mcs_table",
    "mcs_entry",
    "modulation_from_bits",
]

#: modulation name -> bits per symbol
MODULATIONS: dict[str, int] = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}

#: PDSCH MCS tables of TS 38.214 this project supports
#: (1: Table 5.1.3.1-1, up to 64-QAM; 2: Table 5.1.3.1-2, up to 256-QAM;
#: 3: Table 5.1.3.1-3, low spectral efficiency).  Table 4 needs 1024-QAM.
MCS_TABLES: tuple[int, ...] = (1, 2, 3)

_BITS_TO_MODULATION = {b: name for name, b in MODULATIONS.items()}


def modulation_from_bits(bits_per_symbol: int) -> str:
    """Name of the modulation with ``bits_per_symbol`` bits per symbol."""
    try:
        return _BITS_TO_MODULATION[int(bits_per_symbol)]
    except KeyError:
        raise ValueError(
            f"bits_per_symbol must be one of {sorted(_BITS_TO_MODULATION)}, got {bits_per_symbol}"
        ) from None


@dataclasses.dataclass(frozen=True)
class McsEntry:
    """One row of an MCS table.

    :ivar table: MCS table (1, 2 or 3).
    :ivar index: MCS index :math:`I_{MCS}`.
    :ivar bits_per_symbol: modulation order :math:`Q_m`.
    :ivar modulation: modulation name ("qpsk", "16qam", ...).
    :ivar code_rate: target code rate :math:`R` (the table's value / 1024).
    :ivar spectral_efficiency: :math:`Q_m R` [bit/channel use].
    """

    table: int
    index: int
    bits_per_symbol: int
    modulation: str
    code_rate: float
    spectral_efficiency: float


def _check_table(table: int) -> int:
    if isinstance(table, bool) or table not in MCS_TABLES:
        raise ValueError(f"mcs_table must be one of {list(MCS_TABLES)}, got {table!r}")
    return int(table)


@functools.lru_cache(maxsize=None)
def mcs_table(table: int = 1) -> tuple[McsEntry, ...]:
    """All valid entries of a PDSCH MCS table, in index order.

    :param table: 1, 2 or 3.
    :output entries: tuple of :class:`McsEntry`.

    Example::

        >>> from phy.nr_tables import mcs_table
        >>> e = mcs_table(1)[10]
        >>> e.modulation, round(e.code_rate * 1024)
        ('16qam', 340)
    """
    import torch  # pylint: disable=import-outside-toplevel  (heavy; only when a table is built)
    from sionna.phy.nr.utils import decode_mcs_index  # pylint: disable=import-outside-toplevel

    table = _check_table(table)
    idx = torch.arange(29, dtype=torch.int32)
    qm, rate = decode_mcs_index(
        idx, table_index=table, is_pusch=False, check_index_validity=False, device="cpu"
    )
    entries = []
    for i, (q, r) in enumerate(zip(qm.tolist(), rate.tolist())):
        if q <= 0 or r <= 0:  # reserved rows
            continue
        r = float(r)
        entries.append(
            McsEntry(
                table=table,
                index=i,
                bits_per_symbol=int(q),
                modulation=modulation_from_bits(int(q)),
                code_rate=r,
                spectral_efficiency=int(q) * r,
            )
        )
    return tuple(entries)


def mcs_entry(index: int, table: int = 1) -> McsEntry:
    """The entry ``index`` of MCS table ``table``.

    :raises ValueError: if the index is not a valid row of the table.
    """
    entries = {e.index: e for e in mcs_table(table)}
    if isinstance(index, bool) or not isinstance(index, int) or index not in entries:
        raise ValueError(
            f"mcs must be 'auto' or an index in 0..{max(entries)} of MCS table {table}, got {index!r}"
        )
    return entries[index]
