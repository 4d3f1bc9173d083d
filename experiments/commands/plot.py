"""``distdiff plot RESULTS_DIR``: regenerate the plots, image grid and report of a run from its CSV.

``distdiff plot LINK.csv``: BER/BLER against SNR (or Eb/N0 with ``--x ebno_db``) of a
link sweep written by ``distdiff link --output LINK.csv`` (:mod:`experiments.link_plots`).

Example
-------
``distdiff plot results/default/0123456789ab``  ·  ``distdiff plot link.csv --x ebno_db``
"""

from __future__ import annotations

NAME = "plot"
HELP = "regenerate plots, image grid and report.md of a results directory, or plot a link sweep CSV"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", metavar="RESULTS_DIR",
                   help="a run directory (results/<experiment>/<run-id>) or a link sweep CSV (distdiff link --output)")
    p.add_argument("--x", default="snr_db", choices=["snr_db", "ebno_db"], help="link CSV: x axis (default: snr_db)")
    p.add_argument("--out", default=None, metavar="FILE.png", help="link CSV: the figure (default: beside the CSV)")
    return p


def run(args) -> int:
    from pathlib import Path

    if Path(args.results_dir).is_file():
        from experiments.link_plots import plot_link_csv

        print(plot_link_csv(args.results_dir, x=args.x, out=args.out))
        return 0
    from experiments.report import write_outputs

    out = write_outputs(args.results_dir)
    for p in out["plots"]:
        print(p)
    if out["image_grid"] is not None:
        print(out["image_grid"])
    print(out["report"])
    return 0
