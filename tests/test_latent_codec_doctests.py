"""latent_codec: the runnable examples in the docstrings are correct."""

import doctest
import importlib

import pytest

MODULES = ["latent_codec", "latent_codec.bitops", "latent_codec.header", "latent_codec.ordering",
           "latent_codec.quantizers", "latent_codec.sanitize", "latent_codec.codecs",
           "latent_codec.analog", "latent_codec.accounting", "latent_codec.config"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name}"
