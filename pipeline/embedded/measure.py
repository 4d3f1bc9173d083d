"""Measurements behind the pipeline package's documented figures (reproducible commands).

``python -m pipeline.embedded.measure timing``          time per denoising step and per image
``python -m pipeline.embedded.measure noise-matching``  analog link: resume at the nominal vs the noise-matched level
``python -m pipeline.embedded.measure grouping``        text-encoder similarity within / across object groups
``python -m pipeline.embedded.measure shared-steps``    receiver adherence vs shared steps and pair similarity

Every command takes ``--model`` (default: the shipped model; ``tiny-random`` for a
smoke run) and ``--threads`` (default 1) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

APPLE = "a red apple on a wooden table"
LEMON = "a yellow lemon on a wooden table"


def _pipe(model):
    from .model import RANDOM_MODELS, random_pipeline

    if model in RANDOM_MODELS:
        return random_pipeline(model)
    from ..loading import load_pipeline

    return load_pipeline(model)


def _table(rows: list[dict]) -> str:
    from tabulate import tabulate

    return tabulate([[f"{v:.4g}" if isinstance(v, float) else v for v in r.values()] for r in rows],
                    headers=list(rows[0]), tablefmt="github")


def timing(pipe, steps: int = 11, repeats: int = 3) -> list[dict]:
    """Wall-clock of the split loop (all steps + decode) and of diffusers' own pipeline call [s]."""
    from ..split import SplitDiffusion

    sd = SplitDiffusion(pipe)
    sd.generate(APPLE, steps, seed=0)  # warm-up
    rows = []
    for name, fn in (("SplitDiffusion.generate", lambda s: sd.generate(APPLE, steps, seed=s)),
                     ("StableDiffusionPipeline.__call__", lambda s: pipe(
                         APPLE, num_inference_steps=steps, generator=torch.Generator().manual_seed(s),
                         output_type="np"))):
        times = []
        for s in range(repeats):
            t0 = time.perf_counter()
            fn(s)
            times.append(time.perf_counter() - t0)
        t = float(np.median(times))
        rows.append({"loop": name, "steps": steps, "threads": torch.get_num_threads(), "image_s": t,
                     "step_s": t / steps})
    t0 = time.perf_counter()
    st = sd.shared(APPLE, steps, steps, seed=0)
    t_unet = time.perf_counter() - t0
    t0 = time.perf_counter()
    sd.decode(st.latents)
    rows.append({"loop": "breakdown: UNet steps / VAE decode", "steps": steps, "threads": torch.get_num_threads(),
                 "image_s": t_unet, "step_s": time.perf_counter() - t0})
    return rows


def noise_matching(pipe, snrs_db=(0.0, 5.0, 10.0, 20.0), seeds=range(6), steps: int = 11, shared: int = 5,
                   estimators=("unbiased", "mmse"), channel: str = "awgn") -> list[dict]:
    """Analog link, apple shares ``shared`` steps with lemon: quality of nominal vs matched resume."""
    from ..chain import ChainConfig, CollaborativeChain

    rows = []
    for est in estimators:
        for snr in snrs_db:
            cfg = ChainConfig(num_inference_steps=steps, num_shared_steps=shared, transmission="analog",
                              codec={"name": "analog", "estimator": est}, link={"channel": channel},
                              snr_db=snr, analog_noise_matching=True, header_over_link=False,
                              compare_alone=False, classify=False)
            recs = [CollaborativeChain(pipe, cfg).run(APPLE, [LEMON], seed=s)[0].to_row() for s in seeds]

            def mean(col):
                return float(np.mean([r[col] for r in recs]))

            rows.append({"estimator": est, "snr_db": snr, "latent_noise_var": mean("latent_noise_var"),
                         "nominal_sigma": mean("nominal_sigma"), "matched_sigma": mean("matched_sigma"),
                         "psnr_db_nominal": mean("psnr_db_nominal_resume"), "psnr_db_matched": mean("psnr_db"),
                         "ssim_nominal": mean("ssim_nominal_resume"), "ssim_matched": mean("ssim")})
    return rows


def grouping(pipe) -> list[dict]:
    """Text-encoder cosine similarity within / across object groups, and PromptGrouper purity.

    Prompts: every object x its first two colours x three tables. For the plain
    and the centred embedder: mean cosine of same-object, same-group and
    other-group pairs, the AUC (probability that a same-group pair of
    different objects is more similar than an other-group pair), and the
    purity of the grouper's clusters at a threshold midway between the means.
    """
    from ..grouping import PromptGrouper, TextEncoderEmbedder, cosine_similarity
    from .vocabulary import scene_reference_prompts
    from .scenes import OBJECT_COLOURS, OBJECT_GROUPS, TABLES, make_caption, object_in_prompt

    prompts = [make_caption(c, o, t) for o in OBJECT_GROUPS for c in OBJECT_COLOURS[o][:2] for t in list(TABLES)[:3]]
    objs = [object_in_prompt(p) for p in prompts]
    grp = [OBJECT_GROUPS[o] for o in objs]
    n, rows = len(prompts), []
    for emb in (TextEncoderEmbedder(pipe), TextEncoderEmbedder(pipe, center_on=scene_reference_prompts())):
        sims = cosine_similarity(emb(prompts), emb(prompts)).numpy()
        kinds = {"same_object": [], "same_group": [], "other_group": []}
        for i in range(n):
            for j in range(i):
                kinds["same_object" if objs[i] == objs[j] else "same_group" if grp[i] == grp[j]
                      else "other_group"].append(sims[i, j])
        a, b = np.array(kinds["same_group"]), np.array(kinds["other_group"])
        threshold = 0.5 * (a.mean() + b.mean())
        g = PromptGrouper(emb, threshold=float(threshold), max_group_size=n)
        g.add(prompts)
        groups = g.groups()
        purity = sum(max(sum(OBJECT_GROUPS[object_in_prompt(p)] == name for p in x.prompts) for name in set(grp))
                     for x in groups) / n
        rows.append({"embedder": emb.name, "cos_same_object": float(np.mean(kinds["same_object"])),
                     "cos_same_group": float(a.mean()), "cos_other_group": float(b.mean()),
                     "auc_group": float((a[:, None] > b[None, :]).mean()), "threshold": float(threshold),
                     "num_groups": len(groups), "purity": float(purity)})
    return rows


def shared_steps(pipe, seeds=range(4), steps: int = 11, ks=(0, 2, 4, 5, 6, 8, 10)) -> list[dict]:
    """What the receiver gets against the shared steps, per kind of (sender, receiver) pair.

    For each pair kind and ``k``: the vocabulary and text-encoder cosine
    similarity of the pair, the SSIM / PSNR of the receiver's image against
    the receiver generating alone (same seed, all steps), and the fraction
    the shipped classifier finds adherent to the receiver's prompt (when the
    classifier is available).
    """
    from ..grouping import TextEncoderEmbedder, cosine_similarity
    from .vocabulary import VocabularyEmbedder
    from ..metrics import image_metrics
    from ..split import SplitDiffusion

    try:
        from .classifier import load_classifier

        clf = load_classifier()
    except Exception:  # noqa: BLE001
        clf = None
    sd = SplitDiffusion(pipe)
    pairs = {"same object": ("a red apple on a wooden table", "a green apple on a blue table"),
             "same group": (APPLE, LEMON),
             "other group (animal)": (APPLE, "a brown bird on a wooden table"),
             "other group (vehicle)": (APPLE, "a blue bus on a wooden table")}
    text, vocab = TextEncoderEmbedder(pipe), VocabularyEmbedder()
    rows = []
    for kind, (sender, receiver) in pairs.items():
        sims = [float(cosine_similarity(e[:1], e[1:])[0, 0]) for e in (vocab([sender, receiver]),
                                                                       text([sender, receiver]))]
        alone = {s: sd.generate(receiver, steps, seed=s) for s in seeds}
        for k in ks:
            images = [sd.finish(sd.shared(sender, steps, k, seed=s), receiver) for s in seeds]
            m = [image_metrics(img, alone[s]) for img, s in zip(images, seeds)]
            row = {"pair": kind, "cos_vocabulary": sims[0], "cos_text_encoder": sims[1], "k": k,
                   "ssim_vs_alone": float(np.mean([x["ssim"] for x in m])),
                   "psnr_db_vs_alone": float(np.mean([min(x["psnr_db"], 99.0) for x in m]))}
            if clf is not None:
                row["adherence"] = float(np.mean(clf.adherence(np.stack(images), [receiver] * len(images))))
            rows.append(row)
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["timing", "noise-matching", "grouping", "shared-steps"])
    p.add_argument("--model", default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seeds", type=int, default=6)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pipe = _pipe(args.model)
    if args.what == "timing":
        rows = timing(pipe)
    elif args.what == "noise-matching":
        rows = noise_matching(pipe, seeds=range(args.seeds))
    elif args.what == "grouping":
        rows = grouping(pipe)
    else:
        rows = shared_steps(pipe, seeds=range(args.seeds))
    print(_table(rows))


if __name__ == "__main__":
    main()
