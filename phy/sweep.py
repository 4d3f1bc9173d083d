"""BER/BLER sweeps over SNR (or over the BSC's bit error rate).

:func:`sweep_link` simulates a number of information bits at each point and
returns one tidy row per point with the columns :data:`SWEEP_COLUMNS`.
"""

from __future__ import annotations


import json
import math
import sys
from typing import Optional, Sequence

import numpy as np
import torch

from .config import LinkConfig
from .seeding import derive_seed
from .link import DigitalLink

__all__ = ["SWEEP_COLUMNS", "sweep_link", "sweep_links", "simulate_point", "point_cost", "parse_snr_db_list", "parse_float_list", "wilson_interval", "design_effect", "bit_errors_per_block", "MIN_ERRORS"]

#: a point with fewer block errors than this is flagged ``too_few_errors``:
#: its BLER interval is wider than about +-60% of the estimate
MIN_ERRORS = 10

#: the columns of every sweep row, in order
SWEEP_COLUMNS = (
    "snr_db",
    "ebno_db",
    "modulation",
    "code",
    "code_rate",
    "mcs_index",
    "channel",
    "speed_mps",
    "csi",
    "bit_error_rate",
    "num_bits",
    "bit_errors",
    "ber",
    "num_blocks",
    "block_errors",
    "bler",
    "channel_uses",
    "spectral_efficiency",
    "ber_low",
    "ber_high",
    "bler_low",
    "bler_high",
    "ber_design_effect",
    "bler_design_effect",
    "too_few_errors",
    "seed",
    "config",
)

#: information bits per row of a simulated batch (long rows fill OFDM slots)
_ROW_BITS = 16384


def parse_float_list(text: str, name: str = "value") -> list[float]:
    """Parse ``"0,2,4"`` or ``"start:step:stop"`` (inclusive) into floats.

    :param text: the list.
    :param name: parameter name used in error messages.
    :raises ValueError: on an empty list, a malformed number or range.

    Example::

        >>> parse_float_list("0:2.5:10")
        [0.0, 2.5, 5.0, 7.5, 10.0]
        >>> parse_float_list("1, 3")
        [1.0, 3.0]
    """
    text = (text or "").strip()
    if not text:
        raise ValueError(f"{name}: empty list; give e.g. '0,2,4' or '0:2:10'")
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3:
                raise ValueError
            start, step, stop = parts
            if step == 0 or (stop - start) / step < 0:
                raise ValueError(f"{name}: range {text!r} has a zero step or a step of the wrong sign")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > 100_000:
                raise ValueError(f"{name}: range {text!r} has too many points ({count})")
            return [round(start + i * step, 10) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        if str(exc).startswith(name):
            raise
        raise ValueError(f"{name}: cannot parse {text!r}; give a comma list '0,2,4' or a range 'start:step:stop'") from None
    if not values:
        raise ValueError(f"{name}: empty list; give e.g. '0,2,4' or '0:2:10'")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name}: values must be finite, got {text!r}")
    return values


def parse_snr_db_list(text: str) -> list[float]:
    """:func:`parse_float_list` for ``--snr-db``."""
    return parse_float_list(text, "snr_db")


def wilson_interval(errors: int, total: int, confidence: float = 0.95,
                    design_effect: float = 1.0) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``errors / total``.

    ``design_effect`` > 1 widens it for trials that come in correlated clusters
    (the code blocks of one payload row see one slow fade): the interval of the
    same proportion over ``total / design_effect`` effective trials (Kish).
    Values below 1 are taken as 1.

    Example::

        >>> [round(v, 4) for v in wilson_interval(0, 100)]
        [0.0, 0.037]
        >>> [round(v, 4) for v in wilson_interval(50, 100)]
        [0.4038, 0.5962]
        >>> wide = wilson_interval(50, 100, design_effect=4.0)   # as 12.5 errors in 25 trials
        >>> [round(v, 4) for v in wide]
        [0.3175, 0.6825]
    """
    if total <= 0:
        return float("nan"), float("nan")
    if design_effect > 1.0:
        from scipy.stats import norm  # pylint: disable=import-outside-toplevel

        n = total / design_effect
        p = errors / total
        z = float(norm.ppf(0.5 + confidence / 2))
        d = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / d
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
        return max(0.0, centre - half), min(1.0, centre + half)
    from scipy.stats import binomtest  # pylint: disable=import-outside-toplevel

    ci = binomtest(int(errors), int(total)).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def design_effect(errors_per_cluster: Sequence[float], cluster_size: "int | Sequence[int]") -> float:
    """How much clustering inflates the variance of an error rate: the variance of the rate estimated
    over clusters (the ratio estimator, clusters of ``cluster_size`` trials each: one number, or one per
    cluster) over the binomial variance ``p (1 - p) / N``.  1 for independent trials, above 1 when errors
    cluster (the bits of a failed code block; the blocks of a payload row in one slow fade); 1 where it
    cannot be estimated (fewer than 2 clusters, p = 0 or 1).  For equal clusters of m trials it is
    ``var(errors per cluster) / (m p (1 - p))``.

    Example::

        >>> design_effect([1, 1, 1, 1], 8) < 1 < design_effect([0, 4, 0, 4], 8)
        True
        >>> round(design_effect([0, 8, 0, 0], [8, 8, 8, 8]), 2)   # one whole cluster of 8 fails
        10.67
    """
    y = np.asarray(errors_per_cluster, dtype=np.float64)
    m = np.broadcast_to(np.asarray(cluster_size, dtype=np.float64), y.shape)
    if y.size < 2 or m.sum() <= 0:
        return 1.0
    p = float(y.sum() / m.sum())
    if not 0.0 < p < 1.0:
        return 1.0
    return float(((y - p * m) ** 2).sum() / ((y.size - 1) * m.mean() * p * (1 - p)))


def bit_errors_per_block(bits: torch.Tensor, bits_hat: torch.Tensor, block_length: int) -> torch.Tensor:
    """Bit errors of each code block: ``[rows, blocks]`` int64 from sent and decoded rows ``[rows, blocks * K]``
    (:class:`~phy.DigitalLink` codes a row as consecutive blocks of ``K = block_length`` bits).  A block
    failed where its count is above 0; ``(... > 0).sum(-1)`` are the block errors of each row.

    Example::

        >>> sent = torch.zeros(2, 8)
        >>> got = torch.tensor([[0., 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 1]])
        >>> bit_errors_per_block(sent, got, 4).tolist()
        [[2, 0], [0, 1]]
    """
    rows = bits.shape[0]
    return (bits_hat != bits).reshape(rows, -1, block_length).sum(-1)


def _point_seed(seed: int, index: int) -> int:
    return derive_seed(f"distdiff-sweep:{seed}:{index}")


def sweep_link(
    config: LinkConfig,
    snr_db_list: Optional[Sequence[float]],
    num_bits: int,
    seed: int = 0,
    progress: bool = True,
    bit_error_rates: Optional[Sequence[float]] = None,
    bits_per_call: int = 65536,
    target_block_errors: Optional[int] = None,
    max_bits: Optional[int] = None,
    workers: int = 1,
) -> list[dict]:
    """Simulate ``num_bits`` information bits at every SNR and count errors.

    :param config: the link (:class:`~phy.LinkConfig`); ``mcs="auto"``
        picks the MCS per SNR point.
    :param snr_db_list: :math:`E_s/N_0` points [dB]; ignored for the BSC.
    :param num_bits: information bits per point (rounded up to whole code
        blocks).
    :param seed: seed; point ``i`` uses its own generator derived from
        ``(seed, i)``, so a point's result does not depend on the others
        (nor on ``workers``).
    :param progress: show a tqdm progress bar on stderr.
    :param bit_error_rates: BSC crossover probabilities to sweep (default:
        ``[config.bit_error_rate]``); only for ``channel="bsc"``.
    :param bits_per_call: information bits per simulated batch.
    :param target_block_errors: stop a point once it has seen this many
        block errors (checked after every batch, like Sionna's ``sim_ber``);
        `None`: simulate the whole budget.
    :param max_bits: the bit budget of a point when ``target_block_errors``
        is given (default: ``num_bits``).
    :param workers: worker processes (:func:`sweep_links`); 1: in this process.
    :output rows: one dict per point with the keys :data:`SWEEP_COLUMNS`:
        counts, BER/BLER with 95% Wilson intervals (``ber_low`` ...
        ``bler_high``) widened by the measured design effect
        (:func:`design_effect`: the bit errors of a point cluster in its
        failed code blocks, ``ber_design_effect``, and its block errors can
        cluster in a payload row's slow fade, ``bler_design_effect``; 1 for
        independent trials), ``too_few_errors`` (fewer than :data:`MIN_ERRORS`
        block errors), the point's ``seed`` and its resolved ``config`` (a
        JSON string of :class:`~phy.LinkConfig` fields).

    Example::

        >>> from phy import LinkConfig, sweep_link
        >>> rows = sweep_link(LinkConfig(code="none"), [0.0, 6.0], 20000, progress=False)
        >>> [r["snr_db"] for r in rows], rows[0]["ber"] > rows[1]["ber"]
        ([0.0, 6.0], True)
    """
    return sweep_links([(config, snr_db_list, bit_error_rates)], num_bits, seed=seed, progress=progress,
                       bits_per_call=bits_per_call, target_block_errors=target_block_errors, max_bits=max_bits,
                       workers=workers)


def _points_of(config: LinkConfig, snr_db_list, bit_error_rates) -> list[tuple[Optional[float], LinkConfig]]:
    if not isinstance(config, LinkConfig):
        raise ValueError(f"config must be a phy.LinkConfig, got {type(config).__name__}")
    if config.channel == "bsc":
        rates = list(bit_error_rates) if bit_error_rates is not None else [config.bit_error_rate]
        if not rates:
            raise ValueError("bit_error_rate: empty list")
        return [(None, config.replace(bit_error_rate=float(p))) for p in rates]
    if bit_error_rates is not None:
        raise ValueError("bit_error_rates only applies to channel='bsc'")
    snrs = list(snr_db_list) if snr_db_list is not None else []
    if not snrs:
        raise ValueError("snr_db: empty list; give at least one SNR [dB]")
    for s in snrs:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
            raise ValueError(f"snr_db: values must be finite numbers, got {s!r}")
    return [(float(s), config) for s in snrs]


#: relative cost of one information bit per channel (OFDM with a TDL channel costs most)
_CHANNEL_COST = {"bsc": 0.2, "awgn": 1.0, "rayleigh": 1.5}


def point_cost(snr_db: Optional[float], config: LinkConfig, target_block_errors: Optional[int]) -> float:
    """A rough relative cost of a sweep point, to start the slowest points first.

    Per bit: the channel (OFDM/TDL most) and the code (LDPC decoding). With a
    block-error target, points at high SNR run their whole budget while points at
    low SNR stop early, so the cost grows with the SNR.

    >>> from phy import LinkConfig
    >>> point_cost(20.0, LinkConfig(channel="tdl-a"), 100) > point_cost(0.0, LinkConfig(), 100)
    True
    """
    cost = _CHANNEL_COST.get(config.channel, 4.0) * (2.0 if config.code != "none" else 1.0)
    if target_block_errors is not None and snr_db is not None:
        cost *= 1.0 + max(0.0, min(40.0, snr_db + 10.0)) / 10.0
    return cost


def sweep_links(
    sweeps: Sequence[tuple],
    num_bits: int,
    seed: int = 0,
    progress: bool = True,
    bits_per_call: int = 65536,
    target_block_errors: Optional[int] = None,
    max_bits: Optional[int] = None,
    workers: int = 1,
    executor=None,
) -> list[dict]:
    """:func:`sweep_link` over several configurations, in parallel worker processes.

    :param sweeps: ``(config, snr_db_list, bit_error_rates)`` triples; the points of
        each are numbered from 0 (its seeds are those :func:`sweep_link` gives it alone).
    :param workers: worker processes (one torch thread each, forked from this process,
        or from a forkserver that preloaded :mod:`phy` when this process runs several torch
        threads); points are handed out slowest first
        (:func:`point_cost`); 1 runs everything in this process.
    :param executor: instead of local processes, any object with
        ``imap_unordered(fn, items)`` yielding ``(item, result, error)``
        (an :class:`experiments.executors.Executor`, e.g. the Ray executor);
        points are submitted slowest first and a failed point raises.
    :output rows: the rows of every sweep, in the order of ``sweeps`` and their points;
        identical for every ``workers``.

    Example::

        >>> from phy import LinkConfig
        >>> rows = sweep_links([(LinkConfig(code="none"), [0.0], None),
        ...                     (LinkConfig(code="none", modulation="16qam"), [0.0], None)], 4000, progress=False)
        >>> [r["modulation"] for r in rows]
        ['qpsk', '16qam']
    """
    if isinstance(num_bits, bool) or not isinstance(num_bits, int) or num_bits < 1:
        raise ValueError(f"num_bits must be a positive integer, got {num_bits!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    tasks = []
    for config, snr_db_list, rates in sweeps:
        for i, (snr_db, cfg) in enumerate(_points_of(config, snr_db_list, rates)):
            tasks.append((snr_db, cfg, _point_seed(seed, i)))
    if target_block_errors is not None and (isinstance(target_block_errors, bool) or int(target_block_errors) < 1):
        raise ValueError(f"target_block_errors must be a positive integer, got {target_block_errors!r}")
    if max_bits is not None:
        if target_block_errors is None:
            raise ValueError("max_bits only applies with target_block_errors (else num_bits is the budget)")
        if isinstance(max_bits, bool) or int(max_bits) < 1:
            raise ValueError(f"max_bits must be a positive integer, got {max_bits!r}")
        num_bits = int(max_bits)
    budget = (num_bits, bits_per_call, target_block_errors)

    from tqdm import tqdm  # pylint: disable=import-outside-toplevel

    out: list = [None] * len(tasks)
    order = sorted(range(len(tasks)), key=lambda j: -point_cost(tasks[j][0], tasks[j][1], target_block_errors))
    with tqdm(total=len(tasks), desc="link sweep", unit="pt", disable=not progress, file=sys.stderr,
              leave=False) as bar:
        if executor is not None:
            for (j, _), result, error in executor.imap_unordered(_simulate_task, [(j, (*tasks[j], *budget))
                                                                               for j in order]):
                if error is not None:
                    raise RuntimeError(f"link point {j} ({tasks[j][1].channel}, SNR {tasks[j][0]} dB) failed: "
                                       f"{error}")
                out[j] = result
                bar.update()
            return out
        if workers == 1 or len(tasks) == 1:
            for j, task in enumerate(tasks):
                out[j] = simulate_point(*task, *budget)
                bar.update()
            return out
        import multiprocessing  # pylint: disable=import-outside-toplevel
        from concurrent.futures import ProcessPoolExecutor, as_completed  # pylint: disable=import-outside-toplevel

        ctx = multiprocessing.get_context(_start_method())
        if ctx.get_start_method() == "forkserver":
            ctx.set_forkserver_preload(["torch", "sionna.phy", "phy", "phy.sweep"])
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=ctx,
                                 initializer=_init_worker) as pool:
            futures = {pool.submit(simulate_point, *tasks[j], *budget): j for j in order}
            try:
                for fut in as_completed(futures):
                    out[futures[fut]] = fut.result()
                    bar.update()
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
    return out


def _start_method() -> str:
    """'fork' where it is safe and cheapest (Linux, this process computes with one torch thread, so no
    OpenMP team exists to break in the child: the workers start in milliseconds with everything imported);
    else 'forkserver' with :mod:`phy` preloaded (a few seconds once)."""
    if sys.platform.startswith("linux") and torch.get_num_threads() == 1:
        return "fork"
    return "forkserver"


def _init_worker() -> None:
    torch.set_num_threads(1)


def _simulate_task(item: tuple) -> dict:
    """``simulate_point`` of an ``(index, arguments)`` item (an executor's unit of work)."""
    torch.set_num_threads(1)
    return simulate_point(*item[1])


#: links of this process, one per configuration (a worker reuses its links, their chains and probes)
_LINKS: dict[LinkConfig, DigitalLink] = {}


def simulate_point(snr_db: Optional[float], cfg: LinkConfig, point_seed: int, num_bits: int,
                   bits_per_call: int = 65536, target_block_errors: Optional[int] = None) -> dict:
    """One sweep point: ``num_bits`` (or up to ``target_block_errors`` block errors) through ``cfg``.

    :output row: the :data:`SWEEP_COLUMNS` of the point (see :func:`sweep_link`).
    """
    k = cfg.block_length
    total_blocks = math.ceil(num_bits / k)
    blocks_per_row = max(1, min(total_blocks, _ROW_BITS // k))
    rows_per_call = max(1, bits_per_call // (blocks_per_row * k))
    if len(_LINKS) > 64:
        _LINKS.clear()
    link = _LINKS.get(cfg)
    if link is None:
        link = _LINKS[cfg] = DigitalLink(cfg)
    gen = torch.Generator().manual_seed(point_seed)
    acc = dict(num_bits=0, bit_errors=0, num_blocks=0, block_errors=0, channel_uses=0)
    block_bit_errors: list = []   # bit errors cluster in failed code blocks
    row_block_errors: list = []   # and block errors in a row's slow fade
    row_blocks: list = []         # blocks of each row
    res = None
    remaining = total_blocks
    with torch.no_grad():
        while remaining > 0:
            blocks = min(remaining, blocks_per_row * rows_per_call)
            full_rows, tail = divmod(blocks, blocks_per_row)
            for nr, bpr in ((full_rows, blocks_per_row), (1 if tail else 0, tail)):
                if nr == 0:
                    continue
                bits = torch.randint(0, 2, (nr, bpr * k), generator=gen).float()
                res = link(bits, snr_db, gen)
                for key in acc:
                    acc[key] += getattr(res, key)
                wrong = bit_errors_per_block(bits, res.bits_hat, k)
                block_bit_errors.append(wrong.flatten().numpy())
                row_block_errors.append((wrong > 0).sum(-1).numpy())
                row_blocks.append(np.full(nr, bpr))
            remaining -= blocks
            if target_block_errors is not None and acc["block_errors"] >= target_block_errors:
                break
    # intervals widened by the measured clustering: bits by code block, blocks by payload row
    ber_deff = design_effect(np.concatenate(block_bit_errors), k)
    bler_deff = design_effect(np.concatenate(row_block_errors), np.concatenate(row_blocks))
    ber_ci = wilson_interval(acc["bit_errors"], acc["num_bits"], design_effect=ber_deff)
    bler_ci = wilson_interval(acc["block_errors"], acc["num_blocks"], design_effect=bler_deff)
    return dict(
        snr_db=res.snr_db,
        ebno_db=res.ebno_db,
        modulation=res.modulation,
        code=cfg.code,
        code_rate=res.code_rate,
        mcs_index=res.mcs_index,
        channel=cfg.channel,
        speed_mps=cfg.speed_mps,
        csi=cfg.csi,
        bit_error_rate=cfg.bit_error_rate if cfg.channel == "bsc" else None,
        num_bits=acc["num_bits"],
        bit_errors=acc["bit_errors"],
        ber=acc["bit_errors"] / acc["num_bits"],
        num_blocks=acc["num_blocks"],
        block_errors=acc["block_errors"],
        bler=acc["block_errors"] / acc["num_blocks"],
        channel_uses=acc["channel_uses"],
        spectral_efficiency=res.spectral_efficiency,
        ber_low=ber_ci[0],
        ber_high=ber_ci[1],
        bler_low=bler_ci[0],
        bler_high=bler_ci[1],
        ber_design_effect=ber_deff,
        bler_design_effect=bler_deff,
        too_few_errors=acc["block_errors"] < MIN_ERRORS,
        seed=point_seed,
        config=json.dumps(cfg.model_dump(), sort_keys=True),
    )
