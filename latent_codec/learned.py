r"""A learned latent JSCC codec: diffusion latent -> complex channel symbols -> latent.

Architecture (small, CPU-fast; about 0.1-0.3 M parameters)::

    encoder: x [B,C,H,W] / (latent_std sqrt(sigma^2 + 1)) - mu(sigma)
                    (noise-level normalisation; mu: a learned prior mean of the state
                    at noise level sigma, known to both ends and not sent)
      linear path:  orthonormal 2-D DCT per channel, the K = 2 m lowest-frequency
                    coefficients (the analog codec's order), each times a gain
                    exp(a_i(cond)) -- a learned power allocation
      + nonlinear:  conv3x3(C -> w) -> FiLM-ResBlock -> conv3x3 stride 2 (H/2, W/2)
                    -> FiLM-ResBlock x depth -> conv1x1(w -> 8 rho C), zero at start
      -> K reals = m complex symbols, scaled to average |s|^2 = 1 (over the batch
         in training, by the tracked training power at inference: the receiver
         knows the scale, a per-example normalisation would lose each latent's norm)
    decoder: linear path:  per coefficient r_i exp(b_i(cond)) / (1 + nv_i exp(c_i(cond)))
                    (the form of the per-coefficient MMSE estimate, nv_i the symbol's
                    noise variance), zeros elsewhere, inverse DCT
      + nonlinear:  [r, log nv, |h|^2] on the (H/2, W/2) grid -> conv1x1 -> FiLM-ResBlock x depth
                    -> pixel-shuffle up (H, W) -> FiLM-ResBlock -> conv3x3(w -> C), zero at start
      -> (* exp(g(cond)) + mu(sigma)) * latent_std sqrt(sigma^2 + 1)

At initialisation the codec is the analog codec's linear scheme (equal power
on the low DCT band, a shrinkage decoder); training learns the allocation
across coefficients (towards the optimal linear scheme) and the nonlinear
trunks learn what a linear scheme cannot. The structured linear path has
few parameters per coefficient and generalises; the trunks are small.

FiLM: a small MLP maps ``(snr_db / 10, log(sigma), log(noise_var))`` to a
per-channel scale and shift in every residual block (the ADJSCC idea of
SNR-adaptive feature scaling), so one model covers the SNR range and every
shared step ``k`` (its noise level ``sigma_k``).

``bandwidth_ratio`` :math:`\rho` is the number of complex channel uses per
latent value (``m = rho * C * H * W`` symbols); ``8 * rho * C`` must be a whole
number and ``H``, ``W`` even. No header: shape, ``k`` (hence ``sigma``) and
``rho`` are configuration known to both ends.

Example
-------
>>> import torch
>>> from latent_codec.learned import LearnedCodec, LearnedCodecConfig
>>> codec = LearnedCodec(LearnedCodecConfig(bandwidth_ratio=0.125, width=16, depth=1), seed=0)
>>> x = torch.randn(2, 4, 16, 16)
>>> s = codec.encode(x, snr_db=10.0, sigma=1.5)
>>> s.shape, s.dtype, round(float(s.detach().abs().pow(2).mean()), 4)
(torch.Size([2, 128]), torch.complex64, 1.0)
>>> codec.decode(s, noise_var=0.1, snr_db=10.0, sigma=1.5).shape
torch.Size([2, 4, 16, 16])
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional, Union

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from torch import nn

from .analog import lowpass_order, dct_matrix

__all__ = ["LearnedCodec", "LearnedCodecConfig", "BANDWIDTH_RATIOS"]

#: bandwidth ratios the issue asks for [complex channel uses per latent value]
BANDWIDTH_RATIOS = (0.5, 0.25, 0.125, 0.0625)
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SCHEDULER_NAME = "scheduler_config.json"

Number = Union[float, torch.Tensor]


class LearnedCodecConfig(BaseModel):
    """Configuration of a :class:`LearnedCodec` (saved next to its weights).

    :param bandwidth_ratio: complex channel uses per latent value, > 0 (``8 rho C`` whole).
    :param latent_channels: ``C`` of the latents.
    :param latent_size: ``H = W`` of the latents (even).
    :param width: feature channels of the convolutions.
    :param depth: residual blocks on the half-resolution grid, each side.
    :param cond_dim: hidden width of the FiLM conditioning MLP.
    :param latent_std: typical RMS of ``x / sqrt(sigma^2 + 1)`` for the model's
        states (1 for a Stable-Diffusion-like latent ``x0 + sigma eps``; fitted
        on the training states by the training tool); the network works in
        units of ``latent_std * sqrt(sigma^2 + 1)``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bandwidth_ratio: float = Field(0.125, gt=0.0, le=2.0)
    latent_channels: int = Field(4, ge=1)
    latent_size: int = Field(16, ge=2)
    width: int = Field(64, ge=4)
    depth: int = Field(2, ge=1, le=16)
    cond_dim: int = Field(64, ge=4)
    latent_std: float = Field(1.0, gt=0.0)

    @field_validator("latent_size")
    @classmethod
    def _even(cls, v: int) -> int:
        if v % 2:
            raise ValueError(f"latent_size must be even, got {v}")
        return v

    @property
    def out_channels(self) -> int:
        """Real feature maps carried on the half-resolution grid (``8 rho C``)."""
        return int(round(8 * self.bandwidth_ratio * self.latent_channels))

    @property
    def num_symbols(self) -> int:
        """Complex symbols per latent, ``m = rho C H W``."""
        return self.out_channels * (self.latent_size // 2) ** 2 // 2

    def check(self) -> "LearnedCodecConfig":
        """Raise a one-line ``ValueError`` unless ``8 rho C`` is a whole, even-friendly number."""
        c = 8 * self.bandwidth_ratio * self.latent_channels
        if abs(c - round(c)) > 1e-9 or round(c) < 1 or (self.out_channels * (self.latent_size // 2) ** 2) % 2:
            raise ValueError(f"bandwidth_ratio={self.bandwidth_ratio} does not fit latents with "
                             f"C={self.latent_channels}: 8 * bandwidth_ratio * C must be a whole number >= 1 "
                             f"(e.g. bandwidth_ratio in {BANDWIDTH_RATIOS} for C=4)")
        return self


def _config(config) -> LearnedCodecConfig:
    if isinstance(config, LearnedCodecConfig):
        return config.check()
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise ValueError(f"config must be a LearnedCodecConfig or a dict, got {type(config).__name__}")
    try:
        return LearnedCodecConfig(**config).check()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"LearnedCodecConfig.{loc}: {err['msg']} (got {err.get('input')!r})") from None


class _FiLMBlock(nn.Module):
    """Residual block conv-GN-FiLM-SiLU-conv with a per-channel (scale, shift) from the condition."""

    def __init__(self, width: int, cond_dim: int):
        super().__init__()
        groups = max(1, math.gcd(width, 8))
        self.norm1 = nn.GroupNorm(groups, width)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.film = nn.Linear(cond_dim, 2 * width)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(cond)[:, :, None, None].chunk(2, dim=1)
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        h = self.norm2(h) * (1 + scale) + shift
        return x + self.conv2(nn.functional.silu(h))


def _as_batch(value: Number, batch: int, name: str, device) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32, device=device)
    if t.dim() == 0:
        t = t.expand(batch)
    if t.shape != (batch,) or not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} must be a finite number or a tensor of shape [{batch}], got "
                         f"{list(t.shape) if t.dim() else float(t)}")
    return t


class LearnedCodec(nn.Module):
    r"""Learned JSCC encoder and decoder of diffusion latents (see the module docstring).

    :param config: :class:`LearnedCodecConfig` or a dict of its fields.
    :param seed: seed of the weight initialisation (same seed, same weights).

    Methods:

    * :meth:`encode` ``(latents [B, C, H, W] float32, snr_db [dB], sigma [-])
      -> symbols [B, m] complex64`` with average :math:`|s|^2 = 1` (over the training batches; see :meth:`_tx_power`);
    * :meth:`decode` ``(received [B, m] complex, noise_var [B, m] or scalar,
      snr_db, sigma, channel_estimate [B, m] complex or None) -> latents
      [B, C, H, W] float32``;
    * :meth:`forward` ``(latents, snr_db, sigma, generator)``: encode, complex
      AWGN at ``snr_db``, decode (differentiable, for training);
    * :meth:`save_pretrained` / :meth:`from_pretrained` (``config.json`` +
      ``model.safetensors``, and ``scheduler_config.json`` when
      :attr:`scheduler_config` is set: the diffusion scheduler of the training
      states, from which a receiver computes ``sigma_k``).

    It does not implement the header-based :class:`latent_codec.LatentCodec`
    contract: encoding needs ``snr_db`` and ``sigma`` besides the latents and
    nothing but symbols is sent (no header); the pipeline carries it with
    ``pipeline.transport.LearnedTransport``.

    ``snr_db`` (:math:`E_s/N_0` [dB]) and ``sigma`` (the state's noise level
    :math:`\sigma_k`) are floats or ``[B]`` tensors.
    """

    def __init__(self, config: Union[LearnedCodecConfig, dict, None] = None, *, seed: int = 0):
        super().__init__()
        cfg = _config(config)
        self.config = cfg
        #: the diffusion scheduler config of the states it was trained on (sigma_k of a step k), or None
        self.scheduler_config: Optional[dict] = None
        w, c, d = cfg.width, cfg.latent_channels, cfg.cond_dim
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            self.enc_cond = nn.Sequential(nn.Linear(2, d), nn.SiLU(), nn.Linear(d, d))
            self.dec_cond = nn.Sequential(nn.Linear(3, d), nn.SiLU(), nn.Linear(d, d))
            self.enc_in = nn.Conv2d(c, w, 3, padding=1)
            self.enc_full = _FiLMBlock(w, d)
            self.enc_down = nn.Conv2d(w, w, 3, stride=2, padding=1)
            self.enc_blocks = nn.ModuleList(_FiLMBlock(w, d) for _ in range(cfg.depth))
            self.enc_out = nn.Conv2d(w, cfg.out_channels, 1)
            nn.init.zeros_(self.enc_out.weight)  # starts as the linear (analog-like) scheme
            nn.init.zeros_(self.enc_out.bias)
            kept = 2 * cfg.num_symbols
            self.enc_alloc = nn.Linear(d, kept)  # log-gain of each sent DCT coefficient
            self.dec_scale = nn.Linear(d, kept)  # log of the per-coefficient estimator's numerator
            self.dec_shrink = nn.Linear(d, kept)  # log of its noise-variance weight
            for lin in (self.enc_alloc, self.dec_scale, self.dec_shrink):
                nn.init.zeros_(lin.weight)
                nn.init.zeros_(lin.bias)
            self.dec_in = nn.Conv2d(3 * cfg.out_channels, w, 1)
            self.dec_blocks = nn.ModuleList(_FiLMBlock(w, d) for _ in range(cfg.depth))
            self.dec_up = nn.Conv2d(w, 4 * w, 1)
            self.dec_full = _FiLMBlock(w, d)
            self.dec_out = nn.Conv2d(w, c, 3, padding=1)
            nn.init.zeros_(self.dec_out.weight)  # starts by estimating 0: NMSE about 1, never worse
            nn.init.zeros_(self.dec_out.bias)
            # the prior mean of the normalised state at noise level sigma (known to both ends: not sent)
            self.prior_mean = nn.Sequential(nn.Linear(1, d), nn.SiLU(), nn.Linear(d, c * cfg.latent_size ** 2))
            nn.init.zeros_(self.prior_mean[2].weight)
            nn.init.zeros_(self.prior_mean[2].bias)
            self.dec_gain = nn.Linear(d, 1)  # per-example log-gain of the output from the condition
            nn.init.zeros_(self.dec_gain.weight)
            nn.init.zeros_(self.dec_gain.bias)
        order = lowpass_order(c, cfg.latent_size, cfg.latent_size)[: 2 * cfg.num_symbols]
        self.register_buffer("kept_order", order, persistent=False)  # the sent DCT coefficients
        self.register_buffer("dct", dct_matrix(cfg.latent_size), persistent=False)
        # running power per real of the unnormalised symbols (average-power constraint)
        self.register_buffer("tx_power", torch.ones(()))
        self.register_buffer("tx_batches", torch.zeros((), dtype=torch.int64))

    # -- geometry --------------------------------------------------------------------
    @property
    def bandwidth_ratio(self) -> float:
        """Complex channel uses per latent value."""
        return self.config.bandwidth_ratio

    @property
    def num_symbols(self) -> int:
        """Complex symbols per latent ``m``."""
        return self.config.num_symbols

    def _check_latents(self, latents: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        shape = (cfg.latent_channels, cfg.latent_size, cfg.latent_size)
        if not isinstance(latents, torch.Tensor) or latents.dim() != 4 or tuple(latents.shape[1:]) != shape:
            got = list(latents.shape) if isinstance(latents, torch.Tensor) else type(latents).__name__
            raise ValueError(f"latents must be a tensor of shape [B, {', '.join(map(str, shape))}], got {got}")
        return latents.to(torch.float32)

    def _prior(self, sigma: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        mu = self.prior_mean(torch.log(sigma + 1e-3)[:, None])
        return mu.reshape(-1, cfg.latent_channels, cfg.latent_size, cfg.latent_size)

    def _scale(self, sigma: torch.Tensor) -> torch.Tensor:
        return self.config.latent_std * torch.sqrt(sigma.pow(2) + 1.0)[:, None, None, None]

    # -- sender -----------------------------------------------------------------------
    def encode(self, latents: torch.Tensor, snr_db: Number, sigma: Number) -> torch.Tensor:
        """Latents ``[B, C, H, W]`` -> complex64 symbols ``[B, m]``, average power 1 (over the batch in training mode, tracked at inference)."""
        x = self._check_latents(latents)
        bsz = x.shape[0]
        snr = _as_batch(snr_db, bsz, "snr_db", x.device)
        sig = _as_batch(sigma, bsz, "sigma", x.device)
        if bool((sig < 0).any()):
            raise ValueError("sigma must be >= 0 (the state's noise level)")
        cond = self.enc_cond(torch.stack([snr / 10.0, torch.log(sig + 1e-3)], 1))
        xn = x / self._scale(sig) - self._prior(sig)
        coeffs = (self.dct @ xn @ self.dct.T).reshape(bsz, -1)[:, self.kept_order]
        lin = coeffs * torch.exp(self.enc_alloc(cond))
        h = self.enc_in(xn)
        h = self.enc_full(h, cond)
        h = self.enc_down(h)
        for block in self.enc_blocks:
            h = block(h, cond)
        z = self.enc_out(nn.functional.silu(h)).reshape(bsz, -1) + lin
        z = z * torch.rsqrt(self._tx_power(z) * 2.0)  # average |s|^2 = 1
        return torch.complex(z[:, 0::2], z[:, 1::2])

    def _tx_power(self, z: torch.Tensor) -> torch.Tensor:
        """Power per real of the unnormalised symbols: the batch's in training (and tracked), the tracked one else.

        Average power, not per example: a per-example normalisation would
        lose each latent's norm (the receiver cannot know it), an error floor
        of about -20 dB for these latents.
        """
        if self.training:
            power = z.pow(2).mean().clamp_min(1e-12)
            with torch.no_grad():
                mom = 1.0 if int(self.tx_batches) == 0 else 0.02
                self.tx_power.mul_(1 - mom).add_(mom * power.detach())
                self.tx_batches.add_(1)
            return power
        return self.tx_power.clamp_min(1e-12)


    # -- receiver -----------------------------------------------------------------------
    def decode(self, received: torch.Tensor, noise_var: Number, snr_db: Number, sigma: Number,
               channel_estimate: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Received symbols ``[B, m]`` (+ per-symbol noise variance, channel estimate) -> latents."""
        m = self.num_symbols
        if not isinstance(received, torch.Tensor) or received.dim() != 2 or received.shape[1] != m \
                or not received.is_complex():
            got = list(received.shape) if isinstance(received, torch.Tensor) else type(received).__name__
            raise ValueError(f"received must be a complex tensor of shape [B, {m}], got {got}")
        bsz, dev = received.shape[0], received.device
        s = received.to(torch.complex64)
        s = torch.where(torch.isfinite(s.real) & torch.isfinite(s.imag), s, torch.zeros_like(s))
        nv = torch.as_tensor(noise_var, dtype=torch.float32, device=dev)
        try:
            nv = torch.broadcast_to(nv, (bsz, m))
        except RuntimeError:
            raise ValueError(f"noise_var of shape {list(nv.shape)} does not broadcast to [{bsz}, {m}]") from None
        nv = torch.nan_to_num(nv, nan=1e6, posinf=1e6).clamp(1e-6, 1e6)
        if channel_estimate is None:
            gain = torch.ones(bsz, m, device=dev)
        else:
            h = torch.as_tensor(channel_estimate, device=dev)
            if h.shape != (bsz, m):
                raise ValueError(f"channel_estimate must have shape [{bsz}, {m}], got {list(h.shape)}")
            gain = h.abs().pow(2).to(torch.float32) if h.is_complex() else h.to(torch.float32).pow(2)
        snr = _as_batch(snr_db, bsz, "snr_db", dev)
        sig = _as_batch(sigma, bsz, "sigma", dev)
        log_nv = torch.log(nv)
        cond = self.dec_cond(torch.stack([snr / 10.0, torch.log(sig + 1e-3), log_nv.mean(1)], 1))
        half = self.config.latent_size // 2
        k = self.config.out_channels
        reals = torch.stack([s.real, s.imag], -1).reshape(bsz, k, half, half)
        # each symbol's side information on both of its real positions
        side = [f.repeat_interleave(2, 1).reshape(bsz, k, half, half) for f in (log_nv / 10.0, gain)]
        h = self.dec_in(torch.cat([reals, *side], 1))
        for block in self.dec_blocks:
            h = block(h, cond)
        h = nn.functional.pixel_shuffle(self.dec_up(h), 2)
        h = self.dec_full(h, cond)
        r = reals.reshape(bsz, -1)
        nv_real = nv.repeat_interleave(2, 1)
        coef = r * torch.exp(self.dec_scale(cond)) / (1.0 + nv_real * torch.exp(self.dec_shrink(cond)))
        c, size = self.config.latent_channels, self.config.latent_size
        full = torch.zeros(bsz, c * size * size, device=dev, dtype=coef.dtype)
        full = full.index_copy(1, self.kept_order, coef).reshape(bsz, c, size, size)
        linear = self.dct.T @ full @ self.dct
        gain = torch.exp(self.dec_gain(cond))[:, :, None, None]
        return ((self.dec_out(nn.functional.silu(h)) + linear) * gain + self._prior(sig)) * self._scale(sig)

    def forward(self, latents: torch.Tensor, snr_db: Number, sigma: Number,
                generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """Encode, complex AWGN of variance ``10^(-snr_db/10)`` per symbol, decode (differentiable)."""
        s = self.encode(latents, snr_db, sigma)
        snr = _as_batch(snr_db, s.shape[0], "snr_db", s.device)
        nv = torch.pow(10.0, -snr / 10.0)[:, None].expand(s.shape)
        z = torch.randn(s.shape + (2,), generator=generator, device=s.device)
        noisy = s + torch.sqrt(nv / 2) * torch.complex(z[..., 0], z[..., 1])
        return self.decode(noisy, nv, snr_db, sigma)

    # -- persistence ---------------------------------------------------------------------
    def save_pretrained(self, folder: Union[str, Path]) -> Path:
        """Write ``config.json`` and ``model.safetensors`` into ``folder`` (created); returns it."""
        from safetensors.torch import save_file  # pylint: disable=import-outside-toplevel

        path = Path(folder)
        path.mkdir(parents=True, exist_ok=True)
        (path / CONFIG_NAME).write_text(json.dumps({"class": "LearnedCodec", **self.config.model_dump()},
                                                   indent=2) + "\n")
        save_file({k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()},
                  str(path / WEIGHTS_NAME))
        if self.scheduler_config is not None:
            (path / SCHEDULER_NAME).write_text(json.dumps(dict(self.scheduler_config), indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, folder: Union[str, Path], device: Union[str, torch.device] = "cpu") -> "LearnedCodec":
        """Load a codec written by :meth:`save_pretrained` (one-line error if missing or broken), in eval mode.

        Eval mode, as diffusers' ``from_pretrained``: the encoder normalises by
        the tracked transmit power, not the batch's (call ``.train()`` to fine-tune).
        """
        from safetensors.torch import load_file  # pylint: disable=import-outside-toplevel

        path = Path(folder)
        if not (path / CONFIG_NAME).is_file() or not (path / WEIGHTS_NAME).is_file():
            raise FileNotFoundError(f"no learned codec at {path}: expected {CONFIG_NAME} and {WEIGHTS_NAME} "
                                    "(written by LearnedCodec.save_pretrained)")
        try:
            spec = json.loads((path / CONFIG_NAME).read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{path / CONFIG_NAME} is not valid JSON ({err})") from None
        spec.pop("class", None)
        codec = cls(spec)
        state = load_file(str(path / WEIGHTS_NAME))
        missing, unexpected = codec.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path / WEIGHTS_NAME} does not match its config (missing {len(missing)}, "
                             f"unexpected {len(unexpected)} tensors)")
        if (path / SCHEDULER_NAME).is_file():
            codec.scheduler_config = json.loads((path / SCHEDULER_NAME).read_text())
        return codec.to(device).eval()

    def extra_repr(self) -> str:
        cfg = self.config
        return (f"bandwidth_ratio={cfg.bandwidth_ratio}, num_symbols={cfg.num_symbols}, width={cfg.width}, "
                f"depth={cfg.depth}")
