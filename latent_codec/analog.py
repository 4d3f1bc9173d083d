r"""Analog (uncoded) transmission of latents as complex channel symbols.

Sender: per channel, subtract the mean; orthonormal 2-D DCT-II per channel
(``selection="lowpass"`` or ``"custom"``) or none (``"identity"``); keep the
``K = round(compression_ratio * C*H*W)`` coefficients first in the order
(low spatial frequencies first, or a fitted energy order), pair them into
``m = ceil(K / 2)`` complex symbols ``s = g (c_2k + j c_2k+1)`` with the gain
``g`` that makes ``mean |s|^2 = 1`` per batch element.

Receiver: PHY delivers equalised, unbiased symbols ``s_hat = s + n`` with
``E|n|^2 = noise_var_eff`` per symbol (e.g. Sionna's LMMSE equaliser output).
The MMSE estimate for a symbol of prior power ``v`` is
``v / (v + noise_var_eff) * s_hat``; with the default single band ``v = 1``
this is the ``1 / (1 + noise_var_eff)`` scaling that keeps deep fades from
blowing the noise up. With ``num_bands > 1`` the header carries the mean
power of ``num_bands`` contiguous groups of symbols (DCT coefficients have
very different energies), and each group is shrunk with its own ``v``.
Dropped coefficients are estimated as 0 (their mean), the inverse DCT and
the channel mean restore the latent, which is finally clipped to the
channel's ``[min, max]`` (float16 in the header).

Power allocation (``power_allocation="optimal"``): instead of one gain for
every symbol, each band gets the power of the optimal linear scheme with
MMSE decoding (Lee & Petersen 1976) for the band variances in the header at
a design SNR ``design_snr_db`` known to both ends (configuration): a band of
per-real variance :math:`\lambda_b` gets power
:math:`q_b = \max(0, \sigma\sqrt{\lambda_b/\mu} - \sigma^2)` per real
dimension, :math:`\sigma^2 = 10^{-\mathrm{design\_snr\_db}/10}`, mean power
1 per symbol; weak bands may get none (estimated as their mean, 0). Both ends
compute the allocation from the float16 band variances of the header, so it
costs no extra header bits. The receiver's MMSE shrinkage uses each band's
allocated power. The optimal-linear bound (:func:`phy.jscc_bounds.linear_nmse`)
also sends the ``K`` *strongest* coefficients: below ``compression_ratio = 1``
the allocation reaches it only in an energy order (``selection="custom"``
with :meth:`AnalogCodec.fit_coefficient_order` on training states of the same
step); the low-pass order drops some strong coefficients
(``benchmarks/bench_codec.py --section bounds`` measures both).

Noise bookkeeping: the unbiased estimate is ``x + e`` with ``e`` zero-mean
Gaussian of per-value variance ``latent_noise_var(...)`` -- exactly extra
diffusion noise; the MMSE estimate trades it for shrinkage (smaller MSE).
"""

from __future__ import annotations

import math
import zlib
from functools import lru_cache

import torch

from .base import (
    DecodeResult,
    LatentCodec,
    SymbolPayload,
    check_latents,
    fp16_round,
    minmax_range,
    register_codec,
)
from .header import DEFAULT_HEADER_REPETITION, Header
from .sanitize import sanitize

__all__ = ["AnalogCodec", "dct_matrix", "lowpass_order", "optimal_linear_power"]

ESTIMATORS = ("mmse", "unbiased")
SELECTIONS = ("lowpass", "custom", "identity")
ALLOCATIONS = ("equal", "optimal")


def optimal_linear_power(variances: torch.Tensor, counts: torch.Tensor, noise_var: float) -> torch.Tensor:
    r"""Lee-Petersen power per real dimension of each band (optimal linear transmission, MMSE decoding).

    Parameters
    ----------
    variances : torch.Tensor, float, shape ``[B, nb]``
        Per-real-dimension variance :math:`\lambda_b` of each band's values (>= 0).
    counts : torch.Tensor, int or float, shape ``[nb]``
        Real dimensions in each band.
    noise_var : float
        Noise variance per real dimension :math:`\sigma^2 > 0` relative to a
        mean power of 1 per real dimension.

    Returns
    -------
    torch.Tensor, float32, shape ``[B, nb]``
        :math:`q_b = \max(0, \sigma\sqrt{\lambda_b/\mu} - \sigma^2)` with
        :math:`\sum_b n_b q_b = \sum_b n_b` (mean power 1 per real); the
        distortion of band ``b`` is then :math:`\lambda_b\sigma^2/(q_b+\sigma^2)`.

    Example
    -------
    >>> q = optimal_linear_power(torch.tensor([[4.0, 1.0]]), torch.tensor([1, 1]), 0.1)
    >>> [round(v, 4) for v in q[0].tolist()], round(float(q.sum()), 4)
    ([1.3667, 0.6333], 2.0)
    """
    lam = variances.to(torch.float64).clamp_min(0.0)
    n = torch.as_tensor(counts, dtype=torch.float64, device=lam.device).expand_as(lam)
    sigma = math.sqrt(float(noise_var))
    order = torch.argsort(lam, dim=1, descending=True)
    lam_s, n_s = lam.gather(1, order), n.gather(1, order)
    root = lam_s.sqrt()
    budget = n.sum(1, keepdim=True)
    # with the j strongest bands active: sigma * s * sum n sqrt(lam) - sigma^2 sum n = budget
    s = (budget + sigma**2 * n_s.cumsum(1)) / (sigma * (n_s * root).cumsum(1)).clamp_min(1e-300)
    valid = (root * s > sigma) & (lam_s > 0)
    j = (valid.to(torch.int64).cumprod(1).sum(1, keepdim=True) - 1).clamp_min(0)
    q_s = (sigma * root * s.gather(1, j) - sigma**2).clamp_min(0.0)
    q_s = torch.where(torch.arange(lam.shape[1], device=lam.device) <= j, q_s, torch.zeros_like(q_s))
    return torch.zeros_like(q_s).scatter(1, order, q_s).to(torch.float32)


@lru_cache(maxsize=32)
def _dct_matrix_cpu(n: int) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float64).unsqueeze(1)
    i = torch.arange(n, dtype=torch.float64).unsqueeze(0)
    d = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    d[0] /= math.sqrt(2.0)
    return d.to(torch.float32)


def dct_matrix(n: int, device=None) -> torch.Tensor:
    """Orthonormal DCT-II matrix.

    Parameters
    ----------
    n : int
        Size.
    device : torch.device or None

    Returns
    -------
    torch.Tensor, float32, shape ``[n, n]``
        ``D[k, i] = a_k cos(pi (2i + 1) k / (2n))``, ``D @ D.T = I``.

    Example
    -------
    >>> d = dct_matrix(8)
    >>> bool(torch.allclose(d @ d.T, torch.eye(8), atol=1e-6))
    True
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    return _dct_matrix_cpu(n).to(device)


def lowpass_order(c: int, h: int, w: int) -> torch.Tensor:
    """Flat indices of [C, H, W] DCT coefficients sorted by (u/H)^2 + (v/W)^2, then u, v, c."""
    u = torch.arange(h, dtype=torch.float64).view(1, h, 1).expand(c, h, w)
    v = torch.arange(w, dtype=torch.float64).view(1, 1, w).expand(c, h, w)
    ch = torch.arange(c, dtype=torch.float64).view(c, 1, 1).expand(c, h, w)
    radius = (u / h) ** 2 + (v / w) ** 2
    # lexicographic sort via successive stable sorts (last key first)
    order = torch.arange(c * h * w)
    for key in (ch.reshape(-1), v.reshape(-1), u.reshape(-1), radius.reshape(-1)):
        order = order[torch.sort(key[order], stable=True).indices]
    return order


def _order_hash(order: torch.Tensor) -> int:
    return zlib.crc32(order.to(torch.int64).cpu().numpy().tobytes()) & 0xFFFF


@register_codec
class AnalogCodec(LatentCodec):
    """Latents as power-normalised complex symbols, with MMSE reconstruction.

    Parameters
    ----------
    compression_ratio : float
        Fraction of the ``C*H*W`` real values sent, in (0, 1]; ``m =
        ceil(K/2)`` complex symbols for ``K = max(1, round(ratio * C*H*W))``.
    selection : str
        ``"lowpass"`` (DCT, low frequencies first), ``"custom"`` (DCT,
        ``coefficient_order`` given, e.g. from :meth:`fit_coefficient_order`)
        or ``"identity"`` (no transform; needs ``compression_ratio == 1``).
    coefficient_order : torch.Tensor or None, int64, shape ``[C*H*W]``
        Permutation of the flat ``[C, H, W]`` DCT coefficients, most
        important first (``selection="custom"`` only). Its 16-bit hash goes
        into the header, so a decoder with a different order refuses.
    num_bands : int
        Groups of symbols whose mean power is sent for the MMSE shrinkage
        (1..255; 1 gives the plain ``1 / (1 + noise_var_eff)`` scaling).
    header_repetition : int
    power_allocation : str
        ``"equal"`` (one gain for every symbol, the default) or ``"optimal"``
        (Lee-Petersen power per band at ``design_snr_db``, see the module docstring).
    design_snr_db : float or None
        Es/N0 [dB] the optimal allocation is designed for (both ends); needed
        with ``power_allocation="optimal"``.

    Example
    -------
    >>> codec = AnalogCodec(compression_ratio=0.5)
    >>> x = torch.randn(2, 4, 16, 16)
    >>> p = codec.compress(x)
    >>> p.symbols.shape, round(float(p.symbols.abs().pow(2).mean()), 4)
    (torch.Size([2, 256]), 1.0)
    >>> g = torch.Generator().manual_seed(0)
    >>> nv = torch.full((2, 256), 0.1)
    >>> noise = (torch.randn(2, 256, 2, generator=g) * (0.05 ** 0.5)).view(torch.complex64).squeeze(-1)
    >>> out = codec.decompress(p.symbols + noise, p.header_bits, noise_var=nv)
    >>> out.latents.shape, out.noise_var.shape
    (torch.Size([2, 4, 16, 16]), torch.Size([2, 4, 16, 16]))
    """

    name = "analog"
    estimators = ESTIMATORS
    forward_modes = ("ste",)

    def __init__(self, compression_ratio: float = 1.0, *, selection: str = "lowpass",
                 coefficient_order: torch.Tensor | None = None, num_bands: int = 8,
                 header_repetition: int = DEFAULT_HEADER_REPETITION, power_allocation: str = "equal",
                 design_snr_db: float | None = None):
        super().__init__(header_repetition=header_repetition)
        if power_allocation not in ALLOCATIONS:
            raise ValueError(f"power_allocation must be one of {ALLOCATIONS}, got {power_allocation!r}")
        if power_allocation == "optimal" and (isinstance(design_snr_db, bool) or not isinstance(
                design_snr_db, (int, float)) or not math.isfinite(design_snr_db)):
            raise ValueError(f"power_allocation='optimal' needs design_snr_db, a finite number [dB], "
                             f"got {design_snr_db!r}")
        self.power_allocation = power_allocation
        self.design_snr_db = None if design_snr_db is None else float(design_snr_db)
        if isinstance(compression_ratio, bool) or not isinstance(compression_ratio, (int, float)) or not (
            0.0 < compression_ratio <= 1.0
        ):
            raise ValueError(f"compression_ratio must be a float in (0, 1], got {compression_ratio!r}")
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {selection!r}")
        if selection == "identity" and compression_ratio != 1.0:
            raise ValueError("selection='identity' sends every value: compression_ratio must be 1.0")
        if (selection == "custom") != (coefficient_order is not None):
            raise ValueError("coefficient_order must be given exactly when selection='custom'")
        if isinstance(num_bands, bool) or not isinstance(num_bands, int) or not 1 <= num_bands <= 255:
            raise ValueError(f"num_bands must be an int in [1, 255], got {num_bands!r}")
        self.compression_ratio = float(compression_ratio)
        self.selection = selection
        self.num_bands = num_bands
        if coefficient_order is not None:
            order = torch.as_tensor(coefficient_order).to(torch.int64).reshape(-1)
            if not torch.equal(torch.sort(order).values, torch.arange(order.numel())):
                raise ValueError("coefficient_order must be a permutation of range(C*H*W)")
            self.register_buffer("coefficient_order", order)
        else:
            self.coefficient_order = None

    # -- geometry ----------------------------------------------------------------------
    def num_kept(self, num_values: int) -> int:
        """Real coefficients sent for ``num_values`` latent values."""
        return max(1, min(num_values, round(self.compression_ratio * num_values)))

    def num_symbols(self, num_values: int) -> int:
        """Complex symbols sent for ``num_values`` latent values."""
        return (self.num_kept(num_values) + 1) // 2

    def _order(self, shape) -> torch.Tensor:
        c, h, w = shape
        if self.selection == "identity":
            return torch.arange(c * h * w)
        if self.selection == "lowpass":
            return lowpass_order(c, h, w)
        if self.coefficient_order.numel() != c * h * w:
            raise ValueError(
                f"coefficient_order has {self.coefficient_order.numel()} entries but the latent "
                f"has C*H*W = {c * h * w}"
            )
        return self.coefficient_order.cpu()

    def _hash(self, shape) -> int:
        return _order_hash(self._order(shape)) if self.selection == "custom" else 0

    def _bands(self, m: int, device) -> torch.Tensor:
        nb = min(self.num_bands, m)
        return (torch.arange(m, device=device) * nb) // m  # band index of each symbol

    def _band_amplitude(self, band_var: torch.Tensor, m: int) -> torch.Tensor:
        """Amplitude factor of each symbol [B, m] (1 with equal power) from the header's band powers."""
        band = self._bands(m, band_var.device)
        if self.power_allocation == "equal":
            return torch.ones(band_var.shape[0], m, device=band_var.device)
        counts = torch.bincount(band, minlength=band_var.shape[1])
        q = optimal_linear_power(band_var / 2.0, 2 * counts, 10.0 ** (-self.design_snr_db / 10.0))
        # per real dimension: power q_b wanted, variance band_var/2 present -> amplitude^2 = q / (band_var / 2),
        # then halved (a real dimension carries half a unit-power symbol)
        amp = (q / band_var.clamp_min(2.0**-24)).sqrt()
        return amp[:, band]

    def _transform(self, x: torch.Tensor) -> torch.Tensor:
        if self.selection == "identity":
            return x
        dh, dw = dct_matrix(x.shape[-2], x.device), dct_matrix(x.shape[-1], x.device)
        return dh @ x @ dw.T

    def _inverse(self, coeffs: torch.Tensor) -> torch.Tensor:
        if self.selection == "identity":
            return coeffs
        dh, dw = dct_matrix(coeffs.shape[-2], coeffs.device), dct_matrix(coeffs.shape[-1], coeffs.device)
        return dh.T @ coeffs @ dw

    # -- sender ---------------------------------------------------------------------------
    @staticmethod
    def fit_coefficient_order(latents: torch.Tensor) -> torch.Tensor:
        """Energy order of DCT coefficients fitted on example latents (a learned selection).

        Parameters
        ----------
        latents : torch.Tensor, shape ``[N, C, H, W]``
            Representative latents (e.g. from the step that will be sent).

        Returns
        -------
        torch.Tensor, int64, shape ``[C*H*W]``
            Flat coefficient indices by decreasing mean energy (after removing
            each channel's mean), for ``AnalogCodec(selection="custom", coefficient_order=...)``.
        """
        x = check_latents(latents)
        x = x - x.mean((2, 3), keepdim=True)
        dh, dw = dct_matrix(x.shape[-2]), dct_matrix(x.shape[-1])
        energy = (dh @ x.cpu() @ dw.T).pow(2).mean(0).reshape(-1)
        return torch.sort(-energy.to(torch.float64), stable=True).indices

    def _analyse(self, x: torch.Tensor, params: torch.Tensor):
        """Differentiable: latents -> (unit-power symbols, gain [B], band power [B, nb])."""
        bsz, c, h, w = x.shape
        centred = x - params[..., 0].reshape(bsz, c, 1, 1)
        coeffs = self._transform(centred).reshape(bsz, -1)
        k = self.num_kept(c * h * w)
        sel = coeffs[:, self._order((c, h, w))[:k].to(x.device)]
        if k % 2:
            sel = torch.cat([sel, torch.zeros_like(sel[:, :1])], 1)
        raw = torch.complex(sel[:, 0::2], sel[:, 1::2])
        power = raw.detach().abs().pow(2).mean(1)
        gain = torch.where(power > 0, power.clamp_min(1e-30).rsqrt(), torch.ones_like(power))
        gain = gain.to(torch.float32)
        symbols = raw * gain.unsqueeze(1)
        m = symbols.shape[1]
        band = self._bands(m, x.device)
        nb = int(band[-1]) + 1
        sym_pow = symbols.detach().abs().pow(2)
        band_pow = torch.zeros(bsz, nb, device=x.device).index_add_(1, band, sym_pow)
        band_pow = band_pow / torch.bincount(band, minlength=nb).to(band_pow)
        band_var = fp16_round(band_pow, "up").clamp_min(2.0**-24)
        return symbols, gain, band_var

    def _ranges(self, params: torch.Tensor):
        return params[..., 1:2], params[..., 2:3], params[..., 0:1]

    def _make_params(self, flat: torch.Tensor) -> torch.Tensor:
        low, high = minmax_range(flat)
        mean = torch.minimum(torch.maximum(fp16_round(flat.mean(-1)), low), high)
        return torch.stack([mean, low, high], -1)

    @classmethod
    def from_header(cls, header: Header, *, header_repetition: int = DEFAULT_HEADER_REPETITION) -> "AnalogCodec":
        """The codec that decodes ``header`` (not for a custom coefficient order: only its hash is sent)."""
        if header.selection == "custom":
            raise ValueError("a custom coefficient order cannot be rebuilt from the header (only its hash is sent)")
        return cls(header.num_kept / header.num_values, selection=header.selection,
                   num_bands=header.band_var.shape[1], header_repetition=header_repetition)

    def compress(self, latents: torch.Tensor) -> SymbolPayload:
        """Map latents to power-normalised complex symbols.

        Parameters
        ----------
        latents : torch.Tensor, shape ``[B, C, H, W]``

        Returns
        -------
        SymbolPayload
            ``symbols`` complex64 ``[B, m]`` (``mean |s|^2 = 1`` per row) and the header.
        """
        x = check_latents(latents)
        bsz, c, h, w = x.shape
        params = self._make_params(x.reshape(bsz, c, -1))
        symbols, gain, band_var = self._analyse(x, params)
        symbols = symbols * self._band_amplitude(band_var, symbols.shape[1])
        header = Header("analog", (c, h, w), params, num_kept=self.num_kept(c * h * w), gain=gain,
                        selection=self.selection, order_hash=self._hash((c, h, w)), band_var=band_var)
        return SymbolPayload(header=header, header_bits=header.to_bits(self.header_repetition),
                             num_values=c * h * w, symbols=symbols.to(torch.complex64))

    # -- receiver -----------------------------------------------------------------------------
    def _check_header(self, header: Header) -> None:
        super()._check_header(header)
        if header.selection != self.selection or header.num_kept != self.num_kept(header.num_values):
            raise ValueError(
                f"header says selection={header.selection!r}, num_kept={header.num_kept}; this codec "
                f"uses selection={self.selection!r}, num_kept={self.num_kept(header.num_values)}: "
                "build the decoder with latent_codec.codec_from_header(header)"
            )
        if header.order_hash != self._hash(header.shape):
            raise ValueError("the header's coefficient order hash differs from this codec's coefficient_order")

    def _noise(self, noise_var_eff, shape, device) -> torch.Tensor:
        if noise_var_eff is None:
            return torch.zeros(shape, device=device)
        nv = torch.as_tensor(noise_var_eff, dtype=torch.float32, device=device)
        try:
            nv = torch.broadcast_to(nv, shape)
        except RuntimeError:
            raise ValueError(
                f"noise_var of shape {list(nv.shape)} does not broadcast to the symbols {list(shape)}"
            ) from None
        # unknown (NaN) or infinite noise: no information -> infinite variance; negative -> 0
        nv = torch.where(torch.isnan(nv), torch.full_like(nv, math.inf), nv)
        return nv.clamp_min(0.0)

    def _shrink(self, header: Header, nv: torch.Tensor, estimator: str) -> torch.Tensor:
        """Per-symbol factor applied to the unbiased symbols [B, m]."""
        a = self._band_amplitude(header.band_var.to(nv.device), nv.shape[1])
        if estimator == "unbiased":
            return torch.where(a > 0, 1.0 / a.clamp_min(1e-30), torch.zeros_like(a))
        band = self._bands(nv.shape[1], nv.device)
        v = header.band_var.to(nv.device)[:, band]
        alpha = a * v / (a * a * v + nv)
        return torch.where(torch.isinf(nv) | (a == 0), torch.zeros_like(alpha), alpha)

    def _coeff_error_var(self, header: Header, nv: torch.Tensor, estimator: str) -> torch.Tensor:
        """Error variance of each real coefficient [B, 2m] (coefficient units)."""
        g2 = header.gain.to(nv.device).pow(2).unsqueeze(1)
        band = self._bands(nv.shape[1], nv.device)
        a2 = self._band_amplitude(header.band_var.to(nv.device), nv.shape[1]).pow(2)
        v = header.band_var.to(nv.device)[:, band]
        if estimator == "unbiased":  # a band without power is estimated as 0: its error is its variance
            per_sym = torch.where(a2 > 0, nv / (2.0 * a2.clamp_min(1e-30)), v / 2.0)
        else:  # posterior variance per real dimension of a Gaussian prior v/2 with noise nv/(2 a^2)
            per_sym = torch.where(torch.isinf(nv) | (a2 == 0), v / 2.0, v * nv / (2.0 * (a2 * v + nv)))
        per_sym = per_sym / g2
        return per_sym.repeat_interleave(2, dim=1)

    def _to_latent_domain(self, coef: torch.Tensor, header: Header, squared: bool) -> torch.Tensor:
        bsz = coef.shape[0]
        c, h, w = header.shape
        full = torch.zeros(bsz, c * h * w, device=coef.device, dtype=coef.dtype)
        k = header.num_kept
        full[:, self._order(header.shape)[:k].to(coef.device)] = coef[:, :k]
        full = full.reshape(bsz, c, h, w)
        if self.selection == "identity":
            return full
        dh, dw = dct_matrix(h, coef.device), dct_matrix(w, coef.device)
        if squared:  # variances: sum_{u,v} D[u,i]^2 D[v,j]^2 V[u,v]
            return (dh.T**2) @ full @ (dw**2)
        return dh.T @ full @ dw

    def latent_noise_var(self, header: Header, noise_var_eff: torch.Tensor | float,
                         *, estimator: str = "unbiased") -> torch.Tensor:
        """Error variance that the channel noise adds to each latent value.

        With ``estimator="unbiased"`` the decoded latent is ``x_trunc + e``
        with ``e`` zero-mean Gaussian of this variance: the pipeline can treat
        it as extra diffusion noise (``sigma_extra^2 = var.mean((1, 2, 3))``).
        With ``"mmse"`` it is the posterior variance left after shrinkage.
        Truncation error (dropped coefficients) is not included.

        Parameters
        ----------
        header : Header
        noise_var_eff : torch.Tensor or float, broadcastable to ``[B, m]``
            Effective noise variance per complex symbol (``E|n|^2``).
        estimator : str
            ``"unbiased"`` or ``"mmse"``.

        Returns
        -------
        torch.Tensor, float32, shape ``[B, C, H, W]`` [latent units^2]
        """
        if estimator not in ESTIMATORS:
            raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
        self._check_header(header)
        m = (header.num_kept + 1) // 2
        device = header.params.device
        nv = self._noise(noise_var_eff, (header.batch_size, m), device)
        var = self._coeff_error_var(header, nv, estimator)
        return self._to_latent_domain(var, header, squared=True)

    def decompress(self, received: torch.Tensor, header, *, llrs: bool = False, noise_var=None,
                   estimator: str | None = None, crc_ok: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> DecodeResult:
        """Estimate the latents from received (equalised, unbiased) symbols.

        Parameters
        ----------
        received : torch.Tensor, complex, shape ``[B, m]``
            ``symbols_hat`` from the PHY. Non-finite symbols are replaced by 0
            (their prior mean); the latent values they feed (with the DCT: their
            whole channel) count as repaired.
        header : Header or torch.Tensor
            A parsed header or the received header as hard bits (parse header
            LLRs with :meth:`parse_header` first).
        llrs : bool
            Must be False: the body is symbols, not LLRs.
        noise_var : torch.Tensor or float or None, broadcastable to ``[B, m]``
            Effective noise variance per symbol; ``None`` means 0. NaN is read
            as unknown (infinite), negative values as 0.
        estimator : str or None
            ``"mmse"`` (default; ``v / (v + noise_var)`` shrinkage) or
            ``"unbiased"`` (no shrinkage: latent = truth + Gaussian noise).
        crc_ok, generator : None
            Not used by the analog codec (``crc_ok`` must be None).

        Returns
        -------
        DecodeResult
            ``latents`` finite, within the channel's ``[min, max]``;
            ``noise_var`` = :meth:`latent_noise_var` for this estimator.
        """
        estimator = self.resolve_estimator(estimator)
        if llrs:
            raise ValueError("llrs must be False for the analog codec: it receives complex symbols, not LLRs")
        if crc_ok is not None:
            raise ValueError("crc_ok does not apply to the analog codec (its body has no code blocks)")
        header = self._resolve_header(header, llrs=False)
        m = (header.num_kept + 1) // 2
        if not isinstance(received, torch.Tensor) or received.shape != (header.batch_size, m):
            shape = list(received.shape) if isinstance(received, torch.Tensor) else type(received).__name__
            raise ValueError(
                f"received symbols have shape {shape} but the header implies [{header.batch_size}, {m}]"
            )
        s = received.to(torch.complex64)
        bad = ~(torch.isfinite(s.real) & torch.isfinite(s.imag))
        s = torch.where(bad, torch.zeros_like(s), s)
        nv = self._noise(noise_var, s.shape, s.device)
        # a huge but finite symbol can overflow the inverse transform: bound it
        # far above any plausible value (|s| ~ 1) before estimating
        s = torch.complex(s.real.clamp(-1e6, 1e6), s.imag.clamp(-1e6, 1e6))
        est = s * self._shrink(header, nv, estimator)
        gain = header.gain.to(s.device).unsqueeze(1)
        coef = torch.stack([est.real, est.imag], -1).reshape(s.shape[0], -1) / gain
        centred = self._to_latent_domain(coef, header, squared=False)
        params = header.params.to(s.device)
        bsz, c = params.shape[:2]
        mean, low, high = (params[..., i].reshape(bsz, c, 1, 1) for i in range(3))
        out, _ = sanitize(centred + mean, low, high, mean)
        # repaired values: out of range, or built from a non-finite symbol (with
        # the DCT such a symbol touches its whole channel)
        touched = self._to_latent_domain(bad.repeat_interleave(2, dim=1).float(), header, squared=False)
        if self.selection != "identity":
            touched = touched.abs().sum((2, 3), keepdim=True).expand_as(out)
        value = centred + mean
        flagged = (touched != 0) | (value < low) | (value > high) | ~torch.isfinite(value)
        repaired = flagged.reshape(bsz, -1).sum(1)
        var = self._to_latent_domain(self._coeff_error_var(header, nv, estimator), header, squared=True)
        return DecodeResult(out, repaired, header, noise_var=var)

    def roundtrip(self, latents: torch.Tensor) -> torch.Tensor:
        """Noise-free reconstruction (only the truncation and the float16 mean act).

        Parameters
        ----------
        latents : torch.Tensor, shape ``[B, C, H, W]``

        Returns
        -------
        torch.Tensor, float32, shape ``[B, C, H, W]``
        """
        p = self.compress(latents)
        return self.decompress(p.symbols, p.header, estimator="unbiased").latents

    def forward(self, latents: torch.Tensor, *, mode: str | None = None, noise_var: float = 0.0,
                estimator: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Differentiable analog link: truncation, optional AWGN on the symbols, estimate.

        Parameters
        ----------
        latents : torch.Tensor, shape ``[B, C, H, W]``
        mode : str or None
            ``"ste"`` only (there is no quantiser: the gradient is exact).
        noise_var : float
            Complex AWGN variance per unit-power symbol (``1 / 10^(snr_db/10)``).
        estimator : str or None
            ``"mmse"`` (default) or ``"unbiased"``.
        generator : torch.Generator or None
            For the noise.

        Returns
        -------
        torch.Tensor, same shape and dtype as ``latents`` (not clipped).
        """
        self._forward_mode(mode)
        estimator = self.resolve_estimator(estimator)
        if not (isinstance(noise_var, (int, float)) and math.isfinite(noise_var) and noise_var >= 0):
            raise ValueError(f"noise_var must be a finite float >= 0, got {noise_var!r}")
        x = check_latents(latents, detach=False)
        bsz, c, h, w = x.shape
        params = self._make_params(x.detach().reshape(bsz, c, -1))
        symbols, gain, band_var = self._analyse(x, params)
        symbols = symbols * self._band_amplitude(band_var, symbols.shape[1])
        if noise_var > 0:
            z = torch.randn(symbols.shape + (2,), generator=generator, device=x.device)
            symbols = symbols + math.sqrt(noise_var / 2) * torch.complex(z[..., 0], z[..., 1])
        header = Header("analog", (c, h, w), params, num_kept=self.num_kept(c * h * w),
                        gain=gain.detach(), selection=self.selection,
                        order_hash=self._hash((c, h, w)), band_var=band_var)
        nv = torch.full(symbols.shape, float(noise_var), device=x.device)
        est = symbols * self._shrink(header, nv, estimator)
        coef = torch.stack([est.real, est.imag], -1).reshape(bsz, -1) / gain.unsqueeze(1)
        out = self._to_latent_domain(coef, header, squared=False) + params[..., 0].reshape(bsz, c, 1, 1)
        return out.to(latents.dtype)

    def extra_repr(self) -> str:
        alloc = "" if self.power_allocation == "equal" else \
            f"power_allocation='optimal', design_snr_db={self.design_snr_db}, "
        return (f"compression_ratio={self.compression_ratio}, selection={self.selection!r}, "
                f"num_bands={self.num_bands}, " + alloc + super().extra_repr())
