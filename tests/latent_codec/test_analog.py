"""latent_codec: analog mode (latents as power-normalised complex symbols, MMSE back)."""

import math

import pytest
import torch

from latent_codec import AnalogCodec, HeaderCorruptedError, dct_matrix
from latent_codec.analog import lowpass_order

GEN = lambda s=0: torch.Generator().manual_seed(s)  # noqa: E731


def smooth_latents(batch=4, seed=0, c=4, hw=16, std=1.0):
    """White noise plus a strong low-frequency component (like a mid-step latent)."""
    g = GEN(seed)
    low = torch.nn.functional.interpolate(torch.randn(batch, c, hw // 4, hw // 4, generator=g),
                                          size=hw, mode="bilinear", align_corners=False)
    return std * (0.3 * torch.randn(batch, c, hw, hw, generator=g) + 3.0 * low + 0.5)


def awgn(symbols, noise_var, gen):
    nv = torch.as_tensor(noise_var, dtype=torch.float32).expand(symbols.shape)
    z = torch.randn(*symbols.shape, 2, generator=gen)
    return symbols + torch.complex(z[..., 0], z[..., 1]) * (nv / 2).sqrt()


def test_dct_is_orthonormal():
    for n in (1, 5, 16):
        d = dct_matrix(n)
        assert torch.allclose(d @ d.T, torch.eye(n), atol=1e-6)


@pytest.mark.parametrize("selection, ratio", [("identity", 1.0), ("lowpass", 1.0), ("lowpass", 0.3)])
def test_symbols_are_power_normalised(selection, ratio):
    codec = AnalogCodec(ratio, selection=selection)
    x = smooth_latents(std=13.0)
    p = codec.compress(x)
    k = max(1, round(ratio * 1024))
    assert p.symbols.dtype == torch.complex64 and p.symbols.shape == (4, (k + 1) // 2)
    assert torch.allclose(p.symbols.abs().pow(2).mean(1), torch.ones(4), atol=1e-5)
    assert p.num_body_bits == 0 and p.num_bits == p.num_header_bits


@pytest.mark.parametrize("selection", ["identity", "lowpass"])
def test_noise_free_full_rate_roundtrip(selection):
    codec = AnalogCodec(1.0, selection=selection)
    x = smooth_latents(std=10.0)
    p = codec.compress(x)
    out = codec.decompress(p.symbols, p.header_bits)
    assert torch.allclose(out.latents, x, atol=1e-4 * 10.0)
    assert torch.equal(out.noise_var, torch.zeros_like(x))


def test_truncation_error_is_the_dropped_energy():
    """Parseval: the noise-free error of a compressed payload is the energy of the dropped coefficients."""
    codec = AnalogCodec(0.25)
    x = smooth_latents()
    centred = x - x.mean((2, 3), keepdim=True)
    coeffs = (dct_matrix(16) @ centred @ dct_matrix(16).T).reshape(4, -1)
    p = codec.compress(x)
    kept = torch.zeros(1024, dtype=torch.bool)
    kept[lowpass_order(4, 16, 16)[: p.header.num_kept]] = True
    predicted = float(coeffs[:, ~kept].pow(2).sum() / x.numel())
    mse = float(((codec.roundtrip(x) - x) ** 2).mean())
    assert 0.9 * predicted <= mse <= predicted * 1.001 + 1e-6  # clipping can only help


def test_fitted_coefficient_order_beats_lowpass_on_high_frequency_content():
    g = GEN(1)
    # energy in a fixed high-frequency DCT pattern
    coeffs = 0.05 * torch.randn(16, 4, 16, 16, generator=g)
    coeffs[:, :, 12:, 12:] += 3 * torch.randn(16, 4, 4, 4, generator=g)
    d = dct_matrix(16)
    x = d.T @ coeffs @ d
    order = AnalogCodec.fit_coefficient_order(x[:8])
    custom = AnalogCodec(0.1, selection="custom", coefficient_order=order)
    lowpass = AnalogCodec(0.1)
    test = x[8:]
    mse = lambda c: float(((c.roundtrip(test) - test) ** 2).mean())  # noqa: E731
    assert mse(custom) < 0.2 * mse(lowpass)
    # the receiver refuses a payload made with another order
    other = AnalogCodec(0.1, selection="custom", coefficient_order=torch.flip(order, [0]))
    p = custom.compress(test)
    with pytest.raises(ValueError, match="hash"):
        other.decompress(p.symbols, p.header)


def test_mmse_single_band_is_the_one_over_one_plus_nv_scaling():
    codec = AnalogCodec(1.0, selection="identity", num_bands=1)
    x = smooth_latents(batch=1, std=2.0)
    p = codec.compress(x)
    y = awgn(p.symbols, 0.3, GEN(2))
    out = codec.decompress(y, p.header, noise_var=0.3)
    est = y / 1.3 / p.header.gain[:, None]
    vals = torch.stack([est.real, est.imag], -1).reshape(1, 4, 16, 16) + p.header.params[0, :, 0].reshape(1, 4, 1, 1)
    low, high = p.header.params[0, :, 1].reshape(1, 4, 1, 1), p.header.params[0, :, 2].reshape(1, 4, 1, 1)
    assert torch.allclose(out.latents, torch.minimum(torch.maximum(vals, low), high), atol=1e-5)


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_unbiased_noise_variance_prediction(ratio):
    """The reported per-value noise variance matches the measured error of the unbiased estimate."""
    codec = AnalogCodec(ratio)
    x = smooth_latents(batch=8, std=5.0)
    p = codec.compress(x)
    nv = 0.01 * torch.exp(torch.randn(p.symbols.shape, generator=GEN(3)))  # per-symbol variances
    out = codec.decompress(awgn(p.symbols, nv, GEN(4)), p.header, noise_var=nv, estimator="unbiased")
    measured = float(((out.latents - codec.roundtrip(x)) ** 2).mean())
    predicted = float(codec.latent_noise_var(p.header, nv).mean())
    assert math.isclose(measured, predicted, rel_tol=0.05)
    assert torch.equal(out.noise_var, codec.latent_noise_var(p.header, nv))


def test_mmse_tames_deep_fades():
    """Rayleigh fading per symbol, unbiased (ZF/LMMSE-like) equalisation: noise_var_eff = N0/|h|^2.
    The unbiased estimate blows up in the fades; the MMSE one stays below the latent variance."""
    codec = AnalogCodec(1.0)
    x = smooth_latents(batch=8)
    p = codec.compress(x)
    g = GEN(5)
    h2 = -torch.log(torch.rand(p.symbols.shape, generator=g))  # |h|^2 ~ Exp(1)
    nv = 0.1 / h2  # 10 dB average SNR
    y = awgn(p.symbols, nv, g)
    nmse = {}
    for est in ("mmse", "unbiased"):
        out = codec.decompress(y, p.header, noise_var=nv, estimator=est)
        nmse[est] = float(((out.latents - x) ** 2).mean() / x.var())
    assert nmse["mmse"] < 0.5 * nmse["unbiased"], nmse
    assert nmse["mmse"] < 0.5, nmse


def test_band_shrinkage_beats_single_band_at_low_snr():
    x = smooth_latents(batch=8)
    res = {}
    for nb in (1, 8):
        codec = AnalogCodec(1.0, num_bands=nb)
        p = codec.compress(x)
        out = codec.decompress(awgn(p.symbols, 1.0, GEN(6)), p.header, noise_var=1.0)
        res[nb] = float(((out.latents - x) ** 2).mean())
    assert res[8] < 0.8 * res[1], res


def test_garbage_in_finite_out():
    codec = AnalogCodec(0.5)
    x = smooth_latents(batch=2, std=12.0)
    p = codec.compress(x)
    y = p.symbols.clone()
    y[0, :5] = complex(float("nan"), 1.0)
    y[1, 3] = complex(float("inf"), 0.0)
    y[1, 4] = 1e30
    nv = torch.full(y.shape, 0.1)
    nv[0, 7] = float("nan")
    nv[1, 9] = -1.0
    out = codec.decompress(y, p.header, noise_var=nv)
    assert torch.isfinite(out.latents).all()
    low, high = p.header.params[..., 1], p.header.params[..., 2]
    assert torch.all(out.latents >= low[..., None, None]) and torch.all(out.latents <= high[..., None, None])
    assert int(out.num_repaired[0]) >= 10 and int(out.num_repaired[1]) >= 2


def test_forward_is_differentiable_and_seeded():
    codec = AnalogCodec(1.0, selection="identity")
    x = smooth_latents(batch=2).requires_grad_()
    y = codec(x)
    assert torch.allclose(y, x.detach(), atol=1e-4)
    y.sum().backward()
    assert torch.allclose(x.grad, torch.ones_like(x), atol=1e-5)
    a = codec(x, noise_var=0.1, generator=GEN(7))
    b = codec(x, noise_var=0.1, generator=GEN(7))
    assert torch.equal(a, b) and not torch.equal(a, y)
    compressed = AnalogCodec(0.25)
    z = compressed(x, noise_var=0.1, generator=GEN(8))
    z.pow(2).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_analog_header_and_validation():
    codec = AnalogCodec(0.5)
    p = codec.compress(smooth_latents(batch=2))
    assert p.header_bits.shape[0] == 2
    with pytest.raises(ValueError, match="build the decoder"):
        AnalogCodec(0.25).decompress(p.symbols, p.header)
    with pytest.raises(ValueError, match="header implies"):
        codec.decompress(p.symbols[:, :-1], p.header)
    with pytest.raises(ValueError, match="compression_ratio"):
        AnalogCodec(1.5)
    with pytest.raises(ValueError, match="identity"):
        AnalogCodec(0.5, selection="identity")
    bad = p.header_bits.clone()
    bad[:, :] = 1 - bad
    with pytest.raises(HeaderCorruptedError):
        codec.decompress(p.symbols, bad)


# ---------------------------------------------------------------- optimal power allocation (issue 12)
def _spectral_source(num: int, seed: int = 0):
    """Latents whose DCT coefficients are independent Gaussians of known, decaying variances."""
    from latent_codec.analog import lowpass_order, dct_matrix

    c, h = 4, 16
    order = lowpass_order(c, h, h)
    lam = torch.zeros(c * h * h)
    lam_sorted = torch.exp(-torch.arange(c * h * h, dtype=torch.float32) / 120.0)
    lam_sorted[:4] = 0.0  # the DC coefficients: the channel means travel in the header
    lam[order] = lam_sorted
    coeffs = torch.randn(num, c * h * h, generator=torch.Generator().manual_seed(seed)) * lam.sqrt()
    d = dct_matrix(h)
    return d.T @ coeffs.reshape(num, c, h, h) @ d, lam


@pytest.mark.parametrize("rho, snr_db", [(0.5, 10.0), (0.5, 20.0), (0.125, 10.0), (0.125, 20.0)])
def test_optimal_allocation_reaches_the_optimal_linear_bound(rho, snr_db):
    import math

    from phy.jscc_bounds import linear_nmse

    x, lam = _spectral_source(256)
    nv = 10 ** (-snr_db / 10)
    got = {}
    for alloc in ("equal", "optimal"):
        codec = AnalogCodec(2 * rho, num_bands=32, power_allocation=alloc, design_snr_db=snr_db)
        p = codec.compress(x)
        assert torch.allclose(p.symbols.abs().pow(2).mean(1), torch.ones(256), atol=1e-3)  # power 1 per row
        z = torch.randn(p.symbols.shape + (2,), generator=torch.Generator().manual_seed(1))
        y = p.symbols + math.sqrt(nv / 2) * torch.complex(z[..., 0], z[..., 1])
        xh = codec.decompress(y, p.header_bits, noise_var=nv).latents
        got[alloc] = 10 * math.log10(float((xh - x).pow(2).mean() / lam.mean()))
    bound = 10 * math.log10(linear_nmse(lam.numpy(), rho, snr_db, "optimal"))
    assert abs(got["optimal"] - bound) < 0.3
    assert got["optimal"] < got["equal"]  # the allocation helps
    if rho == 0.5 and snr_db == 20.0:
        assert got["equal"] - got["optimal"] > 1.5


def test_optimal_allocation_needs_a_design_snr():
    with pytest.raises(ValueError, match="design_snr_db"):
        AnalogCodec(0.5, power_allocation="optimal")
    with pytest.raises(ValueError, match="power_allocation"):
        AnalogCodec(0.5, power_allocation="waterfill")


def test_codec_config_exposes_the_optimal_power_allocation():
    """CodecConfig builds the analog codec with the MSE-optimal allocation, and refuses it without a design SNR."""
    import pytest

    from latent_codec.config import CodecConfig

    codec = CodecConfig(name="analog", power_allocation="optimal", design_snr_db=5.0).build()
    assert codec.power_allocation == "optimal" and codec.design_snr_db == 5.0
    with pytest.raises(ValueError, match="needs design_snr_db"):
        CodecConfig(name="analog", power_allocation="optimal")
    with pytest.raises(ValueError, match="does not use design_snr_db, power_allocation"):
        CodecConfig(name="uniform", power_allocation="optimal", design_snr_db=5.0)
