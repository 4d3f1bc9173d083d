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
