"""The latency/energy model: closed forms, limits and bad input."""

import math

import pytest

from experiments.latency_energy import latency_energy_columns

P = dict(edge_step_time_s=0.01, device_step_time_s=0.1, edge_step_energy_j=2.0, device_step_energy_j=0.5,
         tx_energy_per_bit_j=1e-6, rx_energy_per_bit_j=4e-7)


def test_closed_form():
    r = latency_energy_columns(P, num_inference_steps=10, num_shared_steps=4, group_size=2, airtime_s=0.05,
                               payload_bits=1000)
    assert r["edge_compute_s"] == pytest.approx(0.04)
    assert r["device_compute_s"] == pytest.approx(0.6)
    assert r["latency_s"] == pytest.approx(0.04 + 0.05 + 0.6)
    assert r["alone_latency_s"] == pytest.approx(1.0)
    assert r["latency_saved_s"] == pytest.approx(1.0 - 0.69)
    assert r["edge_energy_j"] == pytest.approx(4 * 2.0 / 2 + 1000 * 1e-6)
    assert r["device_energy_j"] == pytest.approx(6 * 0.5 + 1000 * 4e-7)
    assert r["total_energy_j"] == pytest.approx(r["edge_energy_j"] + r["device_energy_j"])
    assert r["device_energy_saved_fraction"] == pytest.approx(1 - (3.0 + 4e-4) / 5.0)


def test_no_sharing_is_generating_alone():
    r = latency_energy_columns(P, 10, 0, 1, airtime_s=0.5, payload_bits=float("nan"))   # k = 0: nothing sent
    assert r["latency_s"] == pytest.approx(r["alone_latency_s"])
    assert r["device_energy_j"] == pytest.approx(r["alone_energy_j"]) and r["edge_energy_j"] == 0.0
    assert math.isclose(r["device_energy_saved_fraction"], 0.0, abs_tol=1e-12)


def test_missing_link_stats_count_zero():
    r = latency_energy_columns(P, 10, 4, 2, airtime_s=None, payload_bits=float("nan"))
    assert r["latency_s"] == pytest.approx(0.04 + 0.6) and r["device_energy_j"] == pytest.approx(3.0)


def test_bad_input():
    with pytest.raises(ValueError, match="num_shared_steps"):
        latency_energy_columns(P, 10, 11, 1, 0.0, 0)
    with pytest.raises(ValueError, match="group_size"):
        latency_energy_columns(P, 10, 2, 0, 0.0, 0)
