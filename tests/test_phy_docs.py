"""The examples in phy's docstrings run and print what they claim."""

import doctest
import importlib

import pytest

MODULES = ["config", "snr", "theory", "coding", "channels", "link", "sweep", "nr_tables", "ldpc", "mcs"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(f"phy.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"phy.{name} has no examples"
    assert result.failed == 0
