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
