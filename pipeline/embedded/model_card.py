"""Measure the embedded model and write its model card (README.md in the model folder).

Measures, on this machine:

* prompt adherence at guidance 7.5 (the experiments' scale) and 4.0: the
  fraction of all generations (every object in each of its colours x seeds)
  that the shipped scene judge finds adherent (right object, right colour,
  not abstained), with 95% Wilson intervals, overall and per object;
* the judge's own accuracy and false-accept rate (from its card's record);
* time per denoising step and per image on the CPU;

and draws the sample grid (prompts x seeds). Run::

    python -m pipeline.embedded.model_card --model pipeline/models/distdiff-tiny-sd
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from .classifier import DEFAULT_CLASSIFIER_DIR, format_rate, generator_adherence, load_judge
from .scenes import OBJECT_COLOURS, OBJECT_GROUPS, OBJECTS, make_caption

DEFAULT_STEPS = 20
DEFAULT_GUIDANCE = 4.0


def generate(pipe, prompts: list[str], seeds: list[int], steps: int, guidance: float) -> np.ndarray:
    """uint8 [len(prompts) * len(seeds), H, W, 3]; seed-major order within each prompt."""
    out = []
    for prompt in prompts:
        generators = [torch.Generator().manual_seed(s) for s in seeds]
        images = pipe([prompt] * len(seeds), num_inference_steps=steps, guidance_scale=guidance,
                      generator=generators, output_type="np").images
        out.append((images * 255 + 0.5).astype(np.uint8))
    return np.concatenate(out)


def measure(pipe, judge, seeds: list[int], steps: int, guidance_scales=(7.5, 4.0)) -> list[dict]:
    """Adherence judged by the scene judge (right object and colour, not abstained) at each guidance scale.

    The headline is the fraction of all generations with its Wilson interval
    (:func:`pipeline.embedded.classifier.generator_adherence`), not a mean of per-object rates.
    """
    return [generator_adherence(pipe, judge, scale, seeds, steps) for scale in guidance_scales]


def timing(pipe, steps: int, guidance: float, repeats: int = 3) -> dict:
    prompt = "a red apple on a wooden table"
    pipe(prompt, num_inference_steps=2, guidance_scale=guidance, output_type="np")  # warm up
    t_image = []
    for r in range(repeats):
        t0 = time.perf_counter()
        pipe(prompt, num_inference_steps=steps, guidance_scale=guidance, output_type="np",
             generator=torch.Generator().manual_seed(r))
        t_image.append(time.perf_counter() - t0)
    latents = torch.randn(2, 4, pipe.unet.config.sample_size, pipe.unet.config.sample_size)
    cond = torch.randn(2, pipe.tokenizer.model_max_length, pipe.text_encoder.config.hidden_size)
    with torch.no_grad():
        pipe.unet(latents, 500, cond)
        t0 = time.perf_counter()
        for _ in range(20):
            pipe.unet(latents, 500, cond)
    t_step = (time.perf_counter() - t0) / 20
    return dict(seconds_per_image=float(np.median(t_image)), seconds_per_step_cfg=t_step,
                threads=torch.get_num_threads(), steps=steps)


def sample_grid(pipe, path: Path, seeds: list[int], steps: int, guidance: float) -> list[str]:
    from PIL import Image

    prompts = [make_caption(OBJECT_COLOURS[obj][0], obj, table) for obj, table in
               zip(OBJECTS, ["wooden", "white", "blue", "wooden", "white", "blue", "wooden", "white", "blue"])]
    images = generate(pipe, prompts, seeds, steps, guidance)
    h, w = images.shape[1:3]
    grid = images.reshape(len(prompts), len(seeds), h, w, 3).transpose(0, 2, 1, 3, 4).reshape(len(prompts) * h, len(seeds) * w, 3)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)
    return prompts


def write_card(folder: Path, result: dict) -> None:
    training = json.loads((folder / "training.json").read_text())
    m, t = result["measure"], result["timing"]
    judge_card = json.loads((DEFAULT_CLASSIFIER_DIR / "evaluation.json").read_text())
    sections = []
    for g in m:
        rows = "\n".join(f"| {obj} | {OBJECT_GROUPS[obj]} | {format_rate(g['per_object'][obj])} | "
                         + ", ".join(f"{k}: {v}" for k, v in sorted(g["seen"][obj].items(), key=lambda kv: -kv[1]))
                         + " |" for obj in OBJECTS)
        sections.append(f"""### Guidance scale {g['guidance_scale']}

**Adherence: {format_rate(g['adherence'])}** of all generations; judge abstained on {format_rate(g['abstained'])}.

| object | group | adherence | what the judge saw |
|---|---|---|---|
{rows}
""")
    adherence_text = "\n".join(sections)
    args = training["args"]
    text = f"""# distdiff-tiny-sd — the embedded default model of distdiff

A small text-to-image latent diffusion model in the exact diffusers Stable
Diffusion folder format (`StableDiffusionPipeline`: `AutoencoderKL`,
`UNet2DConditionModel` with cross-attention, `CLIPTextModel`, a word-level
tokenizer, `EulerAncestralDiscreteScheduler`), trained by `pipeline/embedded/training.py`
on procedurally drawn scenes (`pipeline/embedded/scenes.py`): one object (fruits: apple,
lemon, orange; animals: bird, cat, rabbit; vehicles: car, bus, boat) on a table
against a wall, 64x64 RGB, captions such as "a red apple on a wooden table".
Latents are 4x{training['config']['image_size'] // 4}x{training['config']['image_size'] // 4}.
Weights are stored in float32 (the exact upcast of the float16 weights the
training exported): `StableDiffusionPipeline.from_pretrained(folder)` loads and
generates with default arguments; pass `torch_dtype=torch.float16` on a GPU.
Prompt words outside the vocabulary (see Limitations) become `<unk>` (a warning names them).

## Training

* data: {args['num_scenes']} scenes of seed {args['seed']}
* VAE: {training['vae']['steps']} steps ({training['vae']['seconds'] / 60:.1f} min), batch {args['vae_batch_size']}, L1 + MSE + KL (weight {args['vae_kl_weight']})
* VAE decoder fine-tuning (encoder frozen, + image-gradient L1): {training['decoder']['steps']} steps ({training['decoder']['seconds'] / 60:.1f} min)
* text encoder + UNet: {training['unet']['steps']} steps ({training['unet']['seconds'] / 60:.1f} min), batch {args['batch_size']},
  lr {args['unet_lr']}, EMA {args['ema_decay']}, caption dropout {args['caption_dropout']} (classifier-free guidance)
* latent scaling factor: {training['scaling_factor']:.4f} (1 / std of the training latents)
* device: {training['device']}, torch {training['torch']}
* reproduce these weights (same step counts, CPU):

```
python -m pipeline.embedded.training --seed {args['seed']} --vae-steps {training['vae']['steps']} --unet-steps {training['unet']['steps']} \\
    --decoder-steps {training['decoder']['steps']} --vae-seconds 1e9 --unet-seconds 1e9 --decoder-seconds 1e9 \\
    --workdir checkpoints/train --out pipeline/models/distdiff-tiny-sd
```

Training stops on whichever comes first, a step count or a training-time budget
(defaults: 12 min VAE, 68 min UNet, 8 min decoder), and checkpoints every
minute: an interrupted run resumes where it stopped (`pipeline/embedded/training.py`).
These weights were trained on this 2-core CPU while other jobs shared it
(about 1.5 s per UNet step on average instead of 0.7 s alone), so the same
budget on an idle machine or a GPU gives more steps and a better model.

## Quality (measured by `python -m pipeline.embedded.model_card`)

Prompt adherence: the fraction of all generations ({m[0]['num_inference_steps']} steps, seeds {m[0]['seeds']},
every object in each of its colours, tables wooden/white/blue in turn) that the
project's scene judge (`pipeline/models/scene-classifier`) finds adherent: the
right object in the right colour, not abstained. Intervals are 95% Wilson
intervals. The judge's accuracy on fresh renderer scenes is
{format_rate(judge_card['scenes']['accuracy'])}; its false-accept rate on
out-of-distribution negatives is {format_rate(judge_card['scenes']['false_accept_all'])} (see its card).

{adherence_text}
Speed on this machine ({t['threads']} torch threads, CPU): {t['seconds_per_step_cfg'] * 1000:.1f} ms per UNet
evaluation with classifier-free guidance (batch 2), {t['seconds_per_image']:.2f} s per image at {t['steps']} steps.

## Samples ({t['steps']} steps, guidance {result['grid_guidance']}; rows: prompts, columns: seeds 0-5)

![samples](samples.png)

Rows: {'; '.join(result['grid_prompts'])}.

## Limits

A toy model for link-level experiments on a CPU: 64x64 images of a closed
vocabulary ({len(OBJECTS)} objects, a few colours and tables). Words outside the
vocabulary map to `<unk>`. For real images point the same code at
`CompVis/stable-diffusion-v1-4`.
"""
    (folder / "README.md").write_text(text)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=Path(__file__).resolve().parent.parent / "models" / "distdiff-tiny-sd")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE)
    p.add_argument("--seeds", type=int, default=12, help="seeds per (object, colour) for the adherence measurement")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--card-only", action="store_true", help="rewrite README.md from evaluation.json")
    args = p.parse_args(argv)
    if args.card_only:
        write_card(args.model, json.loads((args.model / "evaluation.json").read_text()))
        return
    torch.set_num_threads(args.threads)
    from ..loading import load_pipeline

    pipe = load_pipeline(args.model)
    pipe.set_progress_bar_config(disable=True)
    judge = load_judge()
    result = dict(measure=measure(pipe, judge, list(range(args.seeds)), args.steps),
                  timing=timing(pipe, args.steps, args.guidance), grid_guidance=args.guidance)
    result["grid_prompts"] = sample_grid(pipe, args.model / "samples.png", list(range(6)), args.steps, args.guidance)
    (args.model / "evaluation.json").write_text(json.dumps(result, indent=2))
    write_card(args.model, result)
    print(json.dumps({g["guidance_scale"]: g["adherence"] for g in result["measure"]}, indent=1))
    print(json.dumps(result["timing"]))


if __name__ == "__main__":
    main()
