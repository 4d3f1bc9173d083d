"""The test session itself leaves nothing in the user's home."""

import os
from pathlib import Path

from experiments.cli_options import cache_dir


def test_the_option_cache_lives_in_a_temporary_folder_for_the_session():
    assert os.environ["DISTDIFF_CACHE_DIR"] == str(cache_dir())
    assert not cache_dir().is_relative_to(Path.home() / ".cache")
