"""The folder that shares adaptive-MCS probes between worker processes."""

from __future__ import annotations

import numpy as np
import pytest

from phy.mcs import FadingProfile
from phy.probe_store import PROBE_STORE_ENV, stored


def test_a_fading_profile_reads_back_bit_exact_and_a_torn_file_is_measured_again(tmp_path, monkeypatch):
    monkeypatch.setenv(PROBE_STORE_ENV, str(tmp_path))
    rng = np.random.default_rng(0)
    profile = FadingProfile(3.0, {"qpsk": rng.uniform(0, 2, (5, 7)), "16qam": rng.uniform(0, 4, (3, 4))})
    calls = []

    def measure():
        calls.append(1)
        return profile

    first = stored(("tdl-c", 3.0), measure)
    again = stored(("tdl-c", 3.0), measure)
    assert len(calls) == 1 and again.snr_db == 3.0 and set(again.mi) == {"qpsk", "16qam"}
    for m in profile.mi:
        np.testing.assert_array_equal(again.mi[m], profile.mi[m])
        assert again.mi[m].dtype == np.float64
    assert first is profile
    (npz,) = tmp_path.glob("*.npz")
    npz.write_bytes(b"torn")
    stored(("tdl-c", 3.0), measure)
    assert len(calls) == 2                      # measured again, and the file repaired
    assert stored(("tdl-c", 3.0), measure).snr_db == 3.0 and len(calls) == 2
    assert stored(("tdl-c", 4.0), lambda: {"qpsk": 1.5}) == {"qpsk": 1.5}
    with pytest.raises(TypeError, match="FadingProfile or dict"):
        stored(("other",), lambda: [1.0])


def test_without_the_folder_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(PROBE_STORE_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert stored(("x",), lambda: {"qpsk": 2.0}) == {"qpsk": 2.0}
    assert list(tmp_path.iterdir()) == []
