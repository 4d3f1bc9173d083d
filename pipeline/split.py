"""Split inference with exact resume: the shared steps on one machine, the rest on another.

diffusers' ``StableDiffusionPipeline`` cannot start at step ``k`` (Euler
Ancestral and DDIM reject ``timesteps=``, ``latents=`` is rescaled by
``init_noise_sigma``, DPM-Solver++ loses its multistep history), so
:class:`SplitDiffusion` runs its own denoising loop over ``pipe.unet`` and a
fresh scheduler, the same arithmetic as the pipeline's ``__call__``
(classifier-free guidance with the ``[uncond, cond]`` batch,
``scale_model_input``, ``step`` with a per-sample CPU ``torch.Generator``).
:meth:`SplitDiffusion.shared` stops after ``k`` steps and returns an
:class:`~pipeline.state.IntermediateState` holding the scheduler's internal
state and the generators' states; :meth:`SplitDiffusion.finish` restores them
and continues, with any prompt. For the same prompt, ``finish(shared(...))``
is bit-identical to :meth:`SplitDiffusion.generate` (and to the diffusers
pipeline itself at batch 1), in one process or across processes, provided the
torch thread count, device and dtype are the same on both sides.

Compute unit: one *UNet evaluation* is one UNet forward pass for one image
(classifier-free guidance costs two per step: conditional and unconditional).

Example
-------
>>> from pipeline.embedded.model import random_pipeline
>>> from pipeline.split import SplitDiffusion
>>> sd = SplitDiffusion(random_pipeline())
>>> state = sd.shared("a red apple on a wooden table", num_inference_steps=4, num_shared_steps=2, seed=1)
>>> image = sd.finish(state, "a yellow lemon on a wooden table")
>>> image.shape, image.dtype
((32, 32, 3), dtype('uint8'))
"""

from __future__ import annotations

import inspect
import json
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from .compute import evals_per_step, uses_cfg
from .loading import model_fingerprint, quiet_upstream
from .state import IntermediateState, StateError, cpu_copy, exactly_equal

__all__ = ["SplitDiffusion", "SCHEDULERS", "make_scheduler", "scheduler_name_of", "quiet_upstream", "ResumeWarning",
           "PromptWarning",
           "sigma_to_timestep", "OUTPUT_TYPES"]

#: what :meth:`SplitDiffusion.generate` / :meth:`SplitDiffusion.finish` return
OUTPUT_TYPES = ("np", "pil", "latent")

#: short name -> (diffusers class name, config overrides applied on top of the model's scheduler config)
SCHEDULERS: dict[str, tuple[str, dict]] = {
    "euler_ancestral": ("EulerAncestralDiscreteScheduler", {}),
    "euler": ("EulerDiscreteScheduler", {}),
    "ddim": ("DDIMScheduler", {}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++"}),
    "dpmsolver++_sde": ("DPMSolverMultistepScheduler", {"algorithm_type": "sde-dpmsolver++"}),
    "pndm": ("PNDMScheduler", {}),
}
#: samplers whose sample is ``x0 + sigma * eps`` (variance exploding), where noise matching is a shift in sigma
_SIGMA_SAMPLERS = ("EulerAncestralDiscreteScheduler", "EulerDiscreteScheduler")
_STATE_TYPES = (torch.Tensor, int, float, bool, str, type(None))


class ResumeWarning(UserWarning):
    """A state is resumed in conditions where bit identity is not guaranteed (threads, device)."""


class PromptWarning(UserWarning):
    """Part of a prompt does not reach the model: words unknown to its tokenizer, or tokens beyond its length."""


def make_scheduler(name: str, base_config: dict):
    """A fresh diffusers scheduler ``name`` built from a model's scheduler config.

    Inputs: ``name`` one of :data:`SCHEDULERS`; ``base_config`` the model's
    ``pipe.scheduler.config``. Output: a scheduler instance (no timesteps set).
    """
    import diffusers

    if name not in SCHEDULERS:
        raise ValueError(f"scheduler={name!r} is not supported; allowed: {sorted(SCHEDULERS)}")
    cls_name, overrides = SCHEDULERS[name]
    with quiet_upstream():
        return getattr(diffusers, cls_name).from_config(dict(base_config), **overrides)


def scheduler_name_of(scheduler) -> str:
    """The short name of a scheduler instance: its :data:`SCHEDULERS` name, else its diffusers class name.

    >>> from diffusers import DDIMScheduler
    >>> scheduler_name_of(DDIMScheduler()), scheduler_name_of(DDIMScheduler)
    ('ddim', 'ddim')
    """
    cls_name = scheduler.__name__ if isinstance(scheduler, type) else type(scheduler).__name__
    config = {} if isinstance(scheduler, type) else dict(getattr(scheduler, "config", {}) or {})
    for name, (cls, overrides) in SCHEDULERS.items():
        if cls == cls_name and all(config.get(k, v) == v for k, v in overrides.items()):
            return name
    return cls_name


def _check_scheduler_name(name: str, cls_name: str) -> None:
    """One clear error when a state's ``scheduler_name`` disagrees with its ``scheduler_class``."""
    expected = SCHEDULERS[name][0] if name in SCHEDULERS else name
    if expected != cls_name:
        raise StateError(f"state scheduler_name={name!r} disagrees with scheduler_class={cls_name!r} "
                         f"({name!r} is {expected}); the state is inconsistent and cannot be resumed")


def _capture(scheduler) -> dict:
    """The scheduler's internal state: every plain attribute (tensors, numbers, lists of them)."""
    out = {}
    for k, v in vars(scheduler).items():
        if k in ("_internal_dict", "config"):
            continue
        if isinstance(v, (list, tuple)) and all(isinstance(x, _STATE_TYPES) for x in v):
            out[k] = cpu_copy(list(v))
        elif isinstance(v, _STATE_TYPES):
            out[k] = cpu_copy(v)
    return out


def _restore(scheduler, state: dict, device) -> None:
    for k, v in state.items():
        current = getattr(scheduler, k, None)
        if isinstance(v, torch.Tensor):
            v = v.to(current.device if isinstance(current, torch.Tensor) else device)
        elif isinstance(v, list):
            v = [x.to(device) if isinstance(x, torch.Tensor) else x for x in v]
        setattr(scheduler, k, v)


def sigma_to_timestep(sigma: float, alphas_cumprod: torch.Tensor) -> float:
    """Continuous training timestep whose noise level is ``sigma`` (variance-exploding sigma).

    Interpolates ``log sigma(t) = 0.5 log((1 - abar_t) / abar_t)`` linearly in
    ``t`` over the training schedule (as diffusers' Euler scheduler does for
    Karras sigmas). Input: ``sigma`` [-] > 0; ``alphas_cumprod`` ``[T]``.
    Output: ``t`` in ``[0, T-1]`` (float; clipped at the ends).
    """
    ac = alphas_cumprod.double().cpu().numpy()
    log_sigmas = 0.5 * np.log((1 - ac) / ac)
    return float(np.interp(np.log(max(sigma, 1e-12)), log_sigmas, np.arange(len(ac))))


@dataclass
class _Run:
    scheduler: object
    latents: torch.Tensor
    generators: list[torch.Generator]
    cond: torch.Tensor
    guidance_scale: float


class SplitDiffusion:
    """Split (two-party) sampling of a Stable-Diffusion-family pipeline with exact resume.

    Parameters
    ----------
    pipe : diffusers.StableDiffusionPipeline
        Any SD-family pipeline (the shipped model, SD v1-4, a tiny random one),
        on CPU or CUDA, in any float dtype.

    Like diffusers: the pipeline's own ``pipe.scheduler`` (class and config)
    is used unless a scheduler is named (one of :data:`SCHEDULERS`); the noise
    comes from ``seed=`` (an int or one int per sample) or ``generator=`` (a
    CPU ``torch.Generator`` or a list of one per sample, advanced as diffusers
    does). ``output_type`` (:data:`OUTPUT_TYPES`): ``"np"`` images
    ``np.uint8`` ``[H, W, 3]`` for one string prompt and ``[B, H, W, 3]`` for a
    list of prompts; ``"pil"`` a ``PIL.Image`` (a list for a list of prompts);
    ``"latent"`` the final latents ``torch.Tensor [B, C, h, w]`` (not decoded).

    Example
    -------
    >>> from pipeline.embedded.model import random_pipeline
    >>> sd = SplitDiffusion(random_pipeline())
    >>> s = sd.shared(["a red apple on a wooden table"] * 2, 4, 2, seed=[0, 1])
    >>> sd.finish(s).shape
    (2, 32, 32, 3)
    """

    def __init__(self, pipe):
        for name in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            if getattr(pipe, name, None) is None:
                raise ValueError(f"pipe has no {name}: SplitDiffusion needs a Stable-Diffusion-family pipeline")
        self.pipe = pipe
        self._embeds: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._unknown_warned: set[str] = set()
        #: UNet evaluations (per image) run by this object since creation
        self.unet_evals = 0

    # ------------------------------------------------------------- properties
    @property
    def device(self) -> torch.device:
        return self.pipe.unet.device

    @property
    def dtype(self) -> torch.dtype:
        return self.pipe.unet.dtype

    @property
    def fingerprint(self) -> str:
        return model_fingerprint(self.pipe)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        cfg = self.pipe.unet.config
        size = cfg.sample_size if isinstance(cfg.sample_size, int) else cfg.sample_size[0]
        return (cfg.in_channels, size, size)

    def uses_cfg(self, guidance_scale: float) -> bool:
        """Whether classifier-free guidance (two UNet evaluations per step) is on (:func:`pipeline.compute.uses_cfg`)."""
        return uses_cfg(guidance_scale, self.pipe.unet.config.time_cond_proj_dim)

    def evals_per_step(self, guidance_scale: float) -> int:
        """UNet evaluations per denoising step and image (:func:`pipeline.compute.evals_per_step`)."""
        return evals_per_step(guidance_scale, self.pipe.unet.config.time_cond_proj_dim)

    # ---------------------------------------------------------------- helpers
    def _prompts(self, prompt, name="prompt") -> list[str]:
        prompts = [prompt] if isinstance(prompt, str) else list(prompt) if prompt is not None else None
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise ValueError(f"{name} must be a non-empty string or a non-empty list of strings, got {prompt!r}")
        return prompts

    @torch.no_grad()
    def encode(self, prompts: list[str], negative_prompt: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Text embeddings ``(cond, uncond)``, each ``[B, L, D]`` in the pipeline's dtype.

        Each prompt is encoded alone (batch 1) exactly as the diffusers pipeline
        does, and cached, so batch composition never changes an embedding.
        """
        conds, unconds = [], []
        for p in prompts:
            key = (p, negative_prompt)
            if key not in self._embeds:
                self.check_prompt(p)
                from diffusers.utils import logging as dlog
                from transformers.utils import logging as tlog

                levels = [(m, m.get_verbosity()) for m in (dlog, tlog)]
                for m, _ in levels:  # their truncation notices are replaced by check_prompt's one warning
                    m.set_verbosity_error()
                try:
                    cond, uncond = self.pipe.encode_prompt(p, self.device, 1, True, negative_prompt)
                finally:
                    for m, level in levels:
                        m.set_verbosity(level)
                self._embeds[key] = (cond, uncond)
            conds.append(self._embeds[key][0])
            unconds.append(self._embeds[key][1])
        return torch.cat(conds), torch.cat(unconds)

    def check_prompt(self, prompt: str) -> list[str]:
        """Warn (:class:`PromptWarning`) about the parts of ``prompt`` the model will not see.

        Words the tokenizer maps to its unknown token are named once per
        object (pointing to the model's vocabulary, listed in its model card);
        a prompt longer than the tokenizer's ``model_max_length`` gets one
        warning naming what is cut. Returns the unknown words (in order).
        """
        tok = self.pipe.tokenizer
        unknown: list[str] = []
        try:
            enc = tok(prompt, truncation=False, add_special_tokens=True, verbose=False,
                      return_offsets_mapping=getattr(tok, "is_fast", False))
        except Exception:  # noqa: BLE001 - a tokenizer without these options: nothing to report
            return unknown
        ids = list(enc["input_ids"])
        unk = getattr(tok, "unk_token_id", None)
        if unk is not None and unk in ids and "offset_mapping" in enc:
            for i, (a, b) in zip(ids, enc["offset_mapping"]):
                word = prompt[a:b]
                if i == unk and word and word not in unknown:
                    unknown.append(word)
        new = [w for w in unknown if w.lower() not in self._unknown_warned]
        if new:
            self._unknown_warned.update(w.lower() for w in new)
            where = getattr(self.pipe, "name_or_path", "") or ""
            warnings.warn(f"prompt words unknown to the model's tokenizer are ignored (read as "
                          f"{getattr(tok, 'unk_token', 'unknown')}): {', '.join(repr(w) for w in new)}; the "
                          f"vocabulary is listed in the model card" + (f" ({where}/README.md)" if where else ""),
                          PromptWarning, stacklevel=4)
        limit = getattr(tok, "model_max_length", None)
        if isinstance(limit, int) and limit < 10 ** 6 and len(ids) > limit:
            cut = ""
            if "offset_mapping" in enc:
                starts = [a for a, b in enc["offset_mapping"][limit - 1:] if b > a]
                cut = prompt[starts[0]:] if starts else ""
            warnings.warn(f"prompt of {len(ids)} tokens is cut to the model's {limit}"
                          + (f"; ignored: {cut[:80]!r}{'...' if len(cut) > 80 else ''}" if cut else ""),
                          PromptWarning, stacklevel=4)
        return unknown

    def _validate_common(self, num_inference_steps, guidance_scale):
        if isinstance(num_inference_steps, bool) or not isinstance(num_inference_steps, (int, np.integer)) \
                or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be a positive int, got {num_inference_steps!r}")
        if not isinstance(guidance_scale, (int, float)) or not np.isfinite(guidance_scale) or guidance_scale < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {guidance_scale!r}")

    def _scheduler(self, scheduler: str | None):
        """A fresh scheduler: ``scheduler`` by name, or (None) a copy of ``pipe.scheduler`` (class and config)."""
        if scheduler is None:
            own = self.pipe.scheduler
            with quiet_upstream():
                return type(own).from_config(dict(own.config))
        if not isinstance(scheduler, str):
            raise ValueError(f"scheduler must be None (the pipeline's own) or one of {sorted(SCHEDULERS)}, "
                             f"got {scheduler!r}")
        return make_scheduler(scheduler, self.pipe.scheduler.config)

    @staticmethod
    def _generators(batch: int, seed, generator) -> tuple[list[torch.Generator], list[int | None]]:
        """One CPU generator per sample, from ``generator`` (used as given, like diffusers) or ``seed``."""
        if generator is not None:
            gens = [generator] if isinstance(generator, torch.Generator) else list(generator) \
                if isinstance(generator, (list, tuple)) else None
            if gens is None or len(gens) != batch or not all(isinstance(g, torch.Generator) for g in gens):
                raise ValueError(f"generator must be a torch.Generator (batch 1) or a list of {batch} "
                                 f"torch.Generator (one per sample), got {generator!r}")
            if any(g.device.type != "cpu" for g in gens):
                raise ValueError("generator must be a CPU torch.Generator: exact resume restores CPU generator "
                                 f"states (got {[g.device.type for g in gens]})")
            return gens, [None] * batch
        seeds = [seed] * batch if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) else \
            list(seed) if isinstance(seed, (list, tuple)) else None
        if seeds is None or len(seeds) != batch or not all(
                isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in seeds):
            raise ValueError(f"seed must be an int or a list of {batch} ints, got {seed!r}")
        if not all(-2 ** 63 <= int(s) < 2 ** 64 for s in seeds):
            raise ValueError(f"seed must fit a torch generator seed, in [-2**63, 2**64), got {seed!r}")
        seeds = [int(s) for s in seeds]
        return [torch.Generator("cpu").manual_seed(s) for s in seeds], seeds

    def _start(self, prompts, num_inference_steps, seed, guidance_scale, scheduler, negative_prompt, generator=None):
        self._validate_common(num_inference_steps, guidance_scale)
        sched = self._scheduler(scheduler)
        gens, seeds = self._generators(len(prompts), seed, generator)
        with quiet_upstream():
            sched.set_timesteps(int(num_inference_steps), device=self.device)
        cond, uncond = self.encode(prompts, negative_prompt)
        emb = torch.cat([uncond, cond]) if self.uses_cfg(guidance_scale) else cond
        # exactly StableDiffusionPipeline.prepare_latents with one generator per sample
        from diffusers.utils.torch_utils import randn_tensor

        shape = (len(prompts), *self.latent_shape)
        latents = randn_tensor(shape, generator=gens, device=self.device, dtype=cond.dtype)
        latents = latents * sched.init_noise_sigma
        return _Run(sched, latents, gens, emb, float(guidance_scale)), seeds

    @torch.no_grad()
    def _denoise(self, run: _Run, start: int, stop: int) -> None:
        pipe, sched = self.pipe, run.scheduler
        cfg = self.uses_cfg(run.guidance_scale)
        params = inspect.signature(sched.step).parameters
        extra = {k: v for k, v in (("eta", 0.0), ("generator", run.generators)) if k in params}
        timestep_cond = None
        if pipe.unet.config.time_cond_proj_dim is not None:
            w = torch.tensor(run.guidance_scale - 1).repeat(run.latents.shape[0])
            timestep_cond = pipe.get_guidance_scale_embedding(
                w, embedding_dim=pipe.unet.config.time_cond_proj_dim).to(self.device, run.latents.dtype)
        latents = run.latents
        for i in range(start, stop):
            t = sched.timesteps[i]
            model_in = torch.cat([latents] * 2) if cfg else latents
            model_in = sched.scale_model_input(model_in, t)
            noise = pipe.unet(model_in, t, encoder_hidden_states=run.cond, timestep_cond=timestep_cond,
                              return_dict=False)[0]
            if cfg:
                uncond, cond = noise.chunk(2)
                noise = uncond + run.guidance_scale * (cond - uncond)
            with quiet_upstream():
                latents = sched.step(noise, t, latents, **extra, return_dict=False)[0]
            self.unet_evals += latents.shape[0] * self.evals_per_step(run.guidance_scale)
        run.latents = latents

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """VAE-decode latents ``[B, C, h, w]`` to images ``np.uint8 [B, H, W, 3]``.

        Same arithmetic as the pipeline's ``output_type="np"`` followed by
        ``round(255 x)`` (diffusers' ``numpy_to_pil``).
        """
        pipe = self.pipe
        bad = int((~torch.isfinite(latents)).sum())
        if bad:
            raise ValueError(f"latents contain {bad} non-finite value(s) (NaN or inf); they would decode to a "
                             "black image: sanitise them first (e.g. torch.nan_to_num) or fix their source")
        image = pipe.vae.decode(latents.to(self.dtype) / pipe.vae.config.scaling_factor, return_dict=False)[0]
        image = pipe.image_processor.postprocess(image, output_type="np", do_denormalize=[True] * image.shape[0])
        return (image * 255).round().astype(np.uint8)

    @staticmethod
    def _check_output_type(output_type: str) -> None:
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type={output_type!r} is not supported; allowed: {list(OUTPUT_TYPES)}")

    def _output(self, latents: torch.Tensor, single: bool, output_type: str = "np"):
        if output_type == "latent":
            return latents
        images = self.decode(latents)
        if output_type == "pil":
            from PIL import Image

            pil = [Image.fromarray(im) for im in images]
            return pil[0] if single else pil
        return images[0] if single else images

    # -------------------------------------------------------------- public API
    def shared(self, prompt: str | list[str], num_inference_steps: int, num_shared_steps: int, seed: int | list[int] = 0,
               guidance_scale: float = 7.5, scheduler: str | None = None,
               negative_prompt: str | None = None, generator=None) -> IntermediateState:
        """Run the first ``num_shared_steps`` of ``num_inference_steps`` denoising steps.

        Parameters
        ----------
        prompt : str | list[str]
            Prompt(s) of the shared steps (batch ``B``).
        num_inference_steps : int
            Total steps ``N`` of the schedule.
        num_shared_steps : int
            Steps run here, ``0 <= k <= N``.
        seed : int | list[int]
            Seed of each sample's noise generator (an int: the same for all).
        guidance_scale : float
            Classifier-free guidance weight (CFG on when > 1).
        scheduler : str | None
            One of :data:`SCHEDULERS`; None: the pipeline's own ``pipe.scheduler``.
        negative_prompt : str | None
            Negative prompt of classifier-free guidance.
        generator : torch.Generator | list[torch.Generator] | None
            CPU generator(s), one per sample, instead of ``seed`` (the state's
            ``seeds`` are then None; its ``generator_states`` describe them).

        Returns
        -------
        IntermediateState
            ``latents`` ``[B, C, h, w]`` after ``k`` steps and everything needed
            to continue exactly.
        """
        prompts = self._prompts(prompt)
        self._validate_common(num_inference_steps, guidance_scale)
        if isinstance(num_shared_steps, bool) or not isinstance(num_shared_steps, (int, np.integer)) \
                or not 0 <= num_shared_steps <= num_inference_steps:
            raise ValueError(f"num_shared_steps must be an int in [0, num_inference_steps={num_inference_steps}], "
                             f"got {num_shared_steps!r}")
        run, seeds = self._start(prompts, num_inference_steps, seed, guidance_scale, scheduler, negative_prompt,
                                 generator)
        self._denoise(run, 0, int(num_shared_steps))
        import diffusers

        return IntermediateState(
            latents=run.latents.detach().clone(), step=int(num_shared_steps),
            num_inference_steps=int(num_inference_steps), scheduler_name=scheduler_name_of(run.scheduler),
            scheduler_class=type(run.scheduler).__name__,
            scheduler_config=json.loads(json.dumps({k: v for k, v in run.scheduler.config.items()
                                                     if not k.startswith("_")}, default=str)),
            scheduler_state=_capture(run.scheduler), guidance_scale=float(guidance_scale), seeds=seeds,
            prompts=prompts, generator_states=[g.get_state() for g in run.generators],
            model_fingerprint=self.fingerprint, model_name=str(getattr(self.pipe, "name_or_path", "") or ""),
            dtype=str(self.dtype).replace("torch.", ""), device=self.device.type, num_threads=torch.get_num_threads(),
            negative_prompt=negative_prompt,
            versions={"torch": str(torch.__version__), "diffusers": str(diffusers.__version__)})

    def check_resumable(self, state: IntermediateState, strict: bool = False) -> None:
        """Raise :class:`~pipeline.state.StateError` if ``state`` cannot be resumed exactly here.

        Refused: not a state; another model (fingerprint); another dtype;
        latents of the wrong shape; an unknown scheduler class; a scheduler
        state whose timesteps disagree with its config; ``step > N``. A
        different torch thread count or device only warns
        (:class:`ResumeWarning`), or is refused with ``strict=True``.
        """
        if not isinstance(state, IntermediateState):
            raise StateError(f"state must be an IntermediateState, got {type(state).__name__}")
        state.validate()
        if state.dtype != str(self.dtype).replace("torch.", ""):
            raise StateError(f"state latents are {state.dtype} but this pipeline runs in {self.dtype}; "
                             "load the pipeline with the same dtype to resume exactly")
        if state.model_fingerprint != self.fingerprint:
            raise StateError(f"state was made by another model (fingerprint {state.model_fingerprint}, "
                             f"{state.model_name or 'unnamed'}) than this pipeline's ({self.fingerprint}, "
                             f"{getattr(self.pipe, 'name_or_path', '') or 'unnamed'}); it cannot be resumed")
        if state.latent_shape != self.latent_shape:
            raise StateError(f"state latents have shape {state.latent_shape} but this model's UNet expects "
                             f"{self.latent_shape}")
        import diffusers

        cls = getattr(diffusers, state.scheduler_class, None)
        if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
            raise StateError(f"state scheduler_class {state.scheduler_class!r} is unknown to diffusers "
                             f"{diffusers.__version__} as a scheduler class")
        _check_scheduler_name(state.scheduler_name, state.scheduler_class)
        shadowing = sorted(k for k in state.scheduler_state if callable(getattr(cls, k, None))
                           or isinstance(getattr(cls, k, None), property))
        if shadowing:
            raise StateError(f"state scheduler_state keys {shadowing} would shadow methods or properties of "
                             f"{state.scheduler_class}; the state is malformed")
        bad = int((~torch.isfinite(state.latents)).sum()) if state.latents.is_floating_point() else 0
        if bad:
            raise StateError(f"state latents contain {bad} non-finite value(s) (NaN or inf); resuming would give a "
                             "black image: sanitise them first (e.g. torch.nan_to_num, as the chain does)")
        problems = []
        if state.num_threads != torch.get_num_threads():
            problems.append(f"torch thread count differs (state {state.num_threads}, here {torch.get_num_threads()}); "
                            "CPU results may differ in the last bits; call torch.set_num_threads"
                            f"({state.num_threads}) to resume bit-exactly")
        if state.device != self.device.type:
            problems.append(f"state was computed on {state.device} and is resumed on {self.device.type}; "
                            "results are close but not bit-identical")
        for msg in problems:
            if strict:
                raise StateError(msg)
            warnings.warn(msg, ResumeWarning, stacklevel=3)

    def _scheduler_from_state(self, state: IntermediateState):
        import diffusers

        with quiet_upstream():
            sched = getattr(diffusers, state.scheduler_class).from_config(state.scheduler_config)
            sched.set_timesteps(state.num_inference_steps, device=self.device)
        saved = state.scheduler_state.get("timesteps")
        if saved is not None and not exactly_equal(saved.cpu(), sched.timesteps.cpu()):
            raise StateError("the state's timesteps do not match its scheduler config for "
                             f"{state.num_inference_steps} steps (other scheduler config or diffusers version); "
                             "it cannot be resumed exactly")
        _restore(sched, state.scheduler_state, self.device)
        return sched

    def resume(self, state: IntermediateState, prompt: str | list[str] | None = None, until: int | None = None,
               latent_noise_variance: float | None = None, strict: bool = False) -> IntermediateState:
        """Continue ``state`` to step ``until`` (default: the end) with ``prompt``; return the new state.

        ``prompt`` None keeps the state's prompts; a list of ``B`` prompts for a
        batch-1 state repeats the state ``B`` times (one shared state, many
        receivers). ``latent_noise_variance`` [latent units^2] > 0 switches on
        *noise matching*: the latents are taken to be ``x_k`` plus white noise of
        that variance, so step ``k`` starts from the noise level
        ``sigma' = sqrt(sigma_k^2 + v)`` (and the matching continuous timestep)
        instead of ``sigma_k``; the number of remaining UNet evaluations is
        unchanged. Euler-type (variance-exploding) samplers only.
        """
        self.check_resumable(state, strict=strict)
        # the scheduler's own steps: N, except PNDM's warm-up (N + 1 with skip_prk_steps, 2N + 3 without)
        saved = state.scheduler_state.get("timesteps")
        end = len(saved) if saved is not None else state.num_inference_steps
        until = end if until is None else until
        if isinstance(until, bool) or not isinstance(until, (int, np.integer)) \
                or not state.step <= until <= end:
            raise ValueError(f"until must be an int in [state.step={state.step}, {end}] (the scheduler's steps "
                             f"for num_inference_steps={state.num_inference_steps}), got {until!r}")
        prompts = state.prompts if prompt is None else self._prompts(prompt)
        if len(prompts) == 1 and state.batch_size > 1:  # one prompt for every sample
            prompts = prompts * state.batch_size
        if len(prompts) != state.batch_size:
            if state.batch_size != 1:
                raise ValueError(f"got {len(prompts)} prompts for a state of batch size {state.batch_size}")
            state = state.repeat(len(prompts))
        sched = self._scheduler_from_state(state)
        if latent_noise_variance is not None:
            self._match_noise(sched, state, float(latent_noise_variance))
        gens = []
        for g_state in state.generator_states:
            g = torch.Generator("cpu")
            g.set_state(g_state.clone())
            gens.append(g)
        cond, uncond = self.encode(prompts, state.negative_prompt)
        emb = torch.cat([uncond, cond]) if self.uses_cfg(state.guidance_scale) else cond
        run = _Run(sched, state.latents.to(self.device, self.dtype).clone(), gens, emb, state.guidance_scale)
        self._denoise(run, state.step, int(until))
        out = state.with_latents(run.latents)
        out.step = int(until)
        out.prompts = list(prompts)
        out.scheduler_state = _capture(sched)
        out.generator_states = [g.get_state() for g in gens]
        out.num_threads = torch.get_num_threads()
        return out

    def _match_noise(self, sched, state: IntermediateState, variance: float) -> None:
        if not np.isfinite(variance) or variance < 0:
            raise ValueError(f"latent_noise_variance must be a finite number >= 0, got {variance!r}")
        if state.scheduler_class not in _SIGMA_SAMPLERS:
            raise ValueError(f"analog noise matching needs an Euler-type (sigma-parameterised) scheduler "
                             f"({', '.join(_SIGMA_SAMPLERS)}); the state uses {state.scheduler_class}")
        k = state.step
        if k >= state.num_inference_steps or variance == 0:
            return
        sigma_k = float(sched.sigmas[k])
        sigma_new = float(np.sqrt(sigma_k ** 2 + variance))
        t_new = sigma_to_timestep(sigma_new, sched.alphas_cumprod)
        sched.sigmas = sched.sigmas.clone()
        sched.sigmas[k] = sigma_new
        sched.timesteps = sched.timesteps.clone()
        sched.timesteps[k] = t_new

    def matched_sigma(self, state: IntermediateState, latent_noise_variance: float) -> tuple[float, float, float]:
        """``(sigma_k, sigma', t')``: the nominal noise level, the matched one and its timestep."""
        sched = self._scheduler_from_state(state)
        sigma_k = float(sched.sigmas[state.step])
        sigma_new = float(np.sqrt(sigma_k ** 2 + latent_noise_variance))
        return sigma_k, sigma_new, sigma_to_timestep(sigma_new, sched.alphas_cumprod)

    def finish(self, state: IntermediateState, prompt: str | list[str] | None = None,
               latent_noise_variance: float | None = None, strict: bool = False, output_type: str = "np"):
        """Run the remaining steps with ``prompt`` and decode.

        Returns ``np.uint8`` ``[H, W, 3]`` for a batch-1 state with a string
        prompt (or None), else ``[B, H, W, 3]`` (a string prompt is used for
        every sample of a batched state). See :meth:`resume` for the
        arguments; a state that cannot be resumed exactly (or whose latents
        are not finite) raises :class:`~pipeline.state.StateError` (a
        ``ValueError``). ``output_type``: see the class docstring.
        """
        self._check_output_type(output_type)
        final = self.resume(state, prompt, None, latent_noise_variance, strict)
        single = final.batch_size == 1 and (isinstance(prompt, str) or prompt is None)
        return self._output(final.latents, single, output_type)

    def generate(self, prompt: str | list[str], num_inference_steps: int = 11, seed: int | list[int] = 0,
                 guidance_scale: float = 7.5, scheduler: str | None = None,
                 negative_prompt: str | None = None, generator=None, output_type: str = "np"):
        """Uninterrupted generation (the reference): all ``N`` steps and decode, same loop.

        Arguments as :meth:`shared`; ``output_type`` as in the class docstring.
        """
        prompts = self._prompts(prompt)
        self._check_output_type(output_type)
        run, _ = self._start(prompts, num_inference_steps, seed, guidance_scale, scheduler, negative_prompt,
                             generator)
        self._denoise(run, 0, len(run.scheduler.timesteps))   # N, or PNDM's N + warm-up steps
        return self._output(run.latents, isinstance(prompt, str), output_type)
