"""The JSCC bounds against closed forms, orderings and a brute-force optimiser."""

import math

import numpy as np
import pytest
from scipy.optimize import minimize

from phy.jscc_bounds import dct_variances, latent_bounds, linear_nmse, opta_nmse

SNRS = [-5.0, 0.0, 5.0, 10.0, 20.0]


@pytest.mark.parametrize("snr_db", SNRS)
def test_white_source_half_rate_all_coincide(snr_db):
    white = np.full(128, 2.5)
    ref = 1.0 / (1.0 + 10 ** (snr_db / 10))
    assert opta_nmse(white, 0.5, snr_db) == pytest.approx(ref, rel=1e-10)
    assert linear_nmse(white, 0.5, snr_db, "equal") == pytest.approx(ref, rel=1e-10)
    assert linear_nmse(white, 0.5, snr_db, "optimal") == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("rho", [1 / 16, 1 / 8, 1 / 4, 1.0, 2.0])
def test_white_source_opta_closed_form(rho):
    snr_db = 7.0
    assert opta_nmse(np.ones(64), rho, snr_db) == pytest.approx((1 + 10 ** 0.7) ** (-2 * rho), rel=1e-10)


def test_white_source_compressed_linear_drops_the_rest():
    # rho = 1/8 sends a quarter of the values, each at 1/(1+SNR); the rest cost their variance
    snr = 10.0
    expected = 0.25 / (1 + snr) + 0.75
    assert linear_nmse(np.ones(64), 0.125, 10.0, "equal") == pytest.approx(expected, rel=1e-10)
    assert linear_nmse(np.ones(64), 0.125, 10.0, "optimal") == pytest.approx(expected, rel=1e-10)


def _spectrum(seed=0, n=96):
    return np.random.default_rng(seed).gamma(0.3, 1.0, n) + 1e-4


@pytest.mark.parametrize("rho", [1 / 16, 1 / 8, 1 / 4, 1 / 2])
def test_order_and_monotonicity(rho):
    lam = _spectrum()
    prev = None
    for snr_db in SNRS:
        o, lo, le = opta_nmse(lam, rho, snr_db), linear_nmse(lam, rho, snr_db, "optimal"), \
            linear_nmse(lam, rho, snr_db, "equal")
        assert 0 < o <= lo + 1e-12 <= le + 2e-12 <= 1 + 1e-12
        if prev is not None:
            assert o < prev[0] and lo < prev[1] and le < prev[2]  # better with SNR
        prev = (o, lo, le)
    if rho < 0.5:  # more bandwidth never hurts
        assert opta_nmse(lam, 2 * rho, 5.0) < opta_nmse(lam, rho, 5.0)
        assert linear_nmse(lam, 2 * rho, 5.0) < linear_nmse(lam, rho, 5.0)


def test_opta_rate_equals_capacity():
    lam, rho, snr_db = _spectrum(1), 0.125, 12.0
    d = opta_nmse(lam, rho, snr_db) * lam.sum()
    # recover the water level: D = sum(min(theta, lam)) is increasing in theta
    lo, hi = 0.0, lam.max()
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(mid, lam).sum() < d else (lo, mid)
    theta = (lo + hi) / 2
    rate = 0.5 * np.log2(np.maximum(lam / theta, 1.0)).sum() / lam.size
    assert rate == pytest.approx(rho * math.log2(1 + 10 ** 1.2), rel=1e-6)


def test_optimal_linear_beats_any_numerical_allocation():
    lam = np.array([5.0, 2.0, 1.0, 0.3, 0.05, 0.01])
    snr_db, sigma2 = 3.0, 10 ** -0.3
    closed = linear_nmse(lam, 0.5, snr_db, "optimal")

    def nmse(z):
        q = np.exp(z) / np.exp(z).sum() * lam.size  # any allocation with sum q = n
        return (lam * sigma2 / (q + sigma2)).sum() / lam.sum()

    best = minimize(nmse, np.zeros(lam.size), method="Nelder-Mead",
                    options={"maxiter": 20000, "xatol": 1e-10, "fatol": 1e-14})
    assert closed <= best.fun + 1e-9
    assert closed == pytest.approx(best.fun, rel=1e-4)


def test_dct_variances_and_latent_bounds():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 2, 8, 8)) * 3.0 + 1.0  # white: mean removed, variance 9
    v = dct_variances(x)
    assert v.shape == (128,) and v.mean() == pytest.approx(9.0, rel=0.05)
    t = latent_bounds(x, [0.5, 0.125], [0.0, 10.0])
    assert list(t.bandwidth_ratio) == [0.5, 0.5, 0.125, 0.125] and (t.num_samples == 400).all()
    half = t[t.bandwidth_ratio == 0.5]
    white = 1 / (1 + 10 ** (half.snr_db / 10))
    # a measured spectrum is never exactly white, and for a given total variance white is the worst
    assert (half.opta_nmse <= white + 1e-12).all() and np.allclose(half.opta_nmse, white, rtol=0.02)
    # the empirical spectrum is not exactly white: linear is a hair above OPTA, never below
    assert (half.linear_equal_nmse >= half.opta_nmse - 1e-12).all()
    assert np.allclose(half.linear_equal_nmse, half.opta_nmse, rtol=0.02)
    assert np.allclose(t.opta_nmse_db, 10 * np.log10(t.opta_nmse))


@pytest.mark.parametrize("call, match", [
    (lambda: opta_nmse([], 0.5, 0.0), "variances"),
    (lambda: opta_nmse([1.0, -1.0], 0.5, 0.0), "variances"),
    (lambda: opta_nmse([1.0], 0.0, 0.0), "bandwidth_ratio"),
    (lambda: opta_nmse([1.0], 0.5, float("nan")), "snr_db"),
    (lambda: linear_nmse([1.0], 0.75, 0.0), "bandwidth_ratio must be <= 0.5"),
    (lambda: linear_nmse([1.0], 0.5, 0.0, "water"), "allocation"),
    (lambda: dct_variances(np.zeros((1, 4, 2, 2))), "latents"),
])
def test_errors_are_one_line(call, match):
    with pytest.raises(ValueError, match=match) as err:
        call()
    assert "\n" not in str(err.value)


def test_two_band_lee_petersen_by_hand():
    # lam = (4, 1), sigma^2 = 0.1 (10 dB), rho = 1/2 (budget 2 real dims): both bands active, q_i = sigma sqrt(lam_i) s
    # - sigma^2 with s = (2 + 2 sigma^2) / (sigma (2 + 1)): q = (1.3667, 0.6333); D = sigma^2 (sum sqrt lam)^2 /
    # (2 + 2 sigma^2) = 0.9 / 2.2
    assert linear_nmse([4.0, 1.0], 0.5, 10.0, "optimal") == pytest.approx(0.9 / 2.2 / 5.0, rel=1e-12)
    # equal gain: g^2 = 2/5, D_i = lam_i / (1 + 10 g^2 lam_i)
    assert linear_nmse([4.0, 1.0], 0.5, 10.0, "equal") == pytest.approx((4 / 17 + 1 / 5) / 5, rel=1e-12)
    # a weak second band gets no power (0 dB): the strong one takes the whole budget 2, D = 4/3 + lam_2
    assert linear_nmse([4.0, 1e-3], 0.5, 0.0, "optimal") == pytest.approx((4 / 3 + 1e-3) / 4.001, rel=1e-12)
    # OPTA for the same source: rate 2 * 0.5 * log2(11) bits in total, water level below both variances:
    # D_i = theta, theta^2 = 4 * 1 / 11^2 -> D = 2 * 2 / 11
    assert opta_nmse([4.0, 1.0], 0.5, 10.0) == pytest.approx(4 / 11 / 5, rel=1e-12)


def test_ranking_chooses_the_sent_components():
    lam = np.array([1.0, 4.0, 2.0, 3.0])
    # rho = 1/4 sends 2 of 4: by default the two strongest (4, 3); a ranking may pick others (1, 2)
    assert linear_nmse(lam, 0.25, 10.0, ranking=lam) == pytest.approx(linear_nmse(lam, 0.25, 10.0))
    worse = linear_nmse(lam, 0.25, 10.0, ranking=-lam)
    assert worse == pytest.approx((linear_nmse([1.0, 2.0], 0.5, 10.0) * 3.0 + 7.0) / 10.0, rel=1e-12)
    with pytest.raises(ValueError, match="ranking must be 4 finite scores"):
        linear_nmse(lam, 0.25, 10.0, ranking=[1.0, 2.0])
