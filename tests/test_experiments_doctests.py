"""The docstring examples of the experiments package run and give what they show."""

import doctest
import importlib

import pytest

MODULES = ["experiments.config", "experiments.grid", "experiments.latency_energy", "experiments.executors",
           "experiments.results", "experiments.plots"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
