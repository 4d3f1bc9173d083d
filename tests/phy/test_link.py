"""Round trips, determinism, gradients, bookkeeping and errors of the links."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from phy import (
    DigitalLink,
    LinkConfig,
    SymbolLink,
    ebno_db_from_snr_db,
    noise_variance_from_snr_db,
    snr_db_from_ebno_db,
)
from phy.coding import CodeBlockSegmenter


def _bits(rows, n, seed=0):
    return torch.randint(0, 2, (rows, n), generator=torch.Generator().manual_seed(seed)).float()


# --------------------------------------------------------------------------
# segmentation and exact round trips
# --------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 3), n=st.integers(1, 300), k=st.integers(1, 64))
def test_segmentation_inverse_is_exact(rows, n, k):
    seg = CodeBlockSegmenter(k)
    x = torch.randint(0, 2, (rows, n)).float()
    blocks = seg(x)
    assert blocks.shape == (rows, math.ceil(n / k), k)
    assert torch.equal(seg.desegment(blocks, n), x)
    pad = blocks.reshape(rows, -1)[:, n:]
    assert torch.all(pad == 0)


@pytest.mark.parametrize(
    "kw",
    [
        dict(code="none", modulation="bpsk"),
        dict(code="none", modulation="64qam", crc="crc16", block_length=100),
        dict(code="ldpc", modulation="qpsk", block_length=200),
        dict(code="ldpc", modulation="256qam", code_rate=0.8, block_length=300),
        dict(code="ldpc", modulation="qpsk", code_rate=0.1, block_length=100),  # repetition
        dict(code="polar", modulation="16qam", block_length=100),
        dict(code="ldpc", channel="bsc", bit_error_rate=0.0, block_length=64),
    ],
)
@pytest.mark.parametrize("n", [1, 257, 1000])
def test_clean_channel_round_trip_is_exact_for_any_length(kw, n):
    link = DigitalLink(LinkConfig(**kw))
    bits = _bits(2, n, seed=n)
    res = link(bits, snr_db=40.0, generator=torch.Generator().manual_seed(0))
    assert res.bits_hat.shape == (2, n) and res.bits_hat.dtype == torch.float32
    assert res.llrs.shape == (2, n) and res.llrs.dtype == torch.float32
    assert torch.equal(res.bits_hat, bits)
    assert res.bit_errors == 0 and res.block_errors == 0
    assert res.num_bits == 2 * n
    assert res.num_blocks == 2 * math.ceil(n / link.config.block_length)
    # sign convention: positive LLR means bit 1
    assert torch.equal((res.llrs >= 0).float(), bits)
    if res.crc_ok is not None:
        assert res.crc_ok.shape == (2, math.ceil(n / link.config.block_length))
        assert bool(res.crc_ok.all())


def test_same_seed_same_result_different_seed_different():
    for cfg in (
        LinkConfig(code="ldpc", modulation="16qam", channel="tdl-c", csi="ls", speed_mps=20.0, block_length=256),
        LinkConfig(code="none", channel="rayleigh", csi="ls"),
        LinkConfig(code="none", channel="bsc", bit_error_rate=0.1),
    ):
        link = DigitalLink(cfg)
        bits = _bits(2, 2000)
        a = link(bits, 6.0, torch.Generator().manual_seed(11))
        b = DigitalLink(cfg)(bits, 6.0, torch.Generator().manual_seed(11))
        c = link(bits, 6.0, torch.Generator().manual_seed(12))
        assert torch.equal(a.bits_hat, b.bits_hat) and torch.equal(a.llrs, b.llrs)
        assert not torch.equal(a.llrs, c.llrs)


def test_global_sionna_generator_is_untouched():
    from sionna.phy import config as sionna_config

    before = sionna_config.torch_rng("cpu").get_state()
    DigitalLink(LinkConfig(channel="tdl-a", code="none"))(_bits(1, 500), 10.0, torch.Generator().manual_seed(1))
    assert torch.equal(sionna_config.torch_rng("cpu").get_state(), before)


# --------------------------------------------------------------------------
# gradients
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw",
    [
        dict(code="none", modulation="16qam", channel="awgn"),
        dict(code="none", modulation="qpsk", channel="rayleigh", csi="ls"),
        dict(code="none", modulation="qpsk", channel="tdl-b", csi="ls", speed_mps=10.0),
        dict(code="ldpc", modulation="qpsk", channel="awgn", block_length=128),
        dict(code="ldpc", modulation="16qam", channel="tdl-a", csi="perfect", block_length=128, decoder="sionna"),
    ],
)
def test_gradients_flow_from_llrs_to_transmitted_symbols(kw):
    link = DigitalLink(LinkConfig(**kw))
    chain = link.chain()
    bits = _bits(2, 300)
    coded = chain.encode(bits)
    x = chain.modulate(coded).detach().requires_grad_(True)
    received = chain.transmit(x, 3.0, torch.Generator().manual_seed(0))
    llrs = chain.demodulate(received, coded.shape[1])
    out = chain.decode(llrs).llrs
    assert out.requires_grad
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert float(x.grad.abs().sum()) > 0


def test_early_stop_decoder_output_is_differentiable_after_retirement():
    """Codewords retired early must still pass gradients."""
    link = DigitalLink(LinkConfig(code="ldpc", block_length=128))
    chain = link.chain()
    bits = _bits(8, 128)
    coded = chain.encode(bits)
    x = chain.modulate(coded).detach().requires_grad_(True)
    llrs = chain.demodulate(chain.transmit(x, 4.0, torch.Generator().manual_seed(0)), 1)
    dec = chain.decode(llrs)
    assert int(dec.iterations.min()) < link.config.decoder_iterations  # some retired early
    dec.llrs.sum().backward()
    grad_rows = x.grad.abs().sum(dim=1)
    assert bool((grad_rows > 0).all())


# --------------------------------------------------------------------------
# bookkeeping
# --------------------------------------------------------------------------
def test_snr_ebno_conversion_round_trip_and_sionna():
    from sionna.phy.utils import ebnodb2no

    for m, r, ov in [(1, 1.0, 0.0), (2, 0.5, 0.0), (4, 0.75, 2 / 14), (8, 0.9, 0.1)]:
        ebno = ebno_db_from_snr_db(7.0, m, r, ov)
        assert snr_db_from_ebno_db(ebno, m, r, ov) == pytest.approx(7.0)
        if ov == 0.0:
            no = float(ebnodb2no(ebno, m, r))
            assert no == pytest.approx(noise_variance_from_snr_db(7.0), rel=1e-5)
    with pytest.raises(ValueError, match="code_rate"):
        ebno_db_from_snr_db(1.0, 2, 1.5)


@pytest.mark.parametrize(
    "kw, per_row_uses",
    [
        (dict(code="none", modulation="qpsk", block_length=100), 500),  # 1000 bits / 2
        (dict(code="ldpc", modulation="16qam", code_rate=0.5, block_length=500), 2 * (2 * 524) // 4),
        (dict(code="none", modulation="qpsk", channel="tdl-a", block_length=100), 1 * 14 * 72),
        (dict(code="none", modulation="qpsk", channel="bsc", block_length=100), 1000),
    ],
)
def test_channel_uses_and_ebno_bookkeeping(kw, per_row_uses):
    cfg = LinkConfig(**kw)
    res = DigitalLink(cfg)(_bits(3, 1000), 30.0, torch.Generator().manual_seed(0))
    assert res.channel_uses == 3 * per_row_uses
    if cfg.channel == "bsc":
        assert math.isnan(res.snr_db) and math.isnan(res.ebno_db)
        return
    overhead = cfg.pilot_overhead
    assert res.spectral_efficiency == pytest.approx(
        cfg.bits_per_symbol * cfg.effective_code_rate * (1 - overhead)
    )
    assert res.ebno_db == pytest.approx(
        ebno_db_from_snr_db(30.0, cfg.bits_per_symbol, cfg.effective_code_rate, overhead)
    )


def test_ofdm_pilot_overhead_in_spectral_efficiency():
    cfg = LinkConfig(channel="tdl-a", modulation="16qam", code="ldpc", code_rate=0.5)
    assert cfg.pilot_overhead == pytest.approx(2 / 14)
    assert cfg.info_bits_per_channel_use == pytest.approx(4 * cfg.effective_code_rate * 12 / 14)


def test_bsc_flips_bits_and_llr_magnitude():
    p = 0.05
    link = DigitalLink(LinkConfig(code="none", channel="bsc", bit_error_rate=p, block_length=1000))
    bits = _bits(10, 20000)
    res = link(bits, None, torch.Generator().manual_seed(3))
    n = bits.numel()
    assert abs(res.ber - p) < 4.5 * math.sqrt(p * (1 - p) / n)
    assert torch.allclose(res.llrs.abs(), torch.full_like(res.llrs, math.log((1 - p) / p)), rtol=1e-5)
    assert res.channel_uses == n


# --------------------------------------------------------------------------
# SymbolLink (analog transport)
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw",
    [dict(channel="awgn"), dict(channel="rayleigh", coherence_symbols=5), dict(channel="tdl-c")],
)
def test_symbol_link_is_unbiased_and_noise_variance_is_calibrated(kw):
    """With perfect CSI the LMMSE output is s + e with E[e|s] = 0 and
    E[|e|^2 / noise_var_eff] = 1."""
    link = SymbolLink(LinkConfig(**kw))
    g = torch.Generator().manual_seed(5)
    s = torch.complex(torch.randn(16, 4000, generator=g), torch.randn(16, 4000, generator=g)) / math.sqrt(2)
    r = link(s, 5.0, torch.Generator().manual_seed(6))
    assert r.symbols_hat.shape == s.shape and r.symbols_hat.dtype == torch.complex64
    assert r.noise_var_eff.shape == s.shape and r.noise_var_eff.dtype == torch.float32
    e = (r.symbols_hat - s).flatten()
    nv = r.noise_var_eff.flatten()
    z = (e.abs() ** 2 / nv).double()
    n = z.numel()
    assert abs(float(z.mean()) - 1.0) < 4.5 * float(z.std()) / math.sqrt(n)
    # unbiased: regression of s_hat on s has slope 1
    slope = (torch.vdot(s.flatten(), r.symbols_hat.flatten()) / torch.vdot(s.flatten(), s.flatten())).real
    se = math.sqrt(float((nv.double()).mean()) / float((s.abs() ** 2).sum()))
    assert abs(float(slope) - 1.0) < 4.5 * se + 1e-3
    if kw["channel"] == "awgn":
        assert torch.allclose(nv, torch.full_like(nv, noise_variance_from_snr_db(5.0)))


def test_symbol_link_errors():
    with pytest.raises(ValueError, match="symbol channel"):
        SymbolLink(LinkConfig(channel="bsc"))
    link = SymbolLink(LinkConfig())
    with pytest.raises(ValueError, match="complex"):
        link(torch.ones(2, 3), 1.0)
    with pytest.raises(ValueError, match="snr_db"):
        link(torch.ones(2, 3, dtype=torch.complex64), float("nan"))


# --------------------------------------------------------------------------
# input errors
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "bad, match",
    [
        (torch.ones(()), "shape"),  # [..., n] needs n; a 1-D [n] is one row now
        (torch.ones(2, 0), "shape"),
        (torch.ones(2, 3, dtype=torch.float64), "float32"),
        (torch.full((2, 3), 2.0), "only 0 and 1"),
        (np.ones((2, 3)), "torch.Tensor"),
    ],
)
def test_bad_bits_are_one_line_value_errors(bad, match):
    link = DigitalLink(LinkConfig(code="none"))
    with pytest.raises(ValueError, match=match) as exc:
        link(bad, 1.0)
    assert "\n" not in str(exc.value)


def test_missing_snr_is_an_error():
    with pytest.raises(ValueError, match="snr_db"):
        DigitalLink(LinkConfig(code="none"))(_bits(1, 10), None)
