"""Statistics behind every number of a report: intervals, paired tests, and which rows count.

One implementation for the whole project:

* :func:`wilson_interval` — 95% Wilson score interval of a proportion (the
  project's one implementation lives in :func:`phy.sweep.wilson_interval`, the
  lowest layer that every package may import; it is re-exported here).
* :func:`mean_interval` — mean with a 95% Student-t interval.
* :func:`paired_test` — two arms measured on the same pairs (seed, sender,
  receiver): exact McNemar for 0/1 outcomes, Wilcoxon signed-rank for
  continuous ones, with the mean difference and its t interval.
* :func:`unpaired_test` — Fisher's exact test or Welch's t test, when the arms
  are not measured on the same pairs.
* :func:`metric_values` — the values of a metric that enter a mean: rows
  whose receiver fell back to generating alone (header lost) are left out of
  quality and adherence metrics (they are reported as a fallback rate), and an
  infinite PSNR (identical images) is replaced by :data:`PSNR_CAP_DB`.
* :func:`summarise` — one cell of a report table: the estimate, its interval,
  ``n``, and what was excluded.

A cell with fewer than :data:`MIN_SAMPLES` samples is flagged: too small to
carry a claim.

Example
-------
>>> [round(v, 3) for v in wilson_interval(5, 12)]
[0.193, 0.68]
>>> m, lo, hi, n = mean_interval([1.0, 2.0, 3.0, 4.0])
>>> round(m, 2), round(lo, 2), round(hi, 2), n
(2.5, 0.45, 4.55, 4)
>>> r = paired_test([1, 1, 1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 0, 0, 1])
>>> r["test"], r["n"], round(r["p_value"], 4)
('exact McNemar', 8, 0.0312)
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from phy.sweep import design_effect, wilson_interval

#: PSNR [dB] that stands for "identical images" (inf) in a mean. Above the largest finite PSNR of
#: an 8-bit 64x64 RGB image (one value off by one level: 10 log10(255^2 * 12288) = 89.0 dB).
PSNR_CAP_DB = 100.0
#: fewer samples than this in a cell: flagged as too small to carry a claim
MIN_SAMPLES = 30
#: 0/1 columns: Wilson interval of the fraction
BINARY_METRICS = ("adherent", "fallback_generate_alone", "judge_abstained", "reference_adherent",
                  "alone_adherent", "header_corrupted", "state_cache_hit")
#: rate columns with their (errors, total) count columns: Wilson interval of the pooled rate
COUNTED_RATES = {"bler": ("block_errors", "num_blocks"), "ber": ("bit_errors", "num_bits")}
#: columns about the receiver's image or its judgement: fallback rows are left out of their means
RECEIVER_METRICS = ("mse", "psnr_db", "ssim", "latent_mse", "mse_vs_alone", "psnr_db_vs_alone", "ssim_vs_alone",
                    "mse_nominal_resume", "psnr_db_nominal_resume", "ssim_nominal_resume",
                    "adherent", "judge_abstained", "classified_as", "num_repaired")
#: columns in dB that may be +inf (identical images)
PSNR_METRICS = ("psnr_db", "psnr_db_vs_alone", "psnr_db_nominal_resume")
#: the row's fallback flag (receiver generated alone)
FALLBACK = "fallback_generate_alone"


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float, int]:
    """Mean of the finite ``values`` with a Student-t confidence interval.

    Returns
    -------
    (mean, low, high, n)
        NaN bounds when ``n < 2`` (no spread to estimate); ``low == high == mean`` when all are equal.

    >>> mean_interval([3.0])[1:]
    (nan, nan, 1)
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = int(x.size)
    if n == 0:
        return float("nan"), float("nan"), float("nan"), 0
    m = float(x.mean())
    if n < 2:
        return m, float("nan"), float("nan"), n
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return m, m - half, m + half, n


def _is_binary(x: np.ndarray) -> bool:
    return x.size > 0 and bool(np.isin(x, (0.0, 1.0)).all())


def paired_test(a, b, binary: bool | None = None) -> dict:
    """Compare two arms measured on the same pairs (``a[i]`` and ``b[i]`` share seed, sender and receiver).

    0/1 outcomes: exact McNemar (binomial test on the discordant pairs);
    otherwise Wilcoxon signed-rank (two-sided, zero differences dropped,
    exact where scipy can). Pairs with a NaN on either side are dropped.
    ``binary``: whether the outcome is 0/1 (None: both arms hold only 0 and 1).

    Returns
    -------
    dict
        ``test``, ``n`` (pairs used), ``mean_a``, ``mean_b``, ``diff`` (mean of a - b),
        ``diff_low``, ``diff_high`` (95% t interval of the mean difference), ``p_value``.

    >>> r = paired_test([10.0, 11.0, 12.0, 13.0, 14.0, 15.0], [9.0, 10.5, 11.0, 12.5, 13.0, 13.5])
    >>> r["test"], r["n"], round(r["diff"], 3), round(r["p_value"], 4)
    ('Wilcoxon signed-rank', 6, 0.917, 0.0312)
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired_test needs arms of the same length, got {a.shape} and {b.shape}")
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    d = a - b
    m, lo, hi, n = mean_interval(d)
    out = {"n": int(a.size), "mean_a": float(a.mean()) if a.size else float("nan"),
           "mean_b": float(b.mean()) if b.size else float("nan"), "diff": m, "diff_low": lo, "diff_high": hi}
    if binary if binary is not None else (_is_binary(a) and _is_binary(b)):
        n01, n10 = int(((a == 0) & (b == 1)).sum()), int(((a == 1) & (b == 0)).sum())
        p = stats.binomtest(n10, n10 + n01).pvalue if n10 + n01 else 1.0
        out.update(test="exact McNemar", p_value=float(p), discordant=(n10, n01))
    else:
        if a.size == 0 or not np.any(d != 0):
            p = 1.0 if a.size else float("nan")
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                p = float(stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided").pvalue)
        out.update(test="Wilcoxon signed-rank", p_value=float(p))
    return out


def unpaired_test(a, b, binary: bool | None = None) -> dict:
    """Compare two arms measured on different samples: Fisher's exact test (0/1) or Welch's t test.

    ``binary`` as in :func:`paired_test`.

    >>> r = unpaired_test([1] * 5 + [0] * 7, [1] * 7 + [0] * 5)
    >>> r["test"], round(r["p_value"], 2)
    ("Fisher's exact", 0.68)
    """
    from scipy import stats

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    out = {"n_a": int(a.size), "n_b": int(b.size), "mean_a": float(a.mean()) if a.size else float("nan"),
           "mean_b": float(b.mean()) if b.size else float("nan")}
    out["diff"] = out["mean_a"] - out["mean_b"]
    if binary if binary is not None else (_is_binary(a) and _is_binary(b)):
        table = [[int(a.sum()), int(a.size - a.sum())], [int(b.sum()), int(b.size - b.sum())]]
        out.update(test="Fisher's exact", p_value=float(stats.fisher_exact(table).pvalue))
    elif a.size >= 2 and b.size >= 2:
        with warnings.catch_warnings():    # identical samples: scipy warns and returns NaN, reported as "–"
            warnings.simplefilter("ignore", RuntimeWarning)
            out.update(test="Welch's t", p_value=float(stats.ttest_ind(a, b, equal_var=False).pvalue))
    else:
        out.update(test="Welch's t", p_value=float("nan"))
    return out


def metric_values(df, metric: str):
    """The values of ``metric`` that enter a mean, as a float Series aligned with ``df``.

    Rows where the receiver fell back to generating alone are NaN for the
    receiver's quality and adherence metrics (:data:`RECEIVER_METRICS`); an
    infinite PSNR is replaced by :data:`PSNR_CAP_DB`.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"psnr_db": [30.0, float("inf"), 12.0], "fallback_generate_alone": [0, 0, 1]})
    >>> metric_values(df, "psnr_db").tolist()
    [30.0, 100.0, nan]
    """
    v = df[metric].astype(float).copy()
    if metric in RECEIVER_METRICS and FALLBACK in df.columns:
        v[df[FALLBACK].astype(float).fillna(0.0).to_numpy() == 1.0] = np.nan
    if metric in PSNR_METRICS:
        v[np.isposinf(v.to_numpy())] = PSNR_CAP_DB
    return v


def summarise(df, metric: str, value_range: tuple[float, float] | None = None) -> dict:
    """One table cell: estimate, 95% interval, ``n`` and what was excluded, for ``metric`` over the rows of ``df``.

    Returns
    -------
    dict
        ``kind`` ("proportion" (Wilson over rows), "rate" (Wilson over the pooled
        counts, e.g. blocks, widened by the rows' design effect: a row's bits
        fail together in a block, its blocks in one fade, ``design_effect``),
        or "mean" (t)), ``value``, ``low``, ``high``, ``n``
        (rows used), ``units`` (what ``n`` counts: rows; for rates also the
        pooled count in ``n_units``), ``excluded_fallback`` (rows left out),
        ``identical`` (rows with infinite PSNR, for PSNR metrics), ``small``
        (``n < MIN_SAMPLES``). ``value_range``: the metric's possible values
        (e.g. ``(-1, 1)`` for SSIM); a t interval is clipped to it.

    >>> import pandas as pd
    >>> s = summarise(pd.DataFrame({"adherent": [1.0] * 30 + [0.0] * 10}), "adherent")
    >>> s["kind"], s["value"], round(s["low"], 3), s["n"], s["small"]
    ('proportion', 0.75, 0.598, 40, False)
    """
    raw = df[metric].astype(float)
    v = metric_values(df, metric)
    excluded = int((raw.notna() & v.isna()).sum()) if metric in RECEIVER_METRICS else 0
    out = {"excluded_fallback": excluded, "identical": None}
    if metric in PSNR_METRICS:
        out["identical"] = int(np.isposinf(raw.to_numpy()[v.notna().to_numpy()]).sum())
    x = v.to_numpy(float)
    x = x[np.isfinite(x)]
    counts = COUNTED_RATES.get(metric)
    if counts and all(c in df.columns for c in counts):
        sub = df[v.notna()]
        k_rows, tot_rows = sub[counts[0]].astype(float).to_numpy(), sub[counts[1]].astype(float).to_numpy()
        k, tot = float(k_rows.sum()), float(tot_rows.sum())
        # the rows are clusters (a failed block takes many bits, one receiver's fade many blocks): the
        # Wilson interval over the pooled units, widened by the measured design effect
        deff = design_effect(k_rows, tot_rows)
        lo, hi = wilson_interval(int(k), int(tot), design_effect=deff) if tot > 0 else (float("nan"), float("nan"))
        out.update(kind="rate", value=k / tot if tot > 0 else float("nan"), low=lo, high=hi, n=int(x.size),
                   n_units=int(tot), design_effect=deff)
    elif metric in BINARY_METRICS:
        k = int(x.sum())
        lo, hi = wilson_interval(k, int(x.size)) if x.size else (float("nan"), float("nan"))
        out.update(kind="proportion", value=k / x.size if x.size else float("nan"), low=lo, high=hi, n=int(x.size))
    else:
        m, lo, hi, n = mean_interval(x)
        if value_range is not None and np.isfinite(lo):
            lo, hi = float(np.clip(lo, *value_range)), float(np.clip(hi, *value_range))
        out.update(kind="mean", value=m, low=lo, high=hi, n=n)
    out["small"] = out["n"] < MIN_SAMPLES
    return out


def fmt_number(v) -> str:
    """A number for a report: 4 significant digits, 2 decimals from 10 up, ``–`` for NaN/None.

    >>> fmt_number(0.123456), fmt_number(39.123), fmt_number(float("nan")), fmt_number(2.5e-5)
    ('0.1235', '39.12', '–', '2.5e-05')
    """
    if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return "–"
    if isinstance(v, (float, np.floating)) and np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (float, np.floating, int, np.integer)):
        a = abs(float(v))
        if a != 0 and (a < 1e-3 or a >= 1e5):
            return f"{float(v):.3g}"
        return f"{float(v):.4g}" if a < 10 else f"{float(v):.2f}"
    return str(v)


def fmt_p(p: float) -> str:
    """A p-value for a report (``p < 0.001`` below a thousandth).

    >>> fmt_p(0.0312), fmt_p(2e-7), fmt_p(float("nan"))
    ('p = 0.031', 'p < 0.001', 'p = –')
    """
    if p is None or not np.isfinite(p):
        return "p = –"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.1 else f"p = {p:.2f}"


def fmt_cell(s: dict) -> str:
    """``value [low, high]`` of a :func:`summarise` result (``†`` when too small to carry a claim).

    >>> fmt_cell({"value": 0.75, "low": 0.598, "high": 0.858, "n": 40, "small": False})
    '0.75 [0.598, 0.858]'
    """
    if s["n"] == 0:
        return "–"
    body = fmt_number(s["value"])
    if np.isfinite(s["low"]) and np.isfinite(s["high"]):
        body += f" [{fmt_number(s['low'])}, {fmt_number(s['high'])}]"
    return body + (" †" if s["small"] else "")


__all__ = ["wilson_interval", "mean_interval", "paired_test", "unpaired_test", "metric_values", "summarise",
           "fmt_number", "fmt_p", "fmt_cell", "PSNR_CAP_DB", "MIN_SAMPLES", "BINARY_METRICS", "COUNTED_RATES",
           "RECEIVER_METRICS", "PSNR_METRICS"]
