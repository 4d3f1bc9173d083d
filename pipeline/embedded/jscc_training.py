"""Training the learned latent JSCC codec through the simulated channel: ``python -m pipeline.embedded.jscc_training CONFIG.yaml``.

Steps (each resumable, everything random from seeds in the config):

1. **Dataset** -- intermediate states of the diffusion model (the shipped one
   by default): prompts across the scene vocabulary (every ``heldout_every``-th
   prompt held out), training and held-out seeds, the latents after each
   ``k`` in ``shared_steps`` with their noise level ``sigma_k``, and for each a
   *receiver prompt* (another prompt of the same object group). Cached in
   ``workdir/dataset.pt``.
2. **Training** -- per batch a channel (``channels``), a UT speed
   (``speeds_mps``) and an SNR (uniform in ``snr_db_range``) are drawn; the
   codec's symbols cross :class:`phy.SymbolLink` (differentiable: AWGN,
   Rayleigh block fading, TDL over OFDM with LS estimation and LMMSE
   equalisation) and are decoded with the link's per-symbol noise variance.
   Loss: ``loss.latent * latent NMSE + loss.denoiser * x0-MSE + loss.unrolled
   * final-latent MSE`` (the latent error of each state over the per-value
   variance of the training states at its step), where the x0-MSE is the
   distance between the receiver's UNet x0-prediction (with classifier-free
   guidance, under the receiver's prompt) from the received and from the sent
   latent, and the final-latent MSE the distance between the receiver's final
   latents after all its remaining steps (sampler noise shared, gradients
   through the UNet and the scheduler, checkpointed); both on a subsample of
   the batch (see :class:`LossSection`). ``init`` fine-tunes a shipped codec. A checkpoint (weights, optimiser, generator,
   step) is written every ``checkpoint_seconds``; rerunning resumes from it
   bit-identically.
3. **Export** -- the weights (:meth:`LearnedCodec.save_pretrained`), an
   ``evaluation.json`` and a card ``README.md``: latent NMSE on the held-out
   states, per SNR, against the analog codec at the same ``rho`` and the
   bounds of :mod:`phy.jscc_bounds`, with n and 95% intervals.

Example
-------
>>> cfg = JsccTrainingConfig.model_validate({"model": "tiny", "workdir": "/tmp/x", "out": "/tmp/y"})
>>> cfg.codec.bandwidth_ratio, cfg.loss.latent, cfg.channels
(0.125, 1.0, ['awgn'])
>>> try:
...     load_config_dict({"model": "tiny", "workdir": "w", "out": "o", "stepz": 3})
... except ValueError as err:
...     print(err)
JsccTrainingConfig: unknown parameter 'stepz'
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Literal, Optional

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from latent_codec.learned import LearnedCodec, LearnedCodecConfig

__all__ = ["JsccTrainingConfig", "load_config", "load_config_dict", "load_model", "build_dataset", "heldout_states", "train", "evaluate",
           "evaluate_receiver", "parse_conditions", "export", "run", "main"]

CHECKPOINT = "checkpoint.pt"
DATASET = "dataset.pt"


class CodecSection(BaseModel):
    """Architecture of the codec (latent shape comes from the model)."""

    model_config = ConfigDict(extra="forbid")
    bandwidth_ratio: float = Field(0.125, gt=0.0, le=2.0)
    width: int = Field(64, ge=4)
    depth: int = Field(2, ge=1, le=16)
    cond_dim: int = Field(64, ge=4)


class DataSection(BaseModel):
    """Which intermediate states form the dataset."""

    model_config = ConfigDict(extra="forbid")
    num_inference_steps: int = Field(20, ge=1)
    shared_steps: list[int] = Field(default_factory=lambda: [4, 8, 12], min_length=1)
    train_seeds: int = Field(4, ge=1, description="seeds per training prompt")
    heldout_seeds: int = Field(2, ge=1, description="seeds per held-out prompt (disjoint from the training seeds)")
    heldout_every: int = Field(5, ge=2, description="every n-th prompt of the vocabulary is held out")
    max_prompts: Optional[int] = Field(None, ge=2)
    guidance_scale: float = Field(7.5, ge=0.0)
    batch_size: int = Field(32, ge=1, description="samples per shared() call when building the dataset")
    renoise: bool = Field(True, description="train on x0_k + sigma_k * fresh eps per batch (x0_k: the sender's "
                                            "guided x0-prediction at the state) instead of the stored states")
    flips: bool = Field(True, description="random horizontal/vertical flips of x0_k per training sample")


class LossSection(BaseModel):
    """Weights of the objectives, and how the receiver-side ones are subsampled to stay affordable.

    * ``latent``: latent NMSE (every sample of the batch).
    * ``denoiser``: the receiver's guided x0-prediction (one CFG UNet
      evaluation) from the received against from the sent latent, on the
      first ``denoiser_samples`` samples of the (random) batch.
    * ``unrolled``: the receiver's *final* latent after its remaining
      Euler-ancestral steps (its own prompt, CFG, the sampler noise drawn
      once per sample and shared by both branches), from the received against
      from the sent latent, differentiated through the UNet and the scheduler
      with gradient checkpointing, on the first ``unrolled_samples`` samples;
      ``unrolled_steps`` truncates the unroll to that many steps followed by
      the x0-prediction at the state reached (None: all remaining steps).
    """

    model_config = ConfigDict(extra="forbid")
    latent: float = Field(1.0, ge=0.0)
    denoiser: float = Field(0.0, ge=0.0)
    unrolled: float = Field(0.0, ge=0.0)
    latent_db: bool = Field(False, description="the latent term as the batch NMSE in dB: every SNR of the "
                                                "range weighs alike (in linear NMSE the low SNRs dominate)")
    receiver_db: bool = Field(False, description="the denoiser and unrolled terms as their batch MSE in dB")
    denoiser_samples: Optional[int] = Field(None, ge=1, description="samples of the batch in the denoiser term "
                                                                   "(None: all)")
    unrolled_samples: int = Field(2, ge=1, description="samples of the batch in the unrolled term")
    unrolled_steps: Optional[int] = Field(None, ge=1, description="receiver steps unrolled (None: all remaining)")


class JsccTrainingConfig(BaseModel):
    """The YAML configuration of a training run (``extra="forbid"``)."""

    model_config = ConfigDict(extra="forbid")
    model: Optional[str] = Field(None, description="None: the shipped model; 'tiny': a random tiny model (tests); "
                                                   "else a diffusers folder")
    workdir: str
    out: str
    init: Optional[str] = Field(None, description="a LearnedCodec folder to start from (fine-tuning); None: the "
                                                  "codec's own initialisation")
    init_config: Optional[str] = Field(None, description="the training config whose 'out' is init: run first when "
                                                         "init holds no codec yet (one command reproduces both phases)")
    seed: int = 0
    device: str = "cpu"
    codec: CodecSection = Field(default_factory=CodecSection)
    data: DataSection = Field(default_factory=DataSection)
    loss: LossSection = Field(default_factory=LossSection)
    channels: list[Literal["awgn", "rayleigh", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"]] = \
        Field(default_factory=lambda: ["awgn"], min_length=1)
    speeds_mps: list[float] = Field(default_factory=lambda: [0.0], min_length=1)
    csi: Literal["perfect", "ls"] = "ls"
    snr_db_range: tuple[float, float] = (-5.0, 25.0)
    steps: int = Field(2000, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.0, ge=0.0, description="AdamW decoupled weight decay")
    lr_schedule: Literal["constant", "cosine"] = Field("constant", description="cosine: from lr down to lr/20 "
                                                                                "at `steps`")
    dataset: Optional[str] = Field(None, description="dataset cache file (default workdir/dataset.pt); "
                                                     "runs with the same model and data section may share it")
    checkpoint_seconds: float = Field(60.0, ge=0.0)
    time_limit_s: Optional[float] = Field(None, gt=0.0, description="stop this run after so many seconds "
                                                                      "(checkpointed; rerun to continue)")
    eval_snr_db: list[float] = Field(default_factory=lambda: [-5.0, 0.0, 5.0, 10.0, 15.0, 20.0], min_length=1)
    eval_channel_seed: int = 12345
    max_eval_states: int = Field(256, ge=2)

    @model_validator(mode="after")
    def _check(self):
        lo, hi = self.snr_db_range
        if not lo <= hi:
            raise ValueError(f"snr_db_range must be [low, high] with low <= high, got {list(self.snr_db_range)}")
        if any(s < 0 for s in self.speeds_mps):
            raise ValueError(f"speeds_mps must be >= 0 [m/s], got {self.speeds_mps}")
        if self.loss.latent == 0 and self.loss.denoiser == 0 and self.loss.unrolled == 0:
            raise ValueError("loss: at least one of latent, denoiser, unrolled must be > 0")
        if any(k < 0 or k >= self.data.num_inference_steps for k in self.data.shared_steps):
            raise ValueError(f"data.shared_steps must lie in [0, num_inference_steps={self.data.num_inference_steps}),"
                             f" got {self.data.shared_steps}")
        return self

    def digest(self) -> str:
        """Hash of everything that changes the training trajectory (not steps, out, eval)."""
        keep = self.model_dump(exclude={"steps", "out", "checkpoint_seconds", "time_limit_s", "eval_snr_db", "eval_channel_seed",
                                        "max_eval_states", "workdir", "device", "dataset"})
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]


def _format_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"JsccTrainingConfig: unknown parameter {loc!r}"
    msg = err["msg"].removeprefix("Value error, ")
    return f"JsccTrainingConfig.{loc}: {msg} (got {err.get('input')!r})" if loc else f"JsccTrainingConfig: {msg}"


def load_config_dict(data: dict) -> JsccTrainingConfig:
    """Validate a dict; a bad one raises a one-line ``ValueError``."""
    try:
        return JsccTrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_format_error(exc)) from None


def load_config(path) -> JsccTrainingConfig:
    """Read and validate a YAML config file."""
    import yaml

    p = Path(path)
    if not p.is_file():
        raise ValueError(f"config file {p} does not exist")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {p} must hold a mapping")
    return load_config_dict(data)


# ---------------------------------------------------------------------------- model
def load_model(cfg: JsccTrainingConfig):
    """The frozen diffusion model of a run as a :class:`pipeline.split.SplitDiffusion` (``cfg.model``: None, "tiny", a folder)."""
    from pipeline.split import SplitDiffusion

    if cfg.model == "tiny":
        from pipeline.embedded.model import EmbeddedModelConfig, build_pipeline

        torch.manual_seed(0)
        pipe = build_pipeline(EmbeddedModelConfig.tiny())
    else:
        from pipeline.loading import load_pipeline

        pipe = load_pipeline() if cfg.model is None else load_pipeline(cfg.model)
    for module in (pipe.unet, pipe.vae, pipe.text_encoder):
        module.requires_grad_(False)
        module.eval()
    return SplitDiffusion(pipe)


def _prompts(max_prompts: Optional[int]) -> list[tuple[str, str]]:
    """(prompt, object) over the vocabulary: every colour of every object on every table."""
    from pipeline.embedded.scenes import OBJECT_COLOURS, TABLES, make_caption

    out = [(make_caption(colour, obj, table), obj) for obj, colours in OBJECT_COLOURS.items()
           for colour in colours for table in TABLES]
    if max_prompts is not None and len(out) > max_prompts:
        idx = np.linspace(0, len(out) - 1, max_prompts).round().astype(int)
        out = [out[i] for i in idx]
    return out


def _jobs(cfg: JsccTrainingConfig, prompts: list[tuple[str, str]], held: bool) -> list[tuple[str, str, int]]:
    """(prompt, object, seed) of a split: every ``heldout_every``-th prompt and seeds from 1e6 are held out."""
    dc = cfg.data
    chosen = [(p, o) for i, (p, o) in enumerate(prompts) if (i % dc.heldout_every == 0) == held]
    base = 0 if not held else 1_000_000
    nseeds = dc.heldout_seeds if held else dc.train_seeds
    return [(p, o, base + 1000 * cfg.seed + s) for p, o in chosen for s in range(nseeds)]


def heldout_states(cfg: JsccTrainingConfig, sd, k: int) -> dict:
    """The held-out split's states at step ``k`` alone (as :func:`build_dataset` makes them, in its order).

    A few seconds instead of the whole dataset: enough to reproduce a card's
    figures at one ``k`` (:func:`evaluate` reads only ``latents``, ``sigma``, ``step``).
    """
    from pipeline.split import make_scheduler

    dc = cfg.data
    sched = make_scheduler("euler_ancestral", sd.pipe.scheduler.config)
    sched.set_timesteps(dc.num_inference_steps)
    jobs = _jobs(cfg, _prompts(dc.max_prompts), True)
    lat = [sd.shared([j[0] for j in jobs[a:a + dc.batch_size]], dc.num_inference_steps, k,
                     seed=[j[2] for j in jobs[a:a + dc.batch_size]], guidance_scale=dc.guidance_scale).latents.float()
           for a in range(0, len(jobs), dc.batch_size)]
    n = len(jobs)
    return {"heldout": {"latents": torch.cat(lat), "sigma": torch.full((n,), float(sched.sigmas[k])),
                        "step": torch.full((n,), k), "sender": [j[0] for j in jobs]}}


def build_dataset(cfg: JsccTrainingConfig, sd=None) -> dict:
    """Intermediate states ``{split: {latents [n,C,H,W], sigma [n], step [n], sender, receiver}}`` (cached)."""
    path = Path(cfg.dataset) if cfg.dataset else Path(cfg.workdir) / DATASET
    digest = hashlib.sha256(json.dumps([cfg.model, cfg.data.model_dump(exclude={"flips"}),
                                        cfg.seed]).encode()).hexdigest()[:16]
    if path.is_file():
        data = torch.load(path, weights_only=False)
        if data.get("digest") == digest:
            return data
    sd = sd or load_model(cfg)
    from pipeline.embedded.scenes import OBJECT_GROUPS
    from pipeline.split import make_scheduler

    dc = cfg.data
    prompts = _prompts(dc.max_prompts)
    sched = make_scheduler("euler_ancestral", sd.pipe.scheduler.config)
    sched.set_timesteps(dc.num_inference_steps)
    sigmas = [float(s) for s in sched.sigmas]
    rng = np.random.default_rng([cfg.seed, 1])
    by_group: dict[str, list[str]] = {}
    for p, obj in prompts:
        by_group.setdefault(OBJECT_GROUPS[obj], []).append(p)
    data = {"digest": digest, "sigmas": sigmas, "timesteps": [float(t) for t in sched.timesteps]}
    denoiser = _Denoiser(sd, data, dc.guidance_scale) if dc.renoise else None
    ks = sorted(set(dc.shared_steps))
    for split in ("train", "heldout"):
        jobs = _jobs(cfg, prompts, split == "heldout")
        lat, x0s, sig, step, send, recv = [], [], [], [], [], []
        for start in range(0, len(jobs), dc.batch_size):
            part = jobs[start:start + dc.batch_size]
            state = sd.shared([j[0] for j in part], dc.num_inference_steps, ks[0], seed=[j[2] for j in part],
                              guidance_scale=dc.guidance_scale)
            receivers = []
            for p, o, _ in part:
                group = [q for q in by_group[OBJECT_GROUPS[o]] if q != p] or [p]
                receivers.append(group[int(rng.integers(len(group)))])
            for k in ks:
                if k > state.step:
                    state = sd.resume(state, until=k)
                lat.append(state.latents.float().cpu())
                if denoiser is not None:  # the signal part of the state: its guided x0-prediction
                    with torch.no_grad():
                        x0s.append(denoiser.x0(state.latents.float(), torch.full((len(part),), k),
                                               torch.full((len(part),), sigmas[k]), [j[0] for j in part]).cpu())
                sig += [sigmas[k]] * len(part)
                step += [k] * len(part)
                send += [j[0] for j in part]
                recv += receivers
        data[split] = {"latents": torch.cat(lat), "sigma": torch.tensor(sig), "step": torch.tensor(step),
                       "sender": send, "receiver": recv}
        if x0s:
            data[split]["x0"] = torch.cat(x0s)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)
    return data


# ---------------------------------------------------------------------------- training
class _Channels:
    """Lazily built :class:`phy.SymbolLink` per (channel, speed)."""

    def __init__(self, csi: str, device):
        self.csi, self.device, self.links = csi, device, {}

    def __call__(self, channel: str, speed_mps: float):
        from phy import LinkConfig, SymbolLink

        key = (channel, float(speed_mps))
        if key not in self.links:
            kw = {"csi": self.csi} if channel != "awgn" else {}
            if channel.startswith("tdl"):
                kw["speed_mps"] = float(speed_mps)
            self.links[key] = SymbolLink(LinkConfig(channel=channel, **kw), device=self.device)
        return self.links[key]


class _Denoiser:
    """The receiver's guided noise and x0-predictions, and its remaining Euler-ancestral steps (differentiable).

    The arithmetic is that of :class:`SplitDiffusion` with diffusers'
    ``EulerAncestralDiscreteScheduler`` (epsilon prediction): model input
    ``x / sqrt(sigma^2 + 1)``, guided ``eps = eps_u + g (eps_c - eps_u)``,
    ``x0 = x - sigma eps``, and the step
    ``x' = x + eps (sigma_down - sigma) + sigma_up z`` with
    ``sigma_up = sigma_to sqrt(sigma^2 - sigma_to^2) / sigma`` and
    ``sigma_down = sqrt(sigma_to^2 - sigma_up^2)``; the noise ``z`` is given,
    so two unrolls from different latents see the same sampler noise.
    """

    def __init__(self, sd, data: dict, guidance_scale: float):
        self.sd, self.g = sd, guidance_scale
        self.timesteps = data["timesteps"]
        self.sigmas = data["sigmas"]
        self.sigma_index = {round(s, 6): i for i, s in enumerate(data["sigmas"])}

    def _eps(self, latents: torch.Tensor, t: torch.Tensor, s: torch.Tensor, cond, uncond) -> torch.Tensor:
        sd = self.sd
        model_in = (latents / torch.sqrt(s ** 2 + 1)).to(sd.dtype)
        if sd.uses_cfg(self.g):
            eps = sd.pipe.unet(torch.cat([model_in] * 2), torch.cat([t, t]),
                               encoder_hidden_states=torch.cat([uncond, cond]), return_dict=False)[0]
            eu, ec = eps.float().chunk(2)
            return eu + self.g * (ec - eu)
        return sd.pipe.unet(model_in, t, encoder_hidden_states=cond, return_dict=False)[0].float()

    def x0(self, latents: torch.Tensor, step: torch.Tensor, sigma: torch.Tensor, prompts: list[str]) -> torch.Tensor:
        """Guided x0-prediction ``[B, C, h, w]`` of states at steps ``step`` ``[B]`` (noise levels ``sigma``)."""
        cond, uncond = self.sd.encode(prompts)
        t = torch.tensor([self.timesteps[int(k)] for k in step], device=latents.device)
        s = sigma.to(latents)[:, None, None, None]
        return latents - s * self._eps(latents, t, s, cond, uncond)

    def _step(self, latents: torch.Tensor, noise: torch.Tensor, i: int, cond, uncond) -> torch.Tensor:
        s, s_to = float(self.sigmas[i]), float(self.sigmas[i + 1])
        t = torch.full((latents.shape[0],), float(self.timesteps[i]), device=latents.device)
        eps = self._eps(latents, t, torch.tensor(s, device=latents.device), cond, uncond)
        s_up = math.sqrt(s_to ** 2 * (s ** 2 - s_to ** 2) / s ** 2)
        s_down = math.sqrt(max(s_to ** 2 - s_up ** 2, 0.0))
        return latents + eps * (s_down - s) + noise * s_up

    def unroll(self, latents: torch.Tensor, k: int, prompts: list[str], noise: torch.Tensor,
               max_steps: Optional[int] = None, checkpoint: bool = True) -> torch.Tensor:
        """The receiver's final latent ``[B, C, h, w]`` from states at step ``k``.

        ``noise`` ``[B, N - k, C, h, w]``: the sampler noise of each remaining
        step. ``max_steps``: stop after so many steps and return the
        x0-prediction there. With ``checkpoint`` (and a latent that needs a
        gradient) each step's activations are recomputed in the backward pass
        (:func:`torch.utils.checkpoint.checkpoint`): memory of one step.
        """
        from torch.utils.checkpoint import checkpoint as ckpt

        n = len(self.timesteps)
        stop = n if max_steps is None else min(n, int(k) + max_steps)
        cond, uncond = self.sd.encode(prompts)
        x = latents.float()
        for i in range(int(k), stop):
            z = noise[:, i - int(k)].to(x)
            if checkpoint and x.requires_grad:
                x = ckpt(self._step, x, z, i, cond, uncond, use_reentrant=False)
            else:
                x = self._step(x, z, i, cond, uncond)
        if stop < n:
            s = torch.full((x.shape[0],), float(self.sigmas[stop]), device=x.device)
            x = self.x0(x, torch.full((x.shape[0],), stop), s, prompts)
        return x


def _transmit(codec, links, x, sigma, snr_db: float, channel: str, speed: float, gen):
    """Encode, cross the symbol link, decode; returns the received latents (differentiable)."""
    s = codec.encode(x, snr_db, sigma)
    out = links(channel, speed)(s, snr_db, generator=gen)
    return codec.decode(out.symbols_hat, out.noise_var_eff, snr_db, sigma)


def _training_latents(cfg: JsccTrainingConfig, tr: dict, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """The batch's states: stored, or (``data.renoise``) ``x0_k`` (flipped at random) ``+ sigma_k * fresh eps``.

    For an Euler-type sampler the state at step ``k`` is its x0-prediction
    plus ``sigma_k`` times (nearly white) noise; drawing that noise afresh for
    every batch leaves the codec nothing to memorise but the smooth signal part.
    """
    if not cfg.data.renoise or "x0" not in tr:
        return tr["latents"][idx]
    x0 = tr["x0"][idx]
    if cfg.data.flips:
        u = torch.rand(2, x0.shape[0], generator=gen) < 0.5
        x0 = torch.where(u[0][:, None, None, None], x0.flip(-1), x0)
        x0 = torch.where(u[1][:, None, None, None], x0.flip(-2), x0)
    eps = torch.randn(x0.shape, generator=gen)
    return x0 + tr["sigma"][idx][:, None, None, None] * eps


def _step_variance(train_split: dict) -> torch.Tensor:
    """Per-value variance of the training states at each step ``k`` (index k; 1 where absent)."""
    step, x = train_split["step"], train_split["latents"]
    out = torch.ones(int(step.max()) + 1)
    for k in step.unique().tolist():
        out[k] = x[step == k].var(0, unbiased=False).mean()
    return out


def _loss(cfg, codec, links, denoiser, batch, gen, variance) -> tuple[torch.Tensor, dict]:
    lo, hi = cfg.snr_db_range
    u = torch.rand(3, generator=gen)
    channel = cfg.channels[int(u[0] * len(cfg.channels))]
    speed = cfg.speeds_mps[int(u[1] * len(cfg.speeds_mps))]
    snr_db = float(lo + (hi - lo) * u[2])
    x, sigma, step, recv = batch
    x_hat = _transmit(codec, links, x, sigma, snr_db, channel, speed, gen)
    loss, parts = torch.zeros(()), {}
    if cfg.loss.latent > 0:  # NMSE per sample: each state's error over its step's per-value variance
        lat = ((x_hat - x).pow(2).flatten(1).mean(1) / variance[step].to(x)).mean()
        loss = loss + cfg.loss.latent * (10 * torch.log10(lat) if cfg.loss.latent_db else lat)
        parts["latent"] = float(lat.detach())
    db = (lambda v: 10 * torch.log10(v)) if cfg.loss.receiver_db else (lambda v: v)
    if cfg.loss.denoiser > 0:  # the first denoiser_samples of the (random) batch
        m = cfg.loss.denoiser_samples or x.shape[0]
        with torch.no_grad():
            ref = denoiser.x0(x[:m], step[:m], sigma[:m], recv[:m])
        den = (denoiser.x0(x_hat[:m], step[:m], sigma[:m], recv[:m]) - ref).pow(2).mean()
        loss = loss + cfg.loss.denoiser * db(den)
        parts["denoiser"] = float(den.detach())
    if cfg.loss.unrolled > 0:  # the first unrolled_samples, one unroll per distinct step k among them
        m = min(cfg.loss.unrolled_samples, x.shape[0])
        n_steps = len(denoiser.timesteps)
        noise = torch.randn((m, n_steps - int(step[:m].min()), *x.shape[1:]), generator=gen).to(x)
        err = x.new_zeros(())
        for k in sorted(set(step[:m].tolist())):
            sel = (step[:m] == k).nonzero().flatten()
            prompts = [recv[i] for i in sel.tolist()]
            z = noise[sel, : n_steps - k]
            with torch.no_grad():
                ref = denoiser.unroll(x[sel], k, prompts, z, cfg.loss.unrolled_steps)
            out = denoiser.unroll(x_hat[sel], k, prompts, z, cfg.loss.unrolled_steps)
            err = err + (out - ref).pow(2).flatten(1).mean(1).sum()
        unr = err / m
        loss = loss + cfg.loss.unrolled * db(unr)
        parts["unrolled"] = float(unr.detach())
    return loss, parts


def _latent_std(train_split: dict) -> float:
    """RMS of ``x / sqrt(sigma^2 + 1)`` over the training states (the codec's unit), 4 significant digits."""
    x, sigma = train_split["latents"], train_split["sigma"]
    rms = float((x / torch.sqrt(sigma.pow(2) + 1)[:, None, None, None]).pow(2).mean().sqrt())
    return float(f"{rms:.4g}")


def _make_codec(cfg: JsccTrainingConfig, train_split: dict) -> LearnedCodec:
    c, h, w = train_split["latents"].shape[1:]
    if h != w:
        raise ValueError(f"the learned codec needs square latents, got {h}x{w}")
    return LearnedCodec(LearnedCodecConfig(latent_channels=c, latent_size=h, latent_std=_latent_std(train_split),
                                           **cfg.codec.model_dump()), seed=cfg.seed).to(cfg.device)


def train(cfg: JsccTrainingConfig, data: Optional[dict] = None, sd=None, *, stop_after: Optional[int] = None,
          progress: bool = True) -> LearnedCodec:
    """Train (or resume) to ``cfg.steps``; ``stop_after`` ends this call early (simulates an interruption)."""
    from tqdm import tqdm

    workdir = Path(cfg.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    receiver = cfg.loss.denoiser > 0 or cfg.loss.unrolled > 0
    if receiver and sd is None:
        sd = load_model(cfg)
    data = data or build_dataset(cfg, sd)
    tr = data["train"]
    codec = _make_codec(cfg, tr)
    if cfg.init is not None:
        init = LearnedCodec.from_pretrained(cfg.init, device=cfg.device)
        if init.config != codec.config:
            raise ValueError(f"init {cfg.init} has codec config {init.config.model_dump()}, this run builds "
                             f"{codec.config.model_dump()}")
        codec.load_state_dict(init.state_dict())
    opt = torch.optim.AdamW(codec.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    gen = torch.Generator().manual_seed(cfg.seed)
    step, history = 0, []
    ckpt = workdir / CHECKPOINT
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state["digest"] != cfg.digest():
            raise ValueError(f"{ckpt} was written by another configuration; use another workdir or delete it")
        codec.load_state_dict(state["codec"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        step, history = state["step"], state["history"]

    def save():
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"digest": cfg.digest(), "codec": codec.state_dict(), "optimizer": opt.state_dict(),
                    "generator": gen.get_state(), "step": step, "history": history}, tmp)
        tmp.replace(ckpt)

    links = _Channels(cfg.csi, cfg.device)
    denoiser = _Denoiser(sd, data, cfg.data.guidance_scale) if receiver else None
    n = tr["latents"].shape[0]
    variance = _step_variance(tr)
    last = began = time.monotonic()
    end = cfg.steps if stop_after is None else min(cfg.steps, step + stop_after)
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train-jscc")
    codec.train()
    while step < end:
        idx = torch.randint(n, (min(cfg.batch_size, n),), generator=gen)
        batch = (_training_latents(cfg, tr, idx, gen).to(cfg.device), tr["sigma"][idx].to(cfg.device),
                 tr["step"][idx], [tr["receiver"][i] for i in idx.tolist()])
        if cfg.lr_schedule == "cosine":
            for group in opt.param_groups:
                group["lr"] = cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(step / cfg.steps, 1.0))))
        loss, parts = _loss(cfg, codec, links, denoiser, batch, gen, variance)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        history.append({"step": step, "loss": float(loss.detach()), **parts})
        bar.update(1)
        bar.set_postfix(loss=f"{history[-1]['loss']:.4f}")
        out_of_time = cfg.time_limit_s is not None and time.monotonic() - began >= cfg.time_limit_s
        if time.monotonic() - last >= cfg.checkpoint_seconds or step == end or out_of_time:
            save()
            last = time.monotonic()
        if out_of_time:
            break
    bar.close()
    codec.eval()
    codec.trained_steps = step
    return codec


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate(cfg: JsccTrainingConfig, codec: LearnedCodec, data: dict, channel: str = "awgn",
             speed_mps: float = 0.0) -> list[dict]:
    """Latent NMSE on held-out states per (k, SNR): learned, analog at the same rho, and the bounds.

    NMSE = mean squared error / mean per-value variance of the held-out states
    at that ``k`` (around each DCT coefficient's mean, as in
    :func:`phy.jscc_bounds.dct_variances`). Each row has ``n`` and a Student-t 95% interval on the mean
    error (:func:`pipeline.embedded.latent_nmse.nmse_db_interval`).
    """
    from latent_codec import AnalogCodec
    from phy.jscc_bounds import dct_variances, linear_nmse, opta_nmse
    from pipeline.embedded.latent_nmse import nmse_db_interval

    held = data["heldout"]
    rho = codec.bandwidth_ratio
    analog = AnalogCodec(compression_ratio=min(1.0, 2 * rho))
    links = _Channels(cfg.csi, cfg.device)
    rows = []
    for k in sorted(set(int(s) for s in held["step"])):
        sel = (held["step"] == k).nonzero().flatten()[: cfg.max_eval_states]
        x, sigma = held["latents"][sel].to(cfg.device), held["sigma"][sel].to(cfg.device)
        lam = dct_variances(x)
        variance = float(lam.mean())
        for snr_db in cfg.eval_snr_db:
            gen = torch.Generator().manual_seed(cfg.eval_channel_seed)
            x_hat = _transmit(codec, links, x, sigma, float(snr_db), channel, speed_mps, gen)
            err_l = (x_hat - x).pow(2).flatten(1).mean(1).cpu().numpy()
            errs = []
            for codec_a in (analog, AnalogCodec(compression_ratio=min(1.0, 2 * rho), num_bands=32,
                                                power_allocation="optimal", design_snr_db=float(snr_db))):
                gen = torch.Generator().manual_seed(cfg.eval_channel_seed)
                p = codec_a.compress(x)
                out = links(channel, speed_mps)(p.symbols, float(snr_db), generator=gen)
                x_a = codec_a.decompress(out.symbols_hat, p.header, noise_var=out.noise_var_eff).latents
                errs.append((x_a - x).pow(2).flatten(1).mean(1).cpu().numpy())
            learned, l_lo, l_hi, _ = nmse_db_interval(err_l, variance)
            ana, a_lo, a_hi, _ = nmse_db_interval(errs[0], variance)
            opt, o_lo, o_hi, _ = nmse_db_interval(errs[1], variance)
            row = {"k": k, "sigma": float(sigma[0]), "snr_db": float(snr_db), "channel": channel,
                   "speed_mps": speed_mps, "bandwidth_ratio": rho, "n": int(x.shape[0]),
                   "learned_nmse_db": learned, "learned_ci95_db": [l_lo, l_hi],
                   "analog_nmse_db": ana, "analog_ci95_db": [a_lo, a_hi],
                   "analog_optimal_nmse_db": opt, "analog_optimal_ci95_db": [o_lo, o_hi]}
            if channel == "awgn" and rho <= 0.5:
                row.update({"opta_nmse_db": 10 * math.log10(opta_nmse(lam, rho, snr_db)),
                            "linear_optimal_nmse_db": 10 * math.log10(linear_nmse(lam, rho, snr_db, "optimal")),
                            "linear_equal_nmse_db": 10 * math.log10(linear_nmse(lam, rho, snr_db, "equal"))})
            rows.append(row)
    return rows


@torch.no_grad()
def evaluate_receiver(cfg: JsccTrainingConfig, codec: LearnedCodec, data: dict, sd, conditions: list[tuple[str, float]],
                      per_step: int = 32, reference: Optional[dict] = None) -> dict:
    """The receiver's image from the received latent against its image from the sent latent, per held-out state.

    The first ``per_step`` held-out states at each ``k`` cross the codec and
    the link (``conditions``: ``(channel, snr_db)``; the channel noise from
    ``cfg.eval_channel_seed``, so every codec sees the same draws); the
    receiver (its own prompt, ``data.guidance_scale``, the Euler-ancestral
    sampler with per-state noise fixed by the state's index) runs its
    remaining steps from the received and from the sent latent, and the VAE
    decodes both. ``reference`` (a dict, filled on the first call) caches the
    sent branch across codecs.

    Returns
    -------
    dict
        ``{(channel, snr_db): {"psnr_db": [n], "latent_nmse_db": [n], "final_nmse_db": [n]}}`` per-state
        arrays (PSNR with peak 255 of the uint8 images, ``inf`` where identical; latent NMSE of the received
        state and NMSE of the final latent, each over the held-out per-value
        variance at that ``k``), plus ``"k"`` ``[n]``.
    """
    from pipeline.metrics import psnr_db

    held = data["heldout"]
    sel = torch.cat([(held["step"] == k).nonzero().flatten()[:per_step] for k in held["step"].unique().tolist()])
    x, sigma, step = held["latents"][sel].to(cfg.device), held["sigma"][sel].to(cfg.device), held["step"][sel]
    recv = [held["receiver"][i] for i in sel.tolist()]
    den = _Denoiser(sd, data, cfg.data.guidance_scale)
    n_steps = len(data["timesteps"])
    ks = sorted(set(step.tolist()))

    def finish(latents):
        out = torch.empty_like(latents)
        for k in ks:
            idx = (step == k).nonzero().flatten()
            z = torch.stack([torch.randn((n_steps - k, *x.shape[1:]), generator=torch.Generator().manual_seed(
                1_000_003 * cfg.eval_channel_seed + int(sel[i]))) for i in idx.tolist()])
            out[idx] = den.unroll(latents[idx], k, [recv[i] for i in idx.tolist()], z.to(latents))
        return out

    reference = {} if reference is None else reference
    if "final" not in reference:
        reference["final"] = finish(x)
        reference["images"] = sd.decode(reference["final"])
    var = {k: float(held["latents"][held["step"] == k].var(0, unbiased=False).mean()) for k in ks}
    var_final = float(reference["final"].var(0, unbiased=False).mean())
    links = _Channels(cfg.csi, cfg.device)
    res = {"k": step.numpy()}
    for channel, snr_db in conditions:
        gen = torch.Generator().manual_seed(cfg.eval_channel_seed)
        x_hat = _transmit(codec, links, x, sigma, float(snr_db), channel, 0.0, gen)
        final = finish(x_hat)
        images = sd.decode(final)
        v = torch.tensor([var[int(k)] for k in step])
        res[(channel, float(snr_db))] = {
            "psnr_db": np.array([psnr_db(a, b) for a, b in zip(images, reference["images"])]),
            "latent_nmse_db": (10 * torch.log10((x_hat - x).pow(2).flatten(1).mean(1) / v)).numpy(),
            "final_nmse_db": (10 * torch.log10((final - reference["final"]).pow(2).flatten(1).mean(1)
                                               / var_final)).numpy()}
    return res


def export(cfg: JsccTrainingConfig, codec: LearnedCodec, data: dict, rows: list[dict],
           command: str, seconds: float) -> Path:
    """Weights, ``evaluation.json`` and a card ``README.md`` into ``cfg.out``."""
    out = codec.save_pretrained(cfg.out)
    held = data["heldout"]
    info = {"config": cfg.model_dump(), "trained_steps": getattr(codec, "trained_steps", None),
            "train_states": int(data["train"]["latents"].shape[0]),
            "heldout_states": int(held["latents"].shape[0]), "train_seconds": seconds, "command": command,
            "evaluation": rows}
    (out / "evaluation.json").write_text(json.dumps(info, indent=2) + "\n")
    lines = [f"# Learned latent JSCC codec (rho = {codec.bandwidth_ratio})", "",
             "A `latent_codec.learned.LearnedCodec` (FiLM-conditioned on snr_db and sigma_k) trained by "
             "`pipeline.embedded.jscc_training`.", "",
             f"- Model: {cfg.model or 'the shipped distdiff-tiny-sd'}; states after k in "
             f"{sorted(set(cfg.data.shared_steps))} of {cfg.data.num_inference_steps} Euler-ancestral steps.",
             f"- Data: {info['train_states']} training states, {info['heldout_states']} held-out states "
             f"(held-out prompts: every {cfg.data.heldout_every}-th of the vocabulary; held-out seeds disjoint).",
             f"- Channels {cfg.channels}, speeds {cfg.speeds_mps} m/s, csi={cfg.csi}, SNR uniform in "
             f"{list(cfg.snr_db_range)} dB; loss {cfg.loss.latent} x latent NMSE"
             f"{' [dB]' if cfg.loss.latent_db else ''} + {cfg.loss.denoiser} x denoiser x0-MSE"
             f"{' [dB]' if cfg.loss.receiver_db and cfg.loss.denoiser else ''}"
             f"{f' ({cfg.loss.denoiser_samples} samples per batch)' if cfg.loss.denoiser and cfg.loss.denoiser_samples else ''}"
             f" + {cfg.loss.unrolled} x unrolled final-latent MSE{' [dB]' if cfg.loss.receiver_db and cfg.loss.unrolled else ''}"
             f"{f' ({cfg.loss.unrolled_samples} samples per batch)' if cfg.loss.unrolled else ''}; training states "
             + ("x0_k + sigma_k * fresh noise per batch" + (" (x0_k flipped at random)" if cfg.data.flips else "")
                if cfg.data.renoise else "the stored states") + ".",
             f"- {getattr(codec, 'trained_steps', cfg.steps)} of {cfg.steps} configured steps, batch {cfg.batch_size}, "
             f"AdamW lr {cfg.lr} ({cfg.lr_schedule}), weight decay {cfg.weight_decay}, seed {cfg.seed}; "
             f"{seconds / 60:.1f} min of training in the last run"
             + (f", starting from the codec in `{cfg.init}`." if cfg.init else "."),
             f"- Reproduce: `{command}`", "",
             "## Latent NMSE on held-out states [dB] (95% interval; n states per row)", "",
             "| channel | k | SNR [dB] | n | learned | analog (same rho) | analog, optimal allocation | OPTA bound "
             "| optimal linear | equal-gain linear |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        b = [f"{r[c]:.2f}" if c in r else "-" for c in ("opta_nmse_db", "linear_optimal_nmse_db",
                                                        "linear_equal_nmse_db")]
        lines.append(f"| {r['channel']} | {r['k']} | {r['snr_db']:g} | {r['n']} | {r['learned_nmse_db']:.2f} "
                     f"[{r['learned_ci95_db'][0]:.2f}, {r['learned_ci95_db'][1]:.2f}] | {r['analog_nmse_db']:.2f} "
                     f"[{r['analog_ci95_db'][0]:.2f}, {r['analog_ci95_db'][1]:.2f}] | "
                     f"{r['analog_optimal_nmse_db']:.2f} | " + " | ".join(b) + " |")
    lines += ["", "NMSE = MSE / per-value variance of the held-out states at that k. The analog codec is "
              "`AnalogCodec(2 rho)` (8 bands, equal power); 'optimal allocation' is "
              "`AnalogCodec(2 rho, num_bands=32, power_allocation='optimal', design_snr_db=SNR)`. The bounds are for a "
              "Gaussian source of the measured DCT spectrum over AWGN (`phy.jscc_bounds`), with each "
              "coefficient's mean known to both ends; a non-Gaussian source may beat the OPTA bound.", "",
              "Caveat on the bound columns: the dataset's states share their sampler seeds across prompts (3 "
              "held-out seeds for 81 states per k), so part of the sampler noise looks like a known mean, the "
              "measured spectrum is too coloured and the bound columns (and the NMSE denominator) are too "
              "optimistic, by about 3.5 dB at rho = 1/8 and 20 dB. The comparison with one seed per state is "
              "`pipeline.embedded.latent_nmse` (`python -m benchmarks.bench_codec --section bounds`; table in "
              "`docs/results/e2e_vs_separation/latent_nmse.csv`).", ""]
    (out / "README.md").write_text("\n".join(lines))
    return out


def run(cfg: JsccTrainingConfig, command: str = "", progress: bool = True) -> Path:
    """Dataset, training (resumable), evaluation (AWGN and the configured non-TDL channels) and export."""
    if cfg.init is not None and not (Path(cfg.init) / "config.json").is_file() \
            and not (Path(cfg.workdir) / "checkpoint.pt").is_file():
        if cfg.init_config is None:
            raise ValueError(f"init: {cfg.init} holds no codec (config.json); train it first with the config whose "
                             "'out' it is (for the shipped codecs: experiments/configs/training/train_jscc*_pretrain"
                             ".yaml), or name that config as init_config")
        first = load_config(cfg.init_config)
        if Path(first.out).resolve() != Path(cfg.init).resolve():
            raise ValueError(f"init_config: {cfg.init_config} writes {first.out}, not init {cfg.init}")
        print(f"train-jscc: {cfg.init} is not trained yet; phase 1 first ({cfg.init_config})", file=sys.stderr)
        run(first, command=command, progress=progress)
    sd = load_model(cfg)
    data = build_dataset(cfg, sd)
    start = time.monotonic()
    codec = train(cfg, data, sd, progress=progress)
    codec.scheduler_config = {**dict(sd.pipe.scheduler.config), "_class_name": type(sd.pipe.scheduler).__name__}
    rows = [r for channel in dict.fromkeys(["awgn", *cfg.channels]) if not channel.startswith("tdl")
            for r in evaluate(cfg, codec, data, channel=channel)]
    return export(cfg, codec, data, rows, command, time.monotonic() - start)


def parse_conditions(text: str) -> list[tuple[str, float]]:
    """``"awgn:0,rayleigh:10"`` -> ``[("awgn", 0.0), ("rayleigh", 10.0)]``; a bad one is a one-line ``ValueError``.

    >>> parse_conditions("awgn:0,rayleigh:10")
    [('awgn', 0.0), ('rayleigh', 10.0)]
    """
    out = []
    for part in text.split(","):
        name, _, snr = part.strip().partition(":")
        try:
            out.append((name, float(snr)))
        except ValueError:
            raise ValueError(f"conditions must be channel:snr_db,... (e.g. awgn:0,rayleigh:10), got {part!r}") from None
        if name not in ("awgn", "rayleigh"):
            raise ValueError(f"ablation conditions: channel must be awgn or rayleigh, got {name!r}")
    return out


def main(argv: Optional[list[str]] = None) -> int:
    """``python -m pipeline.embedded.jscc_training CONFIG.yaml [--steps N] [--device D]``."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.embedded.jscc_training", description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("--steps", type=int, default=None, help="override the config's steps")
    parser.add_argument("--device", default=None, help="override the config's device (cpu, cuda)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        cfg = load_config(args.config)
        update = {k: v for k, v in (("steps", args.steps), ("device", args.device)) if v is not None}
        if update:
            cfg = load_config_dict({**cfg.model_dump(), **update})
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = "python -m pipeline.embedded.jscc_training " + " ".join(argv if argv is not None else sys.argv[1:])
    out = run(cfg, command)
    print(f"exported to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
