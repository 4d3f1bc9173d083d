"""The README's headline numbers for the main job agree with the committed results (docs/results/default).

The README states each main-job number as ``<what> at <snr> dB SNR: <value> [<low>, <high>] (n = <n>)``,
for example ``PSNR at 20 dB SNR: 56.5 dB [52.8, 60.3] (n = 32)`` or
``adherence at 20 dB SNR: 50% [34, 66] (n = 32)``. This test finds every such
statement in the main-job bullet of the README's Results section and recomputes
it from ``docs/results/default/results.csv`` with :func:`experiments.stats.summarise`
(the same function that writes the reports): estimate, interval and n must
match to the precision the README states.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from experiments.plots import METRIC_RANGES
from experiments.stats import summarise

ROOT = Path(__file__).resolve().parents[1]

#: README wording -> (results column, shown as a percentage)
WHAT = {"PSNR": ("psnr_db", False), "SSIM": ("ssim", False), "adherence": ("adherent", True),
        "fallback rate": ("fallback_generate_alone", True), "BLER": ("bler", True),
        "compute saved": ("compute_saved_fraction", True)}
CLAIM = re.compile(
    r"(?P<what>" + "|".join(WHAT) + r") at (?P<snr>[−-]?\d+(?:\.\d+)?) dB SNR: "
    r"(?P<v>−?-?[\d.]+)(?:%| dB)? \[(?P<lo>−?-?[\d.]+), (?P<hi>−?-?[\d.]+)\] \(n = (?P<n>\d+)\)")


def _main_job_text() -> str:
    text = (ROOT / "README.md").read_text()
    m = re.search(r"- \*\*Main job\*\*(.*?)(?=\n- \*\*|\n## |\Z)", text, re.S)
    return re.sub(r"\s+", " ", m.group(1)) if m else ""


def _num(s: str) -> float:
    return float(s.replace("−", "-"))


def _decimals(s: str) -> int:
    return len(s.split(".")[1]) if "." in s else 0


def claims() -> list[dict]:
    return [m.groupdict() for m in CLAIM.finditer(_main_job_text())]


def test_the_readme_states_the_main_job_with_intervals_and_n():
    assert len(claims()) >= 3, "the README's main-job bullet states fewer than 3 numbers as " \
        "'<what> at <snr> dB SNR: v [lo, hi] (n = N)'"


@pytest.mark.parametrize("claim", claims(), ids=lambda c: f"{c['what']}@{c['snr']}dB")
def test_each_main_job_number_matches_the_committed_results(claim):
    df = pd.read_csv(ROOT / "docs" / "results" / "default" / "results.csv")
    column, percent = WHAT[claim["what"]]
    at = df[df["snr_db"].astype(float) == _num(claim["snr"])]
    assert len(at), f"no rows at {claim['snr']} dB in docs/results/default"
    s = summarise(at, column, METRIC_RANGES.get(column))
    scale = 100.0 if percent else 1.0
    for key, stated in (("value", claim["v"]), ("low", claim["lo"]), ("high", claim["hi"])):
        tol = 0.5 * 10 ** -_decimals(stated) + 1e-9
        assert abs(_num(stated) - scale * s[key]) <= tol, (claim, key, scale * s[key])
    assert int(claim["n"]) == s["n"], (claim, s["n"])
