"""Coded links: the early-stopping LDPC decoder against Sionna's, the LDPC
waterfall against Sionna's published (SYS) curves and the Shannon/BICM
limits, and Polar decoding."""

import math

import pytest
import torch
from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder
from sionna.phy.mapping import Demapper, Mapper

from phy import DigitalLink, LinkConfig, snr_db_from_ebno_db, theory
from phy.calibrate import sionna_sys_snr_at_bler
from phy.ldpc import EarlyStopLDPC5GDecoder


def _llrs(enc, m, ebno_db, batch, seed):
    g = torch.Generator().manual_seed(seed)
    u = torch.randint(0, 2, (batch, enc.k), generator=g).float()
    x = Mapper("qam", m)(enc(u))
    no = 10 ** (-snr_db_from_ebno_db(ebno_db, m, enc.k / enc.n) / 10)
    noise = torch.complex(torch.randn(x.shape, generator=g), torch.randn(x.shape, generator=g))
    y = x + math.sqrt(no / 2) * noise
    return u, Demapper("app", "qam", m)(y, no)


@pytest.mark.parametrize("cn_update", ["boxplus", "boxplus-phi", "offset-minsum"])
@pytest.mark.parametrize("k, n, m", [(100, 300, 2), (600, 1200, 4)])
def test_early_stop_decoder_without_stopping_is_bit_identical_to_sionna(cn_update, k, n, m):
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=m)
    _, llr = _llrs(enc, m, 1.5, 24, seed=k)
    ref = LDPC5GDecoder(enc, cn_update=cn_update, num_iter=12, hard_out=False)(llr)
    ours = EarlyStopLDPC5GDecoder(enc, cn_update=cn_update, num_iter=12, early_stop=False, kernel="exact")(llr)
    assert torch.equal(ref, ours)


def test_fast_boxplus_kernel_equals_sionna_up_to_rounding():
    """The fast kernel computes Sionna's boxplus rule: after 3 iterations the
    soft outputs agree to float rounding, after 20 the decisions are equal."""
    k, n, m = 500, 1000, 4
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=m)
    for ebno_db in (2.0, 3.0):
        _, llr = _llrs(enc, m, ebno_db, 32, seed=3)
        for iters in (3, 20):
            ref = LDPC5GDecoder(enc, cn_update="boxplus", num_iter=iters, hard_out=False)(llr)
            fast = EarlyStopLDPC5GDecoder(enc, num_iter=iters, early_stop=False, kernel="fast")(llr)
            if iters == 3:
                assert torch.allclose(ref, fast, rtol=1e-4, atol=1e-3)
            else:
                assert torch.equal(ref >= 0, fast >= 0)


def test_early_stopping_retires_valid_codewords_and_matches_plain_bp():
    """Every retired codeword is a codeword (re-encoding its information bits
    gives its coded bits); on every block that plain BP (same rule, same
    maximum iterations) decodes to a codeword, the decisions agree; and
    fewer iterations run."""
    k, n, m = 512, 1024, 2
    enc = LDPC5GEncoder(k, n, num_bits_per_symbol=m)

    def dec(**kw):
        return EarlyStopLDPC5GDecoder(enc, num_iter=20, cn_update="boxplus", **kw)

    es_info, es_cw = dec(), dec(return_infobits=False)
    plain_info, plain_cw = dec(early_stop=False), dec(early_stop=False, return_infobits=False)
    mean_iters = []
    for ebno_db in (1.0, 2.0):
        _, llr = _llrs(enc, m, ebno_db, 40, seed=int(ebno_db * 10))
        (x_es, iters), (xc_es, iters_cw) = es_info(llr, return_iterations=True), es_cw(llr, return_iterations=True)
        u_es, c_es = (x_es >= 0).float(), (xc_es >= 0).float()
        u_pl, c_pl = (plain_info(llr) >= 0).float(), (plain_cw(llr) >= 0).float()
        assert torch.equal(iters, iters_cw)
        retired = iters < 20
        assert torch.equal(enc(u_es[retired]), c_es[retired])
        plain_valid = (enc(u_pl) == c_pl).all(dim=1)
        assert torch.equal(u_es[plain_valid], u_pl[plain_valid])
        assert torch.equal(c_es[plain_valid], c_pl[plain_valid])
        mean_iters.append(float(iters.float().mean()))
    assert mean_iters[1] < mean_iters[0] and mean_iters[1] < 20


def test_ldpc_rate_half_waterfall_where_sionna_sys_puts_it():
    """QPSK, 5G LDPC rate 526/1024 (MCS 7 of PDSCH table 1), K ~ 1000 over AWGN.

    Sionna SYS ships the BLER curve of this MCS for code blocks of 1000 bits
    on a 1.8 dB grid; our BLER must be high 1 dB below its 10 % point and
    low 1 dB above it.  Independently of Sionna, no code can work below the
    BICM limit: there the BLER must be ~1."""
    s10 = sionna_sys_snr_at_bler(table=1, mcs=7, cbs=1000, target=0.1)
    assert s10 is not None
    cfg = LinkConfig(mcs=7, block_length=1000 - 24, channel="awgn")
    link = DigitalLink(cfg)
    g = torch.Generator().manual_seed(0)

    def bler(snr_db, blocks):
        bits = torch.randint(0, 2, (blocks, cfg.block_length), generator=g).float()
        with torch.no_grad():
            return link(bits, snr_db, g).bler

    assert bler(s10 - 1.0, 32) >= 0.5
    assert bler(s10 + 1.0, 160) <= 0.02
    limit_snr = snr_db_from_ebno_db(theory.bicm_ebno_limit_db("qpsk", cfg.effective_code_rate), 2,
                                    cfg.effective_code_rate)
    assert bler(limit_snr, 24) >= 0.9


def test_polar_scl_beats_uncoded_and_reports_crc():
    cfg = LinkConfig(code="polar", modulation="qpsk", code_rate=0.5, block_length=200)
    link = DigitalLink(cfg)
    g = torch.Generator().manual_seed(1)
    bits = torch.randint(0, 2, (60, 200), generator=g).float()
    ebno = 3.0
    res = link(bits, snr_db_from_ebno_db(ebno, 2, cfg.effective_code_rate), g)
    assert res.ber < 0.1 * float(theory.ber_bpsk_awgn(ebno))  # uncoded BER at the same Eb/N0: 2.3e-2
    # the CRC flags exactly the erroneous blocks (up to undetected errors, ~2^-11)
    wrong = (res.bits_hat != bits).any(dim=1)
    assert torch.equal(~res.crc_ok[:, 0], wrong)
