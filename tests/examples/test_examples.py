"""Each script in examples/ runs (shrunk with ``--quick``) and prints what it promises."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, tmp_path) -> str:
    env = dict(os.environ, OUT=str(tmp_path), PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--quick"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_sim_ber_link(tmp_path):
    out = _run("sim_ber_link.py", tmp_path)
    rows = re.findall(r"Eb/N0 +(\S+) dB  BER (\S+)  BLER (\S+)", out)
    assert [float(r[0]) for r in rows] == [0.0, 6.0, 12.0]
    bers = [float(r[1]) for r in rows]
    assert bers[0] > 0.1 and bers[-1] < bers[0]  # uncoded-like at 0 dB, far better at 12 dB
    assert (tmp_path / "ber.png").stat().st_size > 10_000


def test_own_sionna_channel(tmp_path):
    out = _run("own_sionna_channel.py", tmp_path)
    m = re.search(r"over Sionna's FlatFadingChannel at 12 dB: BER (\S+), BLER (\S+), latent MSE (\S+)", out)
    assert m and float(m.group(1)) < 0.05 and float(m.group(3)) < 0.5, out


def test_own_diffusers_pipeline(tmp_path):
    out = _run("own_diffusers_pipeline.py", tmp_path)
    assert out.startswith("DDIMScheduler: PSNR vs the error-free reference") and (tmp_path / "receiver.png").exists()
