"""Measure the BLER-vs-SNR curves behind :func:`phy.select_mcs`.

Run::

    python -m phy.calibrate                       # writes phy/data/mcs_bler_awgn.csv
    python -m phy.calibrate --block-lengths 1024 --tables 1 --workers 2
    python -m phy.calibrate --channel tdl-c --speed-mps 3 --tables 1 --block-lengths 1024 \
        --step-db 2 --resume                      # writes phy/data/mcs_bler_tdl-c_3mps_ls.csv

The shipped fading tables (each file's header records the runs it came from)::

    for each category (--channel rayleigh; tdl-a / tdl-c with --speed-mps 3 and 30):
    python -m phy.calibrate --channel tdl-c --speed-mps 3 --tables 1,3 --block-lengths 1024 \
        --max-bits 491520 --step-db 2 --min-blocks 64 --max-block-errors 50 --high-bler 0.95 \
        --low-bler 0.01 --max-snr-db 40 --refine-ratio 3 --min-step-db 0.5 --resume
    ... the same with --block-lengths 256 --max-bits 122880, then --tables 1 --block-lengths 8424
        --max-bits 539136 (64 blocks of 8448 bits a point; at 8448 bits only rates >= 1/3 exist),
        and that again with --top-up-bler 0.02,0.4 --top-up-blocks 256 (the points near the target
        get up to 256 blocks)

With ``--channel`` other than AWGN (``rayleigh``, ``tdl-a`` ... with
``--speed-mps``; ``--csi ls`` by default, the project's default OFDM
numerology and carrier) the same chain runs over that fading channel and its
estimator, and the curves are BLER vs *average* SNR: a calibrated category
(:data:`CATEGORIES`), whose CSV records the link configuration in a
``# link:`` header line, lets :meth:`phy.DigitalLink.select_mcs` read the MCS
off the table (:func:`phy.mcs.calibrated_table`) -- the LS estimation loss and
the fading are in the measured curve.  Over fading a curve starts at the AWGN
curve's ``--target-bler`` threshold and walks in ``--step-db`` steps; code
blocks go in rows of ``--blocks-per-row`` blocks, as :class:`phy.DigitalLink`
carries a payload.

For every distinct (modulation, code rate) of the chosen 5G NR MCS tables and
every block length, the script simulates this project's bit-true chain
(:class:`~phy.DigitalLink`: CRC24B, 5G LDPC, the default decoder, app
demapping) over AWGN on an SNR grid, starting next to the BICM limit and
walking until the curve spans BLER ``--high-bler`` (0.7) down to ``--low-bler``
(a third of the target).  Each
point stops after ``--max-block-errors`` block errors (but at least
``--min-blocks`` blocks) or ``--max-bits`` information bits.  The curves go to
a CSV with a commented header; with ``--compare-sionna`` the script also
prints the SNR at the target BLER next to Sionna SYS's shipped tables.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import csv
import dataclasses
import datetime

import json
import math
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .config import LDPC_RATE_MIN, LinkConfig
from .seeding import derive_seed
from .link import DigitalLink
from .mcs import CALIBRATION_FILE, PER_CURVE_FIELDS, BlerCurve
from .nr_tables import mcs_table, modulation_from_bits
from .theory import bicm_ebno_limit_db

__all__ = ["CurveSpec", "measure_point", "measure_curve", "sionna_sys_snr_at_bler", "sionna_sys_block_sizes",
           "sionna_bler_tables", "CATEGORIES", "category_name", "calibration_path", "main"]

#: the calibrated channel categories: name -> LinkConfig fields (the rest: LinkConfig's defaults, i.e. the
#: project's OFDM numerology, carrier and receiver). Pedestrian 3 m/s, vehicular 30 m/s, LS estimation.
CATEGORIES: dict[str, dict] = {
    "awgn": dict(channel="awgn"),
    "rayleigh_ls": dict(channel="rayleigh", csi="ls"),
    "tdl-a_3mps_ls": dict(channel="tdl-a", speed_mps=3.0, csi="ls"),
    "tdl-a_30mps_ls": dict(channel="tdl-a", speed_mps=30.0, csi="ls"),
    "tdl-c_3mps_ls": dict(channel="tdl-c", speed_mps=3.0, csi="ls"),
    "tdl-c_30mps_ls": dict(channel="tdl-c", speed_mps=30.0, csi="ls"),
}



def category_name(channel: str, speed_mps: float = 0.0, csi: str = "ls") -> str:
    """File-name category of a channel: ``"awgn"``, ``"rayleigh_ls"``, ``"tdl-c_3mps_ls"``.

    >>> category_name("tdl-c", 3.0, "ls"), category_name("awgn")
    ('tdl-c_3mps_ls', 'awgn')
    """
    if channel == "awgn":
        return "awgn"
    speed = "" if not channel.startswith("tdl") else f"_{speed_mps:g}mps"
    return f"{channel}{speed}_{csi}"


def calibration_path(category: str) -> Path:
    """The shipped calibration CSV of a category (``phy/data/mcs_bler_<category>.csv``)."""
    return CALIBRATION_FILE.parent / f"mcs_bler_{category}.csv"


@dataclasses.dataclass(frozen=True)
class CurveSpec:
    """One curve to measure: modulation order, rate (x1024) and block length.

    Example::

        >>> spec = CurveSpec(bits_per_symbol=4, code_rate_x1024=378.0, block_length=1024)
        >>> round(spec.code_rate, 4)
        0.3691
    """

    bits_per_symbol: int
    code_rate_x1024: float
    block_length: int

    @property
    def code_rate(self) -> float:
        return self.code_rate_x1024 / 1024.0


def _seed(*parts: object) -> int:
    return derive_seed(repr(parts))


def measure_point(
    link: DigitalLink,
    snr_db: float,
    seed: int,
    min_blocks: int,
    max_block_errors: int,
    max_bits: int,
    blocks_per_call: int = 32,
    blocks_per_row: int = 1,
) -> tuple[int, int]:
    """Simulate code blocks at one SNR until the stopping rule; returns
    ``(blocks, block_errors)``.  Each call sends rows of ``blocks_per_row``
    code blocks (one payload row of ``blocks_per_row * K`` bits)."""
    k = link.config.block_length
    max_blocks = max(min_blocks, max_bits // k)
    gen = torch.Generator().manual_seed(seed)
    blocks = errors = 0
    with torch.no_grad():
        while blocks < max_blocks and not (errors >= max_block_errors and blocks >= min_blocks):
            b = min(blocks_per_call, max_blocks - blocks)
            rows = max(1, math.ceil(b / blocks_per_row))
            bits = torch.randint(0, 2, (rows, blocks_per_row * k), generator=gen).float()
            res = link(bits, snr_db, gen)
            blocks += res.num_blocks
            errors += res.block_errors
    return blocks, errors


def measure_curve(
    spec: CurveSpec,
    target_bler: float = 0.1,
    step_db: float = 0.5,
    min_blocks: int = 50,
    max_block_errors: int = 30,
    max_bits: int = 100_000,
    seed: int = 0,
    link_fields: Optional[dict] = None,
    high_bler: float = 0.7,
    low_bler: Optional[float] = None,
    max_snr_db: float = 40.0,
    blocks_per_row: int = 1,
    refine_ratio: Optional[float] = None,
    min_step_db: float = 0.5,
    known: Optional[dict[float, tuple[int, int]]] = None,
    top_up_bler: Optional[tuple[float, float]] = None,
    top_up_blocks: int = 0,
) -> list[dict]:
    """Measure one curve (see the module docstring); returns CSV rows.

    :param link_fields: LinkConfig fields of the channel (default AWGN), e.g.
        ``CATEGORIES["tdl-c_3mps_ls"]``.  Over fading the walk starts at the
        shipped AWGN curve's ``target_bler`` threshold (the BICM limit if
        there is none).
    :param high_bler: walk down until the BLER is at least this.
    :param low_bler: walk up until the BLER is at most this (default
        ``target_bler / 3``), or until ``max_snr_db`` [dB].
    :param refine_ratio: after the walk, measure the midpoint of every step
        inside the window whose BLER falls by more than this factor (a steep
        waterfall, where log-linear interpolation would be optimistic), down
        to steps of ``min_step_db`` [dB]; `None`: no refinement.
    :param known: ``{snr_db: (blocks, block_errors)}`` already measured (a
        resumed curve): kept, not measured again.
    :param top_up_bler: ``(low, high)``: at the end, every point whose BLER
        is in this window (the points that decide where the curve crosses a
        target) and has fewer than ``top_up_blocks`` blocks gets more blocks,
        with a seed of its own, until it has ``max_block_errors`` errors (and
        ``min_blocks`` blocks) or ``top_up_blocks`` blocks; the counts add up.
        Where the topped-up last point is no longer below ``low_bler``, the
        walk goes on upwards (and its new points are topped up too).
    """
    torch.set_num_threads(1)
    mod = modulation_from_bits(spec.bits_per_symbol)
    fields = dict(channel="awgn") if link_fields is None else dict(link_fields)
    try:
        cfg = LinkConfig(modulation=mod, code="ldpc", code_rate=spec.code_rate, block_length=spec.block_length,
                         **fields)
    except ValueError:
        return []  # this rate cannot be built at this block length (5G would segment differently)
    link = DigitalLink(cfg)
    eff_rate = (cfg.block_length + cfg.crc_length) / cfg.codeword_length
    limit_snr = bicm_ebno_limit_db(mod, min(eff_rate, 0.999)) + 10 * math.log10(spec.bits_per_symbol * eff_rate)
    start = step_db * math.ceil((limit_snr + 0.5) / step_db)
    if cfg.channel != "awgn":
        from .mcs import load_calibration  # pylint: disable=import-outside-toplevel

        awgn = load_calibration(str(CALIBRATION_FILE))
        lengths = sorted({k[2] for k in awgn})
        k_awgn = min(lengths, key=lambda k: abs(math.log(k / spec.block_length)))
        curve = awgn.get((spec.bits_per_symbol, spec.code_rate_x1024, k_awgn))
        if curve is not None and math.isfinite(curve.snr_for_bler(target_bler)):
            start = step_db * math.ceil(curve.snr_for_bler(target_bler) / step_db)
    results: dict[float, tuple[int, int]] = dict(known or {})

    def run(snr: float) -> float:
        snr = round(snr, 4)
        if snr not in results:
            results[snr] = measure_point(
                link, snr, _seed(seed, spec, snr) if cfg.channel == "awgn" else _seed(seed, spec, snr, fields),
                min_blocks, max_block_errors, max_bits, blocks_per_row=blocks_per_row,
            )
        b, e = results[snr]
        return e / b

    high, low = high_bler, target_bler / 3.0 if low_bler is None else low_bler
    def walk_up(s: float) -> None:
        for _ in range(80):  # walk up until the BLER is well below the target
            if run(s) <= low or s + step_db > max_snr_db:
                break
            s += step_db

    walk_up(start)
    s = start
    for _ in range(80):  # walk down until the BLER is high
        if run(s) >= high:
            break
        s -= step_db
    if refine_ratio is not None:  # halve the steep steps inside the window, down to min_step_db
        for _ in range(8):
            pts = sorted(results)
            added = False
            for a, b in zip(pts, pts[1:]):
                ba, bb = (results[a][1] / results[a][0], results[b][1] / results[b][0])
                floor = 0.5 / results[b][0]
                if (b - a) / 2 >= min_step_db - 1e-9 and bb < high and ba > low \
                        and ba > refine_ratio * max(bb, floor):
                    run((a + b) / 2)
                    added = True
            if not added:
                break
    if top_up_bler is not None:
        for _ in range(8):
            for snr in sorted(results):
                b, e = results[snr]
                if top_up_bler[0] <= e / b <= top_up_bler[1] and b < top_up_blocks and not (
                        e >= max_block_errors and b >= min_blocks):
                    more_seed = _seed(seed, spec, snr, fields, "top-up", b)
                    b2, e2 = measure_point(link, snr, more_seed, max(0, min_blocks - b), max_block_errors - e,
                                           (top_up_blocks - b) * cfg.block_length, blocks_per_row=blocks_per_row)
                    results[snr] = (b + b2, e + e2)
            last = max(results)
            if run(last) <= low or last + step_db > max_snr_db:
                break
            walk_up(last + step_db)  # the topped-up last point no longer ends the walk: walk on (and top up)
    rows = []
    for snr in sorted(results):
        b, e = results[snr]
        rows.append(
            dict(
                bits_per_symbol=spec.bits_per_symbol,
                code_rate_x1024=spec.code_rate_x1024,
                block_length=spec.block_length,
                snr_db=snr,
                blocks=b,
                block_errors=e,
                bler=e / b,
            )
        )
    return rows


def _key(spec: CurveSpec) -> tuple[int, float, int]:
    return spec.bits_per_symbol, spec.code_rate_x1024, spec.block_length


def _row_key(row: dict) -> tuple[int, float, int]:
    return int(row["bits_per_symbol"]), float(row["code_rate_x1024"]), int(row["block_length"])


def _specs(tables: list[int], block_lengths: list[int]) -> list[CurveSpec]:
    pairs = sorted(
        {
            (e.bits_per_symbol, round(e.code_rate * 1024.0, 1))
            for t in tables
            for e in mcs_table(t)
            if e.code_rate >= LDPC_RATE_MIN
        }
    )
    return [CurveSpec(q, r, k) for k in block_lengths for q, r in pairs]


def _sionna_sys_table(table: int) -> dict:
    import sionna.sys  # pylint: disable=import-outside-toplevel

    path = Path(sionna.sys.__file__).parent / "bler_tables" / f"PDSCH_table{table}.json"
    with open(path, encoding="utf-8") as fh:
        data = json.load(fh)
    return next(iter(data["category"].values()))


def sionna_sys_block_sizes(table: int) -> list[int]:
    """Code-block sizes Sionna SYS tabulates for a PDSCH MCS table."""
    cat = _sionna_sys_table(table)
    entry = next(iter(cat["index"][str(table)]["MCS"].values()))
    return sorted(int(c) for c in entry["CBS"])


def sionna_sys_snr_at_bler(table: int, mcs: int, cbs: int, target: float) -> Optional[float]:
    """SNR [dB] at ``target`` BLER from Sionna SYS's shipped PDSCH table
    (code blocks of ``cbs`` bits), interpolated log-linearly."""
    cat = _sionna_sys_table(table)
    try:
        entry = cat["index"][str(table)]["MCS"][str(mcs)]
        bler = np.asarray(entry["CBS"][str(cbs)]["BLER"], dtype=np.float64)
    except KeyError:
        return None
    snr = np.asarray(entry["SNR_db"], dtype=np.float64)
    curve = BlerCurve(snr, np.maximum.accumulate(bler[::-1])[::-1], np.full_like(snr, 1e4))
    value = curve.snr_for_bler(target)
    return None if not math.isfinite(value) else value


def compare_with_sionna(path: Path, table: int, block_length: int, cbs: int, target: float) -> list[dict]:
    """Per MCS: SNR at the target BLER from our calibration and from Sionna SYS."""
    from .mcs import load_calibration  # pylint: disable=import-outside-toplevel

    curves = load_calibration(str(path))
    out = []
    for e in mcs_table(table):
        c = curves.get((e.bits_per_symbol, round(e.code_rate * 1024.0, 1), block_length))
        ours = c.snr_for_bler(target) if c is not None else None
        theirs = sionna_sys_snr_at_bler(table, e.index, cbs, target)
        out.append(dict(mcs=e.index, modulation=e.modulation, rate_x1024=round(e.code_rate * 1024, 1),
                        ours_snr_db=ours, sionna_sys_snr_db=theirs,
                        gap_db=None if ours is None or theirs is None else ours - theirs))
    return out


def sionna_bler_tables(calibration: Optional[str] = None, table: int = 1, category: int = 1) -> dict:
    """This project's calibration as a BLER table in Sionna SYS's ``PHYAbstraction`` JSON schema.

    ``{"category": {category: {"index": {table: {"MCS": {mcs: {"SNR_db": [...],
    "CBS": {block_length: {"BLER": [...]}}}}}}}}}``: per MCS of 38.214's PDSCH
    ``table`` (category 1 is Sionna's PDSCH), one SNR grid (the union of the
    measured points of every block length) and, per calibrated block length,
    the BLER of the conservative envelope there (:meth:`phy.mcs.BlerCurve.bler_at`).
    Written to a file, ``sionna.sys.PHYAbstraction(load_bler_tables_from=path)``
    loads it.

    :param calibration: calibration CSV (default: the shipped AWGN one).
    :param table: MCS table (1, 2 or 3).
    :param category: Sionna's table category (0: PUSCH, 1: PDSCH).
    :output tables: the JSON-ready dict.

    Example::

        >>> t = sionna_bler_tables(table=1)
        >>> entry = t["category"]["1"]["index"]["1"]["MCS"]["9"]
        >>> sorted(entry["CBS"], key=int), len(entry["SNR_db"]) == len(entry["CBS"]["1024"]["BLER"])
        (['256', '1024', '4096', '8424'], True)
    """
    from .mcs import rate_key, load_calibration  # pylint: disable=import-outside-toplevel

    curves = load_calibration(calibration)
    mcs: dict[str, dict] = {}
    for e in mcs_table(table):
        found = {k: c for (q, r, k), c in curves.items() if q == e.bits_per_symbol and r == rate_key(e.code_rate)}
        if not found:
            continue
        grid = sorted({float(x) for c in found.values() for x in c.snr_db})
        mcs[str(e.index)] = dict(
            SNR_db=grid,
            CBS={str(k): dict(BLER=[c.bler_at(x) for x in grid]) for k, c in sorted(found.items())},
        )
    from .mcs import calibration_link  # pylint: disable=import-outside-toplevel

    link = calibration_link(calibration or str(CALIBRATION_FILE))
    over = "AWGN" if link is None or link.get("channel") == "awgn" else (
        f"{link['channel']}" + (f" at {link['speed_mps']:g} m/s" if str(link["channel"]).startswith("tdl") else "")
        + f" with {link['csi']} CSI (average SNR)")
    return {"_comment": f"BLER vs SNR over {over} of distdiff's bit-true chain (python -m phy.calibrate), "
                        f"MCS table {table}",
            "category": {str(category): {"index": {str(table): {"MCS": mcs}}}}}


def _bler_window(text: str) -> tuple[float, float]:
    """``--top-up-bler`` as ``(low, high)`` with 0 <= low <= high <= 1."""
    try:
        low, high = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH (two BLERs), got {text!r}") from None
    if not 0.0 <= low <= high <= 1.0:
        raise argparse.ArgumentTypeError(f"expected 0 <= LOW <= HIGH <= 1, got {text!r}")
    return low, high


def main(argv: Optional[list[str]] = None) -> int:
    """Command-line entry point of ``python -m phy.calibrate``."""
    p = argparse.ArgumentParser(prog="python -m phy.calibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--tables", default="1,2,3", help="MCS tables, comma list (default 1,2,3)")
    p.add_argument("--block-lengths", default="1024,4096,256,8424",
                   help="information bits per block, comma list (8424 + CRC24B = 8448, the largest 5G LDPC block)")
    p.add_argument("--target-bler", type=float, default=0.1)
    p.add_argument("--step-db", type=float, default=0.5)
    p.add_argument("--min-blocks", type=int, default=50)
    p.add_argument("--max-block-errors", type=int, default=30)
    p.add_argument("--max-bits", type=int, default=100_000, help="information bits per SNR point at most")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="worker processes (one torch thread each)")
    p.add_argument("--channel", default="awgn", help="awgn (default), rayleigh, tdl-a ... tdl-e")
    p.add_argument("--speed-mps", type=float, default=0.0, help="user speed [m/s] (TDL)")
    p.add_argument("--csi", default="ls", choices=["ls", "perfect"], help="receiver CSI over fading (default ls)")
    p.add_argument("--high-bler", type=float, default=0.7, help="walk down until the BLER is at least this")
    p.add_argument("--low-bler", type=float, default=None, help="walk up until the BLER is at most this "
                   "(default target/3)")
    p.add_argument("--max-snr-db", type=float, default=40.0, help="walk up no further than this SNR [dB]")
    p.add_argument("--blocks-per-row", type=int, default=None,
                   help="code blocks per payload row (default 1 over AWGN, 8 over fading)")
    p.add_argument("--refine-ratio", type=float, default=None,
                   help="halve steps whose BLER falls by more than this factor (inside the window)")
    p.add_argument("--min-step-db", type=float, default=0.5, help="smallest step of --refine-ratio [dB]")
    p.add_argument("--top-up-bler", type=_bler_window, default=None,
                   metavar="LOW,HIGH", help="give the points whose BLER is in this window more blocks, up to "
                   "--top-up-blocks (or --max-block-errors errors); resumed curves too")
    p.add_argument("--top-up-blocks", type=int, default=0, help="blocks per point of --top-up-bler")
    p.add_argument("--output", default=None, help="CSV (default phy/data/mcs_bler_<category>.csv)")
    p.add_argument("--compare-sionna", action="store_true", help="only compare --output with Sionna SYS")
    p.add_argument("--sionna-json", default=None, metavar="PATH",
                   help="only write --output as Sionna SYS PHYAbstraction BLER tables (JSON) of --tables to PATH")
    p.add_argument("--resume", action="store_true",
                   help="keep the curves already measured (in --output or its .partial.csv), measure the rest")
    args = p.parse_args(argv)
    if (args.top_up_bler is None) != (args.top_up_blocks <= 0):
        p.error("--top-up-bler LOW,HIGH and --top-up-blocks N (> 0) go together")
    tables = [int(t) for t in args.tables.split(",")]
    lengths = [int(k) for k in args.block_lengths.split(",")]
    category = category_name(args.channel, args.speed_mps, args.csi)
    link_fields = dict(channel=args.channel)
    if args.channel != "awgn":
        link_fields["csi"] = args.csi
        if args.channel.startswith("tdl"):
            link_fields["speed_mps"] = args.speed_mps
    out = Path(args.output) if args.output else calibration_path(category)
    blocks_per_row = args.blocks_per_row or (1 if args.channel == "awgn" else 8)

    if args.sionna_json:
        for table in tables:
            path = Path(args.sionna_json.replace("{table}", str(table))) if len(tables) > 1 else Path(args.sionna_json)
            path.write_text(json.dumps(sionna_bler_tables(str(out), table)), encoding="utf-8")
            print(f"wrote {path}")
        return 0

    if args.compare_sionna:
        for table in tables:
            sizes = sionna_sys_block_sizes(table)
            for k in lengths:
                cbs = min(sizes, key=lambda c: abs(math.log(c / k)))
                rows = compare_with_sionna(out, table, k, cbs=cbs, target=args.target_bler)
                gaps = [r["gap_db"] for r in rows if r["gap_db"] is not None]
                for r in rows:
                    print(json.dumps(r))
                if gaps:
                    print(f"# table {table}, K={k} vs Sionna SYS CBS={cbs}: mean gap {np.mean(gaps):+.2f} dB "
                          f"(median {np.median(gaps):+.2f}, {len(gaps)} MCS)")
        return 0

    specs = _specs(tables, lengths)
    fields = ["bits_per_symbol", "code_rate_x1024", "block_length", "snr_db", "blocks", "block_errors", "bler"]
    done: set[tuple] = set()
    rows: list[dict] = []
    partial = out.with_suffix(".partial.csv")
    source = partial if partial.exists() else out
    history: list[str] = []  # the "# <date>; args:" lines of the runs a resumed file came from
    if args.resume and out.exists():
        with open(out, encoding="utf-8") as fh:
            history = [line.rstrip("\n") for line in fh if line.startswith("# earlier:") or
                       (line.startswith("# 20") and "; args:" in line)]
        history = [h if h.startswith("# earlier:") else "# earlier: " + h[2:] for h in history]
    if args.resume and source.exists():
        with open(source, newline="", encoding="utf-8") as fh:
            for r in csv.DictReader(line for line in fh if not line.startswith("#")):
                rows.append(r)
                done.add(_row_key(r))
    todo = [s for s in specs if _key(s) not in done]
    known_of: dict[tuple, dict[float, tuple[int, int]]] = {}
    if args.refine_ratio is not None or args.top_up_blocks:
        # resumed curves are refined and topped up too: their points are kept, not re-measured
        todo = [s for s in specs if _key(s) in done] + todo
        for r in rows:
            known_of.setdefault(_row_key(r), {})[float(r["snr_db"])] = (int(r["blocks"]), int(r["block_errors"]))
    kwargs = dict(target_bler=args.target_bler, step_db=args.step_db, min_blocks=args.min_blocks,
                  max_block_errors=args.max_block_errors, max_bits=args.max_bits, seed=args.seed,
                  high_bler=args.high_bler, low_bler=args.low_bler, max_snr_db=args.max_snr_db,
                  blocks_per_row=blocks_per_row, link_fields=None if args.channel == "awgn" else link_fields,
                  refine_ratio=args.refine_ratio, min_step_db=args.min_step_db,
                  top_up_bler=args.top_up_bler, top_up_blocks=args.top_up_blocks)
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm  # pylint: disable=import-outside-toplevel

    with open(partial, "w", newline="", encoding="utf-8") as fh, \
            tqdm(total=len(todo), desc="calibrating", file=sys.stderr) as bar:
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

        def collect(curve_rows: list[dict]) -> None:
            rows.extend(curve_rows)
            writer.writerows(curve_rows)  # every finished curve is on disk at once
            fh.flush()
            bar.update()

        if args.workers > 1:
            with concurrent.futures.ProcessPoolExecutor(args.workers) as pool:
                futures = [pool.submit(measure_curve, s, **kwargs, known=known_of.get(_key(s))) for s in todo]
                for f in concurrent.futures.as_completed(futures):
                    collect(f.result())
        else:
            for s in todo:
                collect(measure_curve(s, **kwargs, known=known_of.get(_key(s))))
    # one row per (curve, SNR): a refined curve's rows repeat its known points (the last copy is kept)
    rows = list({(*_row_key(r), float(r["snr_db"])): r for r in rows}.values())
    rows.sort(key=lambda r: (int(r["block_length"]), int(r["bits_per_symbol"]), float(r["code_rate_x1024"]),
                             float(r["snr_db"])))
    cfg = LinkConfig(**link_fields)
    over = "AWGN" if args.channel == "awgn" else f"{category} (average Es/N0)"
    with open(out, "w", newline="", encoding="utf-8") as fh:
        fh.write(f"# BLER vs SNR (Es/N0) over {over} of distdiff's bit-true chain, written by python -m phy.calibrate\n")
        fh.write(f"# {datetime.date.today().isoformat()}; args: {' '.join(argv if argv is not None else sys.argv[1:])}\n")
        for line in history:
            fh.write(line + "\n")
        fh.write(f"# chain: CRC24B + 5G LDPC, decoder={cfg.decoder} ({cfg.decoder_iterations} iterations max, "
                 f"{cfg.cn_update}), app demapping; {len(todo)} curves in {time.perf_counter() - t0:.0f} s\n")
        if args.channel != "awgn":
            link = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in PER_CURVE_FIELDS}
            fh.write(f"# link: {json.dumps(link, sort_keys=True)}\n")
        writer = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    partial.unlink()
    print(f"wrote {len(rows)} points to {out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
