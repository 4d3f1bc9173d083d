"""Experiment configs: every shipped config validates; bad keys, values and grids get clear errors."""

from __future__ import annotations

import pytest
import yaml

from experiments.config import (ConfigError, apply_overrides, load_config, parse_config, parse_range,
                                shipped_configs)
from experiments.grid import expand_grid

GOOD = {
    "name": "t",
    "seeds": [0],
    "users": [{"shared_prompt": "a red apple on a wooden table",
               "receiver_prompts": ["a yellow lemon on a wooden table"]}],
    "chain": {"num_inference_steps": 6, "num_shared_steps": 2, "transmission": "digital", "snr_db": 10.0,
              "link": {"channel": "awgn"}},
    "grid": {"snr_db": [0, 10]},
}
EXPECTED = {"default", "fig3_bit_errors", "fig5_shared_steps", "fig6_semantic", "snr_channels",
            "mcs_fixed_vs_adaptive", "digital_vs_analog", "soft_vs_hard", "latency_energy", "e2e_vs_separation"}


def _with(**changes):
    raw = yaml.safe_load(yaml.safe_dump(GOOD))
    for k, v in changes.items():
        raw[k] = v
    return raw


def _error(raw, chain_model="auto") -> str:
    with pytest.raises(ConfigError) as exc:
        parse_config(raw, source="test.yaml", chain_model=chain_model)
    msg = str(exc.value)
    assert "\n" not in msg, "errors must be one line"
    assert msg.startswith("config test.yaml: ")
    return msg


def test_every_shipped_config_validates_against_the_real_chain_config():
    paths = shipped_configs()
    assert {p.stem for p in paths} == EXPECTED
    for path in paths:
        cfg = load_config(path)
        assert cfg.name == path.stem
        points = expand_grid(cfg)
        assert len(points) >= 2
        assert len({p.key for p in points}) == len(points)
        for spec in cfg.plots:
            if spec.kind == "lines":
                assert spec.x in cfg.grid, f"{path.name}: plot x '{spec.x}' is not a grid axis"
            elif spec.kind == "frontier":
                for col in [spec.arm, *spec.panel]:
                    assert col in cfg.grid, f"{path.name}: frontier column '{col}' is not a grid axis"


def test_default_config_is_the_main_job():
    cfg = load_config(None)
    assert cfg.name == "default" and cfg.model is None
    assert list(cfg.grid) == ["snr_db"] and len(cfg.grid["snr_db"]) >= 4
    link = expand_grid(cfg)[0].chain["link"]
    assert link["channel"].startswith("tdl") and link["speed_mps"] > 0 and link["mcs"] == "auto"
    assert len(cfg.users[0].receiver_prompts) >= 2
    assert cfg.chain["bandwidth_hz"] == 20e6        # "20.0e6" is a float, not a string (YAML 1.1 pitfall)


def test_typo_in_a_key_names_it_and_the_allowed_keys():
    raw = _with()
    raw["grdi"] = raw.pop("grid")
    msg = _error(raw, chain_model=None)
    assert "unknown key 'grdi' at top level" in msg and "grid" in msg.split("allowed keys:")[1]
    msg = _error(_with(execution={"worker": 2}), chain_model=None)
    assert "unknown key 'worker' at execution" in msg and "workers" in msg
    msg = _error(_with(users=[{"shared_prompt": "a", "recever_prompts": ["b"]}]), chain_model=None)
    assert "unknown key 'recever_prompts'" in msg and "receiver_prompts" in msg


def test_typo_inside_the_chain_config_is_caught_by_the_chain_schema():
    msg = _error(_with(chain={**GOOD["chain"], "link": {"chanel": "awgn"}}))
    assert "chanel" in msg


def test_bad_values_are_clear():
    msg = _error(_with(execution={"workers": 0}), chain_model=None)
    assert "ExperimentConfig.execution.workers: " in msg and "greater than or equal to 1 (got 0)" in msg
    msg = _error(_with(seeds=[1, 1]), chain_model=None)
    assert "seeds must be distinct" in msg
    msg = _error(_with(grid={"snr_db": "0:-5:10"}), chain_model=None)
    assert "grid axis 'snr_db'" in msg and "'0:-5:10'" in msg and "wrong sign" in msg
    msg = _error(_with(grid={"modulation": ["qpsk", "17qam"]}))
    assert "17qam" in msg and "qpsk" in msg and "modulation" in msg     # names the value and the allowed ones


def test_empty_grid_and_empty_axis_are_errors():
    assert "the grid is empty" in _error(_with(grid={}), chain_model=None)
    assert "grid axis 'snr_db' has no values" in _error(_with(grid={"snr_db": []}), chain_model=None)
    assert "seeds" in _error(_with(seeds=[]), chain_model=None)


def test_unknown_grid_axis_lists_the_allowed_axes():
    msg = _error(_with(grid={"snr": [0, 10]}))
    assert "unknown grid axis 'snr'" in msg and "snr_db" in msg and "bit_error_rate" in msg


def test_variants_and_user_sets():
    msg = _error(_with(variants={"a": {}}, grid={"snr_db": [0], "variant": ["a", "b"]}), chain_model=None)
    assert "unknown variants ['b']" in msg
    cfg = parse_config(_with(variants={"a": {"x": 1}, "b": {"x": 2}}), chain_model=None)
    assert cfg.grid["variant"] == ["a", "b"]                       # added as an axis when not listed
    pts = expand_grid(cfg, chain_model=None)
    assert [(p.params["snr_db"], p.chain["x"]) for p in pts] == [(0, 1), (0, 2), (10, 1), (10, 2)]
    both = _with(users={"s1": GOOD["users"], "s2": GOOD["users"]})
    assert parse_config(both, chain_model=None).grid["user_set"] == ["s1", "s2"]
    assert "exactly one of 'users'" in _error(_with(grouping={"prompts": ["a", "b"]}), chain_model=None)


def test_overrides_and_ranges():
    assert parse_range("-5:5:10") == [-5.0, 0.0, 5.0, 10.0]
    assert parse_range("0.1, 0.2") == [0.1, 0.2]
    raw = apply_overrides(GOOD, ["grid.snr_db=[3]", "chain.link.channel=rayleigh", "model=tiny-random"])
    assert raw["grid"]["snr_db"] == [3] and raw["chain"]["link"]["channel"] == "rayleigh"
    assert GOOD["grid"]["snr_db"] == [0, 10]                       # the input is not modified
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides(GOOD, ["nonsense"])
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_experiment")


def test_point_keys_and_run_id_are_stable_and_sensitive():
    a = expand_grid(parse_config(GOOD))
    b = expand_grid(parse_config(yaml.safe_load(yaml.safe_dump(GOOD))))
    assert [p.key for p in a] == [p.key for p in b]
    c = expand_grid(parse_config(apply_overrides(GOOD, ["chain.num_shared_steps=3"])))
    assert not {p.key for p in a} & {p.key for p in c}
    assert parse_config(GOOD).config_hash() != parse_config(apply_overrides(GOOD, ["seeds=[1]"])).config_hash()
