"""The quality-airtime frontier of a run: each arm's quality against the channel uses it spends.

A config asks for it with a ``plots:`` entry of ``kind: frontier``::

    plots:
      - {kind: frontier, x: channel_uses_per_latent_value, y: [psnr_db], arm: variant,
         panel: [channel, snr_db], reference: learned_rho0.125, budget: 0.5}

* :func:`frontier_points` -- per panel (one value of each ``panel`` column)
  and arm (and ``x``, when an arm has several), the mean channel uses and the
  quality with its 95 % interval and ``n`` (:func:`experiments.plots.summarise`:
  receivers that fell back to generating alone are left out of the quality;
  their rate is in ``fallback``). An arm whose every receiver fell back has no
  quality: it gives no received image.
* :func:`crossover_budget` -- the channel-use budget below which the
  ``reference`` arm gives the better image: with a budget ``B`` every arm whose
  channel uses are ``<= B`` may be chosen; the reference wins at ``B`` when its
  best quality within ``B`` is above every other arm's within ``B``. The
  answer is the smallest budget at or above the reference's own channel use
  where another arm catches up (``None``: none does within the run;
  ``status`` says which case holds, including "never" when an arm at fewer
  channel uses is already at least as good).
* :func:`frontier_table` -- a markdown table per panel: the crossover budget,
  and each arm's quality at ``<= budget`` channel uses per value (or a plain
  "no point <= budget").
* :func:`plot_latent_nmse` / :func:`gap_table` -- a ``kind: latent_nmse``
  entry: latent NMSE of codecs against the JSCC bounds (the table of
  :func:`pipeline.embedded.latent_nmse.measure`, a CSV in the run directory),
  and each codec's largest distance to the optimal-linear bound.
* :func:`make_frontier_figure` -- quality against channel uses (log x), one
  panel per value of the panel columns (rows: the first, columns: the second),
  each arm a point with its 95 % interval.

Example
-------
>>> import pandas as pd
>>> pts = pd.DataFrame({"arm": ["learned", "analog", "digital"], "x": [0.125, 4.5, 2.0],
...                     "mean": [20.0, 22.0, 30.0]})
>>> crossover_budget(pts, "learned")["budget"], crossover_budget(pts, "learned")["status"]
(2.0, 'crossover')
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from .plots import agg_pyplot

__all__ = ["frontier_points", "crossover_budget", "frontier_table", "make_frontier_figure", "frontier_name",
           "plot_latent_nmse", "gap_table", "special_figures"]


def _panels(df, panel: list[str]):
    if not panel:
        yield (), df
        return
    for key, sub in df.groupby(panel, sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), sub


def frontier_points(df, x: str, y: str, arm: str, panel: list[str] | None = None):
    """Mean ``x`` and ``y`` (95 % interval, ``n``) per panel, arm and ``x`` value.

    Returns
    -------
    pandas.DataFrame
        Columns: the ``panel`` columns, ``arm``, ``x`` (mean channel uses),
        ``mean``, ``low``, ``high``, ``count`` (of ``y``, fallback rows left
        out) and ``fallback`` (the rate of receivers that generated alone, NaN
        without that column).
    """
    import pandas as pd

    from .plots import summarise
    from .stats import FALLBACK

    panel = list(panel or [])
    for col in [x, y, arm, *panel]:
        if col not in df.columns:
            raise ValueError(f"frontier: column {col!r} is not in the results (columns: {sorted(df.columns)})")
    data = df.copy()
    data["_x"] = data[x].astype(float).round(9)
    rows = []
    for key, sub in _panels(data, panel):
        s = summarise(sub, [arm, "_x"], y)
        for r in s.to_dict("records"):
            part = sub[(sub[arm] == r[arm]) & (sub["_x"] == r["_x"])]
            fb = float(part[FALLBACK].astype(float).mean()) if FALLBACK in part.columns else float("nan")
            rows.append({**dict(zip(panel, key)), "arm": r[arm], "x": float(r["_x"]), "mean": r["mean"],
                         "low": r["low"], "high": r["high"], "count": int(r["count"]), "fallback": fb})
    return pd.DataFrame(rows, columns=[*panel, "arm", "x", "mean", "low", "high", "count", "fallback"])


def crossover_budget(points, reference: str, max_fallback: float = 0.5) -> dict:
    """The channel-use budget below which ``reference`` gives the better quality (one panel).

    Parameters
    ----------
    points : DataFrame with columns ``arm``, ``x`` (channel uses), ``mean``
        (quality; NaN: no received image, never chosen) and optionally
        ``fallback`` (the rate of receivers that generated alone).
    reference : the arm under test (e.g. the learned codec).
    max_fallback : a point whose receivers fell back more often than this
        does not count (its quality describes the few that did not).

    Returns
    -------
    dict
        ``status``: ``"crossover"`` (the reference wins for budgets in
        ``[from_budget, budget)``), ``"always"`` (it wins at every budget from
        ``from_budget`` up to the largest in the run: ``budget`` None),
        ``"never"`` (another arm at no more channel uses is at least as good:
        both None) or ``"absent"`` (the reference has no quality here).
        ``from_budget``: the reference's smallest channel use; ``budget``: the
        channel use of the first other arm that catches up; ``by``: that arm.
    """
    pts = points[np.isfinite(points["mean"].astype(float))]
    if "fallback" in pts.columns:
        pts = pts[~(pts["fallback"].astype(float) > max_fallback)]
    ref = pts[pts["arm"] == reference]
    other = pts[pts["arm"] != reference]
    if ref.empty:
        return {"status": "absent", "from_budget": None, "budget": None, "by": None}
    budgets = sorted(set(pts["x"].astype(float)))
    start = float(ref["x"].min())
    won = False
    for b in budgets:
        if b < start:
            continue
        r = float(ref.loc[ref["x"] <= b, "mean"].max())
        within = other[other["x"] <= b]
        o = float(within["mean"].max()) if len(within) else -math.inf
        if r > o:
            won = True
            continue
        if not won:
            return {"status": "never", "from_budget": None, "budget": None,
                    "by": str(within.loc[within["mean"].idxmax(), "arm"])}
        return {"status": "crossover", "from_budget": start, "budget": b,
                "by": str(within.loc[within["mean"].idxmax(), "arm"])}
    return {"status": "always", "from_budget": start, "budget": None, "by": None}


def _fmt(v: float) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.4g}"


def frontier_table(points, reference: str, budget: float = 0.5, panel: list[str] | None = None,
                   y_label: str = "PSNR [dB]", x_label: str = "channel uses per latent value",
                   max_fallback: float = 0.5) -> list[str]:
    """Markdown lines: per panel the crossover budget and each arm's quality at ``<= budget``."""
    panel = list(panel or [])
    arms = list(dict.fromkeys(points["arm"]))
    head = [*panel, f"{reference} better below [{x_label}]", *[f"{a} at ≤ {budget:g}" for a in arms]]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    none_anywhere = True
    for key, sub in _panels(points, panel):
        c = crossover_budget(sub, reference, max_fallback)
        if c["status"] == "crossover":
            cross = f"{c['budget']:.4g} (from {c['from_budget']:.4g}; then {c['by']})"
        elif c["status"] == "always":
            cross = f"every budget ≥ {c['from_budget']:.4g} in this run"
        elif c["status"] == "never":
            cross = f"never ({c['by']} is at least as good at fewer uses)"
        else:
            cross = f"– ({reference} has no received image)"
        cells = []
        for a in arms:
            part = sub[(sub["arm"] == a) & (sub["x"] <= budget + 1e-12)]
            part = part[np.isfinite(part["mean"].astype(float))]
            if part.empty:
                spent = sub.loc[sub["arm"] == a, "x"]
                cells.append(f"no point ≤ {budget:g} (spends {_fmt(float(spent.min()))})" if len(spent) else "–")
                continue
            none_anywhere = False
            best = part.loc[part["mean"].idxmax()]
            fb = float(best.get("fallback", float("nan")))
            cells.append(f"{best['mean']:.2f} [{_fmt(best['low'])}, {_fmt(best['high'])}], n = {int(best['count'])} "
                         f"at {best['x']:.4g}" + (f" (fallback {fb:.0%})" if fb > 0 else ""))
        lines.append("| " + " | ".join([*(str(k) for k in key), cross, *cells]) + " |")
    lines += ["", f"Quality: {y_label}, mean [95% CI], n receivers (receivers that fell back to generating alone "
              f"left out); 'better' compares the means; a point whose receivers fell back more often than "
              f"{max_fallback:.0%} does not count as giving an image (hollow in the figure). An arm spends its mean "
              f"{x_label} (header included)."]
    if none_anywhere:
        lines.append(f"No arm has a point at ≤ {budget:g} {x_label} in this run.")
    return lines


def frontier_name(y: str, x: str) -> str:
    """``frontier__<y>__<x>.png``."""
    return f"frontier__{y}__{x}.png"


def make_frontier_figure(points, path: Path, panel: list[str] | None = None, x_label: str = "",
                         y_label: str = "", title: Optional[str] = None, budget: Optional[float] = None,
                         max_fallback: float = 0.5) -> Path:
    """Quality against channel uses (log x), one panel per panel value, one marker (95 % interval) per arm."""
    plt = agg_pyplot()
    panel = list(panel or [])
    rows_key = panel[0] if panel else None
    cols_key = panel[1] if len(panel) > 1 else None
    rvals = list(dict.fromkeys(points[rows_key])) if rows_key else [None]
    cvals = sorted(set(points[cols_key])) if cols_key else [None]
    fig, axes = plt.subplots(len(rvals), len(cvals), figsize=(2.6 * len(cvals) + 1, 2.4 * len(rvals) + 0.8),
                             squeeze=False, sharex=True, sharey=True)
    arms = list(dict.fromkeys(points["arm"]))
    colours = {a: f"C{i}" for i, a in enumerate(arms)}
    markers = "osD^vP*X"
    for i, rv in enumerate(rvals):
        for j, cv in enumerate(cvals):
            ax = axes[i, j]
            sub = points
            if rows_key:
                sub = sub[sub[rows_key] == rv]
            if cols_key:
                sub = sub[sub[cols_key] == cv]
            for k, a in enumerate(arms):
                p = sub[(sub["arm"] == a) & np.isfinite(sub["mean"].astype(float))].sort_values("x")
                if p.empty:
                    continue
                low = np.where(np.isfinite(p["low"]), p["mean"] - p["low"], 0.0)
                high = np.where(np.isfinite(p["high"]), p["high"] - p["mean"], 0.0)
                hollow = (p["fallback"].astype(float) > max_fallback).to_numpy() if "fallback" in p.columns \
                    else np.zeros(len(p), bool)
                for mask, face in ((~hollow, colours[a]), (hollow, "none")):
                    if mask.any():
                        ax.errorbar(p["x"][mask], p["mean"][mask], yerr=[low[mask], high[mask]],
                                    fmt=markers[k % len(markers)], ms=4, capsize=2, color=colours[a],
                                    mfc=face, label=str(a), lw=1)
            if budget is not None:
                ax.axvline(budget, color="grey", ls=":", lw=1)
            ax.set_xscale("log")
            ax.grid(True, which="both", alpha=0.3)
            name = ", ".join(f"{k}={v}" for k, v in ((rows_key, rv), (cols_key, cv)) if k)
            ax.set_title(name, fontsize=8)
            if i == len(rvals) - 1:
                ax.set_xlabel(x_label, fontsize=8)
            if j == 0:
                ax.set_ylabel(y_label, fontsize=8)
    handles = [plt.Line2D([], [], color=colours[a], marker=markers[k % len(markers)], ls="", label=str(a))
               for k, a in enumerate(arms)]
    labels = [str(a) for a in arms] + (["budget"] if budget is not None else [])
    if budget is not None:
        handles.append(plt.Line2D([], [], color="grey", ls=":"))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title + " (95% CI)", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    from .plots import save_figure

    return save_figure(fig, path)


#: the bound columns of :func:`pipeline.embedded.latent_nmse.measure` and their legend labels
BOUNDS = (("opta_nmse_db", "OPTA (Gaussian)"), ("linear_optimal_nmse_db", "optimal linear (Lee-Petersen)"),
          ("linear_equal_nmse_db", "equal-power linear"))


def plot_latent_nmse(table, path, title: Optional[str] = None):
    """Latent NMSE [dB] against SNR, one panel per ``(bandwidth_ratio, k)``: each codec with its 95 %
    interval, the three bounds as black lines (PNG at ``path``, PDF beside it).

    ``table``: :func:`pipeline.embedded.latent_nmse.measure`'s table (or its CSV read back).
    """
    plt = agg_pyplot()
    rhos = sorted(set(table["bandwidth_ratio"]), reverse=True)
    ks = sorted(set(table["k"]))
    fig, axes = plt.subplots(len(rhos), len(ks), figsize=(3.2 * len(ks) + 0.6, 2.8 * len(rhos) + 0.9),
                             squeeze=False, sharex=True)
    codecs = list(dict.fromkeys(table["codec"]))
    styles = dict(zip((b for b, _ in BOUNDS), ("-", "--", ":")))
    for i, rho in enumerate(rhos):
        for j, k in enumerate(ks):
            ax = axes[i, j]
            sub = table[(table["bandwidth_ratio"] == rho) & (table["k"] == k)]
            if sub.empty:
                ax.set_visible(False)
                continue
            first = sub.drop_duplicates("snr_db").sort_values("snr_db")
            for col, name in BOUNDS:
                ax.plot(first["snr_db"], first[col], color="k", ls=styles[col], lw=1.1, label=name)
            if "linear_optimal_ranked_nmse_db" in first.columns:
                ax.plot(first["snr_db"], first["linear_optimal_ranked_nmse_db"], color="grey", ls="--", lw=1.0,
                        label="optimal linear, ranked on training states")
            for c_i, codec in enumerate(codecs):
                p = sub[sub["codec"] == codec].sort_values("snr_db")
                if p.empty:
                    continue
                ax.plot(p["snr_db"], p["nmse_db"], marker="o", ms=3, lw=1.2, color=f"C{c_i}", label=codec)
                ax.fill_between(p["snr_db"], p["nmse_ci_low_db"], p["nmse_ci_high_db"], color=f"C{c_i}",
                                alpha=0.2, lw=0)
            n = int(sub["n"].min())
            ax.set_title(f"rho = {rho:g}, k = {k} (n = {n})", fontsize=8)
            ax.grid(True, alpha=0.3)
            if i == len(rhos) - 1:
                ax.set_xlabel("SNR [dB]", fontsize=8)
            if j == 0:
                ax.set_ylabel("latent NMSE [dB]", fontsize=8)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=8, frameon=False)
    fig.suptitle((title or "Latent NMSE against the JSCC bounds") + " (AWGN; bands: 95% CI)", fontsize=10)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    from .plots import save_figure

    return save_figure(fig, path)


def gap_table(table) -> list[str]:
    """Markdown: per ``rho`` and codec, the largest distance to the optimal-linear bound over SNR at each ``k``.

    Each cell: the gap [dB] with its 95 % interval at the SNR where it is largest
    (and, when present, the gap to the bound ranked on independent states).
    """
    ks = sorted(set(table["k"]))
    lines = ["| rho | codec | " + " | ".join(f"k = {k}: largest gap [dB] (SNR)" for k in ks) + " |",
             "|---|---|" + "---|" * len(ks)]
    for (rho, codec), sub in table.groupby(["bandwidth_ratio", "codec"], sort=False):
        cells = []
        for k in ks:
            part = sub[sub["k"] == k]
            if part.empty:
                cells.append("–")
                continue
            w = part.loc[part["gap_to_linear_optimal_db"].idxmax()]
            cell = (f"{w.gap_to_linear_optimal_db:+.2f} [{w.gap_ci_low_db:+.2f}, {w.gap_ci_high_db:+.2f}] "
                    f"({w.snr_db:g} dB, n = {int(w.n)})")
            if "gap_to_ranked_db" in part.columns:
                cell += f"; ranked {part['gap_to_ranked_db'].max():+.2f}"
            cells.append(cell)
        lines.append(f"| {rho:g} | {codec} | " + " | ".join(cells) + " |")
    return lines



def arms_against_opta(df, spectrum, arm: str = "variant", channel: str = "awgn") -> list[str]:
    """Markdown: every arm's latent NMSE on ``channel`` against the Gaussian OPTA bound at its own channel uses.

    ``df``: the results (``latent_mse``, ``channel_uses_per_latent_value``,
    ``snr_db``, ``num_shared_steps``; receivers that fell back have no
    ``latent_mse`` and are left out). ``spectrum``: ``k, coefficient,
    variance`` (the DCT spectrum of held-out states, ``bench_codec --section
    spectrum``). NMSE = mean latent MSE / mean per-value variance at the run's
    k, with a 95% t interval over the receivers; OPTA is
    :func:`phy.jscc_bounds.opta_nmse` at the arm's mean channel uses per value.

    >>> import pandas as pd
    >>> spec = pd.DataFrame({"k": [8] * 4, "coefficient": range(4), "variance": [1.0] * 4})
    >>> rows = pd.DataFrame({"variant": "a", "channel": "awgn", "snr_db": 10.0, "num_shared_steps": 8,
    ...                      "channel_uses_per_latent_value": 0.5, "latent_mse": [1 / 11] * 3})
    >>> arms_against_opta(rows, spec)[-1]   # a white source at rho = 1/2: linear transmission is optimal
    '| a | 10 | 0.5 | 3 | -10.41 [-10.41, -10.41] | -10.41 | +0.00 |'
    """
    import numpy as np

    from phy.jscc_bounds import nmse_db, opta_nmse

    from .stats import mean_interval

    need = {"latent_mse", "channel_uses_per_latent_value", "snr_db", "num_shared_steps", arm}
    if not need <= set(df.columns):
        return [f"(no arm table: the results lack {sorted(need - set(df.columns))})"]
    data = df[df["channel"] == channel] if "channel" in df.columns else df
    lines = [f"Every arm's latent NMSE on {channel} against the Gaussian OPTA bound at its own channel uses, "
             "headers included (NMSE = latent MSE / the held-out states' per-value variance at the run's k; 95% t "
             "interval over the receivers that got the state; -inf: the interval reaches 0):", "",
             f"| {arm} | SNR [dB] | channel uses per value | n | NMSE [dB] [95% CI] | OPTA [dB] | codec - OPTA [dB] |",
             "|---|---|---|---|---|---|---|"]
    for (name, snr, k), sub in data.groupby([arm, "snr_db", "num_shared_steps"], sort=True):
        lam = spectrum.loc[spectrum["k"] == k, "variance"].to_numpy(dtype=float)
        mse = sub["latent_mse"].astype(float).to_numpy()
        mse = mse[np.isfinite(mse)]
        if lam.size == 0 or mse.size == 0:
            continue
        rho = float(sub["channel_uses_per_latent_value"].astype(float).mean())
        m, lo, hi, n = mean_interval(mse)
        var = float(lam.mean())
        db = [float(nmse_db(max(v, 1e-300) / var)) for v in (m, lo if lo == lo else m, hi if hi == hi else m)]
        low = f"{db[1]:.2f}" if lo > 0 else "-inf"       # a t interval of a heavy-tailed MSE can reach 0
        bound = float(nmse_db(opta_nmse(lam, rho, float(snr))))
        lines.append(f"| {name} | {snr:g} | {rho:.3g} | {n} | {db[0]:.2f} [{low}, {db[2]:.2f}] | "
                     f"{bound:.2f} | {round(db[0] - bound, 2) + 0.0:+.2f} |")
    return lines


#: columns that pair two rows of one arm across x (the same seed and receiver)
PAIR_ON = ("seed", "pair")


def step_table(df, x: str, y: str, arm: str, panel: list[str] | None = None, below: float | None = None,
               max_drop: float | None = None) -> list[str]:
    """Markdown: ``y`` between consecutive values of ``x`` for each arm and panel (the "no cliff" check).

    Each step pairs the rows of one arm that share :data:`PAIR_ON` (seed and
    receiver; receivers that fell back are left out, :func:`experiments.stats.metric_values`)
    and gives the mean change of ``y`` from the lower to the higher ``x`` with
    its 95% t interval, n and the paired p (:func:`experiments.stats.paired_test`).
    A step whose interval lies entirely below 0 is a *fall* (``y`` decreases
    in ``x`` beyond its uncertainty); for steps that start below ``below``
    the fall per 5 units of ``x`` is compared with ``max_drop`` (a *cliff*).

    >>> import pandas as pd
    >>> rows = [{"variant": "a", "snr_db": s, "seed": i, "pair": "p", "psnr_db": 20 + s + 0.1 * i}
    ...         for s in (0, 5) for i in range(4)]
    >>> print("\\n".join(step_table(pd.DataFrame(rows), "snr_db", "psnr_db", "variant")))
    0 of 1 steps fall beyond their interval.
    <BLANKLINE>
    | variant | snr_db step | change of psnr_db [95% CI] | n pairs | p | verdict |
    |---|---|---|---|---|---|
    | a | 0 -> 5 | +5 [+5, +5] | 4 | p = 0.12 | rises |
    """
    from .stats import fmt_number, fmt_p, metric_values, paired_test

    panel = [c for c in (panel or []) if c in df.columns]
    keys = [c for c in PAIR_ON if c in df.columns]
    data = df.copy()
    data["_y"] = metric_values(data, y)
    head = [f"| {' | '.join(panel + [arm])} | {x} step | change of {y} [95% CI] | n pairs | p | verdict |",
            "|" + "---|" * (len(panel) + 6)]
    lines = []
    verdicts = {"fall": 0, "cliff": 0, "steps": 0}
    for key, sub in _panels(data, panel + [arm]):
        xs = sorted(sub[x].dropna().unique())
        for lo, hi in zip(xs, xs[1:]):
            a = sub[sub[x] == lo].set_index(keys)["_y"]
            b = sub[sub[x] == hi].set_index(keys)["_y"]
            both = a.index.intersection(b.index)
            r = paired_test(b.loc[both].to_numpy(), a.loc[both].to_numpy(), binary=False)
            if not r["n"] or r["diff"] != r["diff"]:
                continue
            verdicts["steps"] += 1
            fall = r["diff_high"] < 0
            per5 = -r["diff"] * 5.0 / (hi - lo)
            cliff = fall and below is not None and max_drop is not None and lo < below and per5 > max_drop
            verdict = "cliff" if cliff else "fall" if fall else ("rises" if r["diff_low"] > 0 else "level")
            if fall and below is not None and max_drop is not None and lo < below and not cliff:
                verdict = f"fall ({fmt_number(per5)} per 5, within {fmt_number(max_drop)})"
            verdicts["fall"] += fall
            verdicts["cliff"] += cliff
            cells = [str(v) for v in key] + [f"{lo:g} -> {hi:g}",
                                              f"{r['diff']:+.3g} [{r['diff_low']:+.3g}, {r['diff_high']:+.3g}]",
                                              str(r["n"]), fmt_p(r["p_value"]), verdict]
            lines.append("| " + " | ".join(cells) + " |")
    summary = (f"{verdicts['fall']} of {verdicts['steps']} steps fall beyond their interval"
               + (f"; {verdicts['cliff']} fall by more than {fmt_number(max_drop)} per 5 below {fmt_number(below)}"
                  if below is not None and max_drop is not None else "") + ".")
    return [summary, ""] + head + lines if lines else [summary]


def special_figures(run_dir: Path, df, specs: list[dict] | None, plot_dir: Path) -> tuple[list[Path], list[str]]:
    """The ``kind: frontier`` and ``kind: latent_nmse`` figures of a run's ``plots:`` (and their report lines).

    Returns the PNG paths and markdown lines (a section per frontier: its
    crossover table; per latent_nmse figure a line naming its table). A
    ``latent_nmse`` entry whose ``data`` file is missing is reported, not fatal.
    """
    from .plots import label

    paths: list[Path] = []
    lines: list[str] = []
    for spec in specs or []:
        kind = spec.get("kind", "lines")
        if kind == "frontier":
            panel = [p for p in spec.get("panel") or [] if p in df.columns]
            for y in spec["y"]:
                if y not in df.columns or spec["x"] not in df.columns:
                    continue
                pts = frontier_points(df, spec["x"], y, spec["arm"], panel)
                path = make_frontier_figure(pts, Path(plot_dir) / frontier_name(y, spec["x"]), panel,
                                            label(spec["x"]), label(y), spec.get("title"), spec.get("budget"))
                paths.append(path)
                title = spec.get("title") or f"{label(y)} against {label(spec['x'])}"
                lines += [f"### {title}: {label(y)}", ""]
                if spec.get("reference"):
                    lines += frontier_table(pts, spec["reference"], spec.get("budget") or 0.5, panel,
                                            label(y), label(spec["x"])) + [""]
                lines += [f"Figure: [plots/{path.name}](plots/{path.name}).", ""]
        elif kind == "steps":
            panel = [p for p in spec.get("panel") or [] if p in df.columns]
            for y in spec["y"]:
                if y not in df.columns or spec["x"] not in df.columns or spec["arm"] not in df.columns:
                    continue
                title = spec.get("title") or f"{label(y)} between consecutive {label(spec['x'])}"
                lines += [f"### {title}", ""]
                lines += step_table(df, spec["x"], y, spec["arm"], panel, spec.get("below"),
                                    spec.get("max_drop")) + [""]
        elif kind == "latent_nmse":
            import pandas as pd


            data = Path(run_dir) / spec["data"]
            if not data.is_file():
                lines += [f"- latent NMSE figure: `{spec['data']}` is missing in the run directory "
                          "(write it with `benchmarks/bench_codec.py --section bounds --csv ...`).", ""]
                continue
            table = pd.read_csv(data)
            path = plot_latent_nmse(table, Path(plot_dir) / f"latent_nmse__{Path(spec['data']).stem}.png",
                                    spec.get("title"))
            paths.append(path)
            lines += [f"### {spec.get('title') or 'Latent NMSE against the bounds'}", "",
                      f"From `{spec['data']}` ({len(table)} rows; each codec's NMSE with its 95% interval over "
                      f"n held-out states, the bounds of the same states): [plots/{path.name}](plots/{path.name}).",
                      "", "Distance of each codec to the optimal-linear bound (codec - bound; > 0: above it):", ""]
            lines += gap_table(table) + [""]
            if spec.get("spectrum") and (Path(run_dir) / spec["spectrum"]).is_file():
                spectrum = pd.read_csv(Path(run_dir) / spec["spectrum"])
                lines += arms_against_opta(df, spectrum) + [""]
    return paths, lines
