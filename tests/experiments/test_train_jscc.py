"""``distdiff train-jscc``: the command module trains, resumes and exports (tiny model, a few steps)."""

import argparse
import json

import pytest
import yaml

from experiments.commands import train_jscc
from latent_codec.learned import LearnedCodec


def _parse(argv):
    parser = argparse.ArgumentParser()
    train_jscc.add_parser(parser.add_subparsers())
    return parser.parse_args(["train-jscc", *argv])


def test_train_jscc_trains_exports_and_resumes(tmp_path, capsys):
    cfg = {"model": "tiny", "workdir": str(tmp_path / "w"), "out": str(tmp_path / "out"), "seed": 0,
           "codec": {"bandwidth_ratio": 0.5, "width": 8, "depth": 1, "cond_dim": 8},
           "data": {"num_inference_steps": 4, "shared_steps": [1], "train_seeds": 1, "heldout_seeds": 2,
                    "heldout_every": 3, "max_prompts": 6, "guidance_scale": 1.0, "batch_size": 8},
           "steps": 3, "batch_size": 4, "checkpoint_seconds": 0.0, "eval_snr_db": [10.0]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert train_jscc.run(_parse([str(path), "--no-progress"])) == 0
    assert "exported to" in capsys.readouterr().out
    card = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert card["trained_steps"] == 3 and card["evaluation"][0]["n"] == 4
    assert (tmp_path / "out" / "scheduler_config.json").is_file()
    assert LearnedCodec.from_pretrained(tmp_path / "out").scheduler_config["_class_name"]
    # more steps on the command line continue from the checkpoint
    assert train_jscc.run(_parse([str(path), "--steps", "5", "--no-progress"])) == 0
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["trained_steps"] == 5


def test_train_jscc_bad_config_and_threads(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("workdir: w\nout: o\nstepz: 1\n")
    with pytest.raises(ValueError, match="unknown parameter 'stepz'"):
        train_jscc.run(_parse([str(path)]))
    with pytest.raises(ValueError, match="--threads"):
        train_jscc.run(_parse([str(path), "--threads", "0"]))


def test_train_jscc_is_a_distdiff_command(tmp_path, capsys):
    """``distdiff train-jscc`` reaches the command (a bad config is the CLI's one-line error, exit 2)."""
    from experiments.cli import main

    path = tmp_path / "bad.yaml"
    path.write_text("workdir: w\nout: o\nstepz: 1\n")
    assert main(["train-jscc", str(path)]) == 2
    assert "unknown parameter 'stepz'" in capsys.readouterr().err


def test_generate_learned_options_and_a_missing_shipped_ratio(tmp_path, capsys):
    """``generate --transmission learned --bandwidth-ratio R`` builds that chain; a ratio without shipped
    weights is a one-line error naming the shipped ones."""
    from experiments.cli import main
    from experiments.commands.generate import chain_config_from_args
    from experiments.cli import parse_args

    args = parse_args(["generate", "--prompt", "a red apple", "--transmission", "learned",
                       "--bandwidth-ratio", "0.125", "--out", str(tmp_path / "g")])
    doc = chain_config_from_args(args)
    assert doc["transmission"] == "learned" and doc["bandwidth_ratio"] == 0.125
    assert main(["generate", "--prompt", "a red apple", "--transmission", "learned", "--bandwidth-ratio", "0.0625",
                 "--steps", "4", "--shared-steps", "2", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "no shipped learned codec for bandwidth_ratio=0.0625" in err and "jscc-rho0.125" in err
