"""The cross-field rules of :class:`pipeline.ChainConfig`, without torch, Sionna or diffusers.

:class:`~pipeline.ChainConfig` checks these after its fields are parsed; the
command line checks the same function on its own values before the heavy
imports, so that a configuration error appears at once (issue 10's fail fast).

Example
-------
>>> check_chain_rules(dict(num_inference_steps=3, num_shared_steps=5))
Traceback (most recent call last):
...
ValueError: num_shared_steps (5) must be <= num_inference_steps (3)
>>> check_chain_rules(dict(num_inference_steps=11, num_shared_steps=5, transmission="analog",
...                        codec_name="analog", snr_db=10.0))
"""

from __future__ import annotations

import math
from typing import Any, Mapping

__all__ = ["EULER_SCHEDULERS", "check_chain_rules"]

#: schedulers whose resume can match the analog channel's noise level
EULER_SCHEDULERS = ("euler_ancestral", "euler")

#: ChainConfig's defaults for the values the rules read (a test checks they agree)
RULE_DEFAULTS: dict[str, Any] = dict(num_inference_steps=11, num_shared_steps=5, transmission="digital",
                                     codec_name="uniform", codec_decoding=None, soft_decoding=True,
                                     analog_noise_matching=False, scheduler="euler_ancestral", snr_db=None,
                                     channel="awgn")


def check_chain_rules(values: Mapping[str, Any]) -> None:
    """Raise a one-line ValueError when ChainConfig's fields contradict each other.

    Parameters
    ----------
    values : mapping
        Any of ``num_inference_steps``, ``num_shared_steps``, ``transmission``,
        ``codec_name``, ``codec_decoding`` (the codec's ``decoding`` when it was
        set explicitly, else None), ``soft_decoding``, ``analog_noise_matching``,
        ``scheduler``, ``snr_db`` [dB] and ``channel`` (the link's); missing
        keys take ChainConfig's defaults (:data:`RULE_DEFAULTS`).
    """
    v = {**RULE_DEFAULTS, **values}
    if v["num_shared_steps"] > v["num_inference_steps"]:
        raise ValueError(f"num_shared_steps ({v['num_shared_steps']}) must be <= num_inference_steps "
                         f"({v['num_inference_steps']})")
    transmission, codec = v["transmission"], v["codec_name"]
    if transmission == "analog" and codec != "analog":
        raise ValueError(f"transmission='analog' needs codec name 'analog', got {codec!r}")
    if transmission == "digital" and codec == "analog":
        raise ValueError("codec 'analog' needs transmission='analog'")
    if v["analog_noise_matching"] and transmission != "analog":
        raise ValueError("analog_noise_matching needs transmission='analog'")
    if v["analog_noise_matching"] and v["scheduler"] is not None and v["scheduler"] not in EULER_SCHEDULERS:
        raise ValueError(f"analog_noise_matching needs an Euler-type scheduler {EULER_SCHEDULERS}, "
                         f"got {v['scheduler']!r}")
    if transmission != "lossless" and v["snr_db"] is None and (v["channel"] != "bsc" or transmission == "analog"):
        raise ValueError(f"snr_db is needed for channel {v['channel']!r} ({transmission})")
    if v["snr_db"] is not None and not math.isfinite(v["snr_db"]):
        raise ValueError(f"snr_db must be finite, got {v['snr_db']}")
    if transmission == "learned" and v["scheduler"] is not None and v["scheduler"] not in EULER_SCHEDULERS:
        raise ValueError(f"transmission='learned' needs an Euler-type scheduler {EULER_SCHEDULERS} (its states are "
                         f"x0 + sigma_k eps), got {v['scheduler']!r}")
    if transmission == "learned" and v["snr_db"] is None:
        raise ValueError("snr_db is needed for transmission='learned' (the codec is conditioned on it)")
    if v["codec_decoding"] is not None and (v["codec_decoding"] == "soft") != v["soft_decoding"]:
        raise ValueError(f"codec.decoding={v['codec_decoding']!r} contradicts soft_decoding={v['soft_decoding']}; "
                         "set only soft_decoding")
