"""latent_codec: bit packing, the protected header, bit orders and UEP mapping."""

import math

import pytest
import torch

from latent_codec import (
    Header,
    HeaderCorruptedError,
    LloydMaxCodec,
    UniformQuantizerCodec,
    bitplane_permutation,
    bits_to_float16,
    bits_to_int,
    float16_to_bits,
    header_error_probability,
    importance_permutation,
    int_to_bits,
    inverse_permutation,
    parse_header,
    qam_bit_reliability_classes,
)


# ----------------------------------------------------------------------------- packing


def test_int_bits_roundtrip_msb_first():
    codes = torch.tensor([[0, 1, 5, 7], [6, 2, 3, 4]])
    bits = int_to_bits(codes, 3)
    assert bits.dtype == torch.float32 and bits.shape == (2, 12)
    assert bits[0, 6:9].tolist() == [1.0, 0.0, 1.0]  # 5 = 101, MSB first
    assert torch.equal(bits_to_int(bits, 3), codes)


@pytest.mark.parametrize("b", [1, 7, 16])
def test_int_bits_roundtrip_all_codes(b):
    codes = torch.arange(2**b).reshape(1, -1)
    assert torch.equal(bits_to_int(int_to_bits(codes, b), b), codes)


def test_float16_bits_are_ieee_layout_and_exact():
    x = torch.tensor([[1.0, -2.0, 65504.0, 6e-8, 0.0, -0.0]])
    bits = float16_to_bits(x)
    # 1.0 = 0 01111 0000000000
    assert bits[0, :16].tolist() == [0] + [0, 1, 1, 1, 1] + [0] * 10
    assert bits[0, 16] == 1.0  # sign of -2
    back = bits_to_float16(bits)
    assert torch.equal(back.view(torch.int16), x.half().view(torch.int16))


def test_bad_bits_per_value_rejected():
    with pytest.raises(ValueError, match="bits_per_value"):
        int_to_bits(torch.tensor([[1]]), 0)
    with pytest.raises(ValueError, match="multiple"):
        bits_to_int(torch.zeros(1, 5), 2)


# ----------------------------------------------------------------------------- header


def _header(batch=2, codec="uniform"):
    g = torch.Generator().manual_seed(0)
    params = (torch.randn(batch, 4, 2, generator=g) * 10).half().float()
    return Header(codec, (4, 16, 16), params, bits_per_value=8) if codec == "uniform" else None


def test_header_roundtrip_bit_exact():
    h = _header()
    bits = h.to_bits()
    assert bits.shape == (2, 5 * h.num_info_bits())
    back = parse_header(bits)
    assert back.matches(h) and torch.equal(back.params, h.params)
    # soft input (LLRs) too
    back = parse_header((2 * bits - 1) * 4.0, llrs=True)
    assert torch.equal(back.params, h.params)


def test_header_repairs_minority_errors_and_detects_majority_errors():
    h = _header()
    bits = h.to_bits(repetition=5)
    k = h.num_info_bits()
    bad = bits.clone()
    bad[0, [3, k + 3]] = 1 - bad[0, [3, k + 3]]  # 2 of 5 copies of one bit: the vote repairs it
    assert torch.equal(parse_header(bad).params, h.params)
    bad[0, 2 * k + 3] = 1 - bad[0, 2 * k + 3]  # 3 of 5: the vote is wrong, the CRC must catch it
    with pytest.raises(HeaderCorruptedError, match="CRC") as err:
        parse_header(bad)
    assert err.value.failed_rows == [0]


def test_header_corruption_detected_under_random_errors():
    """Heavy random corruption: every damaged row is rejected, never silently accepted."""
    h = _header(batch=1)
    bits = h.to_bits(repetition=1)
    g = torch.Generator().manual_seed(1)
    rejected = 0
    for _ in range(200):
        flips = (torch.rand(bits.shape, generator=g) < 0.05).float()
        if flips.sum() == 0:
            continue
        with pytest.raises(HeaderCorruptedError):
            parse_header((bits + flips) % 2, repetition=1)
        rejected += 1
    assert rejected > 150


def test_header_wrong_length_is_a_clear_error():
    with pytest.raises(ValueError, match="multiple of 8"):
        parse_header(torch.zeros(1, 12), repetition=5)


def test_header_error_probability_closed_form():
    # one info bit, repetition 3: P = 3p^2(1-p) + p^3
    p = 0.1
    assert math.isclose(header_error_probability(1, 3, p), 3 * p**2 * (1 - p) + p**3)
    assert header_error_probability(100, 5, 0.0) == 0.0


def test_header_failure_rate_matches_closed_form():
    h = _header(batch=1)
    bits = h.to_bits(repetition=3)
    ber = 0.03
    g = torch.Generator().manual_seed(2)
    trials = 400
    x = bits.repeat(trials, 1)
    noisy = (x + (torch.rand(x.shape, generator=g) < ber).float()) % 2
    lost = 0
    for row in noisy:
        try:
            parse_header(row.unsqueeze(0), repetition=3)
        except HeaderCorruptedError:
            lost += 1
    expected = header_error_probability(h.num_info_bits(), 3, ber)
    sd = math.sqrt(expected * (1 - expected) / trials)
    assert abs(lost / trials - expected) < 4 * sd + 1e-3


def test_decompress_refuses_corrupted_header():
    codec = UniformQuantizerCodec(bits=4)
    p = codec.compress(torch.randn(1, 4, 8, 8))
    hb = p.header_bits.clone()
    hb[:, :] = 1 - hb  # every copy of every bit flipped
    with pytest.raises(HeaderCorruptedError, match="refusing"):
        codec.decompress(p.bits, hb)


def test_decompress_refuses_header_of_another_codec():
    p = LloydMaxCodec(bits=3).compress(torch.randn(1, 4, 8, 8))
    with pytest.raises(ValueError, match="codec_from_header"):
        UniformQuantizerCodec(bits=3).decompress(p.bits, p.header)


# ----------------------------------------------------------------------------- orders / UEP


def test_bitplane_permutation_groups_msbs_first():
    codes = torch.tensor([[3, 0, 2]])  # 11 00 10
    vm = int_to_bits(codes, 2)
    perm = bitplane_permutation(3, 2)
    assert vm[:, perm].tolist() == [[1, 0, 1, 1, 0, 0]]
    assert torch.equal(vm[:, perm][:, inverse_permutation(perm)], vm)


@pytest.mark.parametrize("m", [1, 2, 4, 6, 8])
def test_importance_permutation_is_invertible_and_puts_msbs_on_strong_positions(m):
    n_values, b = 30, 5
    importance = (4.0 ** torch.arange(b - 1, -1, -1)).repeat(n_values)
    perm = importance_permutation(importance, m)
    inv = inverse_permutation(perm)
    assert torch.equal(torch.sort(perm).values, torch.arange(perm.numel()))
    x = torch.rand(3, perm.numel())
    assert torch.equal(x[:, perm][:, inv], x)
    sent_importance = importance[perm]
    cls = qam_bit_reliability_classes(m)[torch.arange(perm.numel()) % m]
    # every bit in a stronger class is at least as important as every bit in a weaker one
    for c in range(int(cls.max())):
        assert sent_importance[cls == c].min() >= sent_importance[cls == c + 1].max()


def test_bad_bits_per_symbol_rejected():
    with pytest.raises(ValueError, match="bits_per_symbol"):
        qam_bit_reliability_classes(3)
    with pytest.raises(ValueError, match="needs bits_per_symbol"):
        UniformQuantizerCodec(bits=4, bit_order="interleaved_by_importance")
    with pytest.raises(ValueError, match="only used"):
        UniformQuantizerCodec(bits=4, bits_per_symbol=4)


def _gray_qam_points(m: int) -> torch.Tensor:
    """Gray QAM as in 3GPP 38.211 5.1: bits 0, 2, .. -> I; 1, 3, .. -> Q (oracle for Sionna)."""

    def pam(b):
        return (1 - 2 * b[0]) * (2 ** len(b[1:]) - pam(b[1:])) if len(b) > 1 else 1 - 2 * b[0]

    labels = int_to_bits(torch.arange(2**m).unsqueeze(-1), m).long()
    pts = torch.tensor([complex(pam(l[0::2].tolist()), pam(l[1::2].tolist())) for l in labels])
    return pts / pts.abs().pow(2).mean().sqrt()


def _per_position_ber(points: torch.Tensor, m: int, snr_db: float, n: int = 20000) -> torch.Tensor:
    g = torch.Generator().manual_seed(3)
    idx = torch.randint(0, 2**m, (n,), generator=g)
    nv = 10 ** (-snr_db / 10)
    noise = torch.randn(n, 2, generator=g) * math.sqrt(nv / 2)
    y = points[idx] + torch.complex(noise[:, 0], noise[:, 1])
    det = (y.unsqueeze(1) - points.unsqueeze(0)).abs().argmin(1)
    labels = int_to_bits(torch.arange(2**m).unsqueeze(-1), m)
    return (labels[idx] != labels[det]).float().mean(0)


@pytest.mark.parametrize("m", [4, 6])
def test_qam_reliability_classes_match_sionna_constellation(m):
    mapping = pytest.importorskip("sionna.phy.mapping")
    points = mapping.Constellation("qam", m).points.to(torch.complex64)
    assert torch.allclose(points, _gray_qam_points(m).to(torch.complex64), atol=1e-6)
    ber = _per_position_ber(points, m, snr_db=14.0 if m == 4 else 20.0)
    cls = qam_bit_reliability_classes(m)
    per_class = torch.stack([ber[cls == c].mean() for c in range(m // 2)])
    assert torch.all(per_class[1:] > per_class[:-1] * 1.3), per_class


def _q(x: float) -> float:
    return 0.5 * math.erfc(x / math.sqrt(2))


def test_uep_mapping_lowers_mse_on_16qam_as_predicted():
    """MSBs on the strong label positions of uncoded Gray 16-QAM lower the MSE.

    With 6-bit values and MSB-first packing, half the values start on the weak
    positions 2, 3 of a symbol. First-order theory: MSE ~ sum_j importance_j *
    BER(class of the slot of bit j), with the 4-PAM bit error rates
    BER_strong = (Q(d/s) + Q(3d/s)) / 2, BER_weak = Q(d/s) + (Q(3d/s) - Q(5d/s)) / 2.
    """
    m, b, snr_db = 4, 6, 12.0
    points = _gray_qam_points(m)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(8, 4, 32, 32, generator=g)
    nv = 10 ** (-snr_db / 10)
    mse, predicted = {}, {}
    d_over_s = (1 / math.sqrt(10)) / math.sqrt(nv / 2)
    ber = {0: 0.5 * (_q(d_over_s) + _q(3 * d_over_s)),
           1: _q(d_over_s) + 0.5 * (_q(3 * d_over_s) - _q(5 * d_over_s))}
    for order in ("msb_first", "interleaved_by_importance"):
        codec = UniformQuantizerCodec(bits=b, bit_order=order,
                                      bits_per_symbol=m if order != "msb_first" else None)
        p = codec.compress(x)
        cls = qam_bit_reliability_classes(m)[torch.arange(p.num_body_bits) % m]
        predicted[order] = float(sum(p.bit_importance[cls == c].sum() * ber[c] for c in (0, 1)))
        idx = bits_to_int(p.bits, m)
        noise = torch.randn(*idx.shape, 2, generator=torch.Generator().manual_seed(5)) * math.sqrt(nv / 2)
        y = points[idx] + torch.complex(noise[..., 0], noise[..., 1])
        rx = int_to_bits((y.unsqueeze(-1) - points).abs().argmin(-1), m)
        mse[order] = float(((codec.decompress(rx, p.header).latents - x) ** 2).mean())
    ratio = mse["interleaved_by_importance"] / mse["msb_first"]
    ratio_theory = predicted["interleaved_by_importance"] / predicted["msb_first"]
    assert ratio_theory < 0.8
    assert ratio < 0.85 and abs(ratio - ratio_theory) < 0.1, (ratio, ratio_theory, mse)
