"""Every public module shows a runnable example in its docstrings.

The examples themselves run as pytest items through ``--doctest-modules``
(``pyproject.toml``); this test makes sure they exist, so a module whose
examples were deleted or never collected fails here instead of passing silently.
"""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "phy.config", "phy.snr", "phy.theory", "phy.coding", "phy.channels", "phy.link", "phy.sweep",
    "phy.nr_tables", "phy.ldpc", "phy.mcs", "phy.seeding", "phy.jscc_bounds",
    "latent_codec", "latent_codec.bitops", "latent_codec.header", "latent_codec.ordering",
    "latent_codec.quantizers", "latent_codec.sanitize", "latent_codec.codecs", "latent_codec.analog",
    "latent_codec.accounting", "latent_codec.config", "latent_codec.base", "latent_codec.float16",
    "latent_codec.uniform", "latent_codec.lloyd_max", "latent_codec.learned", "pipeline.transport",
    "pipeline.state", "pipeline.split", "pipeline.chain", "pipeline.grouping", "pipeline.cache",
    "pipeline.metrics", "pipeline.compute", "pipeline.loading", "pipeline.judge",
    "experiments.config", "experiments.grid", "experiments.latency_energy", "experiments.executors",
    "experiments.results", "experiments.plots", "experiments.ray_executor",
]


@pytest.mark.parametrize("name", MODULES)
def test_module_has_examples(name):
    module = importlib.import_module(name)
    examples = sum(len(t.examples) for t in doctest.DocTestFinder().find(module))
    assert examples > 0, f"{name} has no runnable docstring example"
