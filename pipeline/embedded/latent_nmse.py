r"""Latent NMSE of JSCC codecs on intermediate diffusion states, against the bounds of :mod:`phy.jscc_bounds`.

One measurement shared by the learned codec's card, ``benchmarks/bench_codec.py``
(section ``bounds``) and the e2e report's bounds figure:

* :func:`sample_states` -- the states after steps ``k`` of the diffusion model
  for prompts and seeds, **one seed per state**: the sampler's noise is part
  of the source, so states that share a seed share most of their content at
  early ``k`` and their spread over samples (what :func:`phy.jscc_bounds.dct_variances`
  measures) would miss it. It raises if a seed repeats.
* :func:`heldout_states` -- :func:`sample_states` on the held-out prompts of
  :mod:`pipeline.embedded.jscc_training` (every ``heldout_every``-th of the
  vocabulary) or on the others (``split="train"``), with seeds disjoint from
  the training data's.
* :func:`awgn_errors` -- one codec across complex AWGN: the per-state mean
  squared error ``[N]`` [latent units^2]. An :class:`latent_codec.AnalogCodec`
  is sent with its header known (``compress`` / ``decompress``), a
  :class:`latent_codec.learned.LearnedCodec` with ``encode`` / ``decode``
  (conditioned on ``snr_db`` and the state's ``sigma``).
* :func:`measure` -- a tidy table over ``k``, ``rho``, SNR and codecs: NMSE
  [dB] with its 95 % interval and ``n``, the three bounds of the same states
  (OPTA, optimal linear, equal-gain linear) and each codec's distance to the
  optimal-linear bound [dB] with its interval.

NMSE is the mean squared error over the mean per-coefficient variance of the
states (each DCT coefficient around its own mean over the states, as in
:func:`phy.jscc_bounds.dct_variances`), so a codec and the bounds share one
denominator. The interval is a Student-t interval on the mean per-state error
(as :func:`experiments.stats.mean_interval`), mapped to dB; the bounds are
numbers of the measured spectrum (their sampling error from ``N`` states is
not in the interval: with ``N`` states of ``C*H*W`` coefficients the
``K`` strongest *measured* variances overstate the true strongest ones, so the
bounds are a little optimistic -- about 0.25 dB at ``N = 81``, ``k = 4``,
``rho = 1/8``, 20 dB; ``ranking_states`` adds the optimal-linear bound with
the coefficients ranked on independent states, free of that bias).

Example
-------
>>> import torch
>>> from latent_codec import AnalogCodec
>>> x = torch.randn(16, 4, 8, 8) * torch.linspace(2.0, 0.2, 8)
>>> t = measure({"analog": lambda rho, snr_db, k: AnalogCodec(2 * rho)}, {4: (x, 1.0)}, [0.5], [10.0])
>>> list(t.codec), int(t.n[0]), bool(t.opta_nmse_db[0] <= t.linear_optimal_nmse_db[0])
(['analog'], 16, True)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterable, Mapping, Optional, Sequence

import numpy as np

if TYPE_CHECKING:  # torch is imported where it is used
    import torch

__all__ = ["sample_states", "heldout_states", "awgn_errors", "measure", "codec_factories", "vocabulary_prompts",
           "shipped_split_diffusion", "HELDOUT_SEED_BASE"]

#: first seed of :func:`heldout_states` (the training data uses seeds below 1_000_000 + 1000 * (seed + 1))
HELDOUT_SEED_BASE = 5_000_000


def sample_states(sd, prompts: Sequence[str], seeds: Sequence[int], steps: Iterable[int] = (4, 8, 12),
                  num_inference_steps: int = 20, guidance_scale: float = 7.5, batch_size: int = 16,
                  scheduler: str = "euler_ancestral") -> dict:
    """States after each step ``k`` of ``steps``, one per ``(prompt, seed)``.

    Parameters
    ----------
    sd : pipeline.split.SplitDiffusion
    prompts, seeds : sequences of equal length ``N``; the seeds must be distinct.
    steps : the shared steps ``k`` (each in ``1..num_inference_steps``).

    Returns
    -------
    dict
        ``{k: (latents [N, C, H, W] float32, sigma_k float)}``.
    """
    prompts, seeds = list(prompts), [int(s) for s in seeds]
    if len(prompts) != len(seeds) or not prompts:
        raise ValueError(f"prompts and seeds must be non-empty and of equal length, got {len(prompts)} and "
                         f"{len(seeds)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct (one noise realisation per state: the sampler's noise is part "
                         "of the source)")
    ks = sorted(set(int(k) for k in steps))
    if not ks or ks[0] < 1 or ks[-1] > num_inference_steps:
        raise ValueError(f"steps must lie in 1..{num_inference_steps}, got {ks}")
    from pipeline.split import make_scheduler  # pylint: disable=import-outside-toplevel

    sched = make_scheduler(scheduler, sd.pipe.scheduler.config)
    sched.set_timesteps(num_inference_steps)
    sigmas = [float(s) for s in sched.sigmas]
    import torch  # pylint: disable=import-outside-toplevel

    out: dict[int, list] = {k: [] for k in ks}
    for start in range(0, len(prompts), batch_size):
        part = slice(start, start + batch_size)
        state = sd.shared(prompts[part], num_inference_steps, ks[0], seed=seeds[part],
                          guidance_scale=guidance_scale, scheduler=scheduler)
        for k in ks:
            if k > state.step:
                state = sd.resume(state, until=k)
            out[k].append(state.latents.float().cpu())
    return {k: (torch.cat(v), sigmas[k]) for k, v in out.items()}


def vocabulary_prompts() -> list[str]:
    """Every colour of every object on every table, in the order of :mod:`pipeline.embedded.jscc_training`'s
    dataset (its held-out prompts are every ``heldout_every``-th of this list).

    Example
    -------
    >>> prompts = vocabulary_prompts()
    >>> len(prompts) > 100, prompts[0].endswith("table")
    (True, True)
    """
    from pipeline.embedded.scenes import OBJECT_COLOURS, TABLES, make_caption  # pylint: disable=import-outside-toplevel

    return [make_caption(colour, obj, table) for obj, colours in OBJECT_COLOURS.items()
            for colour in colours for table in TABLES]


def shipped_split_diffusion():
    """:class:`pipeline.split.SplitDiffusion` of the shipped model, frozen (eval mode, no gradients)."""
    from pipeline.loading import load_pipeline  # pylint: disable=import-outside-toplevel
    from pipeline.split import SplitDiffusion  # pylint: disable=import-outside-toplevel

    pipe = load_pipeline()
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
        module.eval()
    return SplitDiffusion(pipe)


def heldout_states(num_states: int = 81, steps: Iterable[int] = (4, 8, 12), *, split: str = "heldout",
                   sd=None, heldout_every: int = 5, seed_base: int = HELDOUT_SEED_BASE, **kwargs) -> dict:
    """:func:`sample_states` of the shipped model on the held-out (or training) prompts, distinct seeds.

    The prompts of ``split`` are cycled to ``num_states`` states; state ``i``
    has seed ``seed_base + i`` (``+ 500_000`` for ``split="train"``).
    """
    if split not in ("heldout", "train"):
        raise ValueError(f"split must be 'heldout' or 'train', got {split!r}")
    if isinstance(num_states, bool) or not isinstance(num_states, int) or num_states < 2:
        raise ValueError(f"num_states must be an int >= 2, got {num_states!r}")
    if sd is None:
        sd = shipped_split_diffusion()
    held = split == "heldout"
    prompts = [p for i, p in enumerate(vocabulary_prompts()) if (i % heldout_every == 0) == held]
    chosen = [prompts[i % len(prompts)] for i in range(num_states)]
    base = seed_base + (0 if held else 500_000)
    return sample_states(sd, chosen, [base + i for i in range(num_states)], steps, **kwargs)


def awgn_errors(codec, latents: torch.Tensor, snr_db: float, sigma: float = 0.0,
                generator: Optional[torch.Generator] = None) -> np.ndarray:
    """Per-state mean squared error ``[N]`` of ``codec`` across complex AWGN at ``snr_db`` [latent units^2].

    The symbols have mean power 1; the noise has variance ``10^(-snr_db/10)`` per
    complex symbol and the decoder is told it.
    """
    import torch  # pylint: disable=import-outside-toplevel

    x = latents.float()
    noise_var = 10.0 ** (-float(snr_db) / 10.0)

    def noisy(s: torch.Tensor) -> torch.Tensor:
        z = torch.randn(s.shape + (2,), generator=generator)
        return s + math.sqrt(noise_var / 2.0) * torch.complex(z[..., 0], z[..., 1])

    with torch.no_grad():
        if hasattr(codec, "compress"):
            payload = codec.compress(x)
            x_hat = codec.decompress(noisy(payload.symbols), payload.header,
                                     noise_var=torch.full(payload.symbols.shape, noise_var)).latents
        else:
            s = codec.encode(x, float(snr_db), float(sigma))
            x_hat = codec.decode(noisy(s), torch.full(s.shape, noise_var), float(snr_db), float(sigma))
    return (x_hat - x).pow(2).flatten(1).mean(1).double().numpy()


def nmse_db_interval(errors: np.ndarray, variance: float) -> tuple[float, float, float, int]:
    """Mean of the per-state squared errors over ``variance`` in dB, with a Student-t 95 % interval on the
    mean (as :func:`experiments.stats.mean_interval`, which pipeline may not import): ``(db, low_db,
    high_db, n)``; a lower end at or below 0 is ``-inf`` dB.

    >>> [round(v, 2) for v in nmse_db_interval(np.array([0.1, 0.2, 0.3]), 1.0)[:3]]
    [-6.99, -inf, -3.48]
    """
    from scipy import stats  # pylint: disable=import-outside-toplevel

    x = np.asarray(errors, dtype=np.float64)
    n = int(x.size)
    mean = float(x.mean())
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    lo, hi = mean - half, mean + half
    to_db = lambda v: 10.0 * math.log10(v / variance) if v > 0 else float("-inf")  # noqa: E731
    return to_db(mean), to_db(lo), to_db(hi), n


def codec_factories(coefficient_orders: Optional[Mapping[int, torch.Tensor]] = None, num_bands: int = 32) -> dict:
    """The analog codecs of the comparison, as ``{name: factory(rho, snr_db, k) -> codec}``.

    ``analog`` -- equal power, 8 bands, low-pass order (the codec's defaults);
    ``analog_optimal`` -- Lee-Petersen allocation over ``num_bands`` bands at
    ``design_snr_db = snr_db``, low-pass order; with ``coefficient_orders``
    ``{k: order}`` (e.g. :meth:`latent_codec.AnalogCodec.fit_coefficient_order`
    on training states at each ``k``) also ``analog_optimal_fitted`` -- the same in that order.
    """
    from latent_codec import AnalogCodec  # pylint: disable=import-outside-toplevel

    out = {"analog": lambda rho, snr_db, k: AnalogCodec(min(1.0, 2 * rho)),
           "analog_optimal": lambda rho, snr_db, k: AnalogCodec(
               min(1.0, 2 * rho), num_bands=num_bands, power_allocation="optimal", design_snr_db=float(snr_db))}
    if coefficient_orders is not None:
        out["analog_optimal_fitted"] = lambda rho, snr_db, k: AnalogCodec(
            min(1.0, 2 * rho), selection="custom", coefficient_order=coefficient_orders[k], num_bands=num_bands,
            power_allocation="optimal", design_snr_db=float(snr_db))
    return out


def measure(codecs: Mapping[str, Callable], states: Mapping[int, tuple], bandwidth_ratios: Iterable[float],
            snr_db_list: Iterable[float], *, seed: int = 12345, ranking_states: Optional[Mapping[int, tuple]] = None):
    """Latent NMSE of each codec on ``states`` across AWGN, with the bounds of the same states.

    Parameters
    ----------
    codecs : ``{name: factory(rho, snr_db, k) -> codec}`` (an ``AnalogCodec`` or a
        ``LearnedCodec``; a factory may return ``None`` to skip a ``rho``).
    states : ``{k: (latents [N, C, H, W], sigma_k)}`` (e.g. :func:`heldout_states`).
    bandwidth_ratios : values of :math:`\\rho` [complex channel uses per latent value], in (0, 1/2].
    snr_db_list : :math:`E_s/N_0` [dB].
    seed : channel noise seed (the same noise for every codec of a point).
    ranking_states : optional ``{k: (latents, sigma_k)}`` independent of
        ``states`` (e.g. training states): adds the optimal-linear bound with
        the kept components ranked by *their* spectrum
        (``linear_optimal_ranked_nmse_db``, free of the selection bias of
        ranking by the measured spectrum itself) and ``gap_to_ranked_db``.

    Returns
    -------
    pandas.DataFrame
        One row per ``(k, rho, snr_db, codec)``: ``sigma, n, nmse_db,
        nmse_ci_low_db, nmse_ci_high_db``, the bounds ``opta_nmse_db,
        linear_optimal_nmse_db, linear_equal_nmse_db`` and
        ``gap_to_linear_optimal_db`` (= ``nmse_db - linear_optimal_nmse_db``)
        with ``gap_ci_low_db, gap_ci_high_db`` (and the ``ranked`` columns
        with ``ranking_states``).
    """
    import pandas as pd  # pylint: disable=import-outside-toplevel
    import torch  # pylint: disable=import-outside-toplevel

    from phy.jscc_bounds import (  # pylint: disable=import-outside-toplevel
        dct_variances, linear_nmse, nmse_db, opta_nmse)

    rows = []
    for k, (x, sigma) in sorted(states.items()):
        lam = dct_variances(x)
        variance = float(lam.mean())
        rank = None if ranking_states is None else dct_variances(ranking_states[k][0])
        for rho in bandwidth_ratios:
            for snr_db in snr_db_list:
                bounds = {"opta_nmse_db": nmse_db(opta_nmse(lam, rho, snr_db)),
                          "linear_optimal_nmse_db": nmse_db(linear_nmse(lam, rho, snr_db, "optimal")),
                          "linear_equal_nmse_db": nmse_db(linear_nmse(lam, rho, snr_db, "equal"))}
                if rank is not None:
                    bounds["linear_optimal_ranked_nmse_db"] = nmse_db(linear_nmse(lam, rho, snr_db, "optimal",
                                                                                  ranking=rank))
                for name, factory in codecs.items():
                    codec = factory(rho, snr_db, k)
                    if codec is None:
                        continue
                    gen = torch.Generator().manual_seed(seed)
                    err = awgn_errors(codec, x, snr_db, sigma, gen)
                    db, lo, hi, n = nmse_db_interval(err, variance)
                    ref = bounds["linear_optimal_nmse_db"]
                    rows.append({"k": int(k), "sigma": float(sigma), "bandwidth_ratio": float(rho),
                                 "snr_db": float(snr_db), "codec": name, "n": n, "nmse_db": db,
                                 "nmse_ci_low_db": lo, "nmse_ci_high_db": hi, **bounds,
                                 "gap_to_linear_optimal_db": db - ref, "gap_ci_low_db": lo - ref,
                                 "gap_ci_high_db": hi - ref})
                    if rank is not None:
                        ranked = bounds["linear_optimal_ranked_nmse_db"]
                        rows[-1].update({"gap_to_ranked_db": db - ranked, "gap_ranked_ci_low_db": lo - ranked,
                                         "gap_ranked_ci_high_db": hi - ranked})
    return pd.DataFrame(rows)

