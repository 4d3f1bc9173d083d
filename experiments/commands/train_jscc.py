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
compares trained arms at the receiver's image (:func:`ablation`).

>>> import argparse
>>> p = argparse.ArgumentParser(); sub = p.add_subparsers()
>>> _ = add_parser(sub)
>>> a = p.parse_args(["train-jscc", "c.yaml", "--steps", "10"])
>>> a.config, a.steps, a.threads
(['c.yaml'], 10, 1)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Optional

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
        print(f"wrote {ablation(cfgs, args.ablation, jt.parse_conditions(args.ablation_conditions), args.ablation_states)}")
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


def ablation(cfgs: list, out: str, conditions: list[tuple[str, float]], per_step: int = 32,
             names: Optional[list[str]] = None, include_init: bool = True) -> Path:
    """Compare the exported codecs of ``cfgs`` (same ``rho``, same data) at the receiver's image; write ``out`` (.md).

    Every codec is evaluated by :func:`pipeline.embedded.jscc_training.evaluate_receiver` on the same states,
    channel noise and sampler noise; each is compared with the first (paired
    over the states: mean difference with its 95% t interval, Wilcoxon
    signed-rank p, :func:`experiments.stats.paired_test`). ``include_init``
    adds the first config's ``init`` codec (before fine-tuning) as a row.
    """
    import numpy as np

    from experiments.stats import PSNR_CAP_DB, mean_interval, paired_test
    from latent_codec.learned import LearnedCodec
    from pipeline.embedded.jscc_training import load_model, build_dataset, evaluate_receiver

    names = names or [Path(c.out).name.removesuffix("-out") for c in cfgs]
    sd = load_model(cfgs[0])
    data = build_dataset(cfgs[0], sd)
    codecs = [(n, LearnedCodec.from_pretrained(c.out, device=c.device).eval()) for n, c in zip(names, cfgs)]
    if include_init and cfgs[0].init:
        codecs.append((f"init ({cfgs[0].init})", LearnedCodec.from_pretrained(cfgs[0].init, device=cfgs[0].device).eval()))
    if len({c.bandwidth_ratio for _, c in codecs}) != 1:
        raise ValueError(f"ablation needs codecs of one bandwidth ratio, got {[c.bandwidth_ratio for _, c in codecs]}")
    reference, results = {}, {}
    began = time.monotonic()
    for name, codec in codecs:
        results[name] = evaluate_receiver(cfgs[0], codec, data, sd, conditions, per_step, reference)
        for key, value in results[name].items():  # identical images: the report's PSNR cap
            if key != "k":
                value["psnr_db"] = np.minimum(value["psnr_db"], PSNR_CAP_DB)
    info = []
    for name, c in zip(names, cfgs):
        ev = Path(c.out) / "evaluation.json"
        meta = json.loads(ev.read_text()) if ev.is_file() else {}
        info.append(f"| {name} | {c.loss.latent} | {c.loss.denoiser} ({c.loss.denoiser_samples or c.batch_size} "
                    f"samples) | {c.loss.unrolled} ({c.loss.unrolled_samples} samples, "
                    f"{c.loss.unrolled_steps or 'all'} steps) | {meta.get('trained_steps')} | "
                    f"{meta.get('train_seconds', float('nan')) / 60:.1f} |")
    base = names[0]
    n = len(results[base]["k"])
    lines = [f"# Learned JSCC objective ablation (rho = {codecs[0][1].bandwidth_ratio})", "",
             f"Receiver-side evaluation (`distdiff train-jscc --ablation`, {time.monotonic() - began:.0f} s): "
             f"n = {n} held-out states ({per_step} at each k in {sorted(set(results[base]['k'].tolist()))}; held-out "
             "prompts and seeds), each crossing the codec and the link, then the receiver's remaining Euler-ancestral "
             "steps under its own prompt (CFG "
             f"{cfgs[0].data.guidance_scale}) with the sampler noise fixed per state, from the received and from the "
             "sent latent; PSNR [dB] of the decoded receiver image against the image from the sent latent. Every "
             "codec sees the same states, channel noise and sampler noise: differences are paired over the states "
             "(mean with its 95% t interval; p: Wilcoxon signed-rank, `experiments.stats.paired_test`).", "",
             "## Arms", "", "| arm | latent [dB] weight | denoiser weight | unrolled weight | steps | training [min] |",
             "|---|---|---|---|---|---|", *info, "",
             f"## Results (difference: arm - {base})", "",
             "| channel | SNR [dB] | arm | n | image PSNR [dB] | diff PSNR [dB] | p | latent NMSE [dB] "
             "| diff latent NMSE [dB] | p | final-latent NMSE [dB] |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    pooled = list(conditions) + [("all", None)]
    for cond in pooled:
        for name, _ in codecs:
            def get(metric, who=name):
                if cond[0] == "all":
                    return np.concatenate([results[who][(c, float(s))][metric] for c, s in conditions])
                return results[who][(cond[0], float(cond[1]))][metric]
            cells = []
            for metric in ("psnr_db", "latent_nmse_db"):
                m, lo, hi, nn = mean_interval(get(metric))
                cells.append(f"{m:.2f} [{lo:.2f}, {hi:.2f}]")
                if name == base:
                    cells += ["-", "-"]
                else:
                    t = paired_test(get(metric), get(metric, base))
                    cells += [f"{t['diff']:+.2f} [{t['diff_low']:+.2f}, {t['diff_high']:+.2f}]", f"{t['p_value']:.2g}"]
            m, lo, hi, nn = mean_interval(get("final_nmse_db"))
            snr = "all" if cond[1] is None else f"{cond[1]:g}"
            lines.append(f"| {cond[0]} | {snr} | {name} | {nn} | " + " | ".join(cells) + f" | {m:.2f} [{lo:.2f}, {hi:.2f}] |")
    lines += ["", "Latent NMSE and final-latent NMSE are per state in dB (error over the held-out per-value variance "
              "at that k, resp. of the final latents), averaged in dB. 'all' pools the conditions above (n states "
              "x conditions pairs).", ""]
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
    return path
