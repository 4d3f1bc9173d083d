"""ChainConfig's cross-field rules live in a torch-free function the command line checks first (issue 10)."""


import pytest

from experiments.commands import generate
from pipeline.chain import ChainConfig, ChainConfigError
from pipeline.chain_rules import RULE_DEFAULTS, check_chain_rules
from tests.cli_probe import run_cli_in_fresh_process


BAD = [
    (dict(num_inference_steps=3, num_shared_steps=5), "num_shared_steps (5) must be <= num_inference_steps (3)"),
    (dict(transmission="analog", codec={"name": "uniform"}, snr_db=5.0), "transmission='analog' needs codec name"),
    (dict(codec={"name": "analog"}, snr_db=5.0), "codec 'analog' needs transmission='analog'"),
    (dict(snr_db=None), "snr_db is needed for channel 'awgn'"),
    (dict(transmission="analog", codec={"name": "analog"}, analog_noise_matching=True, scheduler="ddim",
          snr_db=5.0), "analog_noise_matching needs an Euler-type scheduler"),
]


def _flat(doc):
    out = {k: v for k, v in doc.items() if k not in ("codec", "link")}
    out["codec_name"] = doc.get("codec", {}).get("name", "uniform")
    return out


def test_the_rules_defaults_are_chain_configs():
    cfg = ChainConfig(snr_db=1.0)
    for key, value in RULE_DEFAULTS.items():
        if key == "codec_name":
            assert cfg.codec.name == value
        elif key == "channel":
            assert cfg.link.channel == value
        elif key == "codec_decoding":
            assert "decoding" not in cfg.codec.model_fields_set
        elif key == "snr_db":
            assert ChainConfig.model_fields["snr_db"].default is value
        else:
            assert getattr(cfg, key) == value, key


@pytest.mark.parametrize("doc, message", BAD)
def test_chain_config_and_the_torch_free_rules_give_the_same_error(doc, message):
    with pytest.raises(ValueError) as rules:
        check_chain_rules(_flat(doc))
    with pytest.raises(ChainConfigError) as model:
        ChainConfig(**doc)
    assert message in str(rules.value) and str(rules.value) in str(model.value)


def test_good_configs_pass_both():
    for doc in (dict(snr_db=3.0), dict(transmission="lossless"), dict(link={"channel": "bsc"}),
                dict(transmission="analog", codec={"name": "analog"}, snr_db=0.0, analog_noise_matching=True)):
        ChainConfig(**doc)
        flat = _flat(doc)
        flat["channel"] = doc.get("link", {}).get("channel", "awgn")
        check_chain_rules(flat)


def test_generate_reports_cross_field_errors_before_torch_is_imported():
    generate._specs()  # build the option cache (this process imports the models anyway)
    run = run_cli_in_fresh_process([["generate", "--prompt", "x", "--steps", "3", "--shared-steps", "5"],
                                    ["generate", "--prompt", "x", "--analog", "--codec", "uniform"]])
    assert run.stdout.strip() == "[]", run.stdout + run.stderr
    assert "ChainConfig: num_shared_steps (5) must be <= num_inference_steps (3)" in run.stderr
    assert "ChainConfig: transmission='analog' needs codec name 'analog', got 'uniform'" in run.stderr
