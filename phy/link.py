r"""The links: :class:`DigitalLink` (bits) and :class:`SymbolLink` (analog symbols).

A digital link moves bits::

    bits [batch, n] -> segment [batch, C, K] -> CRC + encode [batch, C, N]
      -> map [batch, S] -> channel -> estimate, equalise -> demap -> LLRs
      -> decode -> CRC check -> desegment -> bits_hat [batch, n]

Every stage is a Sionna 2.x block or a thin module around one
(:mod:`phy.coding`, :mod:`phy.channels`).  With ``channel="bsc"`` the coded
bits go through Sionna's binary symmetric channel instead of
map/channel/demap.

Conventions: bits are float32 0/1; LLRs are Sionna's logits
``log(p(b=1)/p(b=0))`` (positive means 1); the hard decision is
``llr >= 0``.  ``snr_db`` is :math:`E_s/N_0` per received symbol,
``ebno_db`` :math:`E_b/N_0` per information bit (see :mod:`phy.snr`).
Everything random comes from the ``generator`` argument: the same
configuration, input and generator state give bit-identical results.
Everything except the hard decisions is differentiable (Polar SCL decoding is
not).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional, Union

import torch
from sionna.phy.channel import BinarySymmetricChannel
from sionna.phy.mapping import Demapper, Mapper

from ._rng import device_key, resolve_generator, sionna_device, sionna_generator
from .channels import Channel, ChannelOutput, check_channel, check_channel_output, make_symbol_channel
from .coding import CodeBlockSegmenter, DecodedBlocks, make_code
from .config import LinkConfig
from .probe_store import stored
from .snr import noise_variance_from_snr_db

__all__ = ["DigitalLink", "LinkChain", "LinkResult", "SymbolLink", "SymbolLinkResult"]


@dataclasses.dataclass
class LinkResult:
    """What :meth:`DigitalLink.forward` returns.

    :ivar bits_hat: [batch, n] float32 0/1 -- decoded information bits.
    :ivar llrs: [batch, n] float32 -- soft output on the information bits
        (positive means 1): the demapper's LLRs without a code, the
        decoder's a-posteriori LLRs with LDPC, +-20 / +-1 (CRC holds / fails)
        with Polar.
    :ivar bit_errors: bit errors against the transmitted bits.
    :ivar num_bits: information bits (``batch * n``).
    :ivar block_errors: code blocks with at least one bit error.
    :ivar num_blocks: code blocks (``batch * ceil(n / K)``).
    :ivar channel_uses: complex channel uses consumed, all rows together
        (pilots and the padding of the last block/slot included; coded bits
        for the BSC).
    :ivar snr_db: :math:`E_s/N_0` [dB] (NaN for the BSC).
    :ivar ebno_db: :math:`E_b/N_0` [dB] (NaN for the BSC).
    :ivar mcs_index: the MCS used, or `None`.
    :ivar modulation: modulation used (`None` for the BSC).
    :ivar code_rate: nominal code rate used.
    :ivar spectral_efficiency: nominal information bits per channel use.
    :ivar crc_ok: [batch, C] bool per code block, or `None` without CRC.
    :ivar decoder_iterations: mean LDPC iterations per code block, or `None`.
    :ivar crc_ok_bits: [batch, n] bool -- True where the information bit
        belongs to a code block whose CRC check passed; all False without a
        CRC (nothing is known then).  Lets a receiver keep the bits of good
        blocks and treat the others as erased.
    :ivar llrs_are_soft: whether ``llrs`` are real soft information (False
        for Polar: its SCL decoder gives hard decisions, and ``llrs`` are
        +-20 / +-1 by CRC status).
    :ivar block_iterations: [batch, C] int32 -- LDPC iterations each code
        block ran (the fixed number for ``decoder="sionna"``), or `None`
        without LDPC.

    With bits of shape ``[..., n]`` the tensors keep the leading dimensions:
    ``bits_hat``, ``llrs``, ``crc_ok_bits`` are ``[..., n]``, ``crc_ok`` and
    ``block_iterations`` ``[..., C]``.  With a per-example ``snr_db`` tensor,
    ``snr_db`` and ``ebno_db`` here are the means over the examples [dB].
    """

    bits_hat: torch.Tensor
    llrs: torch.Tensor
    bit_errors: int
    num_bits: int
    block_errors: int
    num_blocks: int
    channel_uses: int
    snr_db: float
    ebno_db: float
    mcs_index: Optional[int]
    modulation: Optional[str]
    code_rate: float
    spectral_efficiency: float
    crc_ok: Optional[torch.Tensor] = None
    decoder_iterations: Optional[float] = None
    crc_ok_bits: Optional[torch.Tensor] = None
    llrs_are_soft: bool = True
    block_iterations: Optional[torch.Tensor] = None

    @property
    def ber(self) -> float:
        """Bit error rate."""
        return self.bit_errors / self.num_bits if self.num_bits else float("nan")

    @property
    def bler(self) -> float:
        """Block error rate."""
        return self.block_errors / self.num_blocks if self.num_blocks else float("nan")


def _check_bits(bits: torch.Tensor) -> None:
    if not isinstance(bits, torch.Tensor):
        raise ValueError(f"bits must be a torch.Tensor of shape [..., n], got {type(bits).__name__}")
    if bits.dim() < 1 or bits.numel() < 1:
        raise ValueError(f"bits must have shape [..., n] with n >= 1 and a non-empty batch, got {list(bits.shape)}")
    if bits.dtype != torch.float32:
        raise ValueError(f"bits must be torch.float32 (0/1), got {bits.dtype}")
    if not bool(bits.eq(0).logical_or_(bits.eq(1)).all()):
        raise ValueError("bits must contain only 0 and 1")


SnrDb = Union[float, torch.Tensor]


def _check_snr_rows(snr_db: object, lead: tuple, required: bool) -> SnrDb:
    """``snr_db`` as a float, or as a float32 tensor [batch, 1] (one SNR per
    row of the flattened leading dimensions ``lead``)."""
    if isinstance(snr_db, torch.Tensor) and snr_db.numel() != 1:
        t = snr_db.detach().to(torch.float32)
        if t.is_complex() or not bool(torch.isfinite(t).all()):
            raise ValueError("snr_db must be finite real numbers [dB]")
        shape = tuple(t.shape)
        if len(shape) == len(lead) + 1 and shape[-1] == 1:
            t = t.squeeze(-1)
        try:
            t = torch.broadcast_to(t, lead)
        except RuntimeError:
            raise ValueError(
                f"snr_db of shape {list(shape)} does not broadcast to the batch dimensions {list(lead)} of the input"
            ) from None
        return t.reshape(-1, 1)
    return _check_snr(snr_db, required)


def _noise_var(snr_db: SnrDb) -> Union[float, torch.Tensor]:
    if isinstance(snr_db, torch.Tensor):
        return torch.pow(10.0, -snr_db.double() / 10.0).to(torch.float32)
    return noise_variance_from_snr_db(snr_db)


def _mean_db(snr_db: SnrDb) -> float:
    return float(snr_db.double().mean()) if isinstance(snr_db, torch.Tensor) else float(snr_db)


def _check_snr(snr_db: object, required: bool) -> float:
    if snr_db is None:
        if required:
            raise ValueError("snr_db is required for this channel (Es/N0 per symbol [dB])")
        return float("nan")
    if isinstance(snr_db, torch.Tensor) and snr_db.numel() == 1:
        snr_db = float(snr_db)
    if isinstance(snr_db, bool) or not isinstance(snr_db, numbers.Real) or not math.isfinite(float(snr_db)):
        raise ValueError(f"snr_db must be a finite number [dB], got {snr_db!r}")
    return float(snr_db)


def _run_channel(channel, symbols: torch.Tensor, snr_db: SnrDb, generator) -> ChannelOutput:
    out = check_channel_output(channel(symbols, _noise_var(snr_db), generator=generator), symbols)
    if out.channel_uses is None:
        out.channel_uses = int(channel.channel_uses(symbols.shape[1]))
    return out


def _check_user_channel(config: LinkConfig, channel: object) -> None:
    """A user's channel must follow the Channel contract and cannot replace the BSC."""
    if channel is None:
        return
    if config.channel == "bsc":
        raise ValueError("channel: a symbol channel cannot be used with channel='bsc' (a bit channel)")
    check_channel(channel)


def _restore(t: Optional[torch.Tensor], lead: tuple) -> Optional[torch.Tensor]:
    return None if t is None else t.reshape(*lead, t.shape[-1])


class LinkChain(torch.nn.Module):
    """One fixed chain (modulation, code, channel) of a :class:`DigitalLink`.

    Its stages are separately callable, e.g. to differentiate through them:
    :meth:`encode`, :meth:`modulate`, :meth:`transmit`, :meth:`demodulate`,
    :meth:`decode`.

    :param config: a configuration with a fixed MCS (not ``mcs="auto"``).
    :param device: where the Sionna blocks are built and run ("cpu" by default).
    :param channel: a :class:`~phy.Channel` (any object following its
        contract) to use instead of the configured one.
    """

    def __init__(
        self,
        config: LinkConfig,
        device: Optional[Union[str, torch.device]] = None,
        channel: Optional[Channel] = None,
    ) -> None:
        super().__init__()
        if config.mcs == "auto":
            raise ValueError("LinkChain needs a fixed MCS; DigitalLink handles mcs='auto'")
        self.config = config
        self.device = torch.device(device_key(device))
        self.segmenter = CodeBlockSegmenter(config.block_length)
        self.bsc = config.channel == "bsc"
        with sionna_device(self.device):
            self.code = make_code(config)
            _check_user_channel(config, channel)
            if self.bsc:
                self.bsc_channel = BinarySymmetricChannel(return_llrs=True)
            else:
                m = config.bits_per_symbol
                kind = "pam" if m == 1 else "qam"
                self.mapper = Mapper(kind, m)
                self.demapper = Demapper(config.demapping, kind, m)
                self.channel = make_symbol_channel(config) if channel is None else channel

    # -- stages ------------------------------------------------------------
    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Payload [batch, n] -> coded blocks [batch, C, N] (float32 0/1)."""
        return self.code.encode(self.segmenter(bits))

    def modulate(self, coded: torch.Tensor) -> torch.Tensor:
        """Coded blocks [batch, C, N] -> symbols [batch, S] (complex64, unit
        energy); the row is zero-padded to a whole number of symbols."""
        flat = coded.reshape(coded.shape[0], -1)
        m = self.config.bits_per_symbol
        pad = (-flat.shape[1]) % m
        if pad:
            flat = torch.nn.functional.pad(flat, (0, pad))
        return self.mapper(flat)

    def transmit(
        self, symbols: torch.Tensor, snr_db: SnrDb, generator: Optional[torch.Generator] = None
    ) -> ChannelOutput:
        """Channel + estimation + equalisation (the :class:`~phy.Channel`
        contract); ``snr_db`` a float or a [batch, 1] tensor [dB].  The
        output's ``channel_uses`` is always filled in."""
        return _run_channel(self.channel, symbols, snr_db, generator)

    def demodulate(self, received: ChannelOutput, num_blocks: int) -> torch.Tensor:
        """Equalised symbols -> LLRs of the coded blocks [batch, C, N]."""
        y = received.symbols_hat
        llr = self.demapper(y, torch.as_tensor(received.noise_var_eff, device=y.device).expand(y.shape))
        n = self.code.n
        return llr[:, : num_blocks * n].reshape(llr.shape[0], num_blocks, n)

    def decode(self, llrs: torch.Tensor) -> DecodedBlocks:
        """LLRs [batch, C, N] -> :class:`~phy.coding.DecodedBlocks` [batch, C, K]."""
        return self.code.decode(llrs)

    # -- whole chain ---------------------------------------------------------
    def forward(  # pylint: disable=arguments-differ
        self,
        bits: torch.Tensor,
        snr_db: Optional[SnrDb],
        generator: Optional[torch.Generator] = None,
        mcs_index: Optional[int] = None,
    ) -> LinkResult:
        cfg = self.config
        bits = bits.to(self.device)
        batch, n = bits.shape
        coded = self.encode(bits)
        num_blocks = coded.shape[1]
        if self.bsc:
            gen = resolve_generator(generator, bits.device)
            with sionna_generator(gen, bits.device):
                llr = self.bsc_channel(coded, cfg.bit_error_rate)
            channel_uses = batch * coded.shape[1] * coded.shape[2]
            snr_db = ebno_db = float("nan")
        else:
            received = self.transmit(self.modulate(coded), snr_db, generator)
            llr = self.demodulate(received, num_blocks)
            channel_uses = batch * received.channel_uses
            snr_db = _mean_db(snr_db)
            ebno_db = snr_db - 10.0 * math.log10(cfg.info_bits_per_channel_use)
        dec = self.decode(llr)
        bits_hat = self.segmenter.desegment(dec.bits, n)
        llrs = self.segmenter.desegment(dec.llrs, n)
        errors = bits_hat != bits
        k = cfg.block_length
        if n % k:
            block_err = self.segmenter(errors.to(torch.float32)).amax(dim=2)
        else:
            block_err = errors.view(batch, num_blocks, k).any(dim=2)
        if dec.crc_ok is None:
            crc_ok_bits = torch.zeros_like(bits, dtype=torch.bool)
        else:
            crc_ok_bits = self.segmenter.desegment(
                dec.crc_ok[:, :, None].expand(batch, num_blocks, k), n
            )
        return LinkResult(
            bits_hat=bits_hat,
            llrs=llrs,
            bit_errors=int(errors.sum()),
            num_bits=batch * n,
            block_errors=int(block_err.sum()),
            num_blocks=batch * num_blocks,
            channel_uses=int(channel_uses),
            snr_db=float(snr_db),
            ebno_db=float(ebno_db),
            mcs_index=mcs_index,
            modulation=None if self.bsc else cfg.modulation,
            code_rate=cfg.code_rate,
            spectral_efficiency=cfg.info_bits_per_channel_use,
            crc_ok=dec.crc_ok,
            decoder_iterations=None if dec.iterations is None else float(dec.iterations.float().mean()),
            crc_ok_bits=crc_ok_bits,
            llrs_are_soft=dec.soft,
            block_iterations=dec.iterations,
        )


#: process-wide cache of the adaptive-MCS probes (DigitalLink._probed): (probe identity, "effective", snr_db,
#: device) -> effective SNRs [dB], (probe identity, "profile", mcs_table, snr_db, device) -> FadingProfile.
#: The probe is deterministic (fixed seed), so links of equal configuration share it.
_PROBE_CACHE: dict[tuple, dict[str, float]] = {}

#: LinkConfig fields that do not change the probe (it sends QPSK rows of block_length symbols, uncoded)
_PROBE_IGNORES = ("mcs", "modulation", "code", "code_rate", "decoder", "num_iterations", "mcs_table")


def _probe_identity(config: LinkConfig) -> str:
    """The part of ``config`` the adaptive-MCS probe depends on (a JSON string)."""
    import json  # pylint: disable=import-outside-toplevel

    data = config.model_dump(mode="json")
    return json.dumps({k: v for k, v in data.items() if k not in _PROBE_IGNORES}, sort_keys=True)


class DigitalLink(torch.nn.Module):
    r"""A bit pipe over a simulated wireless link.

    :param config: :class:`~phy.LinkConfig`.
    :param device: device of the link's blocks and outputs ("cpu" by
        default; inputs are moved there, a generator must live there).
    :param channel: your own channel, any object that follows the
        :class:`~phy.Channel` contract (it replaces the configured channel
        and receiver; the configuration still sets coding and modulation).
        `None`: the configured channel.

    :input bits: [..., n], `torch.float32` 0/1 -- any ``n >= 1`` and any
        leading dimensions (restored on output); the payload of each row is
        split into code blocks of ``block_length`` bits (the last one
        zero-padded) and reassembled exactly.
    :input snr_db: `float`, or a `torch.Tensor` broadcastable to the leading
        dimensions of ``bits`` (one SNR per example, as in Sionna's training
        loops) -- :math:`E_s/N_0` per received symbol [dB]; ignored (may be
        `None`) for ``channel="bsc"``; a scalar with ``mcs="auto"``.
    :input generator: `torch.Generator` or `None` (torch's default
        generator) -- the source of all randomness.
    :output result: :class:`LinkResult`.

    With ``mcs="auto"`` each call picks the MCS for ``snr_db``
    (:meth:`select_mcs`: over a calibrated fading category from its
    measured BLER table, over other fading at the channel's
    :meth:`fading_profile`; both count the channel-estimation loss) and
    uses that MCS's chain.

    Example::

        >>> import torch
        >>> from phy import DigitalLink, LinkConfig
        >>> link = DigitalLink(LinkConfig(modulation="16qam", code="ldpc",
        ...                               code_rate=0.5, block_length=512))
        >>> g = torch.Generator().manual_seed(0)
        >>> bits = torch.randint(0, 2, (2, 1000), generator=g).float()
        >>> res = link(bits, snr_db=12.0, generator=g)
        >>> res.bits_hat.shape, res.bit_errors, res.num_blocks
        (torch.Size([2, 1000]), 0, 4)
    """

    def __init__(
        self,
        config: LinkConfig,
        device: Optional[Union[str, torch.device]] = None,
        channel: Optional[Channel] = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, LinkConfig):
            raise ValueError(f"config must be a phy.LinkConfig, got {type(config).__name__}")
        _check_user_channel(config, channel)
        self.config = config
        self.device = torch.device(device_key(device))
        self.user_channel = channel
        self.chains = torch.nn.ModuleDict()
        self._probes: dict[tuple, object] = {}   # see _probed
        self._probe_channel = channel
        if config.mcs != "auto":
            self.chains["fixed"] = LinkChain(config, self.device, channel)

    def chain(self, snr_db: Optional[float] = None) -> LinkChain:
        """The :class:`LinkChain` used at ``snr_db`` (the fixed one unless
        ``mcs="auto"``)."""
        if self.config.mcs != "auto":
            return self.chains["fixed"]
        index = self.select_mcs(_check_snr(snr_db, True)).index
        key = str(index)
        if key not in self.chains:
            self.chains[key] = LinkChain(self.config.for_mcs(index), self.device, self.user_channel)
        return self.chains[key]

    def effective_snr_db(self, snr_db: float) -> dict[str, float]:
        r"""The AWGN-equivalent SNR [dB] per modulation at the ``target_bler`` outage (informative).

        Over AWGN it is ``snr_db`` for every modulation.  Over a fading
        channel (:func:`~phy.mcs.effective_snr_db`): rows of ``block_length``
        QPSK symbols' worth of coded bits (about one rate-1/2 codeword) cross
        the configured channel and estimator, each row's information is that
        of the demapper's LLRs (so the estimation loss counts), mapped back
        through the AWGN BICM curve (MIESM), and the ``target_bler`` quantile
        over rows is returned.  :meth:`select_mcs` uses the finer
        :meth:`fading_profile` (codewords of each MCS's own length, expected
        BLER).  Cached per SNR.
        """
        from .mcs import MODULATIONS_QAM, effective_snr_db  # pylint: disable=import-outside-toplevel

        snr = _check_snr(snr_db, True)
        if self.config.channel == "awgn" and self.user_channel is None:
            return {m: snr for m in MODULATIONS_QAM}
        return dict(self._probed(("effective", round(snr, 6)), lambda channel: effective_snr_db(
            channel, snr, self.config.block_length, quantile=self.config.target_bler, device=self.device)))

    def fading_profile(self, snr_db: float):
        """The :class:`~phy.mcs.FadingProfile` of the configured channel at
        ``snr_db`` (`None` over AWGN): the information of the receiver's own
        LLRs per symbol, so the channel-estimation loss counts.  Cached per SNR."""
        from .mcs import FadingProfile, max_codeword_bits  # pylint: disable=import-outside-toplevel

        snr = _check_snr(snr_db, True)
        if self.config.channel == "awgn" and self.user_channel is None:
            return None
        from .nr_tables import mcs_table  # pylint: disable=import-outside-toplevel

        mods = tuple(sorted({e.modulation for e in mcs_table(self.config.mcs_table)} - {"bpsk"}))
        return self._probed(("profile", self.config.mcs_table, round(snr, 6)), lambda channel: FadingProfile.measure(
            channel, snr, max_codeword_bits(self.config.mcs_table, self.config.block_length),
            device=self.device, modulations=mods))

    def _probed(self, key: tuple, measure):
        """``measure(probe channel)`` cached per link under ``key``, and per process for the configured
        channel (the probes are deterministic: links of equal probe identity share them)."""
        if key not in self._probes:
            shared = (_probe_identity(self.config), *key, str(self.device)) if self.user_channel is None else None
            if shared is not None and shared in _PROBE_CACHE:
                self._probes[key] = _PROBE_CACHE[shared]
            else:
                def run():
                    if self._probe_channel is None:
                        with sionna_device(self.device):
                            self._probe_channel = make_symbol_channel(self.config)
                    return measure(self._probe_channel)

                # the configured channel's probe is shared with the sweep's other workers (phy.probe_store)
                self._probes[key] = run() if shared is None else stored(shared, run)
                if shared is not None:
                    _PROBE_CACHE[shared] = self._probes[key]
        return self._probes[key]

    def calibrated_table(self):
        """The shipped BLER table measured over this link's channel category (:func:`phy.mcs.calibrated_table`:
        same channel model, receiver, numerology, block length; speed within tolerance), or `None` (also
        with a user channel, and over AWGN, whose table :func:`~phy.select_mcs` reads anyway)."""
        if ("table",) not in self._probes:
            from .mcs import calibrated_table  # pylint: disable=import-outside-toplevel

            self._probes[("table",)] = None if self.user_channel is not None else calibrated_table(self.config)
        return self._probes[("table",)]

    def select_mcs(self, snr_db: float):
        """The :class:`~phy.McsChoice` for ``snr_db`` (``mcs="auto"``): the most efficient MCS whose expected
        BLER at ``snr_db`` meets ``target_bler``.  Three paths, in this order:

        * AWGN: read off the shipped AWGN BLER table at ``snr_db``.
        * *table* -- a fading channel with a calibrated category
          (:meth:`calibrated_table`: TDL-A/C at 3 or 30 m/s, Rayleigh block
          fading, LS estimation, the default numerology; MCS tables 1 and 3,
          code blocks of 256, 1024 or 8424 bits):
          read off that category's BLER-vs-average-SNR table, measured with
          this chain over the channel and its estimator -- the fading and
          the LS estimation loss are in the curves themselves, no probe is
          sent (fast), and the expected BLER is what the chain measured.
        * *profile* -- any other fading link (other speeds, perfect CSI,
          another numerology or block length, a user channel): at its
          :meth:`fading_profile`, the AWGN curves averaged over the
          MIESM effective SNR of the channel's codewords (the LS loss
          enters through the receiver's own LLRs).
        """
        from .mcs import select_mcs  # pylint: disable=import-outside-toplevel

        table = self.calibrated_table()
        if table is not None:
            return select_mcs(_check_snr(snr_db, True), target_bler=self.config.target_bler,
                              table=self.config.mcs_table, block_length=self.config.block_length,
                              calibration=str(table))
        profile = self.fading_profile(snr_db)
        return select_mcs(
            _check_snr(snr_db, True) if profile is None else profile,
            target_bler=self.config.target_bler,
            table=self.config.mcs_table,
            block_length=self.config.block_length,
        )

    def forward(  # pylint: disable=arguments-differ
        self,
        bits: torch.Tensor,
        snr_db: Optional[SnrDb] = None,
        generator: Optional[torch.Generator] = None,
    ) -> LinkResult:
        _check_bits(bits)
        lead = tuple(bits.shape[:-1]) or (1,)
        snr = _check_snr_rows(snr_db, lead, required=self.config.channel != "bsc")
        if isinstance(snr, torch.Tensor) and self.config.mcs == "auto":
            raise ValueError("snr_db: mcs='auto' picks one MCS per call and needs a scalar snr_db")
        chain = self.chain(snr)
        mcs_index = chain.config.mcs if isinstance(chain.config.mcs, int) else None
        res = chain(bits.reshape(-1, bits.shape[-1]), snr, generator, mcs_index=mcs_index)
        if bits.dim() != 2:
            lead = tuple(bits.shape[:-1])
            for name in ("bits_hat", "llrs", "crc_ok_bits"):
                setattr(res, name, _restore(getattr(res, name), lead))
            for name in ("crc_ok", "block_iterations"):
                t = getattr(res, name)
                if t is not None:
                    setattr(res, name, t.reshape(*lead, t.shape[-1]))
        return res


@dataclasses.dataclass
class SymbolLinkResult:
    """What :meth:`SymbolLink.forward` returns.

    :ivar symbols_hat: [batch, m] complex64 -- equalised, unbiased estimates.
    :ivar noise_var_eff: [batch, m] float32 -- effective noise variance of
        each estimate.
    :ivar channel_uses: complex channel uses, all rows together.
    :ivar snr_db: :math:`E_s/N_0` [dB].
    """

    symbols_hat: torch.Tensor
    noise_var_eff: torch.Tensor
    channel_uses: int
    snr_db: float


class SymbolLink(torch.nn.Module):
    r"""Analog transport of complex symbols over the configured channel.

    The same channels and receivers as :class:`DigitalLink` (AWGN, Rayleigh
    block fading, TDL over OFDM; perfect CSI or LS), without coding and
    (de)mapping: the output is what Sionna's LMMSE equaliser gives,
    :math:`\hat s = s + e` with :math:`\mathrm{Var}[e]` = ``noise_var_eff``.

    :param config: :class:`~phy.LinkConfig` (only its channel and receiver
        fields matter).
    :param device: device of the channel blocks and outputs ("cpu" by default).
    :param channel: your own channel following the :class:`~phy.Channel`
        contract, or `None` (the configured one).

    :input symbols: [..., m], `torch.complex64` -- power-normalised
        (mean :math:`|s|^2 = 1`); leading dimensions are restored on output.
    :input snr_db: `float`, or a tensor broadcastable to the leading
        dimensions (one SNR per example) -- :math:`E_s/N_0` [dB].
    :input generator: `torch.Generator` or `None`.
    :output result: :class:`SymbolLinkResult`.

    Example::

        >>> import torch
        >>> from phy import LinkConfig, SymbolLink
        >>> link = SymbolLink(LinkConfig(channel="rayleigh", csi="ls"))
        >>> s = torch.randn(2, 300, dtype=torch.complex64)
        >>> r = link(s, snr_db=10.0, generator=torch.Generator().manual_seed(0))
        >>> r.symbols_hat.shape, r.channel_uses
        (torch.Size([2, 300]), 632)
    """

    def __init__(
        self,
        config: LinkConfig,
        device: Optional[Union[str, torch.device]] = None,
        channel: Optional[Channel] = None,
    ) -> None:
        super().__init__()
        if not isinstance(config, LinkConfig):
            raise ValueError(f"config must be a phy.LinkConfig, got {type(config).__name__}")
        if config.channel == "bsc":
            raise ValueError("SymbolLink needs a symbol channel: channel must be 'awgn', 'rayleigh' or 'tdl-a'..'tdl-e'")
        self.config = config
        self.device = torch.device(device_key(device))
        if channel is not None:
            _check_user_channel(config, channel)
            self.channel = channel
        else:
            with sionna_device(self.device):
                self.channel = make_symbol_channel(config)

    def forward(  # pylint: disable=arguments-differ
        self,
        symbols: torch.Tensor,
        snr_db: SnrDb,
        generator: Optional[torch.Generator] = None,
    ) -> SymbolLinkResult:
        if not isinstance(symbols, torch.Tensor) or symbols.dim() < 1 or not symbols.is_complex():
            raise ValueError("symbols must be a complex tensor of shape [..., m]")
        if symbols.numel() < 1:
            raise ValueError(f"symbols must have m >= 1 and a non-empty batch, got {list(symbols.shape)}")
        lead = tuple(symbols.shape[:-1]) or (1,)
        snr = _check_snr_rows(snr_db, lead, required=True)
        flat = symbols.to(self.device, torch.complex64).reshape(-1, symbols.shape[-1])
        out = _run_channel(self.channel, flat, snr, generator)
        nv = torch.as_tensor(out.noise_var_eff, dtype=torch.float32, device=flat.device).expand(flat.shape)
        shape = tuple(symbols.shape)
        return SymbolLinkResult(
            symbols_hat=out.symbols_hat.reshape(shape),
            noise_var_eff=nv.reshape(shape),
            channel_uses=flat.shape[0] * out.channel_uses,
            snr_db=_mean_db(snr),
        )
