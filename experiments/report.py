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

import json
from pathlib import Path

import numpy as np
import yaml

from .plots import axis_columns, choose_x, image_grid, is_numeric, make_plots, metric_columns
from .results import read_results

DEFAULT_HEADLINE = ("psnr_db", "ssim", "adherent", "compute_saved_fraction", "airtime_s")


def _fmt(v) -> str:
    if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return "–"
    if isinstance(v, (float, np.floating)) and np.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, (float, np.floating)):
        a = abs(float(v))
        if a != 0 and (a < 1e-3 or a >= 1e5):
            return f"{v:.3g}"
        return f"{v:.4g}" if a < 10 else f"{v:.2f}"
    return str(v)


def _fmt_axis(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{float(v):g}" if np.isfinite(v) else "–"
    return str(v)


def headline_table(df, axes: list[str], metrics: list[str]) -> str:
    """Markdown table: mean of each metric per grid combination (over seeds and users), with n."""
    if not metrics:
        return "(no metric columns)"
    data = df.copy()
    for m in metrics:
        data[m] = data[m].astype(float)
    if axes:
        g = data.groupby(axes, sort=False, dropna=False)
        table = g[metrics].mean().reset_index()
        table["n"] = g.size().to_numpy()
    else:
        table = data[metrics].mean().to_frame().T
        table["n"] = len(data)
    header = "| " + " | ".join(list(axes) + [f"{m} (mean)" for m in metrics] + ["n"]) + " |"
    sep = "|" + "---|" * (len(axes) + len(metrics) + 1)
    lines = [header, sep]
    for _, r in table.iterrows():
        lines.append("| " + " | ".join([_fmt_axis(r[a]) for a in axes] + [_fmt(r[m]) for m in metrics]
                                       + [str(int(r["n"]))]) + " |")
    return "\n".join(lines)


def key_findings(df, axes: list[str], metrics: list[str]) -> list[str]:
    """Plain sentences with the headline numbers (computed, never hard-coded)."""
    out = []
    x = choose_x(df, axes)
    for m in metrics:
        vals = df[m].astype(float)
        if not np.isfinite(vals).any():
            continue
        if x is not None and df[x].nunique() > 1 and is_numeric(df[x]):
            by = df.assign(_v=vals).groupby(x)["_v"].mean()
            out.append(f"- `{m}`: {_fmt(by.iloc[0])} at {x} = {_fmt_axis(by.index[0])} → {_fmt(by.iloc[-1])} at "
                       f"{x} = {_fmt_axis(by.index[-1])} (mean over all other columns; overall mean {_fmt(vals.mean())}).")
        elif x is not None and df[x].nunique() > 1:
            by = df.assign(_v=vals).groupby(x, sort=False)["_v"].mean()
            out.append(f"- `{m}` by {x}: " + ", ".join(f"{_fmt_axis(k)} {_fmt(v)}" for k, v in by.items())
                       + f" (mean over all other columns).")
        else:
            out.append(f"- `{m}`: mean {_fmt(vals.mean())}, min {_fmt(vals.min())}, max {_fmt(vals.max())}.")
    if "compute_saved_fraction" in df.columns:
        v = df["compute_saved_fraction"].astype(float)
        out.append(f"- Compute saved by the group against every receiver generating alone: {100 * v.mean():.1f}% "
                   f"of UNet evaluations on average (range {100 * v.min():.1f}–{100 * v.max():.1f}%; the "
                   f"sender's shared steps are counted once).")
    if "receiver_compute_saved_fraction" in df.columns:
        v = df["receiver_compute_saved_fraction"].astype(float)
        out.append(f"- Each receiver runs {100 * v.mean():.1f}% fewer denoising steps than alone on average "
                   f"(range {100 * v.min():.1f}–{100 * v.max():.1f}%).")
    if "airtime_s" in df.columns and np.isfinite(df["airtime_s"].astype(float)).any():
        air = df["airtime_s"].astype(float)
        out.append(f"- Airtime per received state: mean {_fmt(air.mean())} s (min {_fmt(air.min())} s, "
                   f"max {_fmt(air.max())} s).")
    return out


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
    lines += ["Mean over seeds and users per grid point:", "", headline_table(df, axes, headline), ""]
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


__all__ = ["write_outputs", "headline_table", "key_findings"]
