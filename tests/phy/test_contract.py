"""The public channel contract, Sionna's conventions and Monte-Carlo interop."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import phy
from phy import Channel, ChannelOutput, DigitalLink, LinkConfig, SymbolLink, theory


def _within(errors: int, total: int, p: float, sigmas: float = 4.5) -> bool:
    """Binomial count ``errors`` of ``total`` agrees with probability ``p``."""
    return abs(errors - total * p) <= sigmas * math.sqrt(total * p * (1 - p)) + 1


class PhaseRotationAwgn(Channel):
    """A user's channel: a fixed phase rotation, AWGN, genie equalisation."""

    def __init__(self, phase_rad: float = 0.9) -> None:
        super().__init__()
        self.h = complex(math.cos(phase_rad), math.sin(phase_rad))

    def forward(self, x, noise_var, *, generator=None):
        nv = torch.as_tensor(noise_var, dtype=torch.float32).reshape(-1, 1)
        noise = torch.randn(x.shape, dtype=torch.complex64, generator=generator) * nv.sqrt()
        y = self.h * x + noise
        h = torch.full(x.shape, self.h, dtype=torch.complex64)
        return ChannelOutput(y / self.h, nv, channel_estimate=h)


class SionnaRayleigh(torch.nn.Module):
    """A user's channel that does NOT subclass phy.Channel: Sionna's
    RayleighBlockFading, one coefficient per symbol, perfect CSI, ZF."""

    def __init__(self) -> None:
        super().__init__()
        from sionna.phy.channel import RayleighBlockFading

        self.fading = RayleighBlockFading(num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant=1)

    def channel_uses(self, num_symbols: int) -> int:
        return num_symbols

    def forward(self, x, noise_var, *, generator=None):
        batch, n = x.shape
        a, _ = self.fading(batch * n, 1)
        h = a.reshape(batch, n).to(torch.complex64)
        nv = torch.as_tensor(noise_var, dtype=torch.float32).reshape(-1, 1)
        noise = torch.randn(x.shape, dtype=torch.complex64, generator=generator) * nv.sqrt()
        y = h * x + noise
        return ChannelOutput(y / h, nv / h.abs() ** 2, channel_estimate=h)


def _bits(shape, seed=0):
    return torch.randint(0, 2, shape, generator=torch.Generator().manual_seed(seed)).float()


def test_user_channel_phase_rotation_ber_matches_theory():
    link = DigitalLink(LinkConfig(modulation="qpsk", code="none"), channel=PhaseRotationAwgn())
    bits = _bits((8, 20000))
    snr_db = 4.0
    res = link(bits, snr_db=snr_db, generator=torch.Generator().manual_seed(1))
    p = float(theory.ber_awgn(snr_db - 10 * math.log10(2), "qpsk"))
    assert _within(res.bit_errors, res.num_bits, p), (res.ber, p)
    assert res.channel_uses == 8 * math.ceil(20000 / 1024) * 1024 // 2  # one use per symbol (blocks padded)


def test_user_sionna_rayleigh_channel_ber_matches_theory():
    import sionna

    sionna.phy.config.seed = 3
    link = DigitalLink(LinkConfig(modulation="qpsk", code="none"), channel=SionnaRayleigh())
    bits = _bits((4, 20000), seed=2)
    snr_db = 10.0
    res = link(bits, snr_db=snr_db, generator=torch.Generator().manual_seed(4))
    p = float(theory.ber_bpsk_rayleigh(snr_db - 10 * math.log10(2)))
    assert _within(res.bit_errors, res.num_bits, p), (res.ber, p)


def test_user_channel_in_symbol_link_and_coded_link():
    s = torch.randn(3, 50, dtype=torch.complex64)
    r = SymbolLink(LinkConfig(), channel=PhaseRotationAwgn())(s, 30.0, generator=torch.Generator().manual_seed(0))
    assert r.symbols_hat.shape == s.shape and r.noise_var_eff.shape == s.shape
    assert float((r.symbols_hat - s).abs().pow(2).mean()) < 0.01
    r3 = SymbolLink(LinkConfig())(s.reshape(3, 5, 10), torch.tensor([[0.0], [10.0], [20.0]]))
    assert r3.symbols_hat.shape == (3, 5, 10) and r3.noise_var_eff.shape == (3, 5, 10)
    assert r3.noise_var_eff[:, 0, 0].tolist() == pytest.approx([1.0, 0.1, 0.01])
    link = DigitalLink(LinkConfig(code="ldpc", block_length=200), channel=PhaseRotationAwgn())
    res = link(_bits((2, 400)), snr_db=6.0, generator=torch.Generator().manual_seed(0))
    assert res.bit_errors == 0 and res.llrs_are_soft


@pytest.mark.parametrize(
    "bad, match",
    [
        (object(), "phy.Channel contract.*lacks __call__, channel_uses"),
        (lambda x, nv, generator=None: x, "lacks channel_uses"),
    ],
)
def test_bad_channel_object_is_a_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        DigitalLink(LinkConfig(code="none"), channel=bad)
    with pytest.raises(ValueError, match=match):
        SymbolLink(LinkConfig(), channel=bad)


class _WrongOutput(Channel):
    def forward(self, x, noise_var, *, generator=None):
        return x


class _WrongShape(Channel):
    def forward(self, x, noise_var, *, generator=None):
        return ChannelOutput(x[:, :-1], torch.ones(1))


@pytest.mark.parametrize("channel, match", [(_WrongOutput(), "must return a phy.ChannelOutput"),
                                            (_WrongShape(), "symbols_hat must be a complex tensor of shape")])
def test_bad_channel_output_is_a_clear_error(channel, match):
    link = DigitalLink(LinkConfig(code="none"), channel=channel)
    with pytest.raises(ValueError, match=match):
        link(_bits((1, 10)), snr_db=3.0)


def test_channel_with_bsc_is_rejected():
    with pytest.raises(ValueError, match="bit channel"):
        DigitalLink(LinkConfig(channel="bsc", code="none"), channel=PhaseRotationAwgn())


# -- Sionna conventions --------------------------------------------------------
def test_bits_with_leading_dimensions_keep_their_shape():
    link = DigitalLink(LinkConfig(code="ldpc", block_length=100))
    bits = _bits((2, 3, 150))
    res = link(bits, snr_db=1.0, generator=torch.Generator().manual_seed(5))
    flat = link(bits.reshape(6, 150), snr_db=1.0, generator=torch.Generator().manual_seed(5))
    assert res.bits_hat.shape == (2, 3, 150) and res.llrs.shape == (2, 3, 150)
    assert res.crc_ok_bits.shape == (2, 3, 150) and res.crc_ok.shape == (2, 3, 2)
    assert res.block_iterations.shape == (2, 3, 2)
    assert torch.equal(res.bits_hat.reshape(6, 150), flat.bits_hat)
    assert res.bit_errors == flat.bit_errors and res.bit_errors > 0  # a low SNR, errors do happen
    one = link(bits[0, 0], snr_db=10.0)
    assert one.bits_hat.shape == (150,)


def test_per_example_snr_gives_each_row_its_ber():
    link = DigitalLink(LinkConfig(modulation="qpsk", code="none"))
    snr_db = torch.tensor([0.0, 3.0, 6.0])
    bits = _bits((3, 40000))
    res = link(bits, snr_db=snr_db, generator=torch.Generator().manual_seed(0))
    errors = (res.bits_hat != bits).sum(dim=1)
    for row in range(3):
        p = float(theory.ber_awgn(float(snr_db[row]) - 10 * math.log10(2), "qpsk"))
        assert _within(int(errors[row]), 40000, p), (row, int(errors[row]) / 40000, p)
    assert errors[0] > errors[1] > errors[2]
    assert res.snr_db == pytest.approx(3.0)
    # [batch, 1] works too, and a scalar tensor is a float
    res2 = link(bits, snr_db=snr_db[:, None], generator=torch.Generator().manual_seed(0))
    assert torch.equal(res.bits_hat, res2.bits_hat)
    with pytest.raises(ValueError, match="does not broadcast"):
        link(bits, snr_db=torch.zeros(2))


@pytest.mark.parametrize("channel", ["rayleigh", "tdl-a"])
def test_per_example_snr_over_fading_channels(channel):
    link = SymbolLink(LinkConfig(channel=channel, csi="ls"))
    s = torch.exp(1j * torch.rand(2, 2000, generator=torch.Generator().manual_seed(1)) * 6.28).to(torch.complex64)
    r = link(s, snr_db=torch.tensor([0.0, 20.0]), generator=torch.Generator().manual_seed(2))
    nv = r.noise_var_eff.mean(dim=1)
    err = (r.symbols_hat - s).abs().pow(2).mean(dim=1)
    assert nv[0] > 10 * nv[1] and err[0] > 10 * err[1]


def test_mcs_auto_needs_a_scalar_snr():
    link = DigitalLink(LinkConfig(mcs="auto"))
    with pytest.raises(ValueError, match="scalar snr_db"):
        link(_bits((2, 100)), snr_db=torch.tensor([1.0, 2.0]))


# -- LinkResult: CRC per bit, soft flag, iterations ----------------------------
class _CorruptFirstBlock(Channel):
    """Noise-free, but flips the symbols of row 0's first code block."""

    def __init__(self, symbols: int) -> None:
        super().__init__()
        self.symbols = symbols

    def forward(self, x, noise_var, *, generator=None):
        y = x.clone()
        y[0, : self.symbols] = -y[0, : self.symbols]
        return ChannelOutput(y, torch.full((1, 1), 0.01))


def test_crc_ok_bits_marks_the_bits_of_failed_blocks():
    cfg = LinkConfig(modulation="qpsk", code="none", crc="crc24a", block_length=100)
    link = DigitalLink(cfg, channel=_CorruptFirstBlock(cfg.codeword_length // 2))
    bits = _bits((2, 250))
    res = link(bits, snr_db=20.0)
    assert res.crc_ok.tolist() == [[False, True, True], [True, True, True]]
    assert not res.crc_ok_bits[0, :100].any() and res.crc_ok_bits[0, 100:].all()
    assert res.crc_ok_bits[1].all()
    assert torch.equal(res.bits_hat[res.crc_ok_bits], bits[res.crc_ok_bits])
    no_crc = DigitalLink(LinkConfig(code="none"))(bits, snr_db=20.0)
    assert no_crc.crc_ok is None and not no_crc.crc_ok_bits.any()


def test_llrs_are_soft_and_block_iterations():
    bits = _bits((2, 200))
    polar = DigitalLink(LinkConfig(code="polar", block_length=100, code_rate=0.5))(bits, snr_db=10.0)
    assert not polar.llrs_are_soft and polar.block_iterations is None
    ldpc = DigitalLink(LinkConfig(code="ldpc", block_length=100))(bits, snr_db=10.0)
    assert ldpc.llrs_are_soft
    assert ldpc.block_iterations.shape == (2, 2) and ldpc.block_iterations.dtype == torch.int32
    assert ldpc.decoder_iterations == pytest.approx(float(ldpc.block_iterations.float().mean()))
    fixed = DigitalLink(LinkConfig(code="ldpc", block_length=100, decoder="sionna"))(bits, snr_db=10.0)
    assert fixed.block_iterations.unique().tolist() == [20]


def test_construction_has_no_global_side_effect(monkeypatch):
    import phy._malloc as m

    monkeypatch.setattr(m, "_DONE", None)  # "never tuned in this process"
    DigitalLink(LinkConfig())
    DigitalLink(LinkConfig(mcs="auto"))(_bits((1, 100)), snr_db=5.0)
    assert m._DONE is None  # pylint: disable=protected-access


# -- sim_ber / PlotBER -----------------------------------------------------------
def test_mc_fun_runs_in_sionna_sim_ber_and_plotber():
    import matplotlib

    matplotlib.use("Agg")
    from sionna.phy.utils import PlotBER, sim_ber

    link = DigitalLink(LinkConfig(modulation="qpsk", code="none", block_length=500))
    ebno_dbs = torch.tensor([0.0, 2.0, 4.0])
    ber, bler = sim_ber(phy.mc_fun(link, seed=1), ebno_dbs, batch_size=50, max_mc_iter=4,
                        num_target_bit_errors=None, verbose=False)
    total = 50 * 4 * 500
    for e, b in zip(ebno_dbs.tolist(), ber.tolist()):
        p = float(theory.ber_awgn(e, "qpsk"))
        assert _within(round(b * total), total, p), (e, b, p)
    plot = PlotBER("distdiff QPSK")
    ber2, _ = plot.simulate(phy.mc_fun(link, seed=1), ebno_dbs, batch_size=50, max_mc_iter=4,
                            legend="distdiff", show_fig=False, verbose=False)
    assert torch.allclose(torch.as_tensor(ber2), torch.as_tensor(ber))  # same seed -> same draws
    import matplotlib.pyplot as plt

    plt.close("all")


def test_mc_fun_rejects_bsc():
    with pytest.raises(ValueError, match="symbol channel"):
        phy.mc_fun(DigitalLink(LinkConfig(channel="bsc", code="none")))


def test_allowed_names_come_from_the_config():
    assert phy.MODULATION_NAMES == tuple(phy.MODULATIONS)
    assert "bsc" in phy.CHANNELS and "bsc" not in phy.SYMBOL_CHANNELS
    assert phy.CSI_MODES == ("perfect", "ls") and phy.DEMAPPING_METHODS == ("app", "maxlog")
    assert LinkConfig.model_fields["channel"].annotation.__args__ == phy.CHANNELS
    np.testing.assert_equal(sorted(phy.CODES), ["ldpc", "none", "polar"])
