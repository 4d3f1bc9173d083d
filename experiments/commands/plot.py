"""``distdiff plot RESULTS_DIR``: regenerate the plots, image grid and report of a run from its CSV.

Example
-------
``distdiff plot results/default/0123456789ab``
"""

from __future__ import annotations

NAME = "plot"
HELP = "regenerate plots, image grid and report.md of a results directory from its results.csv"


def add_parser(subparsers):
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0])
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a run directory: results/<experiment>/<run-id>")
    return p


def run(args) -> int:
    from experiments.report import write_outputs

    out = write_outputs(args.results_dir)
    for p in out["plots"]:
        print(p)
    if out["image_grid"] is not None:
        print(out["image_grid"])
    print(out["report"])
    return 0
