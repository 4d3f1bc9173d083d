"""LinkConfig validation, derived quantities, MCS tables, theory, and the CLI."""

import csv
import json
import math

import numpy as np
import pytest

from experiments.cli import main
from phy import LinkConfig, mcs_entry, mcs_table, parse_snr_db_list, theory


# --------------------------------------------------------------------------
# configuration errors: one line, naming the parameter and the allowed values
# --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kw, words",
    [
        (dict(modulation="8psk"), ["modulation", "'bpsk'", "'256qam'"]),
        (dict(code="turbo"), ["code", "'ldpc'", "'polar'"]),
        (dict(channel="tdl-f"), ["channel", "'tdl-e'", "'bsc'"]),
        (dict(speed_mps=-1.0), ["speed_mps", "greater than or equal to 0"]),
        (dict(code_rate=0.99), ["code_rate", "0.95"]),
        (dict(code_rate=0.0), ["code_rate", "greater than 0"]),
        (dict(block_length=9000), ["block_length", "8448"]),
        (dict(code="polar", block_length=2000), ["block_length", "1088"]),
        (dict(code="none", code_rate=0.5), ["code_rate", "code='none'"]),
        (dict(mcs=29), ["mcs", "0..28"]),
        (dict(mcs=3, code="polar"), ["mcs", "ldpc"]),
        (dict(mcs=10, modulation="qpsk"), ["modulation", "contradicts", "16qam"]),
        (dict(bit_error_rate=0.7), ["bit_error_rate", "0.5"]),
        (dict(csi="mmse"), ["csi", "'perfect'", "'ls'"]),
        (dict(modualtion="qpsk"), ["unknown parameter", "modualtion"]),
        (dict(channel="tdl-a", pilot_ofdm_symbol_indices=(2, 14)), ["pilot_ofdm_symbol_indices", "0..13"]),
    ],
)
def test_bad_config_is_a_one_line_value_error_naming_the_parameter(kw, words):
    with pytest.raises(ValueError) as exc:
        LinkConfig(**kw)
    msg = str(exc.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg, (w, msg)


def test_config_is_frozen_and_validates_dicts():
    cfg = LinkConfig.model_validate({"modulation": "16qam"})
    assert cfg.bits_per_symbol == 4
    with pytest.raises(ValueError, match="modulation"):
        LinkConfig.model_validate({"modulation": "x"})
    with pytest.raises(Exception):
        cfg.modulation = "qpsk"  # type: ignore[misc]
    assert cfg.replace(code="none").code_rate == 1.0


def test_derived_quantities():
    cfg = LinkConfig(modulation="16qam", code="ldpc", code_rate=0.5, block_length=1000)
    # (1000 + 24 CRC) / 0.5 = 2048 coded bits, a whole number of 16-QAM symbols
    assert cfg.codeword_length == 2048
    assert cfg.effective_code_rate == pytest.approx(1000 / 2048)
    assert cfg.info_bits_per_channel_use == pytest.approx(4 * 1000 / 2048)
    assert LinkConfig(code="none", modulation="64qam").info_bits_per_channel_use == 6
    assert LinkConfig(code="polar", block_length=100).crc_name == "crc11"
    assert LinkConfig(code="polar", block_length=15, code_rate=0.3).crc_name == "crc6"
    assert LinkConfig(decoder="sionna").cn_update == "boxplus-phi"
    assert LinkConfig(decoder="sionna").decoder_iterations == 20
    assert LinkConfig().decoder_iterations == 50 and LinkConfig().cn_update == "boxplus"
    auto = LinkConfig(mcs="auto")
    with pytest.raises(ValueError, match="depends on the SNR"):
        _ = auto.bits_per_symbol
    assert auto.for_mcs(20).modulation == "64qam"


def test_mcs_tables_follow_ts_38_214():
    # Table 5.1.3.1-1: I_MCS 0 -> QPSK 120/1024, 10 -> 16QAM 340, 28 -> 64QAM 948
    assert (mcs_entry(0).modulation, round(mcs_entry(0).code_rate * 1024)) == ("qpsk", 120)
    assert (mcs_entry(10).modulation, round(mcs_entry(10).code_rate * 1024)) == ("16qam", 340)
    assert (mcs_entry(28).modulation, round(mcs_entry(28).code_rate * 1024)) == ("64qam", 948)
    # Table 5.1.3.1-2 reaches 256-QAM, index 27 is the last valid one
    assert mcs_entry(27, table=2).modulation == "256qam"
    assert len(mcs_table(2)) == 28
    with pytest.raises(ValueError, match="mcs"):
        mcs_entry(28, table=2)
    cfg = LinkConfig(mcs=10)
    assert cfg.modulation == "16qam" and cfg.code_rate == pytest.approx(340 / 1024)


# --------------------------------------------------------------------------
# theory
# --------------------------------------------------------------------------
def test_qam_ber_formula_special_cases():
    e = np.array([0.0, 5.0, 10.0])
    assert np.allclose(theory.ber_qam_awgn(e, 2), theory.ber_bpsk_awgn(e))
    # high-SNR approximation of Gray 16-QAM: 3/4 Q(sqrt(4/5 Eb/N0))
    hi = 16.0
    approx = 0.75 * theory.qfunc(math.sqrt(0.8 * 10 ** (hi / 10)))
    assert theory.ber_qam_awgn(hi, 4) == pytest.approx(approx, rel=1e-3)


def test_capacities_are_ordered_and_limits_known():
    for mod, m in [("bpsk", 1), ("qpsk", 2), ("16qam", 4), ("64qam", 6), ("256qam", 8)]:
        for snr in (-5.0, 5.0, 15.0):
            cm = theory.constellation_capacity(snr, mod, "cm")
            bicm = theory.constellation_capacity(snr, mod, "bicm")
            assert bicm <= cm + 1e-9 <= theory.shannon_capacity(snr) + 1e-9
        assert theory.constellation_capacity(45.0, mod) == pytest.approx(m, abs=1e-3)
    # QPSK is two BPSKs with half the energy each
    assert theory.constellation_capacity(3.0, "qpsk") == pytest.approx(
        2 * theory.constellation_capacity(3.0 - 10 * math.log10(2), "bpsk"), rel=1e-6
    )
    assert theory.shannon_ebno_limit_db(1.0) == pytest.approx(0.0, abs=1e-12)
    assert theory.bicm_ebno_limit_db("qpsk", 0.5) == pytest.approx(0.187, abs=0.01)  # BPSK rate 1/2
    assert theory.bicm_ebno_limit_db("16qam", 0.5) > theory.bicm_ebno_limit_db("16qam", 0.5, "cm")
    assert theory.bicm_ebno_limit_db("16qam", 0.5, "cm") > theory.shannon_ebno_limit_db(2.0)


def test_16qam_capacity_against_monte_carlo():
    """Independent 2-D Monte Carlo of I(X;Y) with Sionna's constellation."""
    from sionna.phy.mapping import Constellation

    pts = Constellation("qam", 4)().numpy().astype(np.complex128)
    rng = np.random.default_rng(0)
    snr_db, n = 6.0, 40_000
    n0 = 10 ** (-snr_db / 10)
    x = pts[rng.integers(0, 16, n)]
    z = math.sqrt(n0 / 2) * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
    d = -np.abs((x + z)[:, None] - pts[None, :]) ** 2 / n0
    own = -np.abs(z) ** 2 / n0
    loss = (np.logaddexp.reduce(d, axis=1) - own) / math.log(2)
    mc, se = 4 - loss.mean(), loss.std() / math.sqrt(n)
    assert abs(theory.constellation_capacity(snr_db, "16qam", "cm") - mc) < 4.5 * se


# --------------------------------------------------------------------------
# SNR lists and the command line
# --------------------------------------------------------------------------
def test_parse_snr_db_list():
    assert parse_snr_db_list("0:2:6") == [0.0, 2.0, 4.0, 6.0]
    assert parse_snr_db_list("-1.5, 3") == [-1.5, 3.0]
    assert parse_snr_db_list("10:-5:0") == [10.0, 5.0, 0.0]
    for bad in ("", " ", "a,b", "0:0:5", "0:1", "0:-1:5"):
        with pytest.raises(ValueError, match="snr_db"):
            parse_snr_db_list(bad)


def test_cli_link_table_json_and_csv(capsys, tmp_path):
    out = tmp_path / "rows.csv"
    rc = main(["link", "--code", "none", "--snr-db", "0,6", "--num-bits", "4000", "--no-progress",
               "--output", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "snr_db" in text and "bler" in text and "channel_uses" in text
    rows = list(csv.DictReader(open(out)))
    assert [float(r["snr_db"]) for r in rows] == [0.0, 6.0]
    assert float(rows[0]["ber"]) > float(rows[1]["ber"])
    rc = main(["link", "--modulation", "16qam", "--code", "ldpc", "--block-length", "256", "--snr-db", "12",
               "--num-bits", "1000", "--format", "json", "--no-progress"])
    assert rc == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    row = json.loads(lines[0])
    for key in ("snr_db", "ebno_db", "modulation", "code", "code_rate", "mcs_index", "channel", "speed_mps",
                "csi", "num_bits", "bit_errors", "ber", "num_blocks", "block_errors", "bler", "channel_uses"):
        assert key in row
    assert row["num_bits"] == 1024 and row["bit_errors"] == 0


def test_cli_bsc_sweeps_bit_error_rates(capsys):
    rc = main(["link", "--channel", "bsc", "--code", "none", "--bit-error-rate", "0.01,0.2", "--num-bits", "20000",
               "--format", "json", "--no-progress"])
    assert rc == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [r["bit_error_rate"] for r in rows] == [0.01, 0.2]
    assert rows[0]["snr_db"] is None
    assert abs(rows[1]["ber"] - 0.2) < 4.5 * math.sqrt(0.2 * 0.8 / rows[1]["num_bits"])


@pytest.mark.parametrize(
    "argv, words",
    [
        (["link", "--snr-db", ""], ["snr_db", "empty"]),
        (["link", "--code-rate", "0.99", "--snr-db", "1"], ["code_rate", "0.95"]),
        (["link", "--speed-mps", "-3", "--snr-db", "1"], ["speed_mps"]),
        (["link", "--bit-error-rate", "0.1", "--snr-db", "1"], ["bit-error-rate", "bsc"]),
        (["link", "--mcs", "40", "--snr-db", "1"], ["mcs", "0..28"]),
    ],
)
def test_cli_library_errors_are_one_line_exit_2(argv, words, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("distdiff: error: ") and "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err


def test_cli_bad_choice_is_argparse_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["link", "--modulation", "8psk"])
    assert exc.value.code == 2
    assert "invalid choice: '8psk'" in capsys.readouterr().err


def test_cli_link_takes_negative_snrs_as_typed(capsys):
    for spec, expected in (("-5:5:5", [-5.0, 0.0, 5.0]), ("-3,0,3", [-3.0, 0.0, 3.0]), ("-2", [-2.0])):
        rc = main(["link", "--code", "none", "--snr-db", spec, "--num-bits", "200", "--format", "json",
                   "--no-progress"])
        assert rc == 0
        rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
        assert [r["snr_db"] for r in rows] == expected


def test_cli_link_options_come_from_link_config(capsys):
    from experiments.cli import build_parser
    from phy import LinkConfig
    from phy.config import field_choices

    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices["link"]  # pylint: disable=protected-access
    actions = {a.dest: a for a in sub._actions}  # pylint: disable=protected-access
    for name in LinkConfig.model_fields:
        if name == "max_codewords_per_batch":
            continue
        assert name in actions, name
        choices = field_choices(name)
        if choices is not None and name in ("modulation", "channel"):  # comma lists: choices in the metavar
            assert actions[name].metavar == "{" + ",".join(choices) + "}"
        elif choices is not None and name != "mcs":
            assert tuple(actions[name].choices) == choices
        assert actions[name].help and actions[name].default is None
    with pytest.raises(SystemExit):
        main(["link", "--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text
    assert text.count("(default: qpsk)") == 1 and "(default: awgn)" in text


def test_sweep_stops_at_target_block_errors_with_wilson_intervals():
    from phy import sweep_link
    from phy.sweep import wilson_interval

    cfg = LinkConfig(code="none", block_length=100)
    rows = sweep_link(cfg, [0.0, 20.0], 100_000, progress=False, target_block_errors=20, bits_per_call=1000)
    low, high = rows
    # at 0 dB nearly every block fails: the point stops after its first batch (one row of 163 blocks)
    assert 20 <= low["block_errors"] and low["num_bits"] == 16_300
    assert not low["too_few_errors"]
    # at 20 dB QPSK has no errors: the whole budget runs, and the point is flagged
    assert high["num_bits"] == 100_000 and high["block_errors"] == 0 and high["too_few_errors"]
    assert (low["ber_low"], low["ber_high"]) == wilson_interval(low["bit_errors"], low["num_bits"],
                                                                design_effect=low["ber_design_effect"])
    assert low["ber_low"] < low["ber"] < low["ber_high"] and high["bler_low"] == 0.0 < high["bler_high"]
    assert json.loads(low["config"])["block_length"] == 100 and low["seed"] != high["seed"]
    with pytest.raises(ValueError, match="max_bits only applies"):
        sweep_link(cfg, [0.0], 100, progress=False, max_bits=10)


def test_coded_ber_intervals_count_that_bit_errors_come_in_failed_blocks():
    """The bit errors of a coded link cluster in its failed code blocks: across 16 seeds the BER of an LDPC point
    varies ~100x more than independent bits would, and the sweep's interval, widened by the measured design
    effect, covers that spread, where the plain Wilson interval over bits would not; uncoded bits stay ~1."""
    import numpy as np

    from phy import sweep_link
    from phy.sweep import wilson_interval

    rows = [sweep_link(LinkConfig(), [0.9], 32 * 1024, progress=False, seed=s)[0] for s in range(16)]
    ber = np.array([r["ber"] for r in rows])
    n = rows[0]["num_bits"]
    p = ber.mean()
    spread = ber.var(ddof=1) / (p * (1 - p) / n)           # the empirical design effect across seeds
    deff = np.mean([r["ber_design_effect"] for r in rows])  # each point's own estimate
    assert spread > 20 and deff > 20 and 1 / 3 < deff / spread < 3, (spread, deff)
    widened = np.mean([r["ber_high"] - r["ber_low"] for r in rows if r["ber"] > 0])
    plain = np.mean([np.subtract(*wilson_interval(r["bit_errors"], r["num_bits"])[::-1]) for r in rows if r["ber"] > 0])
    assert widened > 4 * plain
    assert 2 * 1.96 * ber.std(ddof=1) == pytest.approx(widened, rel=0.6)   # the width matches the seeds' spread
    # coverage of the pooled BER (measured: 16/16 widened, 3/16 plain)
    assert sum(r["ber_low"] <= p <= r["ber_high"] for r in rows) >= 14
    assert sum(wilson_interval(r["bit_errors"], n)[0] <= p <= wilson_interval(r["bit_errors"], n)[1]
               for r in rows) <= 8
    uncoded = sweep_link(LinkConfig(code="none"), [0.0], 64 * 1024, progress=False)[0]
    assert uncoded["ber_design_effect"] == pytest.approx(1.0, abs=0.35)


def test_cli_link_sweeps_mcs_ranges_and_comma_lists(capsys):
    rc = main(["link", "--modulation", "qpsk,16qam", "--channel", "awgn,rayleigh", "--code", "none",
               "--snr-db", "-3,3", "--num-bits", "2000", "--format", "json", "--no-progress"])
    assert rc == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert len(rows) == 8
    assert {(r["modulation"], r["channel"]) for r in rows} == {
        (m, c) for m in ("qpsk", "16qam") for c in ("awgn", "rayleigh")}
    for r in rows:
        cfg = json.loads(r["config"])
        assert cfg["modulation"] == r["modulation"] and cfg["channel"] == r["channel"]
        assert r["ber_low"] <= r["ber"] <= r["ber_high"] and isinstance(r["seed"], int)
    from experiments.commands.link import parse_mcs_list

    assert parse_mcs_list("0:27") == list(range(28)) and parse_mcs_list("auto,3,5:2:9") == ["auto", 3, 5, 7, 9]
    rc = main(["link", "--mcs", "0:1", "--block-length", "200", "--snr-db", "0", "--num-bits", "400",
               "--format", "json", "--no-progress", "--target-block-errors", "1", "--max-bits", "400"])
    assert rc == 0
    rows = [json.loads(ln) for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    assert [r["mcs_index"] for r in rows] == [0, 1]
    with pytest.raises(SystemExit):
        main(["link", "--channel", "awgn,tdl-z"])
    assert "invalid choice: 'tdl-z'" in capsys.readouterr().err
