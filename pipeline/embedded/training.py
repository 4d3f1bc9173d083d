"""Training of the embedded default model on procedural scenes (resumable).

Stages, each skipped when its output exists, each checkpointed while it runs:

1. ``data``    -- draw ``num_scenes`` scenes (:mod:`pipeline.embedded.scenes`) once, cache them.
2. ``vae``     -- train the ``AutoencoderKL`` (L1 + MSE + a small KL term).
3. ``latents`` -- encode the scenes once (posterior mean); set ``scaling_factor = 1/std``.
4. ``unet``    -- train the text encoder and the UNet together (epsilon prediction,
   Stable Diffusion's scaled-linear noise schedule, 10% caption dropout for
   classifier-free guidance, EMA of the weights).
5. ``decoder`` -- fine-tune the VAE decoder alone on the cached latents (the
   encoder, hence the latent space the UNet learns, stays fixed), with an extra
   image-gradient L1 term against blur. Independent of stage 4, so it may run
   in a second process at the same time (``--only-stage decoder``).
6. ``export``  -- write the diffusers folder (float32 safetensors) with the EMA weights.

Each training stage stops at ``*_steps`` or after ``*_seconds`` of training time,
whichever comes first (time spent before an interruption counts). Checkpoints
hold the models, optimisers, EMA, step, elapsed time and the generators' states,
so an interrupted run resumes where it stopped.

Run (about 90 minutes on a 2-core CPU; use ``--device cuda`` on a GPU)::

    python -m pipeline.embedded.training --workdir checkpoints/train --out pipeline/models/distdiff-tiny-sd
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .model import EmbeddedModelConfig, assemble_pipeline, build_components
from .scenes import SceneGenerator

CHECKPOINT_EVERY_S = 60.0


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def make_dataset(workdir: Path, num_scenes: int, seed: int, resolution: int) -> dict:
    path = workdir / "data.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    gen = SceneGenerator(seed=seed, resolution=resolution)
    images, captions, labels = [], [], []
    for start in tqdm(range(0, num_scenes, 1000), desc="drawing scenes"):
        im, cap, lab = gen.batch(start, min(1000, num_scenes - start))
        images.append(im), captions.extend(cap), labels.append(lab)
    data = dict(images=torch.from_numpy(np.concatenate(images)), captions=captions,
                labels=torch.from_numpy(np.concatenate(labels)), seed=seed)
    _save_atomic(data, path)
    return data


def _to_model_range(images_uint8: torch.Tensor, device) -> torch.Tensor:
    """uint8 [N,H,W,3] -> float [N,3,H,W] in [-1, 1]."""
    return images_uint8.to(device).permute(0, 3, 1, 2).float() / 127.5 - 1.0


class _Stage:
    """Checkpointed training loop state: modules, optimiser, step, elapsed seconds, generator."""

    def __init__(self, path: Path, modules: dict, optimizer, generator: torch.Generator, extra: dict | None = None):
        self.path, self.modules, self.optimizer, self.generator = path, modules, optimizer, generator
        self.extra = extra or {}
        self.step, self.elapsed_s = 0, 0.0
        if path.exists():
            state = torch.load(path, weights_only=True)
            for name, module in modules.items():
                module.load_state_dict(state["modules"][name])
            optimizer.load_state_dict(state["optimizer"])
            generator.set_state(state["generator"])
            self.step, self.elapsed_s = state["step"], state["elapsed_s"]
            self.extra.update(state.get("extra", {}))
            print(f"resumed {path.name} at step {self.step} ({self.elapsed_s / 60:.1f} min trained)")

    def save(self) -> None:
        _save_atomic(dict(modules={k: m.state_dict() for k, m in self.modules.items()},
                          optimizer=self.optimizer.state_dict(), generator=self.generator.get_state(),
                          step=self.step, elapsed_s=self.elapsed_s, extra=self.extra), self.path)

    def run(self, max_steps: int, max_seconds: float, step_fn, desc: str) -> None:
        """Step until ``max_steps`` or ``max_seconds`` of training time; then mark the stage done
        (``<checkpoint>.done``: steps and seconds trained)."""
        last_save = time.monotonic()
        bar = tqdm(total=max_steps, initial=self.step, desc=desc, mininterval=5)
        while self.step < max_steps and self.elapsed_s < max_seconds:
            t0 = time.monotonic()
            loss = step_fn(self.step)
            self.step += 1
            self.elapsed_s += time.monotonic() - t0
            bar.update(1)
            if self.step % 50 == 0:
                bar.set_postfix(loss=f"{loss:.4f}", min=f"{self.elapsed_s / 60:.1f}")
            if time.monotonic() - last_save > CHECKPOINT_EVERY_S:
                self.save()
                last_save = time.monotonic()
        bar.close()
        self.save()
        self.path.with_suffix(".done").write_text(json.dumps({"steps": self.step, "seconds": self.elapsed_s}))


def train_vae(vae, data, workdir: Path, args) -> None:
    device = args.device
    vae.to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed + 1)
    stage = _Stage(workdir / "vae.pt", {"vae": vae}, opt, gen)
    images = data["images"]

    def step_fn(step):
        idx = torch.randint(len(images), (args.vae_batch_size,), generator=gen)
        x = _to_model_range(images[idx], device)
        posterior = vae.encode(x).latent_dist
        z = posterior.mean + posterior.std * torch.randn(posterior.mean.shape, generator=gen).to(device)
        rec = vae.decode(z).sample
        kl = posterior.kl().mean() / x[0].numel()
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + args.vae_kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    stage.run(args.vae_steps, args.vae_seconds, step_fn, "vae")


@torch.no_grad()
def encode_latents(vae, data, workdir: Path, args) -> dict:
    path = workdir / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=True)
    vae.to(args.device).eval()
    out = []
    for start in tqdm(range(0, len(data["images"]), 256), desc="encoding latents"):
        x = _to_model_range(data["images"][start:start + 256], args.device)
        out.append(vae.encode(x).latent_dist.mean.cpu())
    latents = torch.cat(out)
    result = dict(latents=latents, scaling_factor=float(1.0 / latents.std()))
    _save_atomic(result, path)
    return result


def train_unet(components, data, latents, workdir: Path, args) -> tuple[dict, dict]:
    device = args.device
    unet, text_encoder, tokenizer = components["unet"], components["text_encoder"], components["tokenizer"]
    unet.to(device).train()
    text_encoder.to(device).train()
    ema_unet = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    ema_text = {k: v.detach().clone() for k, v in text_encoder.state_dict().items()}
    params = list(unet.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=args.unet_lr, weight_decay=1e-2)
    gen = torch.Generator().manual_seed(args.seed + 2)

    class _Ema(torch.nn.Module):  # holder so the EMA is checkpointed with the rest
        def state_dict(self, *a, **k):
            return {"unet": ema_unet, "text": ema_text}

        def load_state_dict(self, sd, *a, **k):
            ema_unet.update(sd["unet"]), ema_text.update(sd["text"])

    stage = _Stage(workdir / "unet.pt", {"unet": unet, "text_encoder": text_encoder, "ema": _Ema()}, opt, gen)
    z_all = latents["latents"] * latents["scaling_factor"]
    captions = data["captions"]
    scheduler = components["scheduler"]
    alphas_cumprod = scheduler.alphas_cumprod.to(device)
    tokens_all = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                           truncation=True, return_tensors="pt").input_ids
    empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                      return_tensors="pt").input_ids[0]

    def lr_at(step):
        warm = min(1.0, (step + 1) / args.warmup_steps)
        return args.unet_lr * warm

    def step_fn(step):
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        idx = torch.randint(len(z_all), (args.batch_size,), generator=gen)
        z0 = z_all[idx].to(device)
        tokens = tokens_all[idx].clone()
        drop = torch.rand(args.batch_size, generator=gen) < args.caption_dropout
        tokens[drop] = empty
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,), generator=gen).to(device)
        noise = torch.randn(z0.shape, generator=gen).to(device)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        cond = text_encoder(tokens.to(device))[0]
        pred = unet(zt, t, cond).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(args.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, model in ((ema_unet, unet), (ema_text, text_encoder)):
                for k, v in model.state_dict().items():
                    if v.dtype.is_floating_point:
                        ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                    else:
                        ema[k].copy_(v)
        return loss.item()

    stage.run(args.unet_steps, args.unet_seconds, step_fn, "unet+text")
    return ema_unet, ema_text


def _image_gradient_l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """L1 distance between the horizontal and vertical finite differences of two images."""
    dx = lambda t: t[..., :, 1:] - t[..., :, :-1]  # noqa: E731
    dy = lambda t: t[..., 1:, :] - t[..., :-1, :]  # noqa: E731
    return F.l1_loss(dx(a), dx(b)) + F.l1_loss(dy(a), dy(b))


def train_decoder(vae, data, latents, workdir: Path, args) -> None:
    """Fine-tune ``vae.decoder`` (and ``post_quant_conv``) on the cached posterior means."""
    device = args.device
    vae.to(device).train()
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    opt = torch.optim.AdamW(params, lr=args.decoder_lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(args.seed + 3)
    stage = _Stage(workdir / "decoder.pt", {"vae": vae}, opt, gen)
    images, z_all = data["images"], latents["latents"]
    z_std = float(z_all.std())

    def step_fn(step):
        idx = torch.randint(len(images), (args.vae_batch_size,), generator=gen)
        x = _to_model_range(images[idx], device)
        z = z_all[idx]
        z = z + 0.05 * z_std * torch.randn(z.shape, generator=gen)
        rec = vae.decode(z.to(device)).sample
        loss = F.l1_loss(rec, x) + F.mse_loss(rec, x) + _image_gradient_l1(rec, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    stage.run(args.decoder_steps, args.decoder_seconds, step_fn, "decoder")


def _portable_tokenizer_class(folder: Path) -> None:
    """Name the tokenizer ``PreTrainedTokenizerFast`` (transformers 4 and 5 both know it;
    transformers 5 writes its internal ``TokenizersBackend``, unknown to 4.x)."""
    index_path = folder / "model_index.json"
    index = json.loads(index_path.read_text())
    index["tokenizer"] = ["transformers", "PreTrainedTokenizerFast"]
    index_path.write_text(json.dumps(index, indent=2) + "\n")
    config_path = folder / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def export(components, ema_unet, ema_text, scaling_factor: float, out: Path, info: dict) -> None:
    components["unet"].load_state_dict(ema_unet)
    components["text_encoder"].load_state_dict(ema_text)
    components["vae"].register_to_config(scaling_factor=scaling_factor)
    pipe = assemble_pipeline(components)
    pipe.to("cpu", torch.float32)  # plain from_pretrained(folder) loads every component as float32
    out.mkdir(parents=True, exist_ok=True)
    pipe.save_pretrained(out, safe_serialization=True)
    _portable_tokenizer_class(out)
    (out / "training.json").write_text(json.dumps(info, indent=2))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", type=Path, default=Path("checkpoints/train"))
    p.add_argument("--out", type=Path, default=Path("pipeline/models/distdiff-tiny-sd"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--num-scenes", type=int, default=24000)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--vae-batch-size", type=int, default=16)
    p.add_argument("--vae-steps", type=int, default=100_000)
    p.add_argument("--vae-seconds", type=float, default=12 * 60)
    p.add_argument("--vae-lr", type=float, default=1e-3)
    p.add_argument("--vae-kl-weight", type=float, default=1e-4)
    p.add_argument("--decoder-steps", type=int, default=100_000)
    p.add_argument("--decoder-seconds", type=float, default=8 * 60)
    p.add_argument("--decoder-lr", type=float, default=5e-4)
    p.add_argument("--only-stage", choices=["decoder"], default=None,
                   help="run only this stage (its inputs must exist), e.g. in a second process")
    p.add_argument("--unet-steps", type=int, default=100_000)
    p.add_argument("--unet-seconds", type=float, default=68 * 60)
    p.add_argument("--unet-lr", type=float, default=6e-4)
    p.add_argument("--warmup-steps", type=int, default=200)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--caption-dropout", type=float, default=0.1)
    args = p.parse_args(argv)
    for name in ("num_scenes", "batch_size", "vae_batch_size", "vae_steps", "decoder_steps", "unet_steps", "warmup_steps", "threads"):
        if getattr(args, name) <= 0:
            p.error(f"--{name.replace('_', '-')} must be positive")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    config = EmbeddedModelConfig()
    t_start = time.time()
    data = make_dataset(args.workdir, args.num_scenes, args.seed, config.image_size)
    components = build_components(config, seed=args.seed)
    if not (args.workdir / "vae.done").exists():
        train_vae(components["vae"], data, args.workdir, args)
    else:
        components["vae"].load_state_dict(torch.load(args.workdir / "vae.pt", weights_only=True)["modules"]["vae"])
    latents = encode_latents(components["vae"], data, args.workdir, args)
    if args.only_stage == "decoder":
        train_decoder(components["vae"], data, latents, args.workdir, args)
        return
    ema_unet, ema_text = train_unet(components, data, latents, args.workdir, args)
    if not (args.workdir / "decoder.done").exists():
        train_decoder(components["vae"], data, latents, args.workdir, args)
    components["vae"].load_state_dict(
        torch.load(args.workdir / "decoder.pt", weights_only=True)["modules"]["vae"])
    done = {name: json.loads((args.workdir / f"{name}.done").read_text()) for name in ("vae", "unet", "decoder")}
    info = dict(config=config.to_dict(), args={k: str(v) for k, v in vars(args).items()}, **done,
                scaling_factor=latents["scaling_factor"], torch=torch.__version__,
                device=str(args.device), wall_clock_this_invocation_s=time.time() - t_start)
    export(components, ema_unet, ema_text, latents["scaling_factor"], args.out, info)  # export moves to CPU float32
    print(f"exported to {args.out} (unet steps {info['unet']['steps']}, vae steps {info['vae']['steps']})")


if __name__ == "__main__":
    main()
