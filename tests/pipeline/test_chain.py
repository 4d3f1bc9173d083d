"""The collaborative chain, image metrics and compute accounting."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pipeline.chain import ChainConfig, ChainConfigError, CollaborativeChain, clear_memo
from pipeline.compute import ComputeAccount
from pipeline.embedded.model import random_pipeline
from pipeline.metrics import image_metrics, mse, psnr_db, ssim

APPLE = "a red apple on a wooden table"
RECEIVERS = ["a yellow lemon on a wooden table", "a green apple on a blue table", "an orange orange on a white table"]
N, K = 6, 3
pytestmark = pytest.mark.filterwarnings("ignore:prompt adherence not measured")


@pytest.fixture(scope="module")
def pipe():
    return random_pipeline()


def _nan_free(row: dict) -> dict:
    return {k: ("nan" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}


def _bsc(ber, **kw):
    return ChainConfig(num_inference_steps=N, num_shared_steps=K, compare_alone=False, classify=False,
                       link={"channel": "bsc", "code": "none", "bit_error_rate": ber}, **kw)


def test_lossless_path_gives_exactly_the_reference(pipe):
    cfg = ChainConfig(num_inference_steps=N, num_shared_steps=K, transmission="lossless", classify=False)
    records = CollaborativeChain(pipe, cfg).run(APPLE, RECEIVERS, seed=2)
    assert len(records) == len(RECEIVERS)
    for rec, prompt in zip(records, RECEIVERS):
        np.testing.assert_array_equal(rec.image, rec.reference_image)
        row = rec.to_row()
        assert row["mse"] == 0.0 and row["psnr_db"] == math.inf and row["ssim"] == 1.0
        assert row["payload_bits"] == 0 and rec.receiver_prompt == prompt and row["latent_mse"] == 0.0
    # the reference is the receiver finishing the sender's exact state with its own prompt
    from pipeline.split import SplitDiffusion

    sd = SplitDiffusion(pipe)
    state = sd.shared(APPLE, N, K, seed=2)
    np.testing.assert_array_equal(records[0].reference_image, sd.finish(state, RECEIVERS[0]))
    # and the stand-alone image is the receiver's own full generation
    np.testing.assert_array_equal(records[0].alone_image, sd.generate(RECEIVERS[0], N, seed=2))


def _coded_awgn(**kw):
    """QPSK, rate-1/2 5G LDPC with CRC over AWGN at 6 dB: every code block decodes (BLER < 1e-4 at 1.5 dB)."""
    return ChainConfig(num_inference_steps=N, num_shared_steps=K, compare_alone=False, classify=False,
                       codec={"name": "uniform", "bits": 8}, snr_db=6.0,
                       link={"channel": "awgn", "code": "ldpc", "modulation": "qpsk", "code_rate": 0.5,
                             "block_length": 1024}, **kw)


def test_near_perfect_link_with_8_bit_quantisation_comes_close(pipe):
    """Over a coded link where every block decodes, the soft (default) receiver gets exactly the bits that
    were sent: its images equal those of an error-free bit pipe with the same 8-bit codec, and are close to
    the unquantised reference (only the 8-bit quantisation separates them)."""
    exact = CollaborativeChain(pipe, _bsc(0.0, codec={"name": "uniform", "bits": 8})).run(APPLE, RECEIVERS, seed=2)
    coded = CollaborativeChain(pipe, _coded_awgn()).run(APPLE, RECEIVERS, seed=2)
    assert _coded_awgn().soft_decoding is True  # the default path is the one tested
    for rec, ref in zip(coded, exact):
        row = rec.to_row()
        assert row["bit_errors"] == 0 and row["header_corrupted"] is False, row
        assert row["block_errors"] == 0 and row["num_blocks"] > 0, row
        np.testing.assert_array_equal(rec.image, ref.image)
        assert row["psnr_db"] > 35.0 and row["ssim"] > 0.99, row
        assert row["psnr_db"] == pytest.approx(ref.to_row()["psnr_db"])


def test_the_coded_link_test_catches_soft_decoding_of_clean_blocks(pipe, monkeypatch):
    """Without the link's CRC flags the codec decodes clean blocks softly (MMSE on finite LLRs) and the image
    changes: the test above would fail if the transport ignored ``crc_ok_bits``."""
    import dataclasses

    from phy import DigitalLink

    forward = DigitalLink.forward

    def forward_without_crc(self, *args, **kwargs):
        res = forward(self, *args, **kwargs)
        return dataclasses.replace(res, crc_ok_bits=torch.zeros_like(res.crc_ok_bits))

    exact = CollaborativeChain(pipe, _bsc(0.0, codec={"name": "uniform", "bits": 8})).run(APPLE, RECEIVERS, seed=2)
    monkeypatch.setattr(DigitalLink, "forward", forward_without_crc)
    clear_memo()
    damaged = CollaborativeChain(pipe, _coded_awgn()).run(APPLE, RECEIVERS, seed=2)
    assert all(r.to_row()["bit_errors"] == 0 for r in damaged)
    assert any(not np.array_equal(r.image, e.image) for r, e in zip(damaged, exact))


def test_heavier_noise_gives_lower_quality_on_average(pipe):
    def mean_quality(ber):
        rows = [r.to_row() for seed in (0, 1) for r in
                CollaborativeChain(pipe, _bsc(ber, header_over_link=False)).run(APPLE, RECEIVERS, seed=seed)]
        return np.mean([r["psnr_db"] for r in rows]), np.mean([r["ssim"] for r in rows]), \
            np.mean([r["ber"] for r in rows])

    p_lo, s_lo, ber_lo = mean_quality(0.002)
    p_hi, s_hi, ber_hi = mean_quality(0.03)
    assert ber_hi > ber_lo
    assert p_hi < p_lo and s_hi < s_lo


def test_analog_transmission_and_noise_matching(pipe):
    base = dict(num_inference_steps=N, num_shared_steps=K, transmission="analog", codec={"name": "analog"},
                link={"channel": "awgn"}, header_over_link=False, compare_alone=False, classify=False)
    good = [r.to_row() for r in CollaborativeChain(pipe, ChainConfig(snr_db=30.0, **base)).run(APPLE, RECEIVERS, 1)]
    bad = [r.to_row() for r in CollaborativeChain(pipe, ChainConfig(snr_db=0.0, **base)).run(APPLE, RECEIVERS, 1)]
    assert np.mean([r["psnr_db"] for r in good]) > np.mean([r["psnr_db"] for r in bad])
    assert all(r["latent_noise_var"] > 0 and r["channel_uses"] > 0 for r in good)
    matched = CollaborativeChain(pipe, ChainConfig(snr_db=0.0, analog_noise_matching=True, **base)).run(
        APPLE, RECEIVERS[:1], 1)[0].to_row()
    assert matched["matched_sigma"] == pytest.approx(
        math.sqrt(matched["nominal_sigma"] ** 2 + matched["latent_noise_var"]))
    assert matched["matched_sigma"] > matched["nominal_sigma"]
    # the nominal resume of the same received latents is the plain analog chain's image
    plain = [r for r in bad if r["snr_db"] == 0.0][0]
    assert matched["psnr_db_nominal_resume"] == pytest.approx(plain["psnr_db"])


def test_corrupted_header_makes_the_receiver_generate_alone(pipe):
    cfg = _bsc(0.3)
    rec = CollaborativeChain(pipe, cfg).run(APPLE, RECEIVERS[:1], seed=0)[0]
    row = rec.to_row()
    assert row["header_corrupted"] is True and row["fallback_generate_alone"] is True
    from pipeline.split import SplitDiffusion

    np.testing.assert_array_equal(rec.image, SplitDiffusion(pipe).generate(RECEIVERS[0], N, seed=0))
    assert row["unet_evals_receiver"] == row["unet_evals_alone"] == 2 * N
    # one accounting, right when the receiver fell back: it saved nothing, and the sender's steps were in vain
    assert row["receiver_compute_saved_fraction"] == 0.0 and row["num_fallback_receivers"] == 1
    assert row["unet_evals_group"] == 2 * K + 2 * N
    assert row["compute_saved_fraction"] == pytest.approx(1 - (2 * K + 2 * N) / (2 * N))
    assert row["compute_saved_fraction"] < 0


def test_compute_accounting_with_some_receivers_falling_back(pipe, monkeypatch):
    chain = CollaborativeChain(pipe, _bsc(0.0))
    real = chain._transmit

    def lose_second_header(state, seed, receiver):  # the transport's answer on header loss: latents None
        rx, link, pay = real(state, seed, receiver)
        return (None, {**link, "header_corrupted": True}, pay) if receiver == 1 else (rx, link, pay)

    monkeypatch.setattr(chain, "_transmit", lose_second_header)
    rows = [r.to_row() for r in chain.run(APPLE, RECEIVERS, seed=0)]
    r = len(RECEIVERS)
    group = 2 * K + (r - 1) * 2 * (N - K) + 2 * N
    assert [row["fallback_generate_alone"] for row in rows] == [False, True, False]
    assert [row["receiver_compute_saved_fraction"] for row in rows] == [K / N, 0.0, K / N]
    assert [row["unet_evals_receiver"] for row in rows] == [2 * (N - K), 2 * N, 2 * (N - K)]
    assert {row["unet_evals_group"] for row in rows} == {group}
    assert [row["compute_saved_fraction"] for row in rows] == pytest.approx([1 - group / (r * 2 * N)] * r)
    acc = ComputeAccount(N, K, r, guidance=True, num_fallbacks=r)
    assert acc.compute_saved_fraction == pytest.approx(-K / (r * N))  # all fall back: sharing cost extra
    with pytest.raises(ValueError, match="num_fallbacks must be an int in \\[0, num_receivers=3\\]"):
        ComputeAccount(N, K, r, num_fallbacks=4)


class _ToyJudge:
    """Adherent when the prompt names red; abstains on a flat image."""

    def __init__(self):
        self.calls = []

    def judge(self, images, prompts):
        from pipeline.judge import Judgement

        self.calls.append((images.shape, list(prompts)))
        return [Judgement(label=None, adherent=False, abstained=True, confidence=0.0) if im.std() == 0 else
                Judgement(label="red thing", adherent="red" in p, abstained=False, confidence=0.9)
                for im, p in zip(images, prompts)]


def test_chain_takes_a_judge_object_and_fills_the_adherence_columns(pipe):
    cfg = ChainConfig(num_inference_steps=N, num_shared_steps=K, transmission="lossless")
    judge = _ToyJudge()
    rows = [r.to_row() for r in CollaborativeChain(pipe, cfg, judge=judge).run(APPLE, [APPLE, RECEIVERS[0]], seed=0)]
    assert judge.calls == [((3, 32, 32, 3), [APPLE] * 3), ((3, 32, 32, 3), [RECEIVERS[0]] * 3)]
    assert [(r["classified_as"], r["adherent"], r["judge_abstained"], r["reference_adherent"], r["alone_adherent"])
            for r in rows] == [("red thing", True, False, True, True), ("red thing", False, False, False, False)]
    # no judge (or classify off): the columns exist and are empty
    row = CollaborativeChain(pipe, cfg).run(APPLE, [APPLE], seed=0)[0].to_row()
    assert all(row[c] is None for c in ("classified_as", "adherent", "judge_abstained", "reference_adherent",
                                        "alone_adherent"))
    with pytest.raises(ValueError, match="judge must follow pipeline.judge.Judge"):
        CollaborativeChain(pipe, cfg, judge=object())


def test_runtime_modules_never_import_the_embedded_world():
    import ast
    from pathlib import Path

    import pipeline

    root = Path(pipeline.__file__).parent
    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [("." * node.level) + (node.module or "")] if isinstance(node, ast.ImportFrom) else []
            assert not any("embedded" in n for n in names), (path.name, names)


def test_same_config_and_seed_give_identical_records(pipe):
    cfg = _bsc(0.01)
    a = CollaborativeChain(pipe, cfg).run(APPLE, RECEIVERS[:2], seed=5)
    clear_memo()
    b = CollaborativeChain(pipe, cfg).run(APPLE, RECEIVERS[:2], seed=5)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.image, y.image)
        assert _nan_free(x.to_row()) == _nan_free(y.to_row())
    c = CollaborativeChain(pipe, cfg).run(APPLE, RECEIVERS[:2], seed=6)
    assert c[0].to_row()["bit_errors"] != a[0].to_row()["bit_errors"] or \
        not np.array_equal(c[0].image, a[0].image)


def test_memo_avoids_recomputing_shared_steps_and_references(pipe):
    clear_memo()
    first = CollaborativeChain(pipe, _bsc(0.0))
    first.run(APPLE, RECEIVERS, seed=3)
    r = len(RECEIVERS)
    assert first.split.unet_evals == 2 * K + 2 * r * 2 * (N - K)  # shared + references + received
    second = CollaborativeChain(pipe, _bsc(0.05, header_over_link=False))
    second.run(APPLE, RECEIVERS, seed=3)
    assert second.split.unet_evals == r * 2 * (N - K)  # only the receivers' own steps


def test_row_has_flat_scalar_columns_with_units(pipe):
    cfg = _bsc(0.01, bandwidth_hz=1e6)
    row = CollaborativeChain(pipe, cfg).run(APPLE, RECEIVERS, seed=0)[1].to_row()
    for col in ("mse", "psnr_db", "ssim", "bit_errors", "ber", "channel_uses", "airtime_s", "payload_bits",
                "num_repaired", "unet_evals_sender", "unet_evals_receiver", "unet_evals_alone",
                "compute_saved_fraction", "channel_uses_per_pixel", "adherent", "classified_as"):
        assert col in row, col
    assert all(v is None or isinstance(v, (int, float, str, bool)) for v in row.values())
    assert row["airtime_s"] == pytest.approx(row["channel_uses"] / 1e6)
    assert row["ber"] == pytest.approx(row["bit_errors"] / row["num_bits"])
    assert row["channel_uses_per_pixel"] == pytest.approx(row["channel_uses"] / 32 ** 2)
    latent_values = pipe.unet.config.in_channels * (32 // pipe.vae_scale_factor) ** 2
    assert row["channel_uses_per_latent_value"] == pytest.approx(row["channel_uses"] / latent_values)
    assert row["bit_errors"] > 0 and 0 < row["latent_mse"] < math.inf      # received vs sent latents
    acc = ComputeAccount(N, K, len(RECEIVERS), guidance=True)
    assert row["unet_evals_sender"] == 2 * K and row["unet_evals_receiver"] == 2 * (N - K)
    assert row["compute_saved_fraction"] == pytest.approx(acc.compute_saved_fraction)


def test_chain_config_errors():
    with pytest.raises(ValueError, match="num_shared_steps \\(12\\) must be <= num_inference_steps \\(11\\)"):
        ChainConfig(num_inference_steps=11, num_shared_steps=12)
    with pytest.raises(ValueError, match="unknown parameter 'num_shared_step'"):
        ChainConfig(num_shared_step=3)
    with pytest.raises(ValueError, match="transmission='analog' needs codec name 'analog'"):
        ChainConfig(transmission="analog", snr_db=10.0)
    with pytest.raises(ValueError, match="snr_db is needed for channel 'awgn'"):
        ChainConfig()
    with pytest.raises(ValueError, match="Euler-type"):
        ChainConfig(transmission="analog", codec={"name": "analog"}, snr_db=3.0, analog_noise_matching=True,
                    scheduler="ddim")
    with pytest.raises(ChainConfigError, match="ChainConfig.scheduler: Input should be 'euler_ancestral'"):
        ChainConfig(scheduler="heun", snr_db=3.0)
    with pytest.raises(ChainConfigError, match="^ChainConfig.snr_db: Input should be a valid number"):
        ChainConfig.model_validate({"snr_db": "x"})
    with pytest.raises(ValueError, match="contradicts soft_decoding"):
        ChainConfig(snr_db=3.0, codec={"name": "uniform", "decoding": "hard"}, soft_decoding=True)


def test_run_rejects_bad_input(pipe):
    chain = CollaborativeChain(pipe, _bsc(0.0))
    with pytest.raises(ValueError, match="receiver_prompts"):
        chain.run(APPLE, [], seed=0)
    with pytest.raises(ValueError, match="shared_prompt"):
        chain.run("", RECEIVERS, seed=0)
    with pytest.raises(ValueError, match="seed must be an int"):
        chain.run(APPLE, RECEIVERS, seed=1.5)


# ------------------------------------------------------------------------------------ metrics, compute
def test_metrics_closed_forms():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = a.copy()
    b[:8] = 110  # half the pixels off by 10
    assert mse(b, a) == pytest.approx(50.0)
    assert psnr_db(b, a) == pytest.approx(10 * math.log10(255 ** 2 / 50.0))
    assert psnr_db(a, a) == math.inf and ssim(a, a) == pytest.approx(1.0)
    assert ssim(b, a) < 1.0
    assert set(image_metrics(b, a)) == {"mse", "psnr_db", "ssim"}
    with pytest.raises(ValueError, match="uint8"):
        mse(a.astype(np.float32), a)
    with pytest.raises(ValueError, match="\\[H, W, 3\\]"):
        mse(a[..., :2], a[..., :2])


def test_compute_account_closed_forms():
    c = ComputeAccount(num_inference_steps=11, num_shared_steps=5, num_receivers=4, guidance=True)
    assert (c.unet_evals_sender, c.unet_evals_receiver, c.unet_evals_alone) == (10, 12, 22)
    assert c.compute_saved_fraction == pytest.approx(5 * 3 / (4 * 11))
    assert ComputeAccount(11, 5, 1).compute_saved_fraction == 0.0  # one receiver saves nothing overall
    assert ComputeAccount(11, 0, 4, guidance=False).unet_evals_group == 44
    with pytest.raises(ValueError, match="num_shared_steps"):
        ComputeAccount(11, 12, 2)
    with pytest.raises(ValueError, match="num_receivers"):
        ComputeAccount(11, 2, 0)


def test_chain_with_scheduler_none_runs_the_pipelines_own_scheduler():
    from diffusers import DDIMScheduler

    from pipeline.embedded.model import random_pipeline
    from pipeline.split import SplitDiffusion

    own = random_pipeline()
    own.scheduler = DDIMScheduler.from_config(own.scheduler.config)
    cfg = ChainConfig(num_inference_steps=N, num_shared_steps=K, transmission="lossless", scheduler=None,
                      compare_alone=False)
    chain = CollaborativeChain(own, cfg)
    assert chain.scheduler_name == "ddim"
    rec = chain.run(APPLE, [RECEIVERS[0]], seed=1)[0]
    sd = SplitDiffusion(own)
    np.testing.assert_array_equal(rec.image, sd.finish(sd.shared(APPLE, N, K, seed=1, scheduler="ddim"), RECEIVERS[0]))


def _unet_forward_calls(pipe):
    calls = []
    handle = pipe.unet.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_batched_receivers_are_deterministic_and_close_to_batch_one(pipe):
    """batch_receivers: one UNet batch per group; same rows on a rerun; images within rounding of batch 1."""
    single = CollaborativeChain(pipe, _bsc(0.01)).run(APPLE, RECEIVERS, seed=4)
    clear_memo()
    calls, handle = _unet_forward_calls(pipe)
    try:
        chain = CollaborativeChain(pipe, _bsc(0.01, batch_receivers=True))
        batched = chain.run(APPLE, RECEIVERS, seed=4)
    finally:
        handle.remove()
    # shared K steps, then one batch of receivers' references and one of received latents: K + 2 (N - K) calls
    assert len(calls) == K + 2 * (N - K)
    assert chain.split.unet_evals == 2 * K + 2 * len(RECEIVERS) * 2 * (N - K)      # the accounting is per sample
    clear_memo()
    again = CollaborativeChain(pipe, _bsc(0.01, batch_receivers=True)).run(APPLE, RECEIVERS, seed=4)
    for s, b, a in zip(single, batched, again):
        np.testing.assert_array_equal(b.image, a.image)
        assert _nan_free(b.to_row()) == _nan_free(a.to_row())
        # the same received bits; batched convolutions round differently, so images agree within a few levels
        assert b.to_row()["bit_errors"] == s.to_row()["bit_errors"]
        assert np.abs(b.image.astype(int) - s.image.astype(int)).max() <= 3
        assert np.abs(b.reference_image.astype(int) - s.reference_image.astype(int)).max() <= 3


def test_batched_receivers_lossless_is_exact_and_fallbacks_generate_alone(pipe, monkeypatch):
    lossless = ChainConfig(num_inference_steps=N, num_shared_steps=K, transmission="lossless", classify=False,
                           batch_receivers=True)
    for rec in CollaborativeChain(pipe, lossless).run(APPLE, RECEIVERS, seed=2):
        np.testing.assert_array_equal(rec.image, rec.reference_image)     # same batch, same latents: exact
    chain = CollaborativeChain(pipe, _bsc(0.0, batch_receivers=True).model_copy(update={"compare_alone": True}))
    real = chain._transmit

    def lose_second_header(state, seed, receiver):
        rx, link, pay = real(state, seed, receiver)
        return (None, {**link, "header_corrupted": True}, pay) if receiver == 1 else (rx, link, pay)

    monkeypatch.setattr(chain, "_transmit", lose_second_header)
    records = chain.run(APPLE, RECEIVERS, seed=0)
    assert [r.to_row()["fallback_generate_alone"] for r in records] == [False, True, False]
    np.testing.assert_array_equal(records[1].image, records[1].alone_image)
    assert not np.array_equal(records[0].image, records[0].alone_image)


def test_run_groups_batches_every_groups_receivers_and_keeps_each_groups_link(pipe):
    cat = "a black cat on a wooden table"
    groups = [(APPLE, RECEIVERS[:2]), (cat, ["a white rabbit on a wooden table"])]
    alone = [CollaborativeChain(pipe, _bsc(0.01)).run(s, r, seed=3) for s, r in groups]
    clear_memo()
    calls, handle = _unet_forward_calls(pipe)
    try:
        together = CollaborativeChain(pipe, _bsc(0.01, batch_receivers=True)).run_groups(groups, seed=3)
    finally:
        handle.remove()
    assert len(calls) == 2 * K + 2 * (N - K)          # 2 senders, then one batch of references, one of receivers
    assert [len(g) for g in together] == [2, 1]
    for one, many in zip(alone, together):
        for a, b in zip(one, many):
            ra, rb = a.to_row(), b.to_row()
            assert (ra["bit_errors"], ra["num_receivers"]) == (rb["bit_errors"], rb["num_receivers"])
            assert np.abs(a.image.astype(int) - b.image.astype(int)).max() <= 3
    # without batching, run_groups is run per group, digit for digit
    clear_memo()
    plain = CollaborativeChain(pipe, _bsc(0.01)).run_groups(groups, seed=3)
    for one, many in zip(alone, plain):
        for a, b in zip(one, many):
            np.testing.assert_array_equal(a.image, b.image)
            assert _nan_free(a.to_row()) == _nan_free(b.to_row())
    with pytest.raises(ValueError, match="groups must be a non-empty list"):
        CollaborativeChain(pipe, _bsc(0.01)).run_groups([], seed=0)
