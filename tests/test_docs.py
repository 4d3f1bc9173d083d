"""Every public module shows a runnable example in its docstrings.

The examples themselves run as pytest items through ``--doctest-modules``
(``pyproject.toml``); this test makes sure they exist, so a module whose
examples were deleted or never collected fails here instead of passing silently.
Every public module of the four packages is either in ``MODULES`` (it must have
examples) or in ``EXEMPT`` with the reason it has none, so a new module that
is in neither list fails ``test_every_public_module_is_listed_or_exempt``.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

PACKAGES = ("phy", "latent_codec", "pipeline", "experiments")

MODULES = [
    "phy.config", "phy.snr", "phy.theory", "phy.coding", "phy.channels", "phy.link", "phy.sweep",
    "phy.nr_tables", "phy.ldpc", "phy.mcs", "phy.seeding", "phy.montecarlo", "phy.calibrate", "phy.jscc_bounds", "phy.mi_tables", "phy.probe_store",
    "latent_codec", "latent_codec.bitops", "latent_codec.header", "latent_codec.ordering",
    "latent_codec.quantizers", "latent_codec.sanitize", "latent_codec.codecs", "latent_codec.analog",
    "latent_codec.accounting", "latent_codec.config", "latent_codec.base", "latent_codec.float16",
    "latent_codec.uniform", "latent_codec.lloyd_max", "latent_codec.learned", "pipeline.transport",
    "pipeline.state", "pipeline.split", "pipeline.chain", "pipeline.grouping", "pipeline.cache",
    "pipeline.metrics", "pipeline.compute", "pipeline.loading", "pipeline.judge",
    "pipeline.embedded.classifier", "pipeline.embedded.judging", "pipeline.embedded.model",
    "pipeline.embedded.scenes", "pipeline.embedded.vocabulary", "pipeline.embedded.jscc_training",
    "pipeline.chain_rules", "pipeline.embedded.latent_nmse",
    "experiments.config", "experiments.grid", "experiments.latency_energy", "experiments.executors",
    "experiments.results", "experiments.plots", "experiments.ray_executor", "experiments.configtools",
    "experiments.evaluate", "experiments.report", "experiments.runner",
    "experiments.cli_options", "experiments.link_plots", "experiments.cli", "experiments.commands.generate",
    "experiments.commands.train_jscc", "experiments.stats", "experiments.commands.link",
    "experiments.frontier",
]

# public modules without docstring examples, each with the reason
EXEMPT = {
    "phy": "package namespace: re-exports, examples live in the modules",
    "phy.data": "data folder (tables), no code",
    "latent_codec.errors": "exception classes only",
    "pipeline": "package namespace: re-exports, examples live in the modules",
    "pipeline.embedded": "package namespace",
    "pipeline.embedded.measure": "measures the shipped model (minutes of generation); exercised by its tests",
    "pipeline.embedded.model_card": "writes the model card from measurements (minutes); exercised by its tests",
    "pipeline.embedded.training": "trains the shipped model (hours); exercised by its tests",
    "experiments": "package namespace",
    "experiments.commands": "package of CLI sub-commands",
    "experiments.commands.plot": "CLI sub-command; exercised through tests/experiments",
    "experiments.commands.run": "CLI sub-command; exercised through tests/experiments",
    "experiments.commands.sweep": "CLI sub-command; exercised through tests/experiments",
}


def _public_modules() -> list[str]:
    names = []
    for pkg in PACKAGES:
        names.append(pkg)
        for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + "."):
            if not any(part.startswith("_") for part in info.name.split(".")):
                names.append(info.name)
    return names


def _num_examples(name: str) -> int:
    return sum(len(t.examples) for t in doctest.DocTestFinder().find(importlib.import_module(name)))


@pytest.mark.parametrize("name", MODULES)
def test_module_has_examples(name):
    assert _num_examples(name) > 0, f"{name} has no runnable docstring example"


def test_every_public_module_is_listed_or_exempt():
    public = _public_modules()
    unlisted = sorted(set(public) - set(MODULES) - set(EXEMPT))
    assert not unlisted, (f"public modules neither in MODULES (with examples) nor in EXEMPT (with a reason): "
                          f"{unlisted}; add their examples and list them in tests/test_docs.py")
    stale = sorted((set(MODULES) | set(EXEMPT)) - set(public))
    assert not stale, f"listed modules that do not exist (or are private): {stale}"
    assert not set(MODULES) & set(EXEMPT)


def test_an_exempt_module_that_gains_examples_moves_to_modules():
    """An exemption is for modules without examples; once some exist they must be kept."""
    gained = [name for name in EXEMPT if _num_examples(name) > 0]
    assert not gained, f"{gained} have examples now: move them from EXEMPT to MODULES"


def test_the_docstring_examples_are_collected_by_pytest():
    """The examples run only if pytest collects them: --doctest-modules and every package in testpaths."""
    config = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    options = config["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert set(PACKAGES) <= set(options["testpaths"])


def test_the_doctests_of_a_listed_module_are_collected():
    """pytest's own collector yields doctest items for a listed module (not just the finder above)."""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                          "phy/snr.py"], cwd=root, capture_output=True, text=True, timeout=120)
    items = [line for line in out.stdout.splitlines() if line.startswith("phy/snr.py::")]
    assert items and all("snr" in line for line in items), out.stdout + out.stderr
