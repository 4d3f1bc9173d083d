"""A simple, documented end-to-end latency and energy model of collaborative generation.

One user of a group of ``R`` receivers; ``n`` denoising steps in all, of which the
first ``k`` are shared (run once at the edge for the whole group) and ``n - k``
run on the user's device. Per-step costs are per *denoising step of one image*,
classifier-free guidance included (two UNet evaluations when the guidance scale
is above 1), so they are what one measures by timing one step.

Latency (one user, the group's shared steps in series with the link and the local steps)::

    edge_compute_s   = k * edge_step_time_s
    device_compute_s = (n - k) * device_step_time_s
    latency_s        = edge_compute_s + airtime_s + device_compute_s
    alone_latency_s  = n * device_step_time_s            (the user generating alone)

``airtime_s`` comes from the chain (channel uses of the chosen MCS, or of the
analog mapping, divided by the link bandwidth: the MCS's spectral efficiency
and the bandwidth set it).

Energy (this user's share)::

    edge_energy_j    = k * edge_step_energy_j / R + payload_bits * tx_energy_per_bit_j
    device_energy_j  = (n - k) * device_step_energy_j + payload_bits * rx_energy_per_bit_j
    total_energy_j   = edge_energy_j + device_energy_j
    alone_energy_j   = n * device_step_energy_j

With ``k = 0`` nothing is shared and nothing is sent (airtime and bits count
zero, whatever the chain transmitted). The shared steps' energy is split evenly
over the group's receivers;
``payload_bits`` are the bits the codec sent for this user (0 for analog, whose
radio energy the per-bit terms then do not count).

Example
-------
>>> p = dict(edge_step_time_s=0.006, device_step_time_s=0.06, edge_step_energy_j=1.8,
...          device_step_energy_j=0.3, tx_energy_per_bit_j=5e-8, rx_energy_per_bit_j=2e-8)
>>> r = latency_energy_columns(p, num_inference_steps=11, num_shared_steps=5, group_size=2,
...                            airtime_s=0.01, payload_bits=8192)
>>> round(r["latency_s"], 4), round(r["alone_latency_s"], 4)
(0.4, 0.66)
"""

from __future__ import annotations

import math
import time

#: Where each constant of ``experiments/configs/latency_energy.yaml`` comes from. The report
#: prints this table; only ``device_step_time_s`` is measured on this machine.
SOURCES: dict[str, str] = {
    "device_step_time_s": "measured on this machine: median step time of the shipped model "
                          "(`python -m experiments.latency_energy`, 1 torch thread, CPU, guidance included)",
    "edge_step_time_s": "assumed: the device step / 10. Basis: a data-centre GPU (e.g. NVIDIA A100, 312 TFLOP/s "
                        "fp16 dense, NVIDIA A100 datasheet 2020) vs a phone SoC NPU/GPU of a few to tens of "
                        "TFLOP/s; the true ratio for a 64x64 UNet is not measured here",
    "device_step_energy_j": "assumed: ~5 W x the device step time; 5 W is the order of a phone SoC's "
                            "sustained power under full load, not measured in this project (how phone power is "
                            "measured per component: Carroll & Heiser, 'An analysis of power consumption in a "
                            "smartphone', USENIX ATC 2010)",
    "edge_step_energy_j": "assumed: ~300 W board power x the edge step time (NVIDIA A100 datasheet: 250-300 W "
                          "for the PCIe cards); a real edge GPU is rarely at full power for a 64x64 UNet",
    "tx_energy_per_bit_j": "assumed: 50 nJ/bit for the edge's transmitter; no measured source for a base "
                           "station's marginal energy per bit (the same order as the device's receive energy)",
    "rx_energy_per_bit_j": "from a source: 52 nJ/bit, the LTE device's marginal downlink power per throughput "
                           "(51.97 mW/Mbps; Huang et al., 'A close examination of performance and power "
                           "characteristics of 4G LTE networks', MobiSys 2012; its 1.29 W base power is not "
                           "counted)",
}

#: Conclusions of the latency/energy experiment and the constants each depends on.
DEPENDS_ON: dict[str, tuple[str, ...]] = {
    "latency falls with k (sharing moves steps to the faster edge)": ("edge_step_time_s",),
    "device energy falls linearly with k": ("device_step_energy_j",),
    "total (edge + device) energy vs generating alone": ("edge_step_energy_j", "device_step_energy_j",
                                                         "tx_energy_per_bit_j", "rx_energy_per_bit_j"),
    "airtime is small against compute": ("device_step_time_s", "edge_step_time_s"),
}


def latency_energy_columns(params: dict, num_inference_steps: int, num_shared_steps: int, group_size: int,
                           airtime_s: float | None, payload_bits: float | None) -> dict:
    """Columns of the model for one user (see the module docstring).

    Parameters
    ----------
    params : dict
        ``edge_step_time_s`` [s], ``device_step_time_s`` [s], ``edge_step_energy_j`` [J],
        ``device_step_energy_j`` [J], ``tx_energy_per_bit_j`` [J/bit], ``rx_energy_per_bit_j`` [J/bit].
    num_inference_steps, num_shared_steps : int
        ``n`` and ``k`` (0 <= k <= n).
    group_size : int
        Receivers sharing the edge's steps (>= 1).
    airtime_s : float or None
        Link airtime of this user's state [s] (None/NaN: counted as 0).
    payload_bits : float or None
        Bits sent for this user (None/NaN: 0).

    Returns
    -------
    dict of float
        edge_compute_s, device_compute_s, latency_s, alone_latency_s, latency_saved_s,
        edge_energy_j, device_energy_j, total_energy_j, alone_energy_j, device_energy_saved_fraction.
    """
    n, k = int(num_inference_steps), int(num_shared_steps)
    if not 0 <= k <= n:
        raise ValueError(f"num_shared_steps must be in [0, num_inference_steps={n}], got {k}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")

    def _num(v):
        return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    # k = 0: nothing is shared, the device generates alone and nothing needs to be sent
    air, bits = (_num(airtime_s), _num(payload_bits)) if k > 0 else (0.0, 0.0)
    edge_s = k * params["edge_step_time_s"]
    dev_s = (n - k) * params["device_step_time_s"]
    alone_s = n * params["device_step_time_s"]
    edge_j = k * params["edge_step_energy_j"] / group_size + bits * params.get("tx_energy_per_bit_j", 0.0)
    dev_j = (n - k) * params["device_step_energy_j"] + bits * params.get("rx_energy_per_bit_j", 0.0)
    alone_j = n * params["device_step_energy_j"]
    return {
        "edge_compute_s": edge_s, "device_compute_s": dev_s, "latency_s": edge_s + air + dev_s,
        "alone_latency_s": alone_s, "latency_saved_s": alone_s - (edge_s + air + dev_s),
        "edge_energy_j": edge_j, "device_energy_j": dev_j, "total_energy_j": edge_j + dev_j,
        "alone_energy_j": alone_j,
        "device_energy_saved_fraction": 1.0 - dev_j / alone_j if alone_j > 0 else float("nan"),
    }


def measure_device_step_time_s(num_steps: int = 20, repeats: int = 3, prompt: str = "a red apple on a wooden table",
                                model=None) -> float:
    """Median time of one denoising step [s] of the shipped model on this machine (guidance included).

    Times a full ``num_steps`` generation and a 1-step generation and divides
    the difference by ``num_steps - 1`` (so text encoding and VAE decoding cancel);
    median over ``repeats``, with one torch thread (as every sweep point runs).

    Example
    -------
    >>> 0.0 < measure_device_step_time_s(num_steps=3, repeats=1) < 10.0     # doctest: +SKIP
    True
    """
    import torch

    from pipeline.loading import load_pipeline
    from pipeline.split import SplitDiffusion

    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    torch.set_num_threads(1)
    split = SplitDiffusion(load_pipeline(model))
    split.generate(prompt, 2, seed=0)                     # warm-up
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        split.generate(prompt, 1, seed=r)
        t1 = time.perf_counter()
        split.generate(prompt, num_steps, seed=r)
        t2 = time.perf_counter()
        times.append(((t2 - t1) - (t1 - t0)) / (num_steps - 1))
    return float(sorted(times)[len(times) // 2])


__all__ = ["latency_energy_columns", "measure_device_step_time_s", "SOURCES", "DEPENDS_ON"]


if __name__ == "__main__":
    step = measure_device_step_time_s(repeats=5)
    print(f"device_step_time_s: {step:.4f}   # median of 5, 20 vs 1 steps, 1 torch thread")

