"""Symbol channels with their receiver front end (estimation + equalisation).

Every channel here maps power-normalised transmit symbols ``x`` [batch, S]
(complex64, mean :math:`|x|^2 = 1`) to *equalised, unbiased* symbol estimates
``x_hat`` [batch, S] and the effective noise variance of each estimate
(:math:`\\hat x = x + e`, :math:`\\mathrm{Var}[e]` = ``noise_var_eff``), the
interface of Sionna's LMMSE equalisers, which a demapper turns into LLRs.

* :class:`AwgnChannel` -- Sionna's :class:`~sionna.phy.channel.AWGN`.
* :class:`RayleighBlockFadingChannel` -- flat Rayleigh fading, one
  coefficient per block of ``coherence_symbols`` channel uses (Sionna's
  :class:`~sionna.phy.channel.RayleighBlockFading`), perfect CSI or LS
  estimation on pilot symbols, LMMSE equalisation (one antenna: the division
  :func:`single_antenna_lmmse`, equal to :func:`sionna.phy.mimo.lmmse_equalizer`).
* :class:`OfdmTdlChannel` -- 3GPP TDL-A..E (Sionna's
  :class:`~sionna.phy.channel.tr38901.TDL`) over an OFDM resource grid with
  Kronecker pilots, user speed (Doppler) and carrier frequency; perfect CSI
  or :class:`~sionna.phy.ofdm.LSChannelEstimator`;
  Sionna's :class:`~sionna.phy.ofdm.OFDMEqualizer` with the one-antenna LMMSE
  division :func:`single_antenna_lmmse` (what
  :class:`~sionna.phy.ofdm.LMMSEEqualizer` computes).  Each slot of each row is an
  independent channel realisation (block fading per slot, aging within it).

``snr_db`` is the average :math:`E_s/N_0` per received symbol; all channel
models have unit average gain.  Randomness comes from the ``generator``
passed to ``forward``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Optional

import numpy as np
import torch
from sionna.phy import SPEED_OF_LIGHT
from sionna.phy import config as sionna_config
from sionna.phy.channel import AWGN, GenerateOFDMChannel, RayleighBlockFading
from sionna.phy.channel import ApplyOFDMChannel
from sionna.phy.channel.tr38901 import TDL
from sionna.phy.mimo import StreamManagement
from sionna.phy.ofdm import LSChannelEstimator, OFDMEqualizer, ResourceGrid, ResourceGridMapper

from ._rng import resolve_generator, sionna_generator
from .config import LinkConfig

__all__ = [
    "Channel",
    "ChannelOutput",
    "check_channel",
    "SymbolChannel",
    "AwgnChannel",
    "RayleighBlockFadingChannel",
    "OfdmTdlChannel",
    "make_symbol_channel",
    "single_antenna_lmmse",
    "PILOT_SYMBOL",
    "PILOT_SEED",
]

#: the pilot symbol of the Rayleigh block-fading channel (unit energy QPSK)
PILOT_SYMBOL = complex(1.0, 1.0) / math.sqrt(2.0)
#: seed of the random QPSK pilots of the OFDM resource grid (fixed: the
#: pilots are part of the waveform, known to the receiver)
PILOT_SEED = 0


@dataclasses.dataclass
class ChannelOutput:
    """What a :class:`Channel` returns: the receiver's view after equalisation.

    :ivar symbols_hat: [batch, n] `torch.complex64` -- equalised, unbiased
        estimates of the transmitted symbols (:math:`\\hat x = x + e`).
    :ivar noise_var_eff: `torch.float32`, broadcastable to [batch, n] --
        post-equalisation noise variance :math:`\\mathrm{Var}[e]` per symbol
        (linear); a demapper turns ``symbols_hat`` and it into LLRs.
    :ivar channel_estimate: the receiver's channel estimate where the channel
        knows one (e.g. [batch, n] complex64 per data symbol for the Rayleigh
        channel), else `None`.  Informative only; the links do not use it.
    :ivar channel_uses: complex channel uses one row occupied (data, pilots,
        padding), or `None`: then the link asks the channel's
        :meth:`Channel.channel_uses`.
    """

    symbols_hat: torch.Tensor
    noise_var_eff: torch.Tensor
    channel_estimate: Optional[torch.Tensor] = None
    channel_uses: Optional[int] = None


class Channel(torch.nn.Module):
    r"""The public channel contract of :class:`~phy.DigitalLink` and :class:`~phy.SymbolLink`.

    A channel takes unit-energy transmit symbols and returns what the
    receiver's equaliser gives.  Subclass it (or write any object with the
    same two methods) to put your own channel -- e.g. a Sionna channel model
    with your own estimator -- inside a distdiff link:
    ``DigitalLink(config, channel=MyChannel())``.

    :input x: [batch, n], `torch.complex64` -- transmit symbols, mean
        :math:`|x|^2 = 1`.
    :input noise_var: `float` or `torch.Tensor` broadcastable to [batch, 1]
        -- noise variance per complex symbol at the receiver (linear,
        :math:`N_0/E_s`); a tensor gives every row its own SNR.
    :input generator: keyword, `torch.Generator` or `None` -- the source of
        all randomness (`None`: torch's default generator).
    :output out: :class:`ChannelOutput`.

    :meth:`channel_uses` tells the link how many complex channel uses a row
    of ``num_symbols`` data symbols occupies (for spectral efficiency and
    airtime); the default is ``num_symbols``.

    Example (a fixed phase rotation with AWGN and a genie equaliser)::

        >>> import math, torch
        >>> from phy import Channel, ChannelOutput, DigitalLink, LinkConfig
        >>> class Rotation(Channel):
        ...     def forward(self, x, noise_var, *, generator=None):
        ...         h = torch.polar(torch.tensor(1.0), torch.tensor(0.7)).to(x.dtype)
        ...         nv = torch.as_tensor(noise_var, dtype=torch.float32)
        ...         n = torch.randn(x.shape, dtype=x.dtype, generator=generator) * nv.sqrt()
        ...         y = h * x + n
        ...         return ChannelOutput(y / h, nv.expand(x.shape[0], 1), channel_estimate=h.expand(x.shape))
        >>> link = DigitalLink(LinkConfig(code="none"), channel=Rotation())
        >>> g = torch.Generator().manual_seed(0)
        >>> bits = torch.randint(0, 2, (4, 1000), generator=g).float()
        >>> link(bits, snr_db=20.0, generator=g).bit_errors
        0
    """

    def channel_uses(self, num_symbols: int) -> int:
        """Complex channel uses a row of ``num_symbols`` data symbols occupies."""
        return int(num_symbols)

    def forward(  # pylint: disable=arguments-differ
        self, x: torch.Tensor, noise_var, *, generator: Optional[torch.Generator] = None
    ) -> ChannelOutput:
        raise NotImplementedError


def check_channel(channel: object) -> None:
    """Raise a one-line :class:`ValueError` unless ``channel`` follows the :class:`Channel` contract."""
    missing = [name for name in ("__call__", "channel_uses") if not callable(getattr(channel, name, None))]
    if missing:
        raise ValueError(
            f"channel must follow the phy.Channel contract (callable as channel(x, noise_var, generator=...) "
            f"-> phy.ChannelOutput, with a channel_uses(num_symbols) method); {type(channel).__name__} "
            f"lacks {', '.join(missing)}"
        )


def check_channel_output(out: object, x: torch.Tensor) -> ChannelOutput:
    """Check what a user's channel returned; one-line :class:`ValueError` otherwise."""
    if not all(hasattr(out, f) for f in ("symbols_hat", "noise_var_eff")):
        raise ValueError(
            f"channel must return a phy.ChannelOutput (symbols_hat, noise_var_eff[, channel_estimate]), "
            f"got {type(out).__name__}"
        )
    y = out.symbols_hat
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(x.shape) or not y.is_complex():
        raise ValueError(
            f"channel output symbols_hat must be a complex tensor of shape {list(x.shape)} (the input's), "
            f"got {type(y).__name__} {list(getattr(y, 'shape', []))}"
        )
    nv = torch.as_tensor(out.noise_var_eff, dtype=torch.float32, device=y.device)
    try:
        torch.broadcast_shapes(tuple(nv.shape), tuple(y.shape))
    except RuntimeError:
        raise ValueError(
            f"channel output noise_var_eff of shape {list(nv.shape)} does not broadcast to {list(y.shape)}"
        ) from None
    if isinstance(out, ChannelOutput) and out.noise_var_eff is nv:
        return out
    return ChannelOutput(y.to(torch.complex64), nv, getattr(out, "channel_estimate", None),
                         getattr(out, "channel_uses", None))


def noise_var_tensor(noise_var, batch: int, device: torch.device) -> torch.Tensor:
    """``noise_var`` (float or tensor broadcastable to [batch, 1]) as float32 [batch, 1]."""
    nv = torch.as_tensor(noise_var, dtype=torch.float32, device=device)
    try:
        return torch.broadcast_to(nv.reshape(-1, 1) if nv.dim() == 1 else nv, (batch, 1))
    except RuntimeError:
        raise ValueError(f"noise_var of shape {list(nv.shape)} does not broadcast to [batch, 1] = [{batch}, 1]") from None


class SymbolChannel(Channel):
    """Base class of the built-in channels: installs the generator for Sionna's blocks.

    :input x: [batch, S], `torch.complex64` -- unit-energy symbols.
    :input noise_var: `float` or tensor broadcastable to [batch, 1] -- noise
        variance per complex symbol (linear).
    :input generator: `torch.Generator` or `None` (torch's default).
    :output out: :class:`ChannelOutput`.
    """

    def forward(  # pylint: disable=arguments-differ
        self, x: torch.Tensor, noise_var, generator: torch.Generator | None = None
    ) -> ChannelOutput:
        gen = resolve_generator(generator, x.device)
        no = noise_var_tensor(noise_var, x.shape[0], x.device)
        with sionna_generator(gen, x.device):
            return self._forward(x, no)

    def _forward(self, x: torch.Tensor, no: torch.Tensor) -> ChannelOutput:
        raise NotImplementedError


class AwgnChannel(SymbolChannel):
    """Complex AWGN: ``y = x + n``, ``n ~ CN(0, no)``.

    Example::

        >>> ch = AwgnChannel()
        >>> x = torch.ones(2, 5, dtype=torch.complex64)
        >>> out = ch(x, 0.1, torch.Generator().manual_seed(0))
        >>> out.symbols_hat.shape, float(out.noise_var_eff[0, 0])
        (torch.Size([2, 5]), 0.10000000149011612)
    """

    def __init__(self) -> None:
        super().__init__()
        self.awgn = AWGN()

    def channel_uses(self, num_symbols: int) -> int:
        return num_symbols

    def _forward(self, x: torch.Tensor, no: torch.Tensor) -> ChannelOutput:
        y = self.awgn(x, no)
        return ChannelOutput(y, no.expand(x.shape), channel_uses=x.shape[1])


def single_antenna_lmmse(y: torch.Tensor, h: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""LMMSE equalisation of one stream on one receive antenna: a division.

    Same contract as :func:`sionna.phy.mimo.lmmse_equalizer` with ``M = K = 1``
    (whose general matrix inverse it replaces): with
    :math:`\hat{x} = \mathrm{diag}(GH)^{-1} G y` the filter reduces to
    :math:`\hat{x} = y / h` and the effective noise variance to
    :math:`\sigma^2 = s / |h|^2`.

    :input y: [..., 1], complex -- received symbols.
    :input h: [..., 1, 1], complex -- channel (estimate).
    :input s: [..., 1, 1], complex or real -- noise (plus estimation error) variance.
    :output x_hat: [..., 1], complex64 -- equalised symbols.
    :output no_eff: [..., 1], float32 -- effective noise variance.

    Example::

        >>> import torch
        >>> y = torch.tensor([[1 + 1j]], dtype=torch.complex64)
        >>> h = torch.tensor([[[2 + 0j]]], dtype=torch.complex64)
        >>> s = torch.tensor([[[0.5 + 0j]]], dtype=torch.complex64)
        >>> x_hat, no_eff = single_antenna_lmmse(y, h, s)
        >>> x_hat, no_eff
        (tensor([[0.5000+0.5000j]]), tensor([[0.1250]]))
    """
    h11 = h[..., 0, 0].to(torch.complex64)
    s11 = s[..., 0, 0].real.to(torch.float32) if s.is_complex() else s[..., 0, 0].to(torch.float32)
    x_hat = y[..., 0].to(torch.complex64) / h11
    no_eff = s11 / (h11.real.square() + h11.imag.square())
    return x_hat.unsqueeze(-1), no_eff.unsqueeze(-1)


class RayleighBlockFadingChannel(SymbolChannel):
    """Flat Rayleigh block fading with perfect CSI or LS pilot estimation.

    A row of ``S`` data symbols is cut into blocks; each block sees one
    coefficient :math:`h\\sim\\mathcal{CN}(0,1)`.  With ``csi="ls"`` each
    block starts with ``num_pilot_symbols`` pilots (:data:`PILOT_SYMBOL`) and
    carries ``coherence_symbols - num_pilot_symbols`` data symbols; the LS
    estimate is the average of the pilot observations (error variance
    ``no / num_pilot_symbols``), and the LMMSE equaliser accounts for it.

    :param coherence_symbols: channel uses per fading block.
    :param csi: "perfect" or "ls".
    :param num_pilot_symbols: pilots per block (``csi="ls"``).
    """

    def __init__(self, coherence_symbols: int, csi: str = "perfect", num_pilot_symbols: int = 4) -> None:
        super().__init__()
        self.coherence_symbols = int(coherence_symbols)
        self.csi = csi
        self.num_pilots = int(num_pilot_symbols) if csi == "ls" else 0
        self.data_per_block = self.coherence_symbols - self.num_pilots
        self.fading = RayleighBlockFading(num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant=1)
        self.awgn = AWGN()

    def channel_uses(self, num_symbols: int) -> int:
        blocks = max(1, math.ceil(num_symbols / self.data_per_block))
        return num_symbols + blocks * self.num_pilots

    def _forward(self, x: torch.Tensor, no: torch.Tensor) -> ChannelOutput:
        batch, s = x.shape
        no = no.reshape(batch, 1, 1)
        d = self.data_per_block
        nb = max(1, math.ceil(s / d))
        xb = torch.nn.functional.pad(x, (0, nb * d - s)).reshape(batch, nb, d)
        if self.num_pilots:
            pilots = torch.full((batch, nb, self.num_pilots), PILOT_SYMBOL, dtype=x.dtype, device=x.device)
            xb = torch.cat([pilots, xb], dim=2)
        a, _ = self.fading(batch * nb, 1)
        h = a.reshape(batch, nb, 1).to(x.dtype)
        y = self.awgn(h * xb, no)
        if self.num_pilots:
            y_p, y = y[..., : self.num_pilots], y[..., self.num_pilots :]
            h_hat = (y_p * np.conj(PILOT_SYMBOL)).mean(dim=2, keepdim=True)
            err_var = no / self.num_pilots
        else:
            h_hat, err_var = h, torch.zeros_like(no)
        h_mat = h_hat.expand(batch, nb, d).reshape(-1, 1, 1)
        s_mat = (no + err_var).expand(batch, nb, d).reshape(-1, 1, 1).to(h_mat.dtype)
        x_hat, no_eff = single_antenna_lmmse(y.reshape(-1, 1), h_mat, s_mat)
        x_hat = x_hat.reshape(batch, nb * d)[:, :s]
        no_eff = no_eff.reshape(batch, nb * d)[:, :s].to(torch.float32)
        h_est = h_hat.expand(batch, nb, d).reshape(batch, nb * d)[:, :s]
        return ChannelOutput(x_hat, no_eff, h_est, self.channel_uses(s))


class OfdmTdlChannel(SymbolChannel):
    """3GPP TDL channel over OFDM with pilots, LS estimation and LMMSE equalisation.

    :param config: the :class:`~phy.LinkConfig` (TDL model, delay spread,
        carrier frequency, speed, numerology, pilots, CSI, interpolation).

    The data symbols of a row fill consecutive slots
    (``num_ofdm_symbols x fft_size`` resource elements, pilots on the OFDM
    symbols ``pilot_ofdm_symbol_indices``); the last slot is zero-padded.
    The channel is applied in the frequency domain (no inter-carrier
    interference).
    """

    def __init__(self, config: LinkConfig) -> None:
        super().__init__()
        # Sionna draws the random QPSK pilots when the grid is built: draw them
        # from a fixed generator so that every instance has the same pilots
        dev = sionna_config.device
        pilot_gen = torch.Generator(device=dev).manual_seed(PILOT_SEED)
        with sionna_generator(pilot_gen, dev):
            self.rg = ResourceGrid(
                num_ofdm_symbols=config.num_ofdm_symbols,
                fft_size=config.fft_size,
                subcarrier_spacing=config.subcarrier_spacing_hz,
                num_tx=1,
                num_streams_per_tx=1,
                cyclic_prefix_length=config.cyclic_prefix_length,
                pilot_pattern="kronecker",
                pilot_ofdm_symbol_indices=list(config.pilot_ofdm_symbol_indices),
            )
        self.csi = config.csi
        self.speed_mps = float(config.speed_mps)
        self.carrier_frequency_hz = float(config.carrier_frequency_hz)
        self.data_per_slot = int(self.rg.num_data_symbols)
        self.res_per_slot = config.num_ofdm_symbols * config.fft_size
        self.mapper = ResourceGridMapper(self.rg)
        self.tdl = TDL(
            model=config.tdl_model,
            delay_spread=config.delay_spread_s,
            carrier_frequency=config.carrier_frequency_hz,
            min_speed=config.speed_mps,
            max_speed=config.speed_mps,
        )
        self.generate = GenerateOFDMChannel(self.tdl, self.rg, normalize_channel=False)
        self.apply_channel = ApplyOFDMChannel()
        self.estimator = LSChannelEstimator(self.rg, interpolation_type=config.ls_interpolation)
        # one transmit and one receive antenna: the LMMSE filter is a division (same numbers as Sionna's
        # general matrix inverse, LMMSEEqualizer, to float rounding; tests/phy/test_channels_lmmse.py)
        self.equalizer = OFDMEqualizer(single_antenna_lmmse, self.rg, StreamManagement(np.ones([1, 1], dtype=int), 1))

    @property
    def doppler_hz(self) -> float:
        """Maximum Doppler shift [Hz] the TDL model uses (speed * carrier / c)."""
        return self.speed_mps * self.carrier_frequency_hz / SPEED_OF_LIGHT

    def channel_uses(self, num_symbols: int) -> int:
        return max(1, math.ceil(num_symbols / self.data_per_slot)) * self.res_per_slot

    def _forward(self, x: torch.Tensor, no: torch.Tensor) -> ChannelOutput:
        batch, s = x.shape
        d = self.data_per_slot
        ns = max(1, math.ceil(s / d))
        xs = torch.nn.functional.pad(x, (0, ns * d - s)).reshape(batch * ns, 1, 1, d)
        grid = self.mapper(xs)  # [b, 1, 1, sym, fft]
        h = self.generate(batch * ns)  # [b, 1, 1, 1, 1, sym, fft]
        if bool((no == no[0, 0]).all()):  # one SNR for all rows
            no_t = no_rx = no[0, 0].clone()
        else:  # per-row SNR: [b * ns, 1, 1, 1, 1] for the channel, [b * ns, 1, 1] for the receiver
            no_rx = no.repeat_interleave(ns, dim=0).reshape(batch * ns, 1, 1)
            no_t = no_rx.reshape(batch * ns, 1, 1, 1, 1)
        y = self.apply_channel(grid, h, no_t)  # [b, 1, 1, sym, fft]
        if self.csi == "ls":
            h_hat, err_var = self.estimator(y, no_rx)
        else:
            h_hat, err_var = h, torch.zeros((), dtype=torch.float32, device=x.device)
        x_hat, no_eff = self.equalizer(y, h_hat, err_var, no_rx)  # [b, 1, 1, d]
        x_hat = x_hat.reshape(batch, ns * d)[:, :s]
        no_eff = no_eff.reshape(batch, ns * d)[:, :s].to(torch.float32)
        return ChannelOutput(x_hat, no_eff, channel_uses=ns * self.res_per_slot)


def make_symbol_channel(config: LinkConfig) -> SymbolChannel:
    """The :class:`SymbolChannel` of a configuration (not for ``channel="bsc"``)."""
    if config.channel == "awgn":
        return AwgnChannel()
    if config.channel == "rayleigh":
        return RayleighBlockFadingChannel(config.coherence_symbols, config.csi, config.num_pilot_symbols)
    if config.is_ofdm:
        return OfdmTdlChannel(config)
    raise ValueError(f"channel={config.channel!r} is not a symbol channel (use DigitalLink for 'bsc')")
