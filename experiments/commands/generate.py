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

from pipeline.chain_rules import RULE_DEFAULTS, check_chain_rules

from ..cli_options import add_options, given_values, model_specs
from ..configtools import check_output_folder

NAME = "generate"
HELP = "one collaborative generation: shared steps, the link, the receiver's own steps"

#: the models whose fields become options, and which fields
CHAIN_MODEL, CODEC_MODEL, LINK_MODEL = "pipeline.chain:ChainConfig", "latent_codec.config:CodecConfig", \
    "phy.config:LinkConfig"
CHAIN_FIELDS = ["num_inference_steps", "num_shared_steps", "guidance_scale", "scheduler", "transmission",
                "soft_decoding", "analog_noise_matching", "header_over_link", "compare_alone", "classify",
                "bandwidth_ratio", "learned_model"]
CHAIN_LINK_FIELDS = ["snr_db", "bandwidth_hz"]
CODEC_FIELDS = ["name", "bits", "clip", "bit_order", "header_repetition", "compression_ratio"]
LINK_FIELDS = ["modulation", "code", "code_rate", "block_length", "mcs", "mcs_table", "target_bler", "channel",
               "bit_error_rate", "speed_mps", "carrier_frequency_hz", "delay_spread_s", "coherence_symbols", "csi",
               "demapping", "decoder", "decoder_iterations"]
#: command-line defaults that differ from the model's
SNR_DB_DEFAULT, BANDWIDTH_HZ_DEFAULT = 10.0, 20e6
SEED_MAX = 2**63 - 1


def describe_judgement(row: dict) -> str:
    """The judge's verdict on the receiver's image, as ``generate`` prints it.

    Example
    -------
    >>> describe_judgement(dict(classified_as="red apple", adherent=True, judge_abstained=False))
    'classified as red apple (adherent)'
    >>> describe_judgement(dict(classified_as=None, adherent=False, judge_abstained=True))
    'the judge abstained (NOT adherent)'
    """
    verdict = "adherent" if row["adherent"] else "NOT adherent"
    if row.get("judge_abstained") or row.get("classified_as") is None:
        return f"the judge abstained ({verdict})"
    return f"classified as {row['classified_as']} ({verdict})"


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be in 0..2**63-1, got {text}")
    return value


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


class _Transmission(argparse.Action):
    """``--analog`` / ``--lossless``: a shortcut for ``--transmission``; two different ones are an error."""

    def __call__(self, parser, namespace, values, option_string=None):
        current = getattr(namespace, self.dest, None)
        if current is not None and current != self.const:
            parser.error(f"argument {option_string}: contradicts transmission {current!r} given before")
        setattr(namespace, self.dest, self.const)


def _specs():
    return (model_specs(CHAIN_MODEL, CHAIN_FIELDS), model_specs(CHAIN_MODEL, CHAIN_LINK_FIELDS),
            model_specs(CODEC_MODEL, CODEC_FIELDS), model_specs(LINK_MODEL, LINK_FIELDS))


def add_parser(subparsers) -> argparse.ArgumentParser:
    chain, chain_link, codec, link = _specs()
    p = subparsers.add_parser(NAME, help=HELP, description=__doc__.split("\n\n")[0],
                              usage="distdiff generate --prompt TEXT [options]  (see --help)")
    g = p.add_argument_group("generation (pipeline.ChainConfig)")
    g.add_argument("--prompt", required=True, help="the receiver's prompt")
    g.add_argument("--shared-prompt", default=None, help="the sender's prompt for the shared steps (default: --prompt)")
    g.add_argument("--seed", type=_seed, default=0, help="seed of the diffusion noise and of the channel (default: 0)")
    g.add_argument("--model", default=None,
                   help="diffusers folder or hub id (default: the shipped model; 'tiny-random' for smoke tests)")
    g.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    g.add_argument("--threads", type=_threads, default=None, help="torch CPU threads (default: torch's)")
    add_options(g, chain, flags={"num_inference_steps": "--steps", "num_shared_steps": "--shared-steps",
                                 "soft_decoding": "--soft", "analog_noise_matching": "--noise-matching",
                                 "compare_alone": "--alone"},
                help={"num_inference_steps": "total denoising steps N",
                      "num_shared_steps": "steps run by the sender, 0..N"})
    g.add_argument("--analog", dest="transmission", action=_Transmission, const="analog", nargs=0,
                   help="short for --transmission analog (latents as complex symbols)")
    g.add_argument("--lossless", dest="transmission", action=_Transmission, const="lossless", nargs=0,
                   help="short for --transmission lossless (no quantisation and no channel: the reference path)")
    g.add_argument("--header-error-free", dest="header_over_link", action="store_false",
                   help="short for --no-header-over-link")
    g = p.add_argument_group("latent codec (latent_codec.CodecConfig)")
    add_options(g, codec, prefix="codec_", flags={"name": "--codec"},
                help={"name": "latent codec (default: uniform, or analog with --transmission analog)",
                      "bits": "quantiser bits per latent value (default: 8 uniform, 4 lloydmax)"})
    g = p.add_argument_group("link (phy.LinkConfig, as in distdiff link)")
    add_options(g, chain_link, defaults={"snr_db": SNR_DB_DEFAULT, "bandwidth_hz": BANDWIDTH_HZ_DEFAULT},
                help={"snr_db": "Es/N0 per complex symbol at the receiver [dB] (not used by bsc)",
                      "bandwidth_hz": "bandwidth for the airtime [Hz]"})
    add_options(g, link, prefix="link_")
    g = p.add_argument_group("output")
    g.add_argument("--out", default="out/generate", help="output directory (default: out/generate)")
    return p


def chain_config_from_args(args) -> dict:
    """The :class:`pipeline.ChainConfig` dict these options describe (checks what the models cannot see)."""
    chain, chain_link, codec_specs, link_specs = _specs()
    if not args.prompt.strip():
        raise ValueError("--prompt must not be empty")
    if args.shared_prompt is not None and not args.shared_prompt.strip():
        raise ValueError("--shared-prompt must not be empty (leave it out to use --prompt)")
    link = given_values(args, link_specs, "link_")
    codec = given_values(args, codec_specs, "codec_")
    config = given_values(args, chain)
    config.update(given_values(args, chain_link))
    if "bit_error_rate" in link and link.get("channel") != "bsc":
        raise ValueError("--bit-error-rate only applies to --channel bsc")
    transmission = config.get("transmission", "digital")
    if transmission == "analog":
        codec.setdefault("name", "analog")
        if "bits" in codec:
            raise ValueError("--bits does not apply to --analog")
    elif codec.get("name") == "float16" and "bits" in codec:
        raise ValueError("--bits does not apply to --codec float16")
    codec.setdefault("name", "uniform")
    if link.get("channel") == "bsc" and transmission != "analog":
        config["snr_db"] = None
    return {**config, "codec": codec, "link": link}


def _json_value(v):
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def check(args) -> None:
    """The checks that need no heavy import (the command line runs them before torch and Sionna)."""
    check_output_folder(args.out)
    check_rules(chain_config_from_args(args))


def check_rules(doc: dict) -> None:
    """ChainConfig's cross-field rules on a :func:`chain_config_from_args` dict, before torch is imported
    (the models' defaults come from the cached option specs; the message is ChainConfig's own)."""
    chain, chain_link, codec_specs, link_specs = _specs()
    defaults = {s.name: s.default for s in (*chain, *chain_link) if s.default is not None}
    values = {**defaults, **{k: v for k, v in doc.items() if k not in ("codec", "link")}}
    values.pop("snr_db", None)
    if "snr_db" in doc:
        values["snr_db"] = doc["snr_db"]
    values["codec_name"] = doc["codec"].get("name", "uniform")
    values["codec_decoding"] = doc["codec"].get("decoding")
    values["channel"] = doc["link"].get("channel", next((s.default for s in link_specs if s.name == "channel"), "awgn"))
    try:
        check_chain_rules({k: values[k] for k in RULE_DEFAULTS if k in values})
    except ValueError as exc:
        raise ValueError(f"ChainConfig: {exc}") from None


def run(args) -> int:
    check(args)
    doc = chain_config_from_args(args)
    from pipeline import ChainConfig  # pylint: disable=import-outside-toplevel  (torch, Sionna)

    config = ChainConfig.model_validate(doc)
    import torch  # pylint: disable=import-outside-toplevel

    try:
        device = torch.device(args.device)
    except RuntimeError as exc:
        raise ValueError(f"--device {args.device!r}: {str(exc).splitlines()[0]}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {args.device}: CUDA is not available on this machine (use --device cpu)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {args.device}: MPS is not available on this machine (use --device cpu)")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    from PIL import Image  # pylint: disable=import-outside-toplevel

    from pipeline import CollaborativeChain, load_pipeline  # pylint: disable=import-outside-toplevel
    from pipeline.embedded.model import RANDOM_MODELS, random_pipeline  # pylint: disable=import-outside-toplevel

    if args.model in RANDOM_MODELS:
        pipe = random_pipeline(args.model, seed=0, device=str(device))
    else:
        pipe = load_pipeline(args.model, device=str(device))
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
        parts.append(describe_judgement(row))
    parts.append(f"receiver saves {row['receiver_compute_saved_fraction']:.0%} of its UNet evaluations")
    print(f"{', '.join(parts)} -> {out / 'receiver.png'}")
    return 0
