"""``distdiff link``: a link-level BER/BLER sweep over SNR.

Simulates ``--num-bits`` information bits at every SNR of ``--snr-db`` through
the configured link (coding, modulation, channel, receiver) and prints one row
per point: a table, or one JSON object per line with ``--format json``;
``--output FILE.csv`` also writes the rows.  With ``--channel bsc`` the sweep
runs over ``--bit-error-rate`` instead of the SNR.

Example
-------
``distdiff link``  ·  ``distdiff link --modulation 16qam --code ldpc --code-rate 0.5 --snr-db 4:0.5:8``  ·
``distdiff link --channel tdl-c --speed-mps 30 --csi ls --mcs auto --snr-db 0,10,20 --format json``  ·
``distdiff link --channel bsc --code none --bit-error-rate 0.001,0.01,0.02``
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys

NAME = "link"
HELP = "link-level BER/BLER sweep over SNR (modulation, code, channel, receiver)"

# option -> LinkConfig field, for the options passed through unchanged
_FIELDS = {
    "modulation": "modulation",
    "code": "code",
    "code_rate": "code_rate",
    "block_length": "block_length",
    "mcs": "mcs",
    "mcs_table": "mcs_table",
    "target_bler": "target_bler",
    "channel": "channel",
    "speed_mps": "speed_mps",
    "carrier_frequency_hz": "carrier_frequency_hz",
    "delay_spread_s": "delay_spread_s",
    "coherence_symbols": "coherence_symbols",
    "csi": "csi",
    "demapping": "demapping",
    "decoder": "decoder",
    "decoder_iterations": "decoder_iterations",
}


def _mcs(text: str):
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an MCS index, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a non-negative MCS index, got {value}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        NAME, help=HELP, description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    g = p.add_argument_group("coding and modulation")
    g.add_argument("--modulation", choices=["bpsk", "qpsk", "16qam", "64qam", "256qam"], default=None,
                   help="Gray-labelled modulation (default: qpsk)")
    g.add_argument("--code", choices=["none", "ldpc", "polar"], default=None, help="channel code (default: ldpc)")
    g.add_argument("--code-rate", type=float, default=None, metavar="R",
                   help="code rate (default: 0.5, or 1 without a code)")
    g.add_argument("--block-length", type=int, default=None, metavar="K",
                   help="information bits per code block (default: 1024)")
    g.add_argument("--mcs", type=_mcs, default=None, metavar="{auto,N}",
                   help="5G NR MCS index, or auto for adaptive MCS at --target-bler (LDPC)")
    g.add_argument("--mcs-table", type=int, choices=[1, 2, 3], default=None,
                   help="TS 38.214 PDSCH MCS table (default: 1)")
    g.add_argument("--target-bler", type=float, default=None, help="BLER target of --mcs auto (default: 0.1)")
    g = p.add_argument_group("channel")
    g.add_argument("--channel", choices=["bsc", "awgn", "rayleigh", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"],
                   default=None, help="channel model (default: awgn)")
    g.add_argument("--bit-error-rate", default=None, metavar="P",
                   help="BSC crossover probability: a value, comma list or start:step:stop (bsc only)")
    g.add_argument("--speed-mps", type=float, default=None, metavar="V", help="user speed [m/s] (TDL; default: 0)")
    g.add_argument("--carrier-frequency-hz", type=float, default=None, metavar="F",
                   help="carrier frequency [Hz] (default: 3.5e9)")
    g.add_argument("--delay-spread-s", type=float, default=None, metavar="S",
                   help="RMS delay spread [s] (TDL; default: 1e-7)")
    g.add_argument("--coherence-symbols", type=int, default=None, metavar="L",
                   help="Rayleigh block-fading length [channel uses] (default: 100)")
    g = p.add_argument_group("receiver")
    g.add_argument("--csi", choices=["perfect", "ls"], default=None,
                   help="perfect CSI or LS estimation on pilots (default: perfect)")
    g.add_argument("--demapping", choices=["app", "maxlog"], default=None, help="soft demapper (default: app)")
    g.add_argument("--decoder", choices=["early-stop", "sionna"], default=None,
                   help="LDPC decoder (default: early-stop)")
    g.add_argument("--decoder-iterations", type=int, default=None, metavar="N",
                   help="max LDPC iterations (default: 50 early-stop, 20 sionna)")
    g = p.add_argument_group("sweep and output")
    g.add_argument("--snr-db", default="0:2:10", metavar="LIST",
                   help="Es/N0 points [dB]: comma list or start:step:stop (inclusive)")
    g.add_argument("--num-bits", type=int, default=100_000, metavar="N", help="information bits per point")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="random seed")
    g.add_argument("--format", choices=["table", "json"], default="table",
                   help="table, or one JSON object per line")
    g.add_argument("--output", default=None, metavar="FILE.csv", help="also write the rows to a CSV file")
    g.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads (1 is fastest for this workload on a shared machine)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _format_table(rows: list[dict], columns) -> str:
    from tabulate import tabulate  # pylint: disable=import-outside-toplevel

    def fmt(key, value):
        if value is None:
            return "-"
        if isinstance(value, float):
            if not math.isfinite(value):
                return "-"
            if key in ("ber", "bler", "bit_error_rate"):
                return f"{value:.3e}"
            return f"{value:.4g}" if key != "snr_db" else f"{value:g}"
        return value

    body = [[fmt(c, r[c]) for c in columns] for r in rows]
    return tabulate(body, headers=list(columns), tablefmt="simple", disable_numparse=True)


def run(args) -> int:
    import phy  # pylint: disable=import-outside-toplevel

    import torch  # pylint: disable=import-outside-toplevel

    if args.num_bits < 1:
        raise ValueError(f"--num-bits must be a positive integer, got {args.num_bits}")
    if args.threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    torch.set_num_threads(args.threads)
    fields = {f: getattr(args, opt) for opt, f in _FIELDS.items() if getattr(args, opt) is not None}
    bsc = fields.get("channel") == "bsc"
    rates = None
    if args.bit_error_rate is not None:
        if not bsc:
            raise ValueError("--bit-error-rate only applies to --channel bsc")
        rates = phy.sweep.parse_float_list(args.bit_error_rate, "bit_error_rate")
        fields["bit_error_rate"] = rates[0]
    config = phy.LinkConfig(**fields)
    snrs = None if bsc else phy.parse_snr_db_list(args.snr_db)
    phy.tune_malloc()
    rows = phy.sweep_link(config, snrs, args.num_bits, seed=args.seed, progress=not args.no_progress,
                          bit_error_rates=rates)
    columns = list(phy.SWEEP_COLUMNS)
    if args.format == "json":
        for r in rows:
            print(json.dumps({k: _clean(r[k]) for k in columns}))
    else:  # the table leaves out columns that are empty in every row
        shown = [c for c in columns if any(r[c] is not None and r[c] == r[c] for r in rows)]
        print(_format_table(rows, shown))
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows([{k: _clean(r[k]) for k in columns} for r in rows])
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0
