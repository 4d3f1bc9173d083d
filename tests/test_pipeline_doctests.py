"""The runnable examples in the pipeline modules' docstrings."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["pipeline.state", "pipeline.split", "pipeline.chain", "pipeline.grouping", "pipeline.cache",
           "pipeline.metrics", "pipeline.compute", "pipeline.loading"]


@pytest.mark.filterwarnings("ignore:prompt adherence not measured")
@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
