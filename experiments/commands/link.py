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
``distdiff link --channel bsc --code none --bit-error-rate 0.001,0.01,0.02``  ·
``distdiff link --mcs 0:27 --snr-db -5:1:25 --target-block-errors 100 --max-bits 1000000``  ·
``distdiff link --modulation qpsk,16qam --channel awgn,rayleigh --code none --snr-db -3,0,3``  ·
``distdiff link --mcs 0:27 --snr-db -5:1:25 --target-block-errors 100 --workers 2 --output link.csv``
then ``distdiff plot link.csv``

Each point stops at ``--num-bits``, or with ``--target-block-errors`` at that
many block errors (at most ``--max-bits``); BER and BLER come with 95% Wilson
intervals widened by the measured design effect (bits cluster in failed code blocks, blocks in a payload
row's slow fade: ``ber_design_effect``, ``bler_design_effect``), points with fewer than 10 block errors are flagged
(``too_few_errors``), and each row carries its seed and resolved configuration
(``config``, JSON; left out of the table). ``--workers N`` runs the points in N
processes, slowest first (:func:`phy.sweep.sweep_links`); ``--executor ray [--address
ADDR]`` runs them as Ray tasks instead; the rows are the same for any N and executor.
"""

from __future__ import annotations

import argparse
import csv
import json
import itertools
import math
import re
import sys

from ..configtools import check_output_file

NAME = "link"
HELP = "link-level BER/BLER sweep over SNR (modulation, code, channel, receiver)"

# LinkConfig fields that are not command-line options of `distdiff link`
_NOT_OPTIONS = ("max_codewords_per_batch",)

# text that looks like a number, a comma list or a start:step:stop range, also
# with a leading minus: argparse must take "-5:5:5" or "-3,0,3" as a value
_NUMBERISH = re.compile(r"^-[\d.][\d.eE+\-,:\s]*$")


def parse_mcs(text: str):
    """``--mcs``: ``"auto"`` or a non-negative MCS index."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be 'auto' or an MCS index, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a non-negative MCS index, got {value}")
    return value


_mcs = parse_mcs  # the name generate.py imports


def parse_mcs_list(text: str) -> list:
    """``--mcs`` of ``distdiff link``: ``auto``, an index, a comma list, or
    an inclusive range ``start:stop`` / ``start:step:stop`` (``0:27``)."""
    out: list = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        if ":" in item:
            try:
                parts = [int(v) for v in item.split(":")]
            except ValueError:
                raise argparse.ArgumentTypeError(f"MCS range must be integers start:stop or start:step:stop, "
                                                 f"got {item!r}") from None
            if len(parts) not in (2, 3) or (len(parts) == 3 and parts[1] <= 0) or parts[-1] < parts[0]:
                raise argparse.ArgumentTypeError(f"MCS range must be start:stop or start:step:stop with "
                                                 f"start <= stop and step > 0, got {item!r}")
            step = parts[1] if len(parts) == 3 else 1
            out.extend(range(parts[0], parts[-1] + 1, step))
        else:
            out.append(parse_mcs(item))
    if not out:
        raise argparse.ArgumentTypeError("empty MCS list")
    return out


def _choice_list(choices: tuple):
    def parse(text: str) -> list:
        values = [v.strip() for v in text.split(",") if v.strip()]
        bad = [v for v in values if v not in choices]
        if bad or not values:
            raise argparse.ArgumentTypeError(
                f"invalid choice: {', '.join(map(repr, bad)) or repr(text)} (choose from {', '.join(choices)}; "
                f"a comma list sweeps several)"
            )
        return values

    return parse


#: fields of ``distdiff link`` that take a comma list (several configurations in one call)
LIST_FIELDS = ("modulation", "channel", "mcs")


def _count(text: str) -> int:
    """A whole number of bits or errors, also written as ``1e6`` or ``1_000_000``.

    >>> _count("1e6"), _count("1_000_000"), _count("250")
    (1000000, 1000000, 250)
    """
    try:
        value = int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not number.is_integer():
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        value = int(number)
    return value


def _int_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a comma list of integers, got {text!r}") from None


def link_option_fields() -> tuple[str, ...]:
    """The LinkConfig fields that become options (in the config's order)."""
    from phy.config import LinkConfig  # pylint: disable=import-outside-toplevel  (light: no torch)

    return tuple(f for f in LinkConfig.model_fields if f not in _NOT_OPTIONS)


#: option dest -> LinkConfig field, for the options passed to LinkConfig
#: unchanged (``generate`` reuses it)
_FIELDS = {f: f for f in link_option_fields() if f != "bit_error_rate"}


def add_link_config_arguments(
    parser: argparse.ArgumentParser, lists: tuple[str, ...] = ()
) -> dict[str, argparse._ArgumentGroup]:
    """Add one ``--field-name`` option per :class:`phy.LinkConfig` field to ``parser``.

    Help comes from the field's description in LinkConfig's docstring, the
    choices from its Literal type, the default (printed once) from the model;
    every option defaults to `None` (not given), so that LinkConfig applies its
    own defaults and validation.  The fields named in ``lists`` take comma
    lists (and ``--mcs`` ranges) and give lists.  Returns the argument groups
    by section.
    """
    from phy.config import FIELD_HELP, LinkConfig, field_choices  # pylint: disable=import-outside-toplevel

    groups: dict[str, argparse._ArgumentGroup] = {}
    for name in link_option_fields():
        info = LinkConfig.model_fields[name]
        section, text = FIELD_HELP.get(name, ("other", ""))
        group = groups.setdefault(section, parser.add_argument_group(section.lower()))
        kwargs: dict = {"default": None, "dest": name}
        choices = field_choices(name)
        default = info.default
        if name == "mcs" and name in lists:
            kwargs.update(type=parse_mcs_list, metavar="{auto,N,A:B}")
            text += " A comma list or a range A:B sweeps several."
        elif name in lists and choices is not None:
            kwargs.update(type=_choice_list(choices), metavar="{" + ",".join(map(str, choices)) + "}")
            text += " A comma list sweeps several."
        elif name == "mcs":
            kwargs.update(type=parse_mcs, metavar="{auto,N}")
        elif name == "bit_error_rate":
            kwargs.update(metavar="P")
            text += " A value, comma list or start:step:stop (swept; bsc only)."
        elif choices is not None:
            kwargs.update(type=type(choices[0]), choices=choices)
        elif isinstance(default, tuple):
            kwargs.update(type=_int_tuple, metavar="I,J,...")
            default = ",".join(str(v) for v in default)
        else:
            base = int if isinstance(default, int) and not isinstance(default, bool) else float
            if default is None:  # Optional[int] fields
                base = int
            kwargs.update(type=base, metavar=name.split("_")[-1].upper() if base is not int else "N")
        if default is not None and "default" not in text.lower():
            text += f" (default: {default})"
        kwargs["help"] = text.replace("%", "%%")
        group.add_argument("--" + name.replace("_", "-"), **kwargs)
    return groups


def link_config_fields(args: argparse.Namespace) -> dict:
    """The LinkConfig fields given on the command line (options left out are absent)."""
    return {f: getattr(args, f) for f in link_option_fields() if getattr(args, f, None) is not None}


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    # argparse takes only plain negative numbers ("-5") as values; let it take
    # ranges and lists too ("-5:5:5", "-3,0,3"); no option of this parser looks
    # like a negative number, so nothing is lost
    p._negative_number_matcher = _NUMBERISH  # pylint: disable=protected-access
    add_link_config_arguments(p, lists=LIST_FIELDS)
    g = p.add_argument_group("sweep and output")
    g.add_argument("--snr-db", default="0:2:10", metavar="LIST",
                   help="Es/N0 points [dB]: comma list or start:step:stop, inclusive; negative values as typed, "
                        "e.g. -5:5:5 or -3,0,3 (default: 0:2:10)")
    g.add_argument("--num-bits", type=_count, default=100_000, metavar="N",
                   help="information bits per point (default: 100000)")
    g.add_argument("--target-block-errors", type=_count, default=None, metavar="N",
                   help="stop each point after N block errors (like Sionna's sim_ber); --max-bits caps it")
    g.add_argument("--max-bits", type=_count, default=None, metavar="N",
                   help="bit budget per point with --target-block-errors (default: --num-bits)")
    g.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default: 0)")
    g.add_argument("--format", choices=["table", "json"], default="table",
                   help="table, or one JSON object per line (default: table)")
    g.add_argument("--output", default=None, metavar="FILE.csv", help="also write the rows to a CSV file")
    g.add_argument("--threads", type=int, default=1, metavar="N",
                   help="torch threads; 1 is fastest for this workload on a shared machine (default: 1)")
    g.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes, one torch thread each; the slowest points start first; the rows do "
                        "not depend on N (default: 1)")
    g.add_argument("--executor", default="process", metavar="NAME",
                   help="process (local worker processes, default), ray (a Ray cluster: --address, else "
                        "RAY_ADDRESS, else a local cluster; --workers is then the number of points in flight), "
                        "or a registered plug-in")
    g.add_argument("--address", default=None, metavar="ADDRESS",
                   help="Ray cluster address for --executor ray ('auto', 'ray://HOST:10001')")
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
            if key in ("ber", "bler", "bit_error_rate", "ber_low", "ber_high", "bler_low", "bler_high"):
                return f"{value:.3e}"
            return f"{value:.4g}" if key != "snr_db" else f"{value:g}"
        return value

    body = [[fmt(c, r[c]) for c in columns] for r in rows]
    return tabulate(body, headers=list(columns), tablefmt="simple", disable_numparse=True)


def check(args) -> None:
    """The checks that need no heavy import: ``--output`` can be written (before the simulation, not after)."""
    if args.output:
        check_output_file(args.output)


def run(args) -> int:
    check(args)
    import phy  # pylint: disable=import-outside-toplevel

    import torch  # pylint: disable=import-outside-toplevel

    if args.num_bits < 1:
        raise ValueError(f"--num-bits must be a positive integer, got {args.num_bits}")
    if args.threads < 1:
        raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    torch.set_num_threads(args.threads)
    base = link_config_fields(args)
    base.pop("bit_error_rate", None)
    listed = {f: base.pop(f) for f in LIST_FIELDS if f in base}
    combos = [dict(zip(listed, values)) for values in itertools.product(*listed.values())] or [{}]
    configs = []
    for combo in combos:
        fields = {**base, **combo}
        bsc = fields.get("channel") == "bsc"
        rates = None
        if args.bit_error_rate is not None:
            if not bsc:
                raise ValueError("--bit-error-rate only applies to --channel bsc")
            rates = phy.sweep.parse_float_list(args.bit_error_rate, "bit_error_rate")
            fields["bit_error_rate"] = rates[0]
        configs.append((phy.LinkConfig(**fields), rates))  # validate every configuration before simulating
    if args.workers < 1:
        raise ValueError(f"--workers must be a positive integer, got {args.workers}")
    executor = None
    if args.address and args.executor in ("process", "serial"):
        raise ValueError(f"--address applies to --executor ray, not {args.executor}")
    if args.executor == "serial":                 # everything in this process
        args.workers = 1
    elif args.executor != "process":
        from ..executors import check_executor, make_executor  # pylint: disable=import-outside-toplevel

        check_executor(args.executor)
        executor = make_executor(args.executor, workers=args.workers, max_retries=1,
                                 **({"address": args.address} if args.address else {}))
    phy.tune_malloc()
    sweeps = [(config, None if config.channel == "bsc" else phy.parse_snr_db_list(args.snr_db), rates)
              for config, rates in configs]
    try:
        rows = phy.sweep.sweep_links(sweeps, args.num_bits, seed=args.seed, progress=not args.no_progress,
                                     target_block_errors=args.target_block_errors, max_bits=args.max_bits,
                                     workers=args.workers, executor=executor)
    finally:
        if executor is not None:
            executor.close()
    columns = list(phy.SWEEP_COLUMNS)
    if args.format == "json":
        for r in rows:
            print(json.dumps({k: _clean(r[k]) for k in columns}))
    else:  # the table leaves out columns that are empty in every row
        shown = [c for c in columns if c != "config" and any(r[c] is not None and r[c] == r[c] for r in rows)]
        print(_format_table(rows, shown))
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            writer.writerows([{k: _clean(r[k]) for k in columns} for r in rows])
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    return 0
