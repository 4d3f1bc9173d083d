"""The payload header: what the receiver needs to decode the body.

A header row (one per batch element) holds the codec, the latent shape, the
bit order and the per-channel quantiser parameters (float16), followed by a
CRC-32. It is protected by a channel-agnostic repetition code: the whole row
is sent ``repetition`` times back to back (block repetition, so a burst of
errors hits different copies of a bit at different times). The receiver
combines the copies (majority vote on hard bits, LLR sum on soft input),
checks the CRC and raises :class:`HeaderCorruptedError` if it fails; a
corrupted header is never used to decode a body.

Byte layout of one row (little endian)::

    u8  magic 0xD7
    u8  (version << 4) | codec_id
    u8  bits_per_value            (16 for float16, 0 for analog)
    u8  (selection << 4) | bit_order
    u8  bits_per_symbol           (0: not used)
    u16 C, u16 H, u16 W
    analog only: u32 num_kept, f32 gain, u16 order_hash, u8 num_bands,
                 f16 band_var[num_bands]
    f16 params[C, P]              (P = PARAMS_PER_CHANNEL[codec])
    u32 crc32 of all bytes above
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass

import torch

from .bitops import bits_to_bytes, bytes_to_bits, clean_llrs
from .errors import HeaderCorruptedError

__all__ = [
    "Header",
    "parse_header",
    "header_error_probability",
    "DEFAULT_HEADER_REPETITION",
    "CODEC_NAMES",
    "PARAMS_PER_CHANNEL",
    "BIT_ORDERS",
]

MAGIC = 0xD7
VERSION = 1
#: Default number of copies of each header row: a 31-byte row (uniform codec,
#: C = 4) is lost with probability 2.4e-3 at a raw BER of 1e-2 and 0.25 at
#: 5e-2 with hard majority voting (:func:`header_error_probability`); soft
#: combining of LLRs does better. Raise it for very noisy links.
DEFAULT_HEADER_REPETITION = 5

CODEC_NAMES = ("float16", "uniform", "lloydmax", "analog")
_CODEC_IDS = {name: i + 1 for i, name in enumerate(CODEC_NAMES)}
#: Meaning of the per-channel parameters of each codec.
PARAMS_PER_CHANNEL = {
    "float16": ("mean", "low", "high"),
    "uniform": ("low", "high"),
    "lloydmax": ("mean", "std"),
    "analog": ("mean", "low", "high"),
}
BIT_ORDERS = ("msb_first", "bitplane", "interleaved_by_importance")
SELECTIONS = ("lowpass", "custom", "identity")

_COMMON = struct.Struct("<BBBBBHHH")
_ANALOG = struct.Struct("<IfHB")
_CRC = struct.Struct("<I")


@dataclass
class Header:
    """Self-describing header of a payload (one row per batch element).

    Attributes
    ----------
    codec : str
        One of ``"float16"``, ``"uniform"``, ``"lloydmax"``, ``"analog"``.
    shape : tuple[int, int, int]
        Latent shape ``(C, H, W)`` of one batch element.
    params : torch.Tensor, float32, shape ``[batch, C, P]``
        Per-channel parameters, exactly representable in float16; their
        meaning is ``PARAMS_PER_CHANNEL[codec]``.
    bits_per_value : int
        Bits per latent value of the body (16 for float16, 0 for analog).
    bit_order : str
        ``"msb_first"``, ``"bitplane"`` or ``"interleaved_by_importance"``.
    bits_per_symbol : int
        Bits per QAM symbol the UEP order targets (0 when unused).
    num_kept : int
        Analog only: number of real coefficients sent.
    gain : torch.Tensor or None, float32, shape ``[batch]``
        Analog only: power-normalisation gain (symbols = gain * coefficients).
    selection : str
        Analog only: ``"lowpass"`` (DCT, low frequencies first), ``"custom"``
        (DCT, a fitted order) or ``"identity"`` (no transform).
    order_hash : int
        Analog only: 16-bit hash of a custom coefficient order (0 otherwise).
    band_var : torch.Tensor or None, float32, shape ``[batch, num_bands]``
        Analog only: mean power of the normalised symbols in each of
        ``num_bands`` contiguous groups of symbols (float16-exact).

    Example
    -------
    >>> h = Header("uniform", (4, 2, 2), torch.tensor([[[-1.0, 1.0]] * 4]), bits_per_value=8)
    >>> parse_header(h.to_bits()).params.shape
    torch.Size([1, 4, 2])
    """

    codec: str
    shape: tuple[int, int, int]
    params: torch.Tensor
    bits_per_value: int = 0
    bit_order: str = "msb_first"
    bits_per_symbol: int = 0
    num_kept: int = 0
    gain: torch.Tensor | None = None
    selection: str = "lowpass"
    order_hash: int = 0
    band_var: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.codec not in CODEC_NAMES:
            raise ValueError(f"codec must be one of {CODEC_NAMES}, got {self.codec!r}")
        if self.bit_order not in BIT_ORDERS:
            raise ValueError(f"bit_order must be one of {BIT_ORDERS}, got {self.bit_order!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        self.shape = tuple(int(s) for s in self.shape)
        if len(self.shape) != 3 or not all(1 <= s < 65536 for s in self.shape):
            raise ValueError(f"shape must be (C, H, W) with 1 <= each < 65536, got {self.shape}")
        p = len(PARAMS_PER_CHANNEL[self.codec])
        if self.params.ndim != 3 or tuple(self.params.shape[1:]) != (self.shape[0], p):
            raise ValueError(
                f"params must have shape [batch, {self.shape[0]}, {p}] for codec {self.codec!r}, "
                f"got {list(self.params.shape)}"
            )
        if self.codec == "analog":
            if self.gain is None or tuple(self.gain.shape) != (self.params.shape[0],):
                raise ValueError("analog header needs gain of shape [batch]")
            if (self.band_var is None or self.band_var.ndim != 2
                    or self.band_var.shape[0] != self.params.shape[0]
                    or not 1 <= self.band_var.shape[1] <= 255):
                raise ValueError("analog header needs band_var of shape [batch, 1..255]")

    @property
    def batch_size(self) -> int:
        """Number of header rows (batch elements)."""
        return int(self.params.shape[0])

    @property
    def num_values(self) -> int:
        """Latent values per batch element, ``C * H * W``."""
        c, h, w = self.shape
        return c * h * w

    def row_bytes(self, row: int) -> bytes:
        """Serialise row ``row`` to bytes, CRC-32 included."""
        c, h, w = self.shape
        sel = SELECTIONS.index(self.selection)
        out = _COMMON.pack(
            MAGIC,
            (VERSION << 4) | _CODEC_IDS[self.codec],
            self.bits_per_value,
            (sel << 4) | BIT_ORDERS.index(self.bit_order),
            self.bits_per_symbol,
            c,
            h,
            w,
        )
        if self.codec == "analog":
            out += _ANALOG.pack(self.num_kept, float(self.gain[row]), self.order_hash,
                                self.band_var.shape[1])
            out += _fp16_bytes(self.band_var[row], "band_var")
        out += _fp16_bytes(self.params[row], "params")
        return out + _CRC.pack(zlib.crc32(out))

    def num_info_bits(self) -> int:
        """Bits of one row before repetition (CRC included)."""
        return 8 * len(self.row_bytes(0))

    def num_bits(self, repetition: int = DEFAULT_HEADER_REPETITION) -> int:
        """Bits of one row as sent (after repetition)."""
        return repetition * self.num_info_bits()

    def to_bits(self, repetition: int = DEFAULT_HEADER_REPETITION) -> torch.Tensor:
        """Serialise and protect the header.

        Parameters
        ----------
        repetition : int
            Copies of each row (>= 1).

        Returns
        -------
        torch.Tensor, float32 0/1, shape ``[batch, repetition * num_info_bits()]``
        """
        _check_repetition(repetition)
        rows = [bytes_to_bits(self.row_bytes(b)).repeat(repetition) for b in range(self.batch_size)]
        return torch.stack(rows).to(self.params.device)

    def matches(self, other: "Header") -> bool:
        """True when both headers describe the same format (ignoring params)."""
        keys = ("codec", "shape", "bits_per_value", "bit_order", "bits_per_symbol", "num_kept",
                "selection", "order_hash")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def _fp16_bytes(values: torch.Tensor, what: str) -> bytes:
    v = values.detach().cpu().to(torch.float32).reshape(-1)
    if not torch.equal(v.half().float(), v):
        raise ValueError(f"header {what} must be exactly representable in float16")
    return v.half().contiguous().numpy().tobytes()


def _check_repetition(repetition: int) -> None:
    if not isinstance(repetition, int) or repetition < 1:
        raise ValueError(f"repetition must be an int >= 1, got {repetition!r}")


def _decode_row(data: bytes) -> dict:
    """Parse one row whose CRC already passed; raise HeaderCorruptedError on bad fields."""
    if len(data) < _COMMON.size + _CRC.size:
        raise HeaderCorruptedError(f"header row too short ({len(data)} bytes)")
    magic, vc, bpv, order_sel, bps, c, h, w = _COMMON.unpack_from(data, 0)
    version, cid = vc >> 4, vc & 0xF
    if magic != MAGIC or version != VERSION or not 1 <= cid <= len(CODEC_NAMES):
        raise HeaderCorruptedError(
            f"header has magic=0x{magic:02X}, version={version}, codec id={cid}; "
            f"expected magic 0x{MAGIC:02X}, version {VERSION}, codec id 1..{len(CODEC_NAMES)}"
        )
    codec = CODEC_NAMES[cid - 1]
    order, sel = order_sel & 0xF, order_sel >> 4
    if order >= len(BIT_ORDERS) or sel >= len(SELECTIONS) or min(c, h, w) < 1:
        raise HeaderCorruptedError("header carries an unknown bit order, selection or a zero dimension")
    off = _COMMON.size
    fields = dict(codec=codec, shape=(c, h, w), bits_per_value=bpv, bit_order=BIT_ORDERS[order],
                  bits_per_symbol=bps, selection=SELECTIONS[sel], num_kept=0, gain=None, order_hash=0)
    if codec == "analog":
        if len(data) < off + _ANALOG.size:
            raise HeaderCorruptedError(f"analog header row too short ({len(data)} bytes)")
        num_kept, gain, ohash, nb = _ANALOG.unpack_from(data, off)
        off += _ANALOG.size
        if nb < 1 or len(data) < off + 2 * nb or not math.isfinite(gain) or gain <= 0:
            raise HeaderCorruptedError("analog header has no bands or a non-positive gain")
        band_var = torch.frombuffer(bytearray(data[off:off + 2 * nb]), dtype=torch.float16)
        off += 2 * nb
        fields.update(num_kept=num_kept, gain=gain, order_hash=ohash,
                      band_var=band_var.to(torch.float32))
    p = len(PARAMS_PER_CHANNEL[codec])
    expected = off + 2 * c * p + _CRC.size
    if len(data) != expected:
        raise HeaderCorruptedError(
            f"header row has {len(data)} bytes but its fields imply {expected}"
        )
    params = torch.frombuffer(bytearray(data[off:off + 2 * c * p]), dtype=torch.float16)
    fields["params"] = params.to(torch.float32).reshape(c, p)
    return fields


def parse_header(received: torch.Tensor, *, llrs: bool = False,
                 repetition: int = DEFAULT_HEADER_REPETITION) -> Header:
    """Recover a :class:`Header` from received header bits or LLRs.

    Parameters
    ----------
    received : torch.Tensor, shape ``[batch, h]``
        Hard bits (0/1, values > 0.5 count as 1) when ``llrs=False``; LLRs
        (positive means bit = 1) when ``llrs=True``.
    llrs : bool
        The received values are LLRs: the copies are combined by summing
        LLRs instead of majority voting on hard bits.
    repetition : int
        Copies per row used by the sender.

    Returns
    -------
    Header

    Raises
    ------
    HeaderCorruptedError
        CRC failure on any row, impossible field values, or rows that
        disagree on the format. ``err.failed_rows`` lists the bad rows.
    ValueError
        ``received`` has the wrong rank or a length not divisible by
        ``8 * repetition``.

    Example
    -------
    >>> h = Header("lloydmax", (4, 8, 8), torch.zeros(2, 4, 2), bits_per_value=3)
    >>> bits = h.to_bits()
    >>> bits[0, 5] = 1 - bits[0, 5]          # one bit error: repaired by the vote
    >>> parse_header(bits).codec
    'lloydmax'
    """
    _check_repetition(repetition)
    if received.ndim != 2:
        raise ValueError(f"header bits must have shape [batch, h], got {list(received.shape)}")
    bsz, h = received.shape
    if h == 0 or h % (8 * repetition):
        raise ValueError(
            f"header length {h} is not a positive multiple of 8 * repetition = {8 * repetition}"
        )
    k = h // repetition
    x = received.detach().to(torch.float32).cpu().reshape(bsz, repetition, k)
    if llrs:
        info = (clean_llrs(x).sum(1) > 0).to(torch.float32)
    else:
        votes = (x > 0.5).to(torch.float32).sum(1)
        info = (votes > repetition / 2).to(torch.float32)
    rows, failed, reasons = [], [], []
    for b in range(bsz):
        data = bits_to_bytes(info[b])
        body, crc = data[:-4], data[-4:]
        if _CRC.unpack(crc)[0] != zlib.crc32(body):
            failed.append(b)
            reasons.append("CRC-32 mismatch")
            continue
        try:
            rows.append(_decode_row(data))
        except HeaderCorruptedError as err:
            failed.append(b)
            reasons.append(str(err))
    if failed:
        raise HeaderCorruptedError(
            f"header corrupted in {len(failed)} of {bsz} batch rows {failed[:8]} "
            f"({reasons[0]} after combining {repetition} copies); refusing to decode the body",
            failed_rows=failed,
        )
    per_row = ("params", "gain", "band_var")
    first = {k_: v for k_, v in rows[0].items() if k_ not in per_row}
    for b, r in enumerate(rows):
        if r["codec"] == "analog" and r["band_var"].shape != rows[0]["band_var"].shape:
            raise HeaderCorruptedError(
                f"header rows 0 and {b} describe different formats", failed_rows=[b])
        if {k_: v for k_, v in r.items() if k_ not in per_row} != first:
            raise HeaderCorruptedError(
                f"header rows 0 and {b} describe different formats", failed_rows=[b]
            )
    dev = received.device
    gain = band_var = None
    if first["codec"] == "analog":
        gain = torch.tensor([r["gain"] for r in rows], dtype=torch.float32, device=dev)
        band_var = torch.stack([r["band_var"] for r in rows]).to(dev)
    params = torch.stack([r["params"] for r in rows]).to(dev)
    return Header(params=params, gain=gain, band_var=band_var, **first)


def header_error_probability(num_info_bits: int, repetition: int, ber: float) -> float:
    """Probability that a header row is lost (detected by the CRC) under hard
    majority decoding on a binary symmetric channel.

    A bit is wrong after the vote when more than half of its ``repetition``
    copies flip (a tie counts as wrong with probability 1/2);
    ``P_row = 1 - (1 - p_bit) ** num_info_bits``.

    Parameters
    ----------
    num_info_bits : int
        Bits per row before repetition (``Header.num_info_bits()``).
    repetition : int
    ber : float
        Raw bit error rate of the channel, in [0, 1].

    Returns
    -------
    float

    Example
    -------
    >>> round(header_error_probability(248, 5, 1e-2), 4)
    0.0024
    """
    _check_repetition(repetition)
    if not 0.0 <= ber <= 1.0:
        raise ValueError(f"ber must be in [0, 1], got {ber}")
    p_bit = 0.0
    for j in range(repetition + 1):
        pj = math.comb(repetition, j) * ber**j * (1 - ber) ** (repetition - j)
        if 2 * j > repetition:
            p_bit += pj
        elif 2 * j == repetition:
            p_bit += 0.5 * pj
    return 1.0 - (1.0 - p_bit) ** num_info_bits
