"""3GPP TDL over OFDM: mobility hurts LS estimation, perfect CSI bounds LS.

Comparisons are paired: the same generator seed gives the same channel draws
(the sum-of-sinusoids phases do not depend on the speed) and the same noise,
so the per-slot differences of error counts are i.i.d. across slots (each
slot is an independent channel realisation) and their mean is tested against
Z = 4.5 standard errors.
"""

import math

import numpy as np
import pytest
import torch

from phy import DigitalLink, LinkConfig

Z = 4.5
SLOT_BITS = 12 * 72 * 2  # QPSK data bits per slot of the default grid


def _slot_errors(channel, speed_mps, csi, snr_db, rows=12, slots_per_row=12):
    cfg = LinkConfig(code="none", modulation="qpsk", channel=channel, speed_mps=speed_mps, csi=csi,
                     block_length=SLOT_BITS)
    bits = torch.randint(0, 2, (rows, slots_per_row * SLOT_BITS), generator=torch.Generator().manual_seed(1)).float()
    res = DigitalLink(cfg)(bits, snr_db, torch.Generator().manual_seed(2))
    assert res.channel_uses == rows * slots_per_row * 14 * 72
    return (res.bits_hat != bits).reshape(-1, SLOT_BITS).sum(dim=1).numpy().astype(np.float64)


def _significantly_greater(a: np.ndarray, b: np.ndarray) -> bool:
    d = a - b
    return d.mean() > Z * d.std(ddof=1) / math.sqrt(d.size)


@pytest.mark.parametrize("channel", ["tdl-a"])
def test_ber_grows_with_speed_under_ls_and_perfect_csi_bounds_ls(channel):
    """At 3.5 GHz and 30 kHz subcarriers the pilots (OFDM symbols 2 and 11)
    are 0.32 ms apart: at 80 m/s (933 Hz Doppler) the channel turns by a
    third of a cycle between them, at 150 m/s by more than half."""
    snr_db = 30.0
    speeds = (0.0, 80.0, 150.0)
    ls = {v: _slot_errors(channel, v, "ls", snr_db) for v in speeds}
    perfect = {v: _slot_errors(channel, v, "perfect", snr_db) for v in speeds}
    # mobility: the channel ages between the pilots, LS + interpolation lags
    assert _significantly_greater(ls[80.0], ls[0.0])
    assert _significantly_greater(ls[150.0], ls[80.0])
    # perfect CSI bounds LS: never significantly better, and clearly worse
    # once the channel ages (at rest the LS noise costs ~1-2 dB, too little
    # to resolve against the fading with this many slots)
    for v in speeds:
        assert not _significantly_greater(perfect[v], ls[v]), v
    assert _significantly_greater(ls[80.0], perfect[80.0])
    assert _significantly_greater(ls[150.0], perfect[150.0])
    # without inter-carrier interference, perfect CSI does not care about the
    # speed: each resource element sees the same fading distribution
    d = perfect[150.0] - perfect[0.0]
    assert abs(d.mean()) <= Z * d.std(ddof=1) / math.sqrt(d.size)


def test_doppler_follows_from_speed_and_carrier():
    from phy.channels import OfdmTdlChannel

    ch = OfdmTdlChannel(LinkConfig(channel="tdl-a", speed_mps=30.0, carrier_frequency_hz=3.5e9))
    assert ch.doppler_hz == pytest.approx(30.0 * 3.5e9 / 299_792_458.0)


@pytest.mark.parametrize("channel", ["tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"])
def test_every_tdl_profile_runs_and_is_finite(channel):
    cfg = LinkConfig(code="ldpc", modulation="16qam", channel=channel, csi="ls", speed_mps=3.0, block_length=256)
    bits = torch.randint(0, 2, (2, 600), generator=torch.Generator().manual_seed(0)).float()
    res = DigitalLink(cfg)(bits, 30.0, torch.Generator().manual_seed(1))
    assert torch.isfinite(res.llrs).all()
    assert res.ber < 0.05


# 3GPP TR 38.901 Table 7.7.2-1..5: normalised tap delays (multiples of the RMS delay spread) and powers [dB].
# TDL-D and TDL-E: the first two rows are the LOS path (specular) and the Rayleigh tap at the same delay.
TR38901_TDL = {
    "tdl-a": ([0.0, 0.3819, 0.4025, 0.5868, 0.4610, 0.5375, 0.6708, 0.5750, 0.7618, 1.5375, 1.8978, 2.2242,
               2.1718, 2.4942, 2.5119, 3.0582, 4.0810, 4.4579, 4.5695, 4.7966, 5.0066, 5.3043, 9.6586],
              [-13.4, 0.0, -2.2, -4.0, -6.0, -8.2, -9.9, -10.5, -7.5, -15.9, -6.6, -16.7, -12.4, -15.2, -10.8,
               -11.3, -12.7, -16.2, -18.3, -18.9, -16.6, -19.9, -29.7]),
    "tdl-b": ([0.0, 0.1072, 0.2155, 0.2095, 0.2870, 0.2986, 0.3752, 0.5055, 0.3681, 0.3697, 0.5700, 0.5283,
               1.1021, 1.2756, 1.5474, 1.7842, 2.0169, 2.8294, 3.0219, 3.6187, 4.1067, 4.2790, 4.7834],
              [0.0, -2.2, -4.0, -3.2, -9.8, -1.2, -3.4, -5.2, -7.6, -3.0, -8.9, -9.0, -4.8, -5.7, -7.5, -1.9,
               -7.6, -12.2, -9.8, -11.4, -14.9, -9.2, -11.3]),
    "tdl-c": ([0.0, 0.2099, 0.2219, 0.2329, 0.2176, 0.6366, 0.6448, 0.6560, 0.6584, 0.7935, 0.8213, 0.9336,
               1.2285, 1.3083, 2.1704, 2.7105, 4.2589, 4.6003, 5.4902, 5.6077, 6.3065, 6.6374, 7.0427, 8.6523],
              [-4.4, -1.2, -3.5, -5.2, -2.5, 0.0, -2.2, -3.9, -7.4, -7.1, -10.7, -11.1, -5.1, -6.8, -8.7, -13.2,
               -13.9, -13.9, -15.8, -17.1, -16.0, -15.7, -21.6, -22.8]),
    "tdl-d": ([0.0, 0.0, 0.035, 0.612, 1.363, 1.405, 1.804, 2.596, 1.775, 4.042, 7.937, 9.424, 9.708, 12.525],
              [-0.2, -13.5, -18.8, -21.0, -22.8, -17.9, -20.1, -21.9, -22.9, -27.8, -23.6, -24.8, -30.0, -27.7]),
    "tdl-e": ([0.0, 0.0, 0.5133, 0.5440, 0.5630, 0.5440, 0.7112, 1.9092, 1.9293, 1.9589, 2.6426, 3.7136,
               5.4524, 12.0034, 20.6519],
              [-0.03, -22.03, -15.8, -18.1, -19.8, -22.9, -22.4, -18.6, -20.8, -22.6, -22.3, -25.6, -20.2,
               -29.8, -29.2]),
}
FREQ_CORR_TOL = 0.05  # |estimated - 38.901| of the normalised frequency correlation (measured: <= 0.027)


def _frequency_correlation_theory(model: str, delay_spread_s: float, lags_hz: np.ndarray) -> np.ndarray:
    """R(df) = sum_n p_n exp(-j 2 pi df tau_n DS) / sum_n p_n from 38.901's table (unit-power normalised PDP)."""
    delays, powers_db = (np.asarray(v, dtype=np.float64) for v in TR38901_TDL[model])
    p = 10.0 ** (powers_db / 10.0)
    tau = delays * delay_spread_s
    return (p[None, :] * np.exp(-2j * np.pi * lags_hz[:, None] * tau[None, :])).sum(1) / p.sum()


def _frequency_correlation_measured(channel: str, delay_spread_s: float, slots: int = 1500):
    """Frequency correlation of the project's OFDM TDL channel, over ``slots`` independent slots.

    Returns ``(lags [Hz], R(lag) normalised by the mean power, mean power)``."""
    from phy._rng import sionna_generator
    from phy.channels import OfdmTdlChannel

    cfg = LinkConfig(channel=channel, speed_mps=3.0, delay_spread_s=delay_spread_s)
    ch = OfdmTdlChannel(cfg)
    with torch.no_grad(), sionna_generator(torch.Generator().manual_seed(7), "cpu"):
        h = ch.generate(slots)[:, 0, 0, 0, 0, 0, :].to(torch.complex128).numpy()  # [slots, fft], first symbol
    power = float(np.mean(np.abs(h) ** 2))
    lags = np.arange(0, cfg.fft_size, 6)
    r = np.array([np.mean(h[:, lag:] * np.conj(h[:, : h.shape[1] - lag])) for lag in lags]) / power
    return lags * cfg.subcarrier_spacing_hz, r, power


@pytest.mark.parametrize("channel", ["tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"])
def test_tdl_frequency_correlation_follows_the_38901_power_delay_profile(channel):
    """The channel's frequency correlation is the Fourier transform of 38.901's power-delay profile
    (normalised delays scaled by the configured RMS delay spread, unit total power): a wrong table, a wrong
    model letter or an unscaled delay spread each move it by more than the tolerance (checked below)."""
    ds = 300e-9  # long enough that the 72 subcarriers (2.1 MHz) see the profile's shape
    lags_hz, measured, power = _frequency_correlation_measured(channel, ds)
    assert power == pytest.approx(1.0, abs=0.08)  # unit average gain
    theory = _frequency_correlation_theory(channel, ds, lags_hz)
    assert np.abs(measured - theory).max() < FREQ_CORR_TOL, np.round(np.abs(measured - theory), 3)
    # the check discriminates: the other profiles (but for the two LOS profiles between themselves, whose
    # correlation the specular path dominates: see the fading-depth check below), and this one at a third of
    # the delay spread, are far off
    los = ("tdl-d", "tdl-e")
    for other in TR38901_TDL:
        if other != channel and not (other in los and channel in los):
            assert np.abs(_frequency_correlation_theory(other, ds, lags_hz) - theory).max() > 2 * FREQ_CORR_TOL
    if channel not in los:
        assert np.abs(_frequency_correlation_theory(channel, ds / 3, lags_hz) - theory).max() > 2 * FREQ_CORR_TOL


@pytest.mark.parametrize("channel", ["tdl-a", "tdl-d", "tdl-e"])
def test_tdl_fading_depth_follows_the_38901_k_factor(channel):
    """Per resource element the channel is Rician with K = P_LOS / P_diffuse from 38.901's table (Rayleigh,
    K = 0, for TDL-A..C): its amount of fading Var|h|^2 / E[|h|^2]^2 = (1 + 2K) / (1 + K)^2 is 1.0 (A..C),
    0.086 (D, K = 13.3 dB) and 0.012 (E, K = 22 dB)."""
    from phy._rng import sionna_generator
    from phy.channels import OfdmTdlChannel

    _, powers_db = TR38901_TDL[channel]
    p = 10.0 ** (np.asarray(powers_db) / 10.0)
    k = p[0] / p[1:].sum() if channel in ("tdl-d", "tdl-e") else 0.0
    expected = (1 + 2 * k) / (1 + k) ** 2
    ch = OfdmTdlChannel(LinkConfig(channel=channel, speed_mps=3.0))
    with torch.no_grad(), sionna_generator(torch.Generator().manual_seed(8), "cpu"):
        g = ch.generate(1500)[:, 0, 0, 0, 0, 0, :].abs().double().square().numpy()
    amount = g.var() / g.mean() ** 2
    assert amount == pytest.approx(expected, rel=0.2), (amount, expected)


def test_tdl_rms_delay_spread_of_the_tables_is_one():
    """38.901's scalable TDL tables are normalised to an RMS delay spread of 1 (so delay_spread_s is the
    RMS delay spread): a check of the transcribed tables themselves."""
    for model, (delays, powers_db) in TR38901_TDL.items():
        p = 10.0 ** (np.asarray(powers_db) / 10.0)
        tau = np.asarray(delays)
        mean = (p * tau).sum() / p.sum()
        rms = math.sqrt((p * (tau - mean) ** 2).sum() / p.sum())
        assert rms == pytest.approx(1.0, abs=0.05), model
