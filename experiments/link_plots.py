"""BER/BLER figures of a link sweep CSV (``distdiff link --output FILE.csv``; ``distdiff plot FILE.csv``).

One figure with two panels, BER and BLER against SNR (``snr_db``) or Eb/N0
(``ebno_db``), or against the crossover probability for BSC sweeps, error rates
on a log axis. One curve per configuration (the rows' resolved ``config``), named
by the settings that differ between configurations, each with its 95% Wilson band
(``ber_low`` ... ``bler_high``; a point without errors shows only its band's upper
end). Dashed theory curves where a closed form exists (:mod:`phy.theory`):
uncoded AWGN (every modulation) and uncoded flat Rayleigh with perfect CSI
(BPSK, QPSK).

Example
-------
>>> import tempfile, pathlib
>>> from phy import LinkConfig, sweep_link
>>> import pandas as pd
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> rows = sweep_link(LinkConfig(code="none"), [0.0, 4.0], 4000, progress=False)
>>> pd.DataFrame(rows).to_csv(d / "link.csv", index=False)
>>> plot_link_csv(d / "link.csv").name
'link.png'
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

#: the columns that make a CSV a link sweep
LINK_COLUMNS = ("ber", "bler", "ber_low", "ber_high", "bler_low", "bler_high", "config")

_X_LABELS = {"snr_db": "SNR $E_s/N_0$ [dB]", "ebno_db": "$E_b/N_0$ [dB]", "bit_error_rate": "BSC crossover probability"}


def is_link_csv(path: str | Path) -> bool:
    """Whether ``path`` is a CSV file with the columns of a link sweep."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".csv":
        return False
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().strip().split(",")
    return all(c in header for c in LINK_COLUMNS)


def _curve_keys(df) -> list[dict]:
    """Each row's configuration without what varies along a curve (the BSC's crossover probability)."""
    out = []
    for text in df["config"]:
        cfg = json.loads(text)
        cfg.pop("bit_error_rate", None) if cfg.get("channel") == "bsc" else None
        out.append(cfg)
    return out


def _labels(configs: list[dict]) -> list[str]:
    """Name each configuration by the fields that differ between them."""
    fields = sorted({k for c in configs for k in c})
    varying = [k for k in fields if len({json.dumps(c.get(k)) for c in configs}) > 1]
    if not varying:
        varying = [k for k in ("modulation", "code", "channel") if k in fields]
    return [", ".join(f"{k}={c.get(k)}" for k in varying) for c in configs]


def theory_ber(cfg: dict, ebno_db: np.ndarray) -> tuple[np.ndarray, str] | None:
    """Uncoded BER [ebno_db] of ``cfg`` from :mod:`phy.theory`, with its legend, or None if none applies."""
    from phy import theory  # pylint: disable=import-outside-toplevel

    if cfg.get("code") != "none" or cfg.get("mcs") is not None:
        return None
    mod, channel = cfg.get("modulation"), cfg.get("channel")
    if channel == "awgn":
        return np.asarray(theory.ber_awgn(ebno_db, mod)), f"theory: uncoded {mod}, AWGN"
    if channel == "rayleigh" and cfg.get("csi") == "perfect" and mod in ("bpsk", "qpsk"):
        return np.asarray(theory.ber_bpsk_rayleigh(ebno_db)), f"theory: uncoded {mod}, Rayleigh"
    return None


def plot_link_csv(path: str | Path, x: str = "snr_db", out: str | Path | None = None) -> Path:
    """Draw the BER and BLER of the link sweep CSV at ``path`` into ``out`` (default: ``<path>.png``).

    :param x: "snr_db", "ebno_db" (BSC sweeps always use ``bit_error_rate``).
    :output path: the PNG written (a PDF beside it).
    """
    import matplotlib  # pylint: disable=import-outside-toplevel

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    import pandas as pd  # pylint: disable=import-outside-toplevel

    if x not in ("snr_db", "ebno_db"):
        raise ValueError(f"--x must be snr_db or ebno_db, got {x!r}")
    path = Path(path)
    if not is_link_csv(path):
        raise ValueError(f"{path} is not a link sweep CSV (distdiff link --output FILE.csv; it needs the columns "
                         f"{', '.join(LINK_COLUMNS)})")
    df = pd.read_csv(path)
    if df.empty:
        raise ValueError(f"{path} has no rows")
    keys = _curve_keys(df)
    df["_curve"] = [json.dumps(k, sort_keys=True) for k in keys]
    curves = list(dict.fromkeys(df["_curve"]))
    labels = dict(zip(curves, _labels([json.loads(c) for c in curves])))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    any_bsc = False
    for ci, curve in enumerate(curves):
        d = df[df["_curve"] == curve]
        cfg = json.loads(curve)
        xcol = "bit_error_rate" if cfg.get("channel") == "bsc" else x
        any_bsc |= xcol == "bit_error_rate"
        d = d.sort_values(xcol)
        xs = d[xcol].to_numpy(dtype=float)
        color = colors[ci % len(colors)]
        for ax, metric in zip(axes, ("ber", "bler")):
            y = d[metric].to_numpy(dtype=float)
            lo, hi = d[f"{metric}_low"].to_numpy(dtype=float), d[f"{metric}_high"].to_numpy(dtype=float)
            ax.fill_between(xs, np.maximum(lo, 1e-12), hi, color=color, alpha=0.18, linewidth=0)
            shown = y > 0
            ax.plot(xs[shown], y[shown], "o-", color=color, label=labels[curve], markersize=4)
            if (~shown).any():
                ax.plot(xs[~shown], hi[~shown], "v", color=color, markersize=5)
        if xcol != "bit_error_rate":
            dense_x = np.linspace(xs.min(), xs.max(), 200) if len(xs) > 1 else xs
            bps = {"bpsk": 1, "qpsk": 2, "16qam": 4, "64qam": 6, "256qam": 8}.get(cfg.get("modulation"), 0)
            if bps:
                ebno = dense_x if xcol == "ebno_db" else dense_x - 10.0 * math.log10(bps)
                th = theory_ber(cfg, ebno)
                if th is not None:
                    axes[0].plot(dense_x, th[0], "--", color=color, linewidth=1, label=th[1])
    for ax, metric in zip(axes, ("ber", "bler")):
        vals = np.concatenate([df[metric].to_numpy(dtype=float), df[f"{metric}_high"].to_numpy(dtype=float)])
        vals = vals[vals > 0]
        if vals.size:        # a band of a zero-error point would reach 0: stop at a decade below the data
            ax.set_ylim(bottom=10 ** (math.floor(math.log10(vals.min())) - 1), top=1.5)
    for ax, metric in zip(axes, ("BER", "BLER")):
        ax.set_yscale("log")
        ax.set_xlabel(_X_LABELS["bit_error_rate" if any_bsc and len(curves) == 1 else x])
        ax.set_ylabel(f"{metric} (95% Wilson band)")
        ax.grid(True, which="both", alpha=0.3)
        ax.set_title(metric)
    axes[0].legend(fontsize=7, loc="lower left")
    out = Path(out) if out is not None else path.with_suffix(".png")
    fig.savefig(out, dpi=150)
    fig.savefig(out.with_suffix(".pdf"))
    plt.close(fig)
    return out


__all__ = ["LINK_COLUMNS", "is_link_csv", "plot_link_csv", "theory_ber"]
