"""Segmentation, CRC and forward error correction around Sionna's 5G codes.

* :class:`CodeBlockSegmenter` splits a payload ``[batch, n]`` of any length
  into code blocks ``[batch, C, K]`` (zero padding of the last block) and
  inverts that exactly.
* :func:`make_code` builds the :class:`ChannelCode` of a
  :class:`~phy.LinkConfig`: :class:`UncodedCode`, :class:`LdpcCode`
  (5G NR LDPC with a CRC per code block) or :class:`PolarCode` (5G NR Polar,
  CRC-aided SCL).  Every code maps information bits ``[..., K]`` to coded
  bits ``[..., n]`` and channel LLRs ``[..., n]`` back to a
  :class:`DecodedBlocks` record (soft output, hard decisions, CRC status).

Bits are float32 0/1.  LLRs follow Sionna's convention
``log(p(b=1)/p(b=0))`` (positive means 1); the hard decision is
``bit = (llr >= 0)``, as in Sionna's LDPC decoder.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Optional

import torch
from sionna.phy.fec.crc import CRCDecoder, CRCEncoder
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.fec.polar import Polar5GDecoder, Polar5GEncoder

from .config import LDPC_RATE_MIN_NATIVE, LinkConfig
from .ldpc import EarlyStopLDPC5GDecoder

__all__ = [
    "CodeBlockSegmenter",
    "DecodedBlocks",
    "ChannelCode",
    "UncodedCode",
    "LdpcCode",
    "PolarCode",
    "make_code",
    "hard_decision",
    "POLAR_LLR_CRC_OK",
    "POLAR_LLR_CRC_FAILED",
]

#: magnitude of the (hard-decision) soft output of the Polar SCL decoder for a
#: block whose CRC holds, and for one whose CRC fails
POLAR_LLR_CRC_OK = 20.0
POLAR_LLR_CRC_FAILED = 1.0

#: target number of edge messages per decoder call (memory and cache use)
_DECODER_MESSAGES_PER_CALL = 2**21


def hard_decision(llr: torch.Tensor) -> torch.Tensor:
    """Hard decision on LLRs (positive means 1): float32 ``llr >= 0``."""
    return (llr >= 0).to(torch.float32)


class CodeBlockSegmenter(torch.nn.Module):
    """Split payloads into code blocks of ``block_length`` bits and back.

    :param block_length: information bits per code block ``K``.

    :input bits: [batch, n], `torch.float32` -- payload, any ``n >= 1``.
    :output blocks: [batch, C, K], `torch.float32` -- ``C = ceil(n / K)``
        blocks; the last one is zero-padded.

    :meth:`desegment` is the exact inverse (it drops the padding).

    Example::

        >>> seg = CodeBlockSegmenter(4)
        >>> x = torch.tensor([[1., 0., 1., 1., 0., 1.]])
        >>> seg(x).shape
        torch.Size([1, 2, 4])
        >>> bool((seg.desegment(seg(x), 6) == x).all())
        True
    """

    def __init__(self, block_length: int) -> None:
        super().__init__()
        if block_length < 1:
            raise ValueError(f"block_length must be >= 1, got {block_length}")
        self.block_length = int(block_length)

    def num_blocks(self, n: int) -> int:
        """Code blocks needed for ``n`` bits."""
        return max(1, math.ceil(n / self.block_length))

    def forward(self, bits: torch.Tensor) -> torch.Tensor:  # pylint: disable=arguments-differ
        batch, n = bits.shape
        c = self.num_blocks(n)
        pad = c * self.block_length - n
        if pad:
            bits = torch.nn.functional.pad(bits, (0, pad))
        return bits.reshape(batch, c, self.block_length)

    def desegment(self, blocks: torch.Tensor, n: int) -> torch.Tensor:
        """Inverse of :meth:`forward`: [batch, C, K] -> [batch, n]."""
        batch = blocks.shape[0]
        return blocks.reshape(batch, -1)[:, :n]


@dataclasses.dataclass
class DecodedBlocks:
    """What a :class:`ChannelCode` returns per code block.

    :ivar llrs: [..., K] float32 -- soft output on the information bits.
    :ivar bits: [..., K] float32 -- hard decisions.
    :ivar crc_ok: [...] bool, or `None` without a CRC.
    :ivar iterations: [...] int32 decoder iterations per block, or `None`.
    :ivar soft: whether ``llrs`` are real soft information (False for Polar).
    """

    llrs: torch.Tensor
    bits: torch.Tensor
    crc_ok: Optional[torch.Tensor]
    iterations: Optional[torch.Tensor] = None
    soft: bool = True


class ChannelCode(torch.nn.Module):
    """Base class: encode ``[..., K] -> [..., n]``, decode ``[..., n] -> DecodedBlocks``.

    :ivar k: information bits per block ``K``.
    :ivar n: coded bits per block.
    :ivar crc_length: CRC parity bits per block.
    """

    k: int
    n: int
    crc_length: int = 0

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Information bits [..., K] -> coded bits [..., n]."""
        raise NotImplementedError

    def decode(self, llrs: torch.Tensor) -> DecodedBlocks:
        """Channel LLRs [..., n] -> :class:`DecodedBlocks`."""
        raise NotImplementedError

    def forward(self, bits: torch.Tensor) -> torch.Tensor:  # pylint: disable=arguments-differ
        return self.encode(bits)


def _crc_blocks(name: str, k: int) -> tuple[Optional[CRCEncoder], Optional[CRCDecoder]]:
    if name == "none":
        return None, None
    enc = CRCEncoder(name.upper(), k=k)
    return enc, CRCDecoder(enc)


class UncodedCode(ChannelCode):
    """No channel code, optionally a CRC per block.

    :param block_length: information bits per block ``K``.
    :param crc: CRC name ("none", "crc24a", ...).

    Example::

        >>> code = UncodedCode(8, "none")
        >>> out = code.decode(torch.tensor([[3., -1., 2., -5., 1., 1., -2., 4.]]))
        >>> out.bits.tolist()
        [[1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]]
    """

    def __init__(self, block_length: int, crc: str = "none") -> None:
        super().__init__()
        self.k = int(block_length)
        self._crc_enc, self._crc_dec = _crc_blocks(crc, self.k)
        self.crc_length = 0 if self._crc_enc is None else self._crc_enc.crc_length
        self.n = self.k + self.crc_length

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        return bits if self._crc_enc is None else self._crc_enc(bits)

    def decode(self, llrs: torch.Tensor) -> DecodedBlocks:
        hard = hard_decision(llrs)
        crc_ok = None
        if self._crc_dec is not None:
            _, valid = self._crc_dec(hard)
            crc_ok = valid[..., 0]
        return DecodedBlocks(llrs=llrs[..., : self.k], bits=hard[..., : self.k], crc_ok=crc_ok)


class LdpcCode(ChannelCode):
    """5G NR LDPC code (Sionna's encoder) with a CRC per code block.

    Rates below 1/5 (the lowest rate of Sionna's rate matching) repeat the
    rate-1/5 codeword cyclically, as 5G's circular buffer does, and the
    decoder adds the LLRs of the repeated bits.

    :param config: the link configuration (block length, rate, CRC,
        decoder choice, iterations, check-node rule, bits per channel use).

    Example::

        >>> from phy import LinkConfig
        >>> code = LdpcCode(LinkConfig(code="ldpc", code_rate=0.5, block_length=100))
        >>> u = torch.randint(0, 2, (3, 100)).float()
        >>> out = code.decode(20.0 * (2.0 * code.encode(u) - 1.0))
        >>> bool((out.bits == u).all()), bool(out.crc_ok.all())
        (True, True)
    """

    def __init__(self, config: LinkConfig) -> None:
        super().__init__()
        self.k = config.block_length
        self._crc_enc, self._crc_dec = _crc_blocks(config.crc_name, self.k)
        self.crc_length = config.crc_length
        self.n = config.codeword_length
        k_code = self.k + self.crc_length
        m = config.bits_per_channel_use
        self.repeated = k_code / self.n < LDPC_RATE_MIN_NATIVE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Sionna warns above rate 948/1024
            if self.repeated:
                self.n_mother = 5 * k_code
                self.encoder = LDPC5GEncoder(k_code, self.n_mother)
                self.register_buffer(
                    "_rep_idx", torch.arange(self.n, device=self.encoder.device) % self.n_mother,
                    persistent=False,
                )
            else:
                self.n_mother = self.n
                self.encoder = LDPC5GEncoder(k_code, self.n, num_bits_per_symbol=m if m > 1 else None)
        if config.decoder == "early-stop":
            self.decoder = EarlyStopLDPC5GDecoder(
                self.encoder,
                num_iter=config.decoder_iterations,
                cn_update=config.cn_update,
                hard_out=False,
            )
        else:
            self.decoder = LDPC5GDecoder(
                self.encoder,
                cn_update=config.cn_update,
                num_iter=config.decoder_iterations,
                hard_out=False,
            )
        per_cw = self.decoder.num_edges
        self.max_codewords = config.max_codewords_per_batch or max(1, _DECODER_MESSAGES_PER_CALL // per_cw)
        self.num_iter = int(config.decoder_iterations)

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        u = bits if self._crc_enc is None else self._crc_enc(bits)
        c = self.encoder(u)
        if self.repeated:
            c = c.index_select(-1, self._rep_idx)
        return c

    def _combine_repetitions(self, llrs: torch.Tensor) -> torch.Tensor:
        shape = llrs.shape[:-1] + (self.n_mother,)
        return torch.zeros(shape, dtype=llrs.dtype, device=llrs.device).index_add(-1, self._rep_idx, llrs)

    def decode(self, llrs: torch.Tensor) -> DecodedBlocks:
        lead = llrs.shape[:-1]
        if self.repeated:
            llrs = self._combine_repetitions(llrs)
        flat = llrs.reshape(-1, llrs.shape[-1])
        outs, iters = [], []
        for start in range(0, flat.shape[0], self.max_codewords):
            chunk = flat[start : start + self.max_codewords]
            if isinstance(self.decoder, EarlyStopLDPC5GDecoder):
                out, it = self.decoder(chunk, return_iterations=True)
            else:  # Sionna's decoder runs a fixed number of iterations
                out = self.decoder(chunk)
                it = torch.full((chunk.shape[0],), self.num_iter, dtype=torch.int32, device=chunk.device)
            outs.append(out)
            iters.append(it)
        soft = torch.cat(outs, dim=0) if len(outs) > 1 else outs[0]
        hard = hard_decision(soft)
        crc_ok = None
        if self._crc_dec is not None:
            _, valid = self._crc_dec(hard)
            crc_ok = valid[..., 0].reshape(lead)
        soft = soft[:, : self.k].reshape(*lead, self.k)
        hard = hard[:, : self.k].reshape(*lead, self.k)
        iterations = torch.cat(iters).reshape(lead) if iters else None
        return DecodedBlocks(llrs=soft, bits=hard, crc_ok=crc_ok, iterations=iterations)


class PolarCode(ChannelCode):
    """5G NR Polar code (uplink, with its CRC11/CRC6) and CRC-aided SCL decoding.

    The SCL decoder returns hard decisions only; the soft output is
    ``+-POLAR_LLR_CRC_OK`` on blocks whose CRC holds and
    ``+-POLAR_LLR_CRC_FAILED`` on the others (sign = decision).  It is not
    differentiable.

    :param config: the link configuration.
    """

    def __init__(self, config: LinkConfig) -> None:
        super().__init__()
        self.k = config.block_length
        self.n = config.codeword_length
        self.crc_length = config.crc_length
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.encoder = Polar5GEncoder(self.k, self.n)
            self.decoder = Polar5GDecoder(
                self.encoder, dec_type="SCL", list_size=config.polar_list_size, return_crc_status=True
            )
        self.max_codewords = config.max_codewords_per_batch or 256

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        return self.encoder(bits)

    def decode(self, llrs: torch.Tensor) -> DecodedBlocks:
        lead = llrs.shape[:-1]
        flat = llrs.reshape(-1, self.n)
        bits, oks = [], []
        for start in range(0, flat.shape[0], self.max_codewords):
            b, ok = self.decoder(flat[start : start + self.max_codewords])
            bits.append(b)
            oks.append(ok.reshape(-1))
        hard = torch.cat(bits).to(torch.float32)
        crc_ok = torch.cat(oks)
        mag = torch.where(crc_ok, POLAR_LLR_CRC_OK, POLAR_LLR_CRC_FAILED).to(hard.dtype)
        soft = (2.0 * hard - 1.0) * mag[:, None]
        return DecodedBlocks(
            llrs=soft.reshape(*lead, self.k),
            bits=hard.reshape(*lead, self.k),
            crc_ok=crc_ok.reshape(lead),
            soft=False,
        )


def make_code(config: LinkConfig) -> ChannelCode:
    """The :class:`ChannelCode` of a configuration (fixed MCS)."""
    if config.code == "ldpc":
        return LdpcCode(config)
    if config.code == "polar":
        return PolarCode(config)
    return UncodedCode(config.block_length, config.crc_name)
