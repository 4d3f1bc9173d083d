"""``report.md``: the headline numbers of a run, tied to its plots, image grid and environment.

:func:`write_outputs` regenerates everything derived from a run directory's
``results.csv`` (plots, image grid, report); it is what ``distdiff plot RUN_DIR``
calls. The optional ``config.yaml`` beside the CSV supplies the experiment's
name, description, plot specs and headline metrics; without it the report is
built from the CSV alone.

Example
-------
>>> from experiments.report import write_outputs
>>> paths = write_outputs("results/default/0123456789ab")       # doctest: +SKIP
>>> paths["report"]                                              # doctest: +SKIP
PosixPath('results/default/0123456789ab/report.md')
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .plots import METRIC_RANGES, axis_columns, choose_x, image_grid, is_numeric, make_plots, metric_columns
from .results import read_results
from .stats import (BINARY_METRICS, FALLBACK, MIN_SAMPLES, PSNR_CAP_DB, fmt_cell, fmt_number, fmt_p, metric_values, paired_test,
                    summarise, unpaired_test)

DEFAULT_HEADLINE = ("psnr_db", "ssim", "adherent", "compute_saved_fraction", "airtime_s")


def _fmt(v) -> str:
    return fmt_number(v)


def _fmt_axis(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}" if np.isfinite(v) else "–"
    return str(v)


def _summary(df, metric: str) -> dict:
    return summarise(df, metric, METRIC_RANGES.get(metric))


def _groups(df, axes: list[str]):
    if not axes:
        return [((), df)]
    return [((k if isinstance(k, tuple) else (k,)), sub) for k, sub in df.groupby(axes, sort=False, dropna=False)]


def headline_table(df, axes: list[str], metrics: list[str]) -> str:
    """Markdown table per grid combination: each metric as ``estimate [95% interval]``, with n.

    ``n`` counts rows (point x user x seed). Means get a Student-t interval,
    0/1 metrics and counted rates (BLER, BER: pooled blocks/bits) a Wilson
    interval (:func:`experiments.stats.summarise`). Receivers that fell back
    to generating alone are left out of quality and adherence cells (the
    ``fallback`` column gives their rate; such a cell shows its own n). PSNR
    cells give the number of identical images (inf, counted as 100 dB). A
    cell marked † has fewer than :data:`experiments.stats.MIN_SAMPLES` samples.
    """
    if not metrics:
        return "(no metric columns)"
    has_fb = FALLBACK in df.columns and FALLBACK not in metrics
    cols = list(axes) + ["n"] + (["fallback rate"] if has_fb else []) + list(metrics)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for key, sub in _groups(df, axes):
        cells = [_fmt_axis(v) for v in key] + [str(len(sub))]
        if has_fb:
            cells.append(fmt_cell(_summary(sub, FALLBACK)))
        for m in metrics:
            c = _summary(sub, m)
            text = fmt_cell(c)
            notes = []
            if c["n"] != len(sub) and c["n"] > 0:
                notes.append(f"n={c['n']}")
            if c.get("identical"):
                notes.append(f"{c['identical']} identical")
            cells.append(text + (f" ({', '.join(notes)})" if notes else ""))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell_text(c: dict) -> str:
    unit = f", n = {c['n']}" + (f" rows / {c['n_units']} blocks-or-bits" if c.get("n_units") else "")
    return f"{fmt_cell(c)}{unit}"


def key_findings(df, axes: list[str], metrics: list[str]) -> list[str]:
    """Plain sentences with the headline numbers, each with its 95% interval and n (computed, never hard-coded)."""
    out = []
    x = choose_x(df, axes)
    for m in metrics:
        vals = df[m].astype(float)
        if not np.isfinite(vals).any() and not np.isposinf(vals).any():
            continue
        if x is not None and df[x].nunique() > 1:
            keys = list(dict.fromkeys(df[x])) if not is_numeric(df[x]) else sorted(df[x].unique())
            if is_numeric(df[x]) and len(keys) > 2:
                keys = [keys[0], keys[-1]]
            parts = [f"{_fmt_axis(k)}: {_cell_text(_summary(df[df[x] == k], m))}" for k in keys]
            out.append(f"- `{m}` by {x} (pooled over the other columns) — " + "; ".join(parts) + ".")
        else:
            out.append(f"- `{m}`: {_cell_text(_summary(df, m))}.")
    if "compute_saved_fraction" in df.columns:
        c = _summary(df, "compute_saved_fraction")
        v = df["compute_saved_fraction"].astype(float)
        out.append(f"- Compute saved by the group against every receiver generating alone: "
                   f"{100 * c['value']:.1f}% of UNet evaluations on average (range {100 * v.min():.1f}–"
                   f"{100 * v.max():.1f}%; the sender's shared steps counted once, receivers that fell back "
                   f"counted as generating alone).")
    if FALLBACK in df.columns and FALLBACK not in metrics:
        c = _summary(df, FALLBACK)
        out.append(f"- Receivers that fell back to generating alone (header lost): {_cell_text(c)}; they are "
                   f"left out of every quality and adherence number.")
    return out


def _pair_keys(df) -> list[str]:
    keys = [k for k in ("seed", "receiver_prompt") if k in df.columns]
    if keys and df.groupby(["point_key", *keys]).size().max() > 1:
        keys += [k for k in ("group", "user") if k in df.columns]
    return keys


def comparison_layout(df, axes: list[str]) -> tuple[str | None, list[str]]:
    """``(arm axis, strata axes)`` of the arm comparisons: with one axis besides x, that axis against x;
    with several, ``variant`` (else the last of them) against every combination of the rest; with a
    single categorical axis, its values against each other. ``(None, [])`` when there are no arms.

    >>> import pandas as pd
    >>> df = pd.DataFrame({"snr_db": [0, 5], "channel": ["a", "b"], "variant": ["x", "y"]})
    >>> comparison_layout(df, ["snr_db", "variant"]), comparison_layout(df, ["channel", "snr_db", "variant"])
    (('variant', ['snr_db']), ('variant', ['channel', 'snr_db']))
    >>> comparison_layout(df, ["variant"]), comparison_layout(df, ["snr_db"])
    (('variant', []), (None, []))
    """
    x = choose_x(df, axes)
    others = [a for a in axes if a != x]
    if len(others) == 1:
        return others[0], [x]
    if len(others) > 1:
        arm = "variant" if "variant" in others else others[-1]
        return arm, [a for a in axes if a != arm]
    if x is not None and not is_numeric(df[x]):
        return x, []
    return None, []


def comparisons(df, axes: list[str], metrics: list[str]) -> list[str]:
    """Arm-against-arm tests in each stratum (markdown lines; empty when there are no arms).

    The arms and strata are :func:`comparison_layout`'s. Where two arms hold
    the same (seed, receiver) pairs the test is paired (exact McNemar for 0/1
    metrics, Wilcoxon signed-rank otherwise); else unpaired (Fisher's exact,
    Welch's t). Rows whose receiver fell back are dropped from receiver metrics.
    """
    arm, strata = comparison_layout(df, axes)
    if arm is None:
        return []
    arms = list(dict.fromkeys(df[arm]))
    if len(arms) < 2:
        return []
    keys = _pair_keys(df)
    # numeric axes in order, the others in order of appearance
    orders = [sorted(df[a].unique()) if is_numeric(df[a]) else list(dict.fromkeys(df[a])) for a in strata]
    where = ("at each " + ", ".join(f"`{a}`" for a in strata)) if strata else "over the whole run"
    head = ", ".join(strata) or "–"
    tested = [m for m in metrics if m not in ("compute_saved_fraction", "receiver_compute_saved_fraction",
                                              "alone_adherent", "reference_adherent", "mcs_index", "airtime_s", "channel_uses",
                                              "latency_s", "alone_latency_s")]
    lines = [f"Each arm of `{arm}` against `{_fmt_axis(arms[0])}`, {where}: mean difference "
             f"(other − {_fmt_axis(arms[0])}) with its 95% t interval, n pairs, test and two-sided p-value.", "",
             f"| {head} | arm | metric | {_fmt_axis(arms[0])} | arm | difference | n | test | p |",
             "|---|---|---|---|---|---|---|---|---|"]
    for cell in itertools.product(*orders):
        at = df
        for a, v in zip(strata, cell):
            at = at[at[a] == v]
        if at.empty:
            continue
        base = at[at[arm] == arms[0]]
        for other in arms[1:]:
            sub = at[at[arm] == other]
            for m in tested:
                a_vals, b_vals = metric_values(sub, m), metric_values(base, m)
                if keys:
                    ka = sub[keys].astype(str).agg("|".join, axis=1)
                    kb = base[keys].astype(str).agg("|".join, axis=1)
                    paired = ka.is_unique and kb.is_unique and set(ka) == set(kb)
                else:
                    paired = False
                if paired:
                    b_aligned = pd.Series(b_vals.to_numpy(), index=kb.to_numpy())
                    r = paired_test(a_vals.to_numpy(), b_aligned.loc[ka.to_numpy()].to_numpy(),
                                    binary=m in BINARY_METRICS)
                    n_txt = str(r["n"])
                    diff = f"{fmt_number(r['diff'])} [{fmt_number(r['diff_low'])}, {fmt_number(r['diff_high'])}]"
                else:
                    r = unpaired_test(a_vals.to_numpy(), b_vals.to_numpy(), binary=m in BINARY_METRICS)
                    n_txt = f"{r['n_a']} vs {r['n_b']}"
                    diff = fmt_number(r["diff"])
                lines.append(f"| {', '.join(_fmt_axis(v) for v in cell) or '–'} | {_fmt_axis(other)} | {m} | "
                             f"{fmt_number(r['mean_b'])} | {fmt_number(r['mean_a'])} | {diff} | {n_txt} | "
                             f"{r['test']} | {fmt_p(r['p_value'])} |")
    return lines


STATS_NOTE = [
    "How to read the numbers: each cell is `estimate [95% interval]`. Means (PSNR, SSIM, MSE, times) have a "
    "Student-t interval over rows; 0/1 outcomes (adherence, fallback, abstention) a Wilson interval over rows; "
    "BLER and BER a Wilson interval over the pooled blocks or bits (blocks of one image share a channel draw, "
    "so that interval is optimistic). Rows are point × receiver × seed. Receivers whose header was lost "
    "generated alone: they are counted in the fallback rate and left out of every quality and adherence "
    "number (the cell then gives its own n). Identical images have infinite PSNR: counted as "
    f"{PSNR_CAP_DB:g} dB (above the 89.0 dB of a 64×64 image one level off) and listed as identical. "
    f"† marks a cell with fewer than {MIN_SAMPLES} samples: too small to carry a claim on its own.",
]


def latency_sources(meta: dict) -> list[str]:
    """The latency/energy constants with the source of each, and which conclusions depend on assumed ones."""
    from .latency_energy import DEPENDS_ON, SOURCES

    le = meta.get("latency_energy") or {}
    lines = ["## Latency and energy: where each constant comes from", "",
             "| constant | value | source |", "|---|---|---|"]
    for k, v in le.items():
        lines.append(f"| `{k}` | {fmt_number(v)} | {SOURCES.get(k, 'not documented')} |")
    lines += ["", "Which conclusions depend on assumed (not measured) constants:", ""]
    for concl, deps in DEPENDS_ON.items():
        assumed = [d for d in deps if not SOURCES.get(d, "").startswith(("measured", "from a source"))]
        lines.append(f"- {concl}: " + (f"depends on assumed {', '.join(f'`{d}`' for d in assumed)}"
                                       if assumed else "rests on measured or sourced constants only"))
    return lines + [""]


def write_outputs(run_dir: str | Path, cfg=None) -> dict:
    """(Re)write ``plots/*.png``, ``image_grid.png`` and ``report.md`` of a run directory.

    Parameters
    ----------
    run_dir : path
        A directory holding ``results.csv`` (and optionally ``config.yaml``,
        ``environment.json``, ``timings.csv``, ``failures.csv``, ``images/``).
    cfg : ExperimentConfig, optional
        The experiment; default: read ``config.yaml`` if present.

    Returns
    -------
    dict
        ``{"plots": [paths], "image_grid": path or None, "report": path}``.
    """
    run_dir = Path(run_dir)
    csv_path = run_dir / "results.csv"
    if not csv_path.is_file():
        raise ValueError(f"RESULTS_DIR {run_dir} has no results.csv; give a run directory "
                         f"(results/<experiment>/<run-id>)")
    df = read_results(csv_path)
    if df.empty or "point_key" not in df.columns:
        raise ValueError(f"{csv_path}: no complete result rows (a results.csv written by a sweep has a "
                         f"point_key column and one row per point x user)")
    meta = {}
    if cfg is not None:
        meta = cfg.model_dump(mode="json")
    elif (run_dir / "config.yaml").is_file():
        meta = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    name = meta.get("name", run_dir.parent.name)
    grid_axes = list(meta["grid"]) if meta.get("grid") else None
    axes = axis_columns(df, grid_axes)
    specs = meta.get("plots") or None
    headline = metric_columns(df, meta.get("headline") or DEFAULT_HEADLINE)
    for extra in ("latency_s", "device_energy_j"):
        if extra in df.columns and extra not in headline:
            headline.append(extra)
    plot_dir = run_dir / "plots"
    if plot_dir.is_dir():
        for old in [*plot_dir.glob("*.png"), *plot_dir.glob("*.pdf")]:
            old.unlink()
    plots = make_plots(df, plot_dir, specs, grid=grid_axes)
    from .frontier import special_figures

    special, special_lines = special_figures(run_dir, df, specs, plot_dir)
    plots += special
    grid = image_grid(run_dir, df, max_points=int(meta.get("image_grid_max_points", 8)), grid=grid_axes)

    lines = [f"# {name}", ""]
    if meta.get("description"):
        lines += [meta["description"].strip(), ""]
    n_points = df["point_key"].nunique() if "point_key" in df.columns else 0
    lines += [f"Run directory: `{run_dir}` — {n_points} points, {len(df)} rows "
              f"(one per point × user × seed).", ""]
    setup = []
    if meta:
        setup.append(f"- model: `{meta.get('model') or 'shipped embedded model'}`, device `{meta.get('device', '?')}`")
        setup.append(f"- seeds: {meta.get('seeds')}")
        if meta.get("users"):
            users = meta["users"]
            sets = users.items() if isinstance(users, dict) else [("", users)]
            for set_name, groups in sets:
                for g in groups:
                    setup.append(f"- {'[' + set_name + '] ' if set_name else ''}group"
                                 f"{' `' + g['name'] + '`' if g.get('name') else ''}: shared prompt \"{g['shared_prompt']}\" → receivers "
                                 + ", ".join(f"\"{p}\"" for p in g["receiver_prompts"]))
        if meta.get("grouping"):
            setup.append(f"- free prompts grouped by meaning: {meta['grouping']['prompts']}")
        if meta.get("chain"):
            setup.append(f"- base chain: `{json.dumps(meta['chain'], sort_keys=True)}`")
        if meta.get("grid"):
            setup.append("- grid: " + "; ".join(f"`{k}` ∈ {v}" for k, v in meta["grid"].items()))
        if meta.get("variants"):
            setup.append("- variants: " + "; ".join(f"`{k}` = `{json.dumps(v, sort_keys=True)}`"
                                                     for k, v in meta["variants"].items()))
        if meta.get("latency_energy"):
            setup.append(f"- latency/energy model: `{json.dumps(meta['latency_energy'], sort_keys=True)}`")
    if setup:
        lines += ["## Setup", ""] + setup + [""]
    lines += ["## Headline numbers", ""] + key_findings(df, axes, headline) + [""]
    lines += ["Per grid point (pooled over seeds and receivers):", "", headline_table(df, axes, headline), ""]
    lines += STATS_NOTE + [""]
    comp = comparisons(df, axes, headline)
    if comp:
        lines += ["## Comparisons between arms", ""] + comp + [""]
    if meta.get("latency_energy"):
        lines += latency_sources(meta)
    if special_lines:
        lines += ["## Frontier and bounds", ""] + special_lines
    if plots:
        lines += ["## Plots", ""]
        for p in plots:
            pdf = p.with_suffix(".pdf").name
            lines += [f"![{p.stem}](plots/{p.name})", "", f"Vector version: [plots/{pdf}](plots/{pdf})", ""]
    if grid is not None:
        lines += ["## Images", "", "One row per receiver (and per value of the other grid axes). First column: its "
                  "error-free reference (the state arrives exactly as sent); then, where computed, the image it "
                  "generates alone; then the received images along the sweep (first seed).", "",
                  f"![image grid]({grid.name})", ""]
    fail = run_dir / "failures.csv"
    if fail.is_file():
        import pandas as pd

        f = pd.read_csv(fail)
        missing = f[~f["point_key"].isin(df.get("point_key", []))]
        if len(missing):
            lines += ["## Failures", "", f"{len(missing)} failed attempt(s) of points still missing; rerun "
                      "the same command to retry them:", ""]
            lines += [f"- point {r.point_index} ({r.kind}): {r.error}" for r in missing.itertuples()]
            lines += [""]
    timings = run_dir / "timings.csv"
    env_path = run_dir / "environment.json"
    lines += ["## Environment", ""]
    if timings.is_file():
        import pandas as pd

        t = pd.read_csv(timings).drop_duplicates("point_key", keep="last")
        lines += [f"- compute: {t['wall_s'].sum():.1f} s of point time over {len(t)} points "
                  f"({t['wall_s'].mean():.2f} s per point)"]
    if env_path.is_file():
        env = json.loads(env_path.read_text())
        vers = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items() if v)
        lines += [f"- {vers}", f"- python {env.get('python')}, {env.get('platform')}, {env.get('cpu_count')} CPUs, "
                  f"device {env.get('device')}, {env.get('torch_threads_per_worker')} torch thread(s) per worker, "
                  f"{env.get('executor')}", f"- git commit {env.get('git_commit')}"]
    lines += ["", f"Regenerate the plots and this report with `distdiff plot {run_dir}`.", ""]
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    return {"plots": plots, "image_grid": grid, "report": report}


__all__ = ["write_outputs", "headline_table", "key_findings", "comparison_layout", "comparisons", "latency_sources"]
