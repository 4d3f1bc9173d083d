"""``distdiff generate``: one collaborative generation over a simulated link.

The sender runs ``--shared-steps`` of ``--steps`` denoising steps with
``--shared-prompt``, the state crosses the link (digital with any
code/modulation/channel/MCS, ``--analog``, or ``--lossless``), and the
receiver finishes with ``--prompt``. Writes into ``--out DIR``:
``receiver.png`` (the receiver's image), ``reference.png`` (the error-free
reference: the state arriving exactly as sent), ``alone.png`` (the receiver
generating alone), ``record.json`` (every metric, the resolved config and
the prompts), and prints a one-line summary.

Example
-------
``distdiff generate --prompt "a yellow lemon on a wooden table" --shared-prompt "a red apple on a wooden table"
--steps 11 --shared-steps 5 --seed 41 --channel tdl-c --speed-mps 30 --mcs auto --snr-db 12 --out out/``
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from .link import _FIELDS, _mcs

NAME = "generate"
HELP = "one collaborative generation: shared steps, the link, the receiver's own steps"


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("generation")
    g.add_argument("--prompt", required=True, help="the receiver's prompt")
    g.add_argument("--shared-prompt", default=None, help="the sender's prompt for the shared steps (default: --prompt)")
    g.add_argument("--steps", type=int, default=11, help="total denoising steps N")
    g.add_argument("--shared-steps", type=int, default=5, help="steps run by the sender, 0..N")
    g.add_argument("--seed", type=int, default=0, help="seed of the diffusion noise and of the channel")
    g.add_argument("--guidance-scale", type=float, default=7.5, help="classifier-free guidance weight")
    g.add_argument("--scheduler", default="euler_ancestral",
                   choices=["euler_ancestral", "euler", "ddim", "dpmsolver++", "dpmsolver++_sde", "pndm"])
    g.add_argument("--model", default=None,
                   help="diffusers folder or hub id (default: the shipped model; 'tiny-random' for smoke tests)")
    g.add_argument("--device", default="cpu", help="torch device")
    g.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    g = p.add_argument_group("latent codec")
    g.add_argument("--codec", choices=["uniform", "float16", "lloydmax"], default="uniform", help="digital codec")
    g.add_argument("--bits", type=int, default=None, help="quantiser bits per latent value (default: 8 / 4)")
    g.add_argument("--soft", action=argparse.BooleanOptionalAction, default=True,
                   help="soft decoding of the latents from LLRs (--no-soft: hard bits)")
    g.add_argument("--analog", action="store_true", help="analog transmission (latents as complex symbols)")
    g.add_argument("--noise-matching", action="store_true",
                   help="analog: resume at the noise level matching the channel noise (Euler schedulers)")
    g.add_argument("--lossless", action="store_true", help="no quantisation and no channel (the reference path)")
    g.add_argument("--header-error-free", action="store_true", help="do not send the codec header over the link")
    g = p.add_argument_group("link (as in distdiff link)")
    g.add_argument("--snr-db", type=float, default=10.0, help="Es/N0 per symbol [dB] (not used by bsc)")
    g.add_argument("--modulation", choices=["bpsk", "qpsk", "16qam", "64qam", "256qam"], default=None)
    g.add_argument("--code", choices=["none", "ldpc", "polar"], default=None)
    g.add_argument("--code-rate", type=float, default=None)
    g.add_argument("--block-length", type=int, default=None)
    g.add_argument("--mcs", type=_mcs, default=None, metavar="{auto,N}")
    g.add_argument("--mcs-table", type=int, choices=[1, 2, 3], default=None)
    g.add_argument("--target-bler", type=float, default=None)
    g.add_argument("--channel", choices=["bsc", "awgn", "rayleigh", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"],
                   default=None)
    g.add_argument("--bit-error-rate", type=float, default=None, help="BSC crossover probability")
    g.add_argument("--speed-mps", type=float, default=None)
    g.add_argument("--carrier-frequency-hz", type=float, default=None)
    g.add_argument("--delay-spread-s", type=float, default=None)
    g.add_argument("--coherence-symbols", type=int, default=None)
    g.add_argument("--csi", choices=["perfect", "ls"], default=None)
    g.add_argument("--demapping", choices=["app", "maxlog"], default=None)
    g.add_argument("--decoder", choices=["early-stop", "sionna"], default=None)
    g.add_argument("--decoder-iterations", type=int, default=None)
    g.add_argument("--bandwidth-hz", type=float, default=20e6, help="bandwidth for the airtime [Hz]")
    g = p.add_argument_group("output")
    g.add_argument("--out", default="out/generate", help="output directory")
    g.add_argument("--no-alone", action="store_true", help="skip the receiver's stand-alone generation")
    g.add_argument("--no-classify", action="store_true", help="skip the prompt-adherence classifier")
    return p


def chain_config_from_args(args) -> dict:
    """The :class:`pipeline.ChainConfig` dict these options describe."""
    link = {f: getattr(args, opt) for opt, f in _FIELDS.items() if getattr(args, opt, None) is not None}
    if args.bit_error_rate is not None:
        link["bit_error_rate"] = args.bit_error_rate
    if sum([args.analog, args.lossless]) > 1:
        raise ValueError("give at most one of --analog and --lossless")
    transmission = "analog" if args.analog else "lossless" if args.lossless else "digital"
    if args.analog:
        codec = {"name": "analog"}
        if args.bits is not None:
            raise ValueError("--bits does not apply to --analog")
    else:
        codec = {"name": args.codec}
        if args.bits is not None:
            if args.codec == "float16":
                raise ValueError("--bits does not apply to --codec float16")
            codec["bits"] = args.bits
    return {"num_inference_steps": args.steps, "num_shared_steps": args.shared_steps,
            "guidance_scale": args.guidance_scale, "scheduler": args.scheduler, "transmission": transmission,
            "codec": codec, "link": link,
            "snr_db": None if link.get("channel") == "bsc" and not args.analog else args.snr_db,
            "soft_decoding": args.soft, "analog_noise_matching": args.noise_matching,
            "header_over_link": not args.header_error_free, "bandwidth_hz": args.bandwidth_hz,
            "compare_alone": not args.no_alone, "classify": not args.no_classify}


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def run(args) -> int:
    import torch
    from PIL import Image

    from pipeline import ChainConfig, CollaborativeChain, load_pipeline

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    config = ChainConfig.model_validate(chain_config_from_args(args))
    from pipeline.embedded.model import RANDOM_MODELS, random_pipeline

    if args.model in RANDOM_MODELS:
        pipe = random_pipeline(args.model, seed=0, device=args.device)
    else:
        pipe = load_pipeline(args.model, device=args.device)
    shared_prompt = args.shared_prompt or args.prompt
    judge = None
    if config.classify:
        from pipeline.embedded.judging import default_judge

        judge = default_judge()
    record = CollaborativeChain(pipe, config, judge=judge).run(shared_prompt, [args.prompt], seed=args.seed)[0]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    Image.fromarray(record.image).save(out / "receiver.png")
    Image.fromarray(record.reference_image).save(out / "reference.png")
    if record.alone_image is not None:
        Image.fromarray(record.alone_image).save(out / "alone.png")
    row = record.to_row()
    doc = {"shared_prompt": shared_prompt, "prompt": args.prompt, "seed": args.seed,
           "model": args.model or "shipped", "metrics": {k: _json_value(v) for k, v in row.items()},
           "config": config.model_dump(mode="json")}
    (out / "record.json").write_text(json.dumps(doc, indent=2))
    parts = [f"psnr {row['psnr_db']:.2f} dB", f"ssim {row['ssim']:.4f}"]
    if config.transmission == "digital":
        parts.append(f"ber {row['ber']:.2e}")
    if row.get("header_corrupted"):
        parts.append("HEADER LOST: receiver generated alone")
    parts.append(f"{row['payload_bits']} bits in {row.get('channel_uses') or 0} channel uses")
    if row.get("airtime_s") is not None:
        parts.append(f"{row['airtime_s'] * 1e3:.3f} ms airtime")
    if row.get("mcs_index") is not None:
        parts.append(f"MCS {row['mcs_index']}")
    if row.get("adherent") is not None:
        parts.append(f"classified as {row['classified_as']} ({'adherent' if row['adherent'] else 'NOT adherent'})")
    parts.append(f"receiver saves {row['receiver_compute_saved_fraction']:.0%} of its UNet evaluations")
    print(f"{', '.join(parts)} -> {out / 'receiver.png'}")
    return 0
