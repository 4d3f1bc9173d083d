"""``distdiff generate``: files written, one-line summary, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from experiments.cli import main

pytestmark = pytest.mark.filterwarnings("ignore:prompt adherence not measured")
BASE = ["generate", "--prompt", "a yellow lemon on a wooden table", "--shared-prompt", "a red apple on a wooden table",
        "--steps", "4", "--shared-steps", "2", "--seed", "41", "--model", "tiny-random", "--no-classify"]


def test_generate_writes_images_record_and_summary(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(BASE + ["--channel", "bsc", "--code", "none", "--bit-error-rate", "0.001", "--bits", "6",
                        "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("psnr ") and "ber " in line and str(out / "receiver.png") in line
    doc = json.loads((out / "record.json").read_text())
    assert doc["config"]["codec"]["bits"] == 6 and doc["config"]["link"]["channel"] == "bsc"
    assert doc["metrics"]["num_shared_steps"] == 2 and doc["metrics"]["payload_body_bits"] == 6 * 4 * 16 * 16
    for name in ("receiver", "reference", "alone"):
        img = np.asarray(Image.open(out / f"{name}.png"))
        assert img.shape == (32, 32, 3)


def test_generate_lossless_gives_the_reference(tmp_path, capsys):
    out = tmp_path / "l"
    assert main(BASE + ["--lossless", "--out", str(out)]) == 0
    assert "psnr inf dB" in capsys.readouterr().out
    np.testing.assert_array_equal(np.asarray(Image.open(out / "receiver.png")),
                                  np.asarray(Image.open(out / "reference.png")))


def test_generate_bad_input_is_a_one_line_error(tmp_path, capsys):
    assert main(BASE[:5] + ["--steps", "4", "--shared-steps", "5", "--model", "tiny-random", "--lossless",
                            "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "distdiff: error: ChainConfig: num_shared_steps (5) must be <= num_inference_steps (4)"
    assert main(BASE + ["--analog", "--bits", "4", "--out", str(tmp_path)]) == 2
    assert "--bits does not apply to --analog" in capsys.readouterr().err
    assert main(BASE[:-3] + ["--model", str(tmp_path / "missing"), "--lossless", "--out", str(tmp_path)]) == 2
    assert "looked for at" in capsys.readouterr().err
