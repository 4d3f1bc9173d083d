"""``distdiff train-jscc CONFIG``: train the learned latent JSCC codec through the simulated channel.

Builds (or reuses) the dataset of intermediate states of the diffusion model,
trains :class:`latent_codec.learned.LearnedCodec` through :class:`phy.SymbolLink`
with a progress bar, writes a checkpoint every ``checkpoint_seconds`` (rerun
the same command to resume bit-identically), evaluates the latent NMSE on
held-out prompts and seeds against the analog codec and the bounds of
:mod:`phy.jscc_bounds`, and exports the weights with a card (``README.md``,
``evaluation.json``) into the config's ``out`` folder. The YAML is
:class:`pipeline.embedded.jscc_training.JsccTrainingConfig` (a typo in a key
is a one-line error).

Example
-------
``distdiff train-jscc experiments/configs/training/train_jscc.yaml --device cuda``

``distdiff train-jscc --ablation benchmarks/results/jscc_ablation.md experiments/configs/training/ablation/{latent,denoiser,unrolled}.yaml``
compares trained arms at the receiver's image (:func:`pipeline.embedded.jscc_training.ablation`).

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers()
>>> _ = add_parser(sub)
>>> a = p.parse_args(["train-jscc", "c.yaml", "--steps", "10"])
>>> a.config, a.steps, a.threads
(['c.yaml'], 10, 1)
"""

from __future__ import annotations

import argparse

NAME = "train-jscc"
HELP = "train the learned latent JSCC codec (resumable) and export it with a card"


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``train-jscc`` on ``subparsers``; returns its parser."""
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("config", nargs="+", help="training YAML (experiments/configs/training/*.yaml); with "
                                             "--ablation one per arm")
    p.add_argument("--ablation", default=None, metavar="OUT.md",
                   help="instead of training: compare the arms' exported codecs at the receiver's image "
                        "(paired over held-out states) and write a table")
    p.add_argument("--ablation-states", type=int, default=32, help="held-out states per k for --ablation")
    p.add_argument("--ablation-conditions", default="awgn:0,awgn:10,awgn:20,rayleigh:10",
                   help="channel:snr_db,... evaluated by --ablation")
    p.add_argument("--steps", type=int, default=None, help="override the config's total optimiser steps")
    p.add_argument("--device", default=None, help="override the config's device (cpu, cuda)")
    p.add_argument("--time-limit-s", type=float, default=None,
                   help="stop this run after so many seconds (checkpointed; rerun to continue)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def run(args) -> int:
    """Train, evaluate and export; a bad config is a one-line ``ValueError``."""
    import sys

    import torch

    from pipeline.embedded import jscc_training as jt

    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    if args.ablation is not None:
        cfgs = [jt.load_config(c) for c in args.config]
        print(f"wrote {jt.ablation(cfgs, args.ablation, jt.parse_conditions(args.ablation_conditions), args.ablation_states)}")
        return 0
    if len(args.config) != 1:
        raise ValueError(f"train-jscc trains one config (several only with --ablation), got {len(args.config)}")
    cfg = jt.load_config(args.config[0])
    update = {k: v for k, v in (("steps", args.steps), ("device", args.device),
                                ("time_limit_s", args.time_limit_s)) if v is not None}
    if update:
        cfg = jt.load_config_dict({**cfg.model_dump(), **update})
    command = "distdiff train-jscc " + " ".join(sys.argv[2:] if len(sys.argv) > 2 else args.config)
    out = jt.run(cfg, command, progress=not args.no_progress)
    print(f"exported to {out}")
    return 0
