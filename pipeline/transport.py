"""Transports: how a sender's latents reach one receiver (codec + link, or nothing).

A transport has one method, ``send(latents, *, generator) -> Received``.
:class:`~pipeline.chain.CollaborativeChain` only orchestrates: it computes the
sender's state, calls ``transport.send`` once per receiver with that
receiver's link generator, sanitises what comes back (never a NaN/Inf to the
UNet) and lets the receiver finish. The built-in transports:

* :class:`LosslessTransport`: the latents arrive exactly (no codec, no channel);
* :class:`DigitalTransport`: a digital codec (bits) over :class:`phy.DigitalLink`,
  the header either over the same link or error-free;
* :class:`AnalogTransport`: the analog codec (complex symbols) over
  :class:`phy.SymbolLink`, its header over a :class:`phy.DigitalLink`;
* :class:`LearnedTransport`: a learned JSCC codec
  (:class:`latent_codec.learned.LearnedCodec`) over :class:`phy.SymbolLink`;
  no header (shape, ``k`` and ``rho`` are configuration at both ends).

:func:`build_transport` makes the one a :class:`~pipeline.chain.ChainConfig`
describes. Your own transport (a learned JSCC encoder/decoder, a different
PHY, a file hand-off) needs no change to the chain: subclass
:class:`Transport` (or write any object with the same ``send``) and pass it
as ``CollaborativeChain(pipe, config, transport=my_transport)``.

Example
-------
>>> import torch
>>> from pipeline.transport import LosslessTransport, Received
>>> x = torch.randn(1, 4, 8, 8)
>>> rx = LosslessTransport().send(x, generator=torch.Generator().manual_seed(0))
>>> bool(torch.equal(rx.latents, x)), rx.link_stats["bit_errors"]
(True, 0)
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from latent_codec import BitPayload, CodecConfig, HeaderCorruptedError, Payload, SymbolPayload
from phy import DigitalLink, LinkConfig, SymbolLink

__all__ = [
    "AnalogTransport",
    "DigitalTransport",
    "LearnedTransport",
    "LosslessTransport",
    "Received",
    "Transport",
    "build_transport",
    "link_stats",
    "payload_stats",
]


@dataclass
class Received:
    """What one receiver got.

    Attributes
    ----------
    latents : torch.Tensor or None, float32, shape ``[B, C, H, W]``
        The receiver's estimate of the sent latents; None when it cannot
        decode (header or control information lost): it then generates alone.
    link_stats : dict
        Flat scalars about the link: ``bit_errors``, ``num_bits``,
        ``channel_uses`` (all transports), and where they apply
        ``block_errors``, ``num_blocks``, ``ebno_db``, ``mcs_index``,
        ``spectral_efficiency``, ``header_corrupted``, ``num_repaired``,
        ``latent_noise_var``, ``noise_var_eff`` ...
    payload_stats : dict
        Flat scalars about the payload: ``payload_bits`` (all transports),
        ``payload_body_bits``, ``payload_header_bits``, ``bits_per_latent_value``.
    """

    latents: torch.Tensor | None
    link_stats: dict = field(default_factory=dict)
    payload_stats: dict = field(default_factory=dict)


class Transport(abc.ABC):
    """The contract of a transport: one ``send`` per receiver.

    To add a transport (for example a learned one), subclass this and
    implement :meth:`send`, then pass it as ``CollaborativeChain(pipe,
    config, transport=...)``; the chain needs nothing else (a plain object
    with ``send(latents, *, generator)`` is accepted too; the chain passes
    ``control_generator`` only to a ``send`` that takes it). Rules:

    * every random draw comes from ``generator`` (and ``control_generator``
      for a second, independent link), so the same seed gives bit-identical
      results;
    * return ``Received(None, ...)`` when the receiver cannot decode (it
      then generates alone and the row says ``fallback_generate_alone``);
    * ``link_stats`` holds at least ``bit_errors``, ``num_bits`` and
      ``channel_uses`` (complex channel uses for this receiver, control
      information included: the chain turns them into airtime);
      ``payload_stats`` at least ``payload_bits``;
    * the chain replaces non-finite received values and counts them in
      ``num_repaired``; a transport may return them.
    """

    @abc.abstractmethod
    def send(self, latents: torch.Tensor, *, generator: torch.Generator,
             control_generator: torch.Generator | None = None) -> Received:
        """Carry ``latents`` to one receiver.

        Parameters
        ----------
        latents : torch.Tensor, float32, shape ``[B, C, H, W]``
            The sender's latents.
        generator : torch.Generator
            The receiver's link randomness (noise, fading).
        control_generator : torch.Generator or None
            Randomness of a separate control link, when the transport has one.

        Returns
        -------
        Received
        """


def _scalar(value, default=None):
    if value is None:
        return default
    if isinstance(value, torch.Tensor):
        return value.sum().item() if value.numel() > 1 else value.item()
    if isinstance(value, np.ndarray):
        return value.sum().item() if value.size > 1 else value.item()
    return value


def link_stats(result, row: int = 0) -> dict:
    """Flat scalars of a :class:`phy.LinkResult` (for one batch row where the field is per row).

    Parameters
    ----------
    result : phy.LinkResult
    row : int

    Returns
    -------
    dict
        ``bit_errors``, ``num_bits``, ``block_errors``, ``num_blocks``,
        ``channel_uses``, ``ebno_db``, ``mcs_index``, ``spectral_efficiency``.
    """
    def pick(v):
        if isinstance(v, torch.Tensor) and v.dim() > 0:
            return v[row].item() if v.shape[0] > row else v.sum().item()
        return _scalar(v)

    return {"bit_errors": pick(result.bit_errors), "num_bits": _scalar(result.num_bits),
            "block_errors": pick(getattr(result, "block_errors", None)),
            "num_blocks": _scalar(getattr(result, "num_blocks", None)),
            "channel_uses": _scalar(getattr(result, "channel_uses", None)),
            "ebno_db": _scalar(getattr(result, "ebno_db", None)),
            "mcs_index": _scalar(getattr(result, "mcs_index", None)),
            "spectral_efficiency": _scalar(getattr(result, "spectral_efficiency", None))}


def payload_stats(payload: Payload) -> dict:
    """Flat scalars of a codec payload: total, body and header bits, body bits per latent value.

    Parameters
    ----------
    payload : latent_codec.Payload

    Returns
    -------
    dict
    """
    return {"payload_bits": payload.num_bits, "payload_body_bits": payload.num_body_bits,
            "payload_header_bits": payload.num_header_bits,
            "bits_per_latent_value": payload.num_bits / payload.num_values}


def _received_values(result, use_llrs: bool, link=None) -> tuple[torch.Tensor, bool]:
    """The decoder output the codec reads: LLRs when asked and the link's LLRs are soft, else hard bits.

    A link result without ``llrs_are_soft`` (an older phy) counts as soft
    unless the link's code is Polar, whose +-20/+-1 output is not an LLR.
    """
    code = getattr(getattr(link, "config", None), "code", None)
    soft = use_llrs and bool(getattr(result, "llrs_are_soft", code != "polar"))
    return (result.llrs if soft else result.bits_hat), soft


class LosslessTransport(Transport):
    """No quantisation, no channel: the receiver gets the latents exactly (the reference arm)."""

    def send(self, latents, *, generator=None, control_generator=None) -> Received:
        """See :meth:`Transport.send`; the generators are not used."""
        return Received(latents.float().clone(), {"bit_errors": 0, "num_bits": 0, "channel_uses": 0},
                        {"payload_bits": 0})


class DigitalTransport(Transport):
    """A digital codec's bits over a :class:`phy.DigitalLink`.

    Parameters
    ----------
    codec : latent_codec.DigitalCodec
    link : phy.DigitalLink or phy.LinkConfig
    snr_db : float or None
        Es/N0 per complex symbol at the receiver [dB] (None for the BSC).
    llrs : bool
        Decode from the link's LLRs (``estimator`` on code blocks whose CRC
        failed; blocks whose CRC held are decoded exactly) rather than hard
        bits. A link whose LLRs are not soft (``LinkResult.llrs_are_soft``
        False, e.g. Polar's fixed +-20/+-1) is decoded from hard bits.
    estimator : str
        ``"mmse"``, ``"hard"`` or ``"sample"`` (see :class:`latent_codec.DigitalCodec`).
    header_over_link : bool
        Send the header over the same link (a corrupted header gives
        ``Received(None, ...)``); False: the header arrives error-free.
    """

    def __init__(self, codec, link, snr_db: float | None, *, llrs: bool = True, estimator: str = "mmse",
                 header_over_link: bool = True):
        self.codec = codec
        self._link = link  # a LinkConfig is built into a DigitalLink on the first send
        self.snr_db = snr_db
        self.llrs = bool(llrs)
        self.estimator = codec.resolve_estimator(estimator)  # validates
        self.header_over_link = bool(header_over_link)

    @property
    def link(self):
        """The :class:`phy.DigitalLink` (built from the config on first use)."""
        if isinstance(self._link, LinkConfig):
            self._link = DigitalLink(self._link)
        return self._link

    def send(self, latents, *, generator, control_generator=None) -> Received:
        """See :meth:`Transport.send`.

        ``estimator="sample"`` draws from a generator seeded from ``generator``
        after the link has drawn its noise, so the link noise is the same for
        every estimator. ``control_generator`` is not used.
        """
        payload: BitPayload = self.codec.compress(latents.float())
        pay = payload_stats(payload)
        h = payload.num_header_bits if self.header_over_link else 0
        sent = torch.cat([payload.header_bits, payload.bits], 1) if h else payload.bits
        res = self.link(sent, self.snr_db, generator=generator)
        stats = link_stats(res)
        rx, soft = _received_values(res, self.llrs, self.link)
        crc_ok = getattr(res, "crc_ok_bits", None) if soft else None
        try:
            header = self.codec.parse_header(rx[:, :h], llrs=soft) if h else payload.header
        except HeaderCorruptedError:
            return Received(None, {**stats, "header_corrupted": True}, pay)
        sampler = None
        if self.estimator == "sample":
            seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
            sampler = torch.Generator().manual_seed(seed)
        out = self.codec.decompress(rx[:, h:], header, llrs=soft, estimator=self.estimator,
                                    crc_ok=None if crc_ok is None else crc_ok[:, h:], generator=sampler)
        stats.update(header_corrupted=False, num_repaired=int(_scalar(out.num_repaired, 0)))
        return Received(out.latents.float(), stats, pay)


class AnalogTransport(Transport):
    """The analog codec's symbols over a :class:`phy.SymbolLink`, its header over a :class:`phy.DigitalLink`.

    Parameters
    ----------
    codec : latent_codec.AnalogCodec
    link_config : phy.LinkConfig
        The symbol link (and the header's digital link).
    snr_db : float
        Es/N0 per complex symbol at the receiver [dB].
    estimator : str
        ``"mmse"`` or ``"unbiased"``.
    header_over_link : bool
        Send the header bits over a digital link (``control_generator``); a
        corrupted header gives ``Received(None, ...)``. False: error-free.
    header_llrs : bool
        Combine the header copies from LLRs (else hard majority vote).
    control : "same_link" | "robust" | phy.LinkConfig
        The control channel that carries the header: ``"same_link"`` (the
        digital link of ``link_config``, as before), ``"robust"`` (the most
        robust MCS: MCS 0 of ``link_config.mcs_table`` with LDPC, over the same
        channel, its code block sized to the header: no zero padding up to
        ``block_length``), or a separately configured link. Its channel uses count in
        ``channel_uses`` (hence the airtime) and are also reported as
        ``header_channel_uses``; header loss is ``header_corrupted``.
    """

    def __init__(self, codec, link_config: LinkConfig, snr_db: float, *, estimator: str = "mmse",
                 header_over_link: bool = True, header_llrs: bool = True, control="same_link"):
        self.codec = codec
        self.link_config = link_config
        if isinstance(control, LinkConfig):
            self.control_config = control
        elif control == "same_link":
            self.control_config = link_config
        elif control == "robust":
            self.control_config = link_config.replace(code="ldpc", mcs=0, mcs_table=link_config.mcs_table)
            self._fit_control_block = True
        else:
            raise ValueError(f"control must be 'same_link', 'robust' or a phy.LinkConfig, got {control!r}")
        self.snr_db = snr_db
        self.estimator = codec.resolve_estimator(estimator)
        self.header_over_link = bool(header_over_link)
        self.header_llrs = bool(header_llrs)
        self._links: dict = {}

    #: the robust control link's largest code block: 5G LDPC base graph 2 (rates < 2/3) takes K + CRC <= 3840
    MAX_CONTROL_BLOCK = 3840 - 24
    _fit_control_block = False

    def _link(self, kind: str, header_bits: int = 0):
        if kind == "digital" and self._fit_control_block:   # one code block per header, no padding
            k = max(1, min(int(header_bits), self.MAX_CONTROL_BLOCK))
            kind = f"digital/{k}"
            if kind not in self._links:
                self._links[kind] = DigitalLink(self.control_config.replace(block_length=k))
        if kind not in self._links:
            self._links[kind] = (DigitalLink(self.control_config) if kind == "digital"
                                 else SymbolLink(self.link_config))
        return self._links[kind]

    def send(self, latents, *, generator, control_generator=None) -> Received:
        """See :meth:`Transport.send`; the header's link draws from ``control_generator``."""
        payload: SymbolPayload = self.codec.compress(latents.float())
        pay = payload_stats(payload)
        res = self._link("symbol")(payload.symbols, self.snr_db, generator=generator)
        stats = {"bit_errors": 0, "num_bits": 0, "channel_uses": int(_scalar(res.channel_uses))}
        header = payload.header
        if self.header_over_link:
            if control_generator is None:
                raise ValueError("AnalogTransport with header_over_link needs a control_generator")
            control = self._link("digital", payload.header_bits.shape[-1])
            hres = control(payload.header_bits, self.snr_db, generator=control_generator)
            hs = link_stats(hres)
            stats.update(header_bit_errors=hs["bit_errors"], header_num_bits=hs["num_bits"])
            if self.control_config is not self.link_config:  # new columns only where the control link differs
                stats.update(header_channel_uses=int(hs["channel_uses"] or 0), header_mcs_index=hs["mcs_index"])
            stats["channel_uses"] += int(hs["channel_uses"] or 0)
            rx, soft = _received_values(hres, self.header_llrs, control)
            try:
                header = self.codec.parse_header(rx, llrs=soft)
            except HeaderCorruptedError:
                return Received(None, {**stats, "header_corrupted": True}, pay)
        out = self.codec.decompress(res.symbols_hat, header, noise_var=res.noise_var_eff, estimator=self.estimator)
        nv = out.noise_var
        stats["latent_noise_var"] = float(nv.float().mean()) if nv is not None else float("nan")
        stats["noise_var_eff"] = float(torch.as_tensor(res.noise_var_eff).float().mean())
        stats.update(header_corrupted=False, num_repaired=int(_scalar(out.num_repaired, 0)))
        return Received(out.latents.float(), stats, pay)


class LearnedTransport(Transport):
    r"""A learned JSCC codec's symbols over a :class:`phy.SymbolLink` (no header, no control bits).

    The learned codec does not follow the header-based
    :class:`latent_codec.LatentCodec` contract: its encoder needs the SNR and
    the state's noise level :math:`\sigma_k` besides the latents, and it sends
    no header -- the latent shape, ``k`` (hence :math:`\sigma_k`) and the
    bandwidth ratio are configuration known to both ends (the chain config),
    so nothing but the ``m = rho C H W`` symbols crosses the channel and
    ``channel_uses`` counts exactly those.

    Parameters
    ----------
    codec : latent_codec.learned.LearnedCodec
    link_config : phy.LinkConfig
        The symbol link (channel, CSI, speed).
    snr_db : float
        Es/N0 per complex symbol at the receiver [dB]; also the codec's
        SNR condition at both ends.
    sigma : float
        Noise level :math:`\sigma_k` of the sent state (the Euler-type
        scheduler's ``sigmas[k]``, see :func:`learned_sigma`).

    Example
    -------
    >>> import torch
    >>> from latent_codec.learned import LearnedCodec
    >>> from phy import LinkConfig
    >>> codec = LearnedCodec({"bandwidth_ratio": 0.125, "width": 8, "depth": 1, "cond_dim": 8})
    >>> t = LearnedTransport(codec, LinkConfig(channel="awgn"), snr_db=10.0, sigma=2.0)
    >>> rx = t.send(torch.randn(2, 4, 16, 16), generator=torch.Generator().manual_seed(0))
    >>> rx.latents.shape, rx.link_stats["channel_uses"], rx.payload_stats["bandwidth_ratio"]
    (torch.Size([2, 4, 16, 16]), 256, 0.125)
    """

    def __init__(self, codec, link_config: LinkConfig, snr_db: float, *, sigma: float):
        if snr_db is None or not np.isfinite(float(snr_db)):
            raise ValueError(f"snr_db must be a finite number [dB] for the learned transport, got {snr_db!r}")
        if not np.isfinite(float(sigma)) or float(sigma) < 0:
            raise ValueError(f"sigma must be a finite number >= 0 (the state's noise level), got {sigma!r}")
        self.codec = codec.eval()
        self.link_config = link_config
        self.snr_db = float(snr_db)
        self.sigma = float(sigma)
        self._link = None

    @property
    def link(self) -> SymbolLink:
        """The :class:`phy.SymbolLink` (built on first use)."""
        if self._link is None:
            self._link = SymbolLink(self.link_config)
        return self._link

    @torch.no_grad()
    def send(self, latents, *, generator, control_generator=None) -> Received:
        """See :meth:`Transport.send`; ``control_generator`` is not used (no control information)."""
        x = latents.float()
        symbols = self.codec.encode(x, self.snr_db, self.sigma)
        res = self.link(symbols, self.snr_db, generator=generator)
        x_hat = self.codec.decode(res.symbols_hat, res.noise_var_eff, self.snr_db, self.sigma)
        stats = {"bit_errors": 0, "num_bits": 0, "channel_uses": int(_scalar(res.channel_uses)),
                 "header_bit_errors": 0, "header_num_bits": 0,
                 "latent_noise_var": float((x_hat - x).pow(2).mean()),  # measured: no model of it
                 "noise_var_eff": float(torch.as_tensor(res.noise_var_eff).float().mean()),
                 "header_corrupted": False, "num_repaired": 0}
        pay = {"payload_bits": 0, "payload_body_bits": 0, "payload_header_bits": 0, "bits_per_latent_value": 0.0,
               "bandwidth_ratio": self.codec.bandwidth_ratio}
        return Received(x_hat.float(), stats, pay)


def default_learned_model(bandwidth_ratio: float):
    """Folder of the shipped learned codec for ``bandwidth_ratio`` (``pipeline/models/jscc-rho<rho>``).

    Example
    -------
    >>> default_learned_model(0.125).name
    'jscc-rho0.125'
    """
    from .loading import DEFAULT_MODEL_DIR

    return DEFAULT_MODEL_DIR.parent / f"jscc-rho{float(bandwidth_ratio):g}"


def learned_sigma(num_inference_steps: int, num_shared_steps: int, scheduler: str | None = "euler_ancestral",
                  scheduler_config: dict | None = None) -> float:
    r"""Noise level :math:`\sigma_k` of the state after ``k`` shared steps of an Euler-type scheduler.

    Parameters
    ----------
    num_inference_steps, num_shared_steps : int
        ``N`` and ``k``.
    scheduler : str or None
        ``"euler_ancestral"`` or ``"euler"`` (None: the scheduler class of ``scheduler_config``).
    scheduler_config : dict or None
        The model's diffusers scheduler config (None: the shipped model's).

    Returns
    -------
    float

    Example
    -------
    >>> round(learned_sigma(20, 0), 3) > round(learned_sigma(20, 8), 3) > 0
    True
    """
    import json

    from .loading import DEFAULT_MODEL_DIR
    from .split import SCHEDULERS, make_scheduler

    if scheduler_config is None:
        scheduler_config = json.loads((DEFAULT_MODEL_DIR / "scheduler" / "scheduler_config.json").read_text())
    if scheduler is None:
        scheduler = next((n for n, (cls, _) in SCHEDULERS.items()
                          if cls == scheduler_config.get("_class_name")), None)
    if scheduler not in ("euler_ancestral", "euler"):
        raise ValueError(f"the learned transport needs an Euler-type scheduler (euler_ancestral, euler): its "
                         f"states are x0 + sigma_k * eps; got {scheduler!r}")
    sched = make_scheduler(scheduler, scheduler_config)
    sched.set_timesteps(int(num_inference_steps))
    return float(sched.sigmas[int(num_shared_steps)])


def build_transport(config) -> Transport:
    """The transport a :class:`~pipeline.chain.ChainConfig` describes.

    Parameters
    ----------
    config : pipeline.chain.ChainConfig
        Reads ``transmission``, ``codec``, ``link``, ``snr_db``,
        ``soft_decoding``, ``header_over_link`` and, where the config has it,
        ``control_link`` (the analog header's control channel, see
        :class:`AnalogTransport`; default ``"same_link"``).

    Returns
    -------
    Transport

    Example
    -------
    >>> from pipeline.chain import ChainConfig
    >>> t = build_transport(ChainConfig(snr_db=5.0))
    >>> type(t).__name__, type(t.codec).__name__, t.estimator
    ('DigitalTransport', 'UniformQuantizerCodec', 'mmse')
    """
    if config.transmission == "lossless":
        return LosslessTransport()
    if config.transmission == "learned":
        from latent_codec.learned import LearnedCodec

        folder = config.learned_model or default_learned_model(config.bandwidth_ratio)
        if config.learned_model is None and not Path(folder).is_dir():
            shipped = sorted(p.name for p in Path(folder).parent.glob("jscc-rho*") if p.is_dir())
            raise ValueError(f"no shipped learned codec for bandwidth_ratio={config.bandwidth_ratio:g} (shipped: "
                             f"{', '.join(shipped) or 'none'}); train one with `distdiff train-jscc CONFIG` (configs in "
                             "experiments/configs/training/) and pass its folder as learned_model")
        try:
            codec = LearnedCodec.from_pretrained(folder)
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
        if abs(codec.bandwidth_ratio - config.bandwidth_ratio) > 1e-9:
            raise ValueError(f"learned_model {folder} has bandwidth_ratio={codec.bandwidth_ratio}, the config asks "
                             f"for bandwidth_ratio={config.bandwidth_ratio}")
        sigma = learned_sigma(config.num_inference_steps, config.num_shared_steps, config.scheduler,
                              codec.scheduler_config)
        return LearnedTransport(codec, config.link, config.snr_db, sigma=sigma)
    codec_cfg: CodecConfig = config.codec
    if config.transmission == "analog" and getattr(config, "control_link", "same_link") == "robust" \
            and "header_repetition" not in codec_cfg.model_fields_set:
        # the robust control channel is already LDPC at the most robust MCS: no 5x repetition on top by default
        codec_cfg = codec_cfg.model_copy(update={"header_repetition": 1})
    codec = codec_cfg.build()
    if config.transmission == "digital":
        return DigitalTransport(codec, config.link, config.snr_db, llrs=config.soft_decoding,
                                estimator=codec_cfg.estimator, header_over_link=config.header_over_link)
    return AnalogTransport(codec, config.link, config.snr_db, estimator=codec_cfg.estimator,
                          header_over_link=config.header_over_link, header_llrs=config.soft_decoding,
                          control=getattr(config, "control_link", "same_link"))
