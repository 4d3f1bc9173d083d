"""Plots and image grids from a tidy ``results.csv`` (matplotlib, Agg backend, PNG and PDF).

Everything here reads the CSV (and, for the image grid, the saved PNGs): the
figures of a run can be regenerated at any time with ``distdiff plot RUN_DIR``.

The grid's axes are recovered from the CSV itself (:func:`axis_columns`: the
columns that are constant within each point and vary across points), so a
figure needs no config: by default each metric is drawn against the first
numeric axis, one line per combination of the other axes, averaged over seeds
and users with a 95% confidence interval (:mod:`experiments.stats`: Student's
t for means, Wilson for 0/1 metrics and counted rates such as BLER; labelled
"95% CI (t; Wilson for rates)" in the legend, clipped to the metric's range).
Receivers that fell back to generating alone are left out of quality and
adherence curves; an infinite PSNR counts as 100 dB.

Figures are fit for a paper: one metric per file, named ``<metric>__<x>``
(``psnr_db__snr_db.png`` with ``psnr_db__snr_db.pdf`` beside it), axis labels
with units from :data:`LABELS` ("SNR [dB]"), error rates on a log axis
(:data:`LOG_METRICS`), and a legend naming each line.

Example
-------
>>> import pandas as pd, tempfile, pathlib
>>> df = pd.DataFrame({"point_key": ["a", "a", "b", "b"], "seed": [0, 0, 0, 0],
...                    "snr_db": [0, 0, 10, 10], "user": [0, 1, 0, 1], "psnr_db": [10., 12., 20., 22.]})
>>> axis_columns(df)
['snr_db']
>>> [p.name for p in make_plots(df, pathlib.Path(tempfile.mkdtemp()))]
['psnr_db__snr_db.png']
>>> label("airtime_s"), label("snr_db"), label("my_column")
('airtime [ms]', 'SNR [dB]', 'my_column')
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: bookkeeping columns that are never axes or metrics
BOOKKEEPING = ("point_index", "point_key", "point_rows", "seed", "user", "user_index", "group", "group_index",
               "pair")
#: metrics plotted by default, in this order, when present
DEFAULT_METRICS = ("psnr_db", "ssim", "mse", "adherent", "ber", "bler", "compute_saved_fraction", "airtime_s",
                   "latency_s", "device_energy_j", "total_energy_j")
#: other per-point outputs that are never axes
KNOWN_METRICS = ("mse", "psnr_db", "ssim", "latent_mse", "bit_errors", "block_errors", "channel_uses", "mcs_index", "payload_bits",
                 "spectral_efficiency", "edge_compute_s", "device_compute_s", "alone_latency_s", "latency_saved_s",
                 "edge_energy_j", "alone_energy_j", "device_energy_saved_fraction", "ebno_db", "code_rate_effective",
                 "num_sanitised", "unet_evals_sender", "unet_evals_receiver", "unet_evals_alone")
#: axes preferred as the x axis, in this order
PREFERRED_X = ("snr_db", "bit_error_rate", "num_shared_steps", "speed_mps", "bits", "code_rate", "mcs")

#: column -> (axis label with unit, scale factor applied to the values drawn)
LABELS: dict[str, tuple[str, float]] = {
    "snr_db": ("SNR [dB]", 1.0), "ebno_db": ("Eb/N0 [dB]", 1.0), "psnr_db": ("PSNR [dB]", 1.0),
    "ssim": ("SSIM", 1.0), "mse": ("MSE", 1.0), "latent_mse": ("latent MSE [latent units$^2$]", 1.0), "adherent": ("prompt adherence (fraction)", 1.0),
    "ber": ("BER", 1.0), "bler": ("BLER", 1.0), "bit_error_rate": ("channel bit error rate", 1.0),
    "airtime_s": ("airtime [ms]", 1e3), "latency_s": ("latency [s]", 1.0),
    "alone_latency_s": ("latency alone [s]", 1.0), "latency_saved_s": ("latency saved [s]", 1.0),
    "edge_compute_s": ("edge compute [s]", 1.0), "device_compute_s": ("device compute [s]", 1.0),
    "device_energy_j": ("device energy [J]", 1.0), "total_energy_j": ("total energy [J]", 1.0),
    "edge_energy_j": ("edge energy [J]", 1.0), "alone_energy_j": ("energy alone [J]", 1.0),
    "compute_saved_fraction": ("compute saved (fraction)", 1.0),
    "receiver_compute_saved_fraction": ("receiver compute saved (fraction)", 1.0),
    "device_energy_saved_fraction": ("device energy saved (fraction)", 1.0),
    "speed_mps": ("speed [m/s]", 1.0), "num_shared_steps": ("shared denoising steps", 1.0),
    "num_inference_steps": ("denoising steps", 1.0), "bits": ("codec bits per value", 1.0),
    "code_rate": ("code rate", 1.0), "mcs": ("MCS", 1.0), "mcs_index": ("MCS index", 1.0),
    "payload_bits": ("payload [bit]", 1.0), "channel_uses": ("channel uses", 1.0),
    "spectral_efficiency": ("spectral efficiency [bit/s/Hz]", 1.0), "bandwidth_hz": ("bandwidth [MHz]", 1e-6),
    "channel": ("channel", 1.0), "modulation": ("modulation", 1.0), "codec": ("codec", 1.0),
    "variant": ("variant", 1.0), "user_set": ("user set", 1.0),
    "channel_uses_per_latent_value": ("channel uses per latent value", 1.0),
}
#: metrics drawn on a log y axis (error rates)
LOG_METRICS = ("ber", "bler", "bit_error_rate", "mse", "latent_mse")
#: the range each metric's values (and so its confidence band) can take
METRIC_RANGES: dict[str, tuple[float, float]] = {
    "ber": (0.0, 1.0), "bler": (0.0, 1.0), "ssim": (-1.0, 1.0), "adherent": (0.0, 1.0),
    "compute_saved_fraction": (-np.inf, 1.0), "receiver_compute_saved_fraction": (-np.inf, 1.0),
    "device_energy_saved_fraction": (-np.inf, 1.0), "mse": (0.0, np.inf), "latent_mse": (0.0, np.inf), "psnr_db": (0.0, np.inf),
    "airtime_s": (0.0, np.inf), "latency_s": (0.0, np.inf), "device_energy_j": (0.0, np.inf),
    "total_energy_j": (0.0, np.inf),
}
#: legend label of the shaded band
BAND_LABEL = "95% CI (t; Wilson for rates)"


def label(column: str) -> str:
    """The axis label of ``column``, unit in brackets (:data:`LABELS`; the column name when unknown)."""
    return LABELS.get(column, (column, 1.0))[0]


def _scale(column: str) -> float:
    return LABELS.get(column, (column, 1.0))[1]


def agg_pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


_agg = agg_pyplot


def axis_columns(df, grid: list[str] | None = None) -> list[str]:
    """The sweep's axes among the columns of ``df``.

    ``grid``: the config's axis names when known (kept if present and varying);
    otherwise the columns that are constant within each point, take more than
    one value across points and are not known metrics.
    """
    if "point_key" not in df.columns or df.empty:
        return []
    if grid is not None:
        return [a for a in grid if a in df.columns and df[a].nunique(dropna=False) > 1]
    axes = []
    grouped = df.groupby("point_key", sort=False)
    for col in df.columns:
        if col in BOOKKEEPING or col in DEFAULT_METRICS or col in KNOWN_METRICS:
            continue
        if df[col].nunique(dropna=False) < 2:
            continue
        if (grouped[col].nunique(dropna=False) <= 1).all():
            axes.append(col)
    return axes


def is_numeric(series) -> bool:
    import pandas as pd

    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def choose_x(df, axes: list[str]) -> str | None:
    """The x axis: a preferred numeric axis if present, else the first numeric axis, else the first axis."""
    for name in PREFERRED_X:
        if name in axes and is_numeric(df[name]):
            return name
    for name in axes:
        if is_numeric(df[name]):
            return name
    return axes[0] if axes else None


def metric_columns(df, wanted=DEFAULT_METRICS) -> list[str]:
    """The wanted metrics present in ``df`` with at least one finite value."""
    out = []
    for m in wanted:
        if m in df.columns:
            vals = np.asarray(df[m].astype(float)) if is_numeric(df[m]) or df[m].dtype == bool else None
            if vals is not None and np.isfinite(vals).any():
                out.append(m)
    return out


def summarise(df, by: list[str], metric: str):
    """Estimate, 95% interval and count of ``metric`` per ``by`` group (:func:`experiments.stats.summarise`).

    Means get a Student-t interval, 0/1 metrics and counted rates (BLER, BER) a
    Wilson interval; rows whose receiver fell back to generating alone are left
    out of the receiver's quality and adherence metrics, and an infinite PSNR
    counts as :data:`experiments.stats.PSNR_CAP_DB`. Columns: ``by``, ``mean``
    (the estimate), ``low``, ``high`` (NaN where ``n < 2``), ``count``.
    """
    import pandas as pd

    from .stats import summarise as cell

    rows = []
    for key, sub in df.groupby(by, sort=True, dropna=False):
        s = cell(sub, metric, METRIC_RANGES.get(metric))
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)), "mean": s["value"], "low": s["low"], "high": s["high"], "count": s["n"]})
    return pd.DataFrame(rows, columns=[*by, "mean", "low", "high", "count"])


def _hue_labels(df, hue_cols: list[str]):
    if not hue_cols:
        return None
    return df[hue_cols].astype(str).agg(lambda r: ", ".join(f"{label(c)}={v}" for c, v in zip(hue_cols, r)),
                                        axis=1)


def plot_metric_panel(ax, df, x: str, y: str, hue_cols: list[str], logx: bool = False) -> None:
    """One panel: mean of ``y`` against ``x`` with a 95% CI band clipped to ``y``'s range, one line per hue."""
    import matplotlib.patches as mpatches

    data = df.copy()
    data["_hue"] = _hue_labels(data, hue_cols) if hue_cols else ""
    numeric_x = is_numeric(data[x])
    categories = None
    if not numeric_x:
        categories = list(dict.fromkeys(data[x].astype(str)))
        data["_x"] = data[x].astype(str).map({c: i for i, c in enumerate(categories)})
    else:
        data["_x"] = data[x].astype(float) * _scale(x)
    lo, hi = METRIC_RANGES.get(y, (-np.inf, np.inf))
    values = data[y].astype(float).to_numpy()
    log_y = y in LOG_METRICS and bool(np.any(values > 0))
    if log_y:       # a band reaching 0 is drawn down to a decade below the smallest positive value
        lo = max(lo, float(np.min(values[values > 0])) / 10)
    ys = _scale(y)
    any_band = False
    for hue, sub in data.groupby("_hue", sort=False):
        s = summarise(sub, ["_x"], y)
        xs, m = s["_x"].to_numpy(float), s["mean"].to_numpy(float)
        blo, bhi = s["low"].to_numpy(float), s["high"].to_numpy(float)
        line, = ax.plot(xs, m * ys, marker="o", ms=3.5, lw=1.4, label=hue or label(y))
        has = np.isfinite(blo) & np.isfinite(bhi)
        if np.any(has & (bhi > blo)):
            any_band = True
            ax.fill_between(xs[has], np.clip(blo[has], lo, hi) * ys, np.clip(bhi[has], lo, hi) * ys,
                            color=line.get_color(), alpha=0.18, lw=0)
    if any_band:
        handles, labels = ax.get_legend_handles_labels()
        handles.append(mpatches.Patch(color="grey", alpha=0.3, lw=0))
        labels.append(BAND_LABEL)
        ax._distdiff_legend = (handles, labels)   # noqa: SLF001 - read back by make_figure
    if categories is not None:
        ax.set_xticks(range(len(categories)))
        ax.set_xticklabels(categories, rotation=30 if max(map(len, categories)) > 6 else 0, ha="right"
                           if max(map(len, categories)) > 6 else "center")
    if logx and numeric_x:
        ax.set_xscale("symlog", linthresh=1e-3)
    if log_y:
        ax.set_yscale("log", nonpositive="mask")
        if np.isfinite(hi):
            ax.set_ylim(top=hi * 1.5)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    ax.grid(True, which="both", alpha=0.3)


def make_figure(df, x: str, ys: list[str], hue_cols: list[str], path: Path, title: str | None = None,
                logx: bool = False) -> Path:
    """A row of panels (one per metric) sharing the x axis; saved as PNG at ``path`` and as PDF beside it."""
    plt = _agg()
    n = len(ys)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, y in zip(axes.flat, ys):
        plot_metric_panel(ax, df, x, y, hue_cols, logx=logx)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    first = axes.flat[0]
    handles, labels = getattr(first, "_distdiff_legend", first.get_legend_handles_labels())
    if labels:
        ncol = min(len(labels), cols)          # one legend column per panel column: nothing is cut off
        fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 0.0))
    if title:
        fig.suptitle(title, fontsize=11)
    bottom = (0.04 + 0.06 * int(np.ceil(len(labels) / ncol)) / rows) if labels else 0.0
    fig.tight_layout(rect=(0, min(bottom, 0.4), 1, 1))
    return save_figure(fig, path)


def save_figure(fig, path) -> Path:
    """Write ``fig`` as ``path`` (PNG, 110 dpi) and a PDF beside it, close it, and return ``path``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight")
    plt.close(fig)
    return path


def figure_name(y: str, x: str) -> str:
    """The short file name of one metric's figure: ``<metric>__<x>.png``.

    >>> figure_name("psnr_db", "snr_db")
    'psnr_db__snr_db.png'
    """
    return f"{y}__{x}.png"


def make_plots(df, out_dir: Path, specs: list[dict] | None = None, metrics=DEFAULT_METRICS,
               grid: list[str] | None = None) -> list[Path]:
    """All figures of a run into ``out_dir`` (one metric per file, PNG + PDF); returns the PNG paths.

    ``specs``: ``[{"x", "y": [...], "hue": col or None, "logx", "title"}]`` (the
    config's ``plots``; each ``y`` gets its own file); default: every present
    metric against :func:`choose_x`, lines for every other axis.
    """
    out_dir = Path(out_dir)
    axes = axis_columns(df, grid)
    paths: list[Path] = []
    if specs:
        for spec in specs:
            if spec.get("kind", "lines") != "lines":    # frontier / latent_nmse: experiments.report draws them
                continue
            if spec["x"] not in df.columns:
                continue
            hue = [spec["hue"]] if spec.get("hue") else [a for a in axes if a != spec["x"]]
            for y in metric_columns(df, spec["y"]):       # present, with at least one finite value
                path = out_dir / figure_name(y, spec["x"])
                if path in paths:
                    continue
                paths.append(make_figure(df, spec["x"], [y], hue, path, spec.get("title"), spec.get("logx", False)))
        return paths
    x = choose_x(df, axes)
    if x is None:
        return paths
    hue = [a for a in axes if a != x]
    for y in metric_columns(df, metrics):
        paths.append(make_figure(df, x, [y], hue, out_dir / figure_name(y, x)))
    return paths


def _user_labels(df, names: list[str]) -> dict[str, str]:
    """``<group>_u<user>`` image names -> the receiver's prompt (when the CSV has it)."""
    labels = {n: n for n in names}
    if {"group", "user", "receiver_prompt"} <= set(df.columns):
        import re
        import textwrap

        for g, u, prompt in df[["group", "user", "receiver_prompt"]].drop_duplicates().itertuples(index=False):
            name = f"{re.sub(r'[^A-Za-z0-9_-]+', '-', str(g)).strip('-') or 'group'}_u{int(u)}"
            if name in labels:
                labels[name] = textwrap.fill(str(prompt), 22)
    return labels


def image_grid(run_dir: Path, df, max_points: int = 8, path: Path | None = None,
               grid: list[str] | None = None, max_hues: int = 4) -> Path | None:
    """A grid of the saved images (first seed): the sweep's x axis along the columns.

    One row per receiver and per combination of the other axes (at most
    ``max_hues`` combinations); the columns hold the receiver's error-free
    reference (``*_ref.png``) and, when saved, the image it generates alone
    (``*_alone.png``), both at the row's first point, then the received images
    at up to ``max_points`` values of the x axis (spread evenly). Returns None
    when no images were saved.
    """
    run_dir = Path(run_dir)
    img_dir = run_dir / "images"
    if not img_dir.is_dir() or df.empty:
        return None
    plt = _agg()
    import matplotlib.image as mpimg

    pts = df.drop_duplicates("point_key").sort_values("point_index")
    if "seed" in pts:
        pts = pts[pts["seed"] == pts["seed"].min()]
    pts = pts[[(img_dir / k).is_dir() for k in pts["point_key"]]]
    if pts.empty:
        return None
    axes_cols = axis_columns(df, grid)
    x = choose_x(df, axes_cols)
    hue_cols = [a for a in axes_cols if a != x]
    if hue_cols:
        combos = list(dict.fromkeys(pts[hue_cols].astype(str).agg("|".join, axis=1)))[:max_hues]
        keyed = pts.assign(_hue=pts[hue_cols].astype(str).agg("|".join, axis=1))
        lanes = [(dict(zip(hue_cols, c.split("|"))), keyed[keyed["_hue"] == c]) for c in combos]
    else:
        lanes = [({}, pts)]
    first = img_dir / pts["point_key"].iloc[0]
    names = sorted(p.stem for p in first.glob("*.png") if not p.stem.endswith(("_ref", "_alone")))
    if not names:
        return None
    has_alone = any(first.glob("*_alone.png"))
    labels = _user_labels(df, names)
    n_cols = min(max_points, max(len(lane) for _, lane in lanes))
    header = ["error-free\nreference"] + (["generated\nalone"] if has_alone else [])
    rows = []                                   # (row label, [(key, suffix) per column], column titles)
    for hue, lane in lanes:
        if len(lane) > n_cols:
            lane = lane.iloc[np.unique(np.linspace(0, len(lane) - 1, n_cols).round().astype(int))]
        titles = header + [f"{x}={r[x]}" if x else f"point {r['point_index']}" for _, r in lane.iterrows()]
        key0 = lane["point_key"].iloc[0]
        hue_text = "\n".join(f"{k}={v}" for k, v in hue.items())
        for name in names:
            cells = [(key0, "_ref")] + ([(key0, "_alone")] if has_alone else []) + \
                [(k, "") for k in lane["point_key"]]
            rows.append(((hue_text + "\n" if hue_text else "") + labels[name], cells, titles))
    width = max(len(c) for _, c, _ in rows)
    fig, axs = plt.subplots(len(rows), width, figsize=(1.25 * width + 1.6, 1.4 * len(rows) + 0.4), squeeze=False)
    for i, (label, cells, titles) in enumerate(rows):
        for j in range(width):
            ax = axs[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j >= len(cells):
                ax.set_visible(False)
                continue
            key, suffix = cells[j]
            f = img_dir / key / f"{names[i % len(names)]}{suffix}.png"
            if f.exists():
                ax.imshow(mpimg.imread(f))
            if i == 0 or titles != rows[i - 1][2]:
                ax.set_title(titles[j], fontsize=6.5)
            if j == 0:
                ax.set_ylabel(label, fontsize=6, rotation=0, ha="right", va="center")
    fig.tight_layout()
    path = Path(path) if path else run_dir / "image_grid.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = ["axis_columns", "choose_x", "metric_columns", "summarise", "make_figure", "make_plots", "image_grid",
           "DEFAULT_METRICS", "LABELS", "LOG_METRICS", "METRIC_RANGES", "BAND_LABEL", "label", "is_numeric",
           "figure_name", "save_figure"]
