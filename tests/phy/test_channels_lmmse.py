"""The one-antenna LMMSE division equals Sionna's general LMMSE equaliser; the probe cache and MI tables."""

import numpy as np
import torch
from sionna.phy.mimo import StreamManagement, lmmse_equalizer
from sionna.phy.ofdm import LMMSEEqualizer

from phy import DigitalLink, LinkConfig
from phy import link as link_module
from phy.channels import OfdmTdlChannel, single_antenna_lmmse
from phy.mi_tables import MI_MODULATIONS, MI_TABLE_FILE, _shipped, compute_mi_table, mi_table


def test_division_equals_general_lmmse():
    g = torch.Generator().manual_seed(3)
    n = 4096
    h = torch.complex(torch.randn(n, generator=g), torch.randn(n, generator=g)).reshape(n, 1, 1) / 2 ** 0.5
    y = torch.complex(torch.randn(n, generator=g), torch.randn(n, generator=g)).reshape(n, 1)
    s = (torch.rand(n, generator=g) * 2 + 1e-3).reshape(n, 1, 1).to(torch.complex64)
    x_ref, no_ref = lmmse_equalizer(y, h, s)
    x, no = single_antenna_lmmse(y, h, s)
    assert x.shape == x_ref.shape and no.shape == no_ref.shape
    torch.testing.assert_close(x, x_ref.to(x.dtype), rtol=2e-5, atol=2e-6)
    torch.testing.assert_close(no, no_ref.to(no.dtype), rtol=2e-5, atol=1e-7)


def test_ofdm_equaliser_equals_sionna_lmmse_equaliser():
    ch = OfdmTdlChannel(LinkConfig(channel="tdl-c", speed_mps=10.0, csi="ls"))
    general = LMMSEEqualizer(ch.rg, StreamManagement(np.ones([1, 1], dtype=int), 1))
    g = torch.Generator().manual_seed(0)
    x = torch.complex(torch.randn(3, 500, generator=g), torch.randn(3, 500, generator=g)) / 2 ** 0.5
    captured = {}
    handle = ch.equalizer.register_forward_pre_hook(lambda _m, args: captured.__setitem__("args", args))
    ch(x, 0.1, generator=g)
    handle.remove()
    original = ch.equalizer
    x_div, no_div = original(*captured["args"])
    x_gen, no_gen = general(*captured["args"])
    torch.testing.assert_close(x_div, x_gen, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(no_div, no_gen, rtol=1e-4, atol=1e-6)


def test_shipped_mi_table_is_the_computed_one():
    assert MI_TABLE_FILE.is_file()
    shipped = _shipped(str(MI_TABLE_FILE))
    assert set(shipped) == set(MI_MODULATIONS)
    assert np.array_equal(shipped["qpsk"], compute_mi_table("qpsk"))
    assert mi_table("16qam") is mi_table("16qam")          # cached per process


def test_probe_is_shared_between_links_of_one_configuration(monkeypatch):
    calls = []
    from phy import mcs

    real = mcs.effective_snr_db

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(mcs, "effective_snr_db", counting)
    monkeypatch.setattr(link_module, "_PROBE_CACHE", {})
    cfg = LinkConfig(channel="rayleigh", csi="ls", mcs="auto", block_length=256)
    a = DigitalLink(cfg).effective_snr_db(5.0)
    b = DigitalLink(cfg).effective_snr_db(5.0)
    c = DigitalLink(cfg).effective_snr_db(7.0)
    assert a == b and a != c
    assert calls == [5.0, 7.0]
    other = DigitalLink(cfg.model_copy(update={"coherence_symbols": 50})).effective_snr_db(5.0)
    assert calls == [5.0, 7.0, 5.0] and other != a


def test_fading_profile_is_shared_between_links_of_one_configuration(monkeypatch):
    """select_mcs measures the profile once per (channel configuration, SNR) in a process."""
    from phy import mcs

    calls = []
    real = mcs.FadingProfile.measure

    def counting(*args, **kwargs):
        calls.append(args[1])
        return real(*args, **kwargs)

    monkeypatch.setattr(mcs.FadingProfile, "measure", staticmethod(counting))
    monkeypatch.setattr(link_module, "_PROBE_CACHE", {})
    # 512-bit blocks: no calibrated table (phy.mcs.calibrated_table), so select_mcs takes the profile path
    cfg = LinkConfig(channel="rayleigh", csi="ls", mcs="auto", block_length=512)
    a = DigitalLink(cfg).select_mcs(5.0)
    b = DigitalLink(cfg.model_copy(update={"modulation": "16qam"})).select_mcs(5.0)
    assert a == b and calls == [5.0]
    DigitalLink(cfg.model_copy(update={"coherence_symbols": 50})).select_mcs(5.0)
    assert calls == [5.0, 5.0]
