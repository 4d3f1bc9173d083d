"""The collaborative chain: shared steps -> codec -> link -> codec -> each receiver finishes.

:class:`CollaborativeChain` wires :mod:`pipeline` + :mod:`latent_codec` +
:mod:`phy` for one group: the sender runs the shared steps with the shared
prompt, the state's latents are compressed and sent to every receiver over
its own realisation of the link (digital: any code, modulation, channel and
MCS of :class:`phy.LinkConfig`; analog: power-normalised complex symbols;
lossless: neither quantisation nor channel), decoded (soft from LLRs or
hard), sanitised, and each receiver finishes with its own prompt. For every
receiver a :class:`ReceiverRecord` holds the image, the error-free reference
(the receiver's image when the state arrives exactly as sent), optionally
the image the receiver would have generated alone, and the metrics.

Sender states, reference images and stand-alone images are memoised per
process (:data:`pipeline.cache.MEMO`, keyed by :func:`pipeline.cache.state_key`
and the prompts), so sweeping SNRs, codecs or links for the same group never
recomputes the shared steps or the references. An optional
:class:`~pipeline.cache.StateCache` adds the semantic (near-duplicate prompt)
reuse of the paper's edge cache.

Prompt adherence is measured by a *judge* given as an object
(:class:`pipeline.judge.Judge`; none: the adherence columns stay empty); the
experiments layer passes the shipped one. A receiver whose header is lost
generates alone, and the compute columns count it so
(:class:`~pipeline.compute.ComputeAccount` ``num_fallbacks``).

Randomness: the link's noise uses ``torch.Generator`` seeded from
``(seed, receiver index)`` so every receiver sees an independent, reproducible
channel; the same config and seed give bit-identical records.

Airtime [s] = channel uses / ``bandwidth_hz`` (one complex symbol per second
per hertz, i.e. Nyquist signalling without guard bands or pilots overhead
beyond those the link itself counts).

Example
-------
>>> from pipeline.embedded.model import random_pipeline
>>> from pipeline.chain import ChainConfig, CollaborativeChain
>>> pipe = random_pipeline()
>>> cfg = ChainConfig(num_inference_steps=4, num_shared_steps=2, transmission="lossless")
>>> rec = CollaborativeChain(pipe, cfg).run("a red apple on a wooden table",
...                                        ["a yellow lemon on a wooden table"], seed=0)[0]
>>> bool((rec.image == rec.reference_image).all()), rec.to_row()["psnr_db"]
(True, inf)
"""

from __future__ import annotations


import inspect
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from latent_codec import CodecConfig
from phy import LinkConfig
from phy.config import format_validation_error
from phy.seeding import derive_generator

from .cache import MEMO, clear_memo, state_key
from .chain_rules import check_chain_rules
from .compute import ComputeAccount
from .judge import Judge
from .metrics import image_metrics
from .split import SCHEDULERS, SplitDiffusion, scheduler_name_of
from .state import IntermediateState
from .transport import build_transport

__all__ = ["ChainConfig", "ChainConfigError", "CollaborativeChain", "ReceiverRecord", "clear_memo"]



def _default_codec() -> CodecConfig:
    return CodecConfig(name="uniform", bits=8)


class ChainConfigError(ValueError):
    """A one-line error about an invalid :class:`ChainConfig` (names the field and the problem)."""


class ChainConfig(BaseModel):
    """Configuration of one collaborative chain (a typo in a key is an error).

    Fields
    ------
    num_inference_steps, num_shared_steps : int
        ``N`` and ``k`` (``0 <= k <= N``).
    guidance_scale : float
        Classifier-free guidance weight.
    scheduler : str | None
        One of :data:`pipeline.split.SCHEDULERS`; None: the pipeline's own ``pipe.scheduler``.
    transmission : "digital" | "analog" | "lossless" | "learned"
        How the latents cross: bits over :class:`phy.DigitalLink`, complex
        symbols over :class:`phy.SymbolLink` (codec ``analog``), exactly, or
        a learned JSCC codec's symbols over :class:`phy.SymbolLink`
        (:class:`~pipeline.transport.LearnedTransport`; ``codec`` unused).
    codec : latent_codec.CodecConfig
        The latent codec (``analog`` for analog transmission; digital codecs otherwise).
    link : phy.LinkConfig
        Code, modulation, MCS, channel, receiver.
    snr_db : float | None
        Es/N0 per complex symbol at the receiver [dB]; needed unless the
        channel is ``bsc`` or the transmission lossless.
    soft_decoding : bool
        Decode the latents from LLRs (MMSE per value) rather than hard bits.
    analog_noise_matching : bool
        Analog only: resume at the noise level that matches the latent noise
        the channel added (Euler-type schedulers); the record then also holds
        ``mse/psnr_db/ssim_nominal_resume``, the same received latents
        resumed at the nominal step, for comparison.
    header_over_link : bool
        Send the codec header (repetition-protected) over the same link; a
        corrupted header makes the receiver generate alone. False: header error-free.
    control_link : "same_link" | "robust"
        Analog only: the channel that carries the header. ``"same_link"``: the
        data link's (fixed) configuration; ``"robust"``: LDPC at MCS 0 of the
        link's table (the most robust control channel), one code block sized to
        the header, counted in the airtime, and no header repetition unless the
        codec sets ``header_repetition`` (see :class:`pipeline.transport.AnalogTransport`).
    bandwidth_hz : float | None
        Channel bandwidth [Hz] for the airtime column.
    compare_alone : bool
        Also generate each receiver's image alone (all ``N`` steps, its own
        prompt, same seed) and report metrics against it.
    classify : bool
        Measure prompt adherence with the chain's judge (when one is given).
    bandwidth_ratio : float
        Learned only: complex channel uses per latent value (0.5, 0.25, 0.125, 0.0625).
    learned_model : str | None
        Learned only: the codec folder (``LearnedCodec.save_pretrained``); None:
        the shipped ``pipeline/models/jscc-rho<bandwidth_ratio>``.
    batch_receivers : bool
        Finish the receivers in one UNet batch (:meth:`CollaborativeChain.run`:
        the group's; :meth:`~CollaborativeChain.run_groups`: every group's),
        likewise their error-free references and their images generated
        alone: 1.2-1.35x less UNet time on a CPU for 2-6 receivers. Batched
        convolutions round differently from batch-1 ones, so the images
        differ from the batch-1 images (which equal diffusers' own pipeline
        call bit for bit) in the last bits; they stay deterministic, since the
        batch is always the same set of receivers. Not with
        ``analog_noise_matching`` (one noise level per receiver): those
        receivers are finished one by one.
    """

    model_config = ConfigDict(extra="forbid")

    num_inference_steps: int = Field(11, ge=1, le=1000)
    num_shared_steps: int = Field(5, ge=0)
    guidance_scale: float = Field(7.5, ge=0.0)
    scheduler: Literal[tuple(SCHEDULERS)] | None = "euler_ancestral"  # type: ignore[valid-type]
    transmission: Literal["digital", "analog", "lossless", "learned"] = "digital"
    codec: CodecConfig = Field(default_factory=_default_codec)
    link: LinkConfig = Field(default_factory=LinkConfig)
    snr_db: float | None = None
    soft_decoding: bool = True
    analog_noise_matching: bool = False
    header_over_link: bool = True
    control_link: Literal["same_link", "robust"] = "same_link"
    bandwidth_hz: float | None = Field(None, gt=0.0)
    compare_alone: bool = True
    classify: bool = True
    bandwidth_ratio: float = Field(0.125, gt=0.0, le=2.0)  # learned: complex channel uses per latent value
    learned_model: str | None = None  # learned: codec folder; None: the shipped pipeline/models/jscc-rho<ratio>
    batch_receivers: bool = False

    def __init__(self, **data) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise ChainConfigError(format_validation_error(exc, "ChainConfig")) from None

    @classmethod
    def model_validate(cls, obj, *args, **kwargs) -> "ChainConfig":  # type: ignore[override]
        if isinstance(obj, cls):
            return obj
        if isinstance(obj, dict) and not args and not kwargs:
            return cls(**obj)
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise ChainConfigError(format_validation_error(exc, "ChainConfig")) from None

    @model_validator(mode="after")
    def _check(self) -> "ChainConfig":
        check_chain_rules(dict(
            num_inference_steps=self.num_inference_steps, num_shared_steps=self.num_shared_steps,
            transmission=self.transmission, codec_name=self.codec.name,
            codec_decoding=self.codec.decoding if "decoding" in self.codec.model_fields_set else None,
            soft_decoding=self.soft_decoding, analog_noise_matching=self.analog_noise_matching,
            scheduler=self.scheduler, snr_db=self.snr_db, channel=self.link.channel))
        return self




# ------------------------------------------------------------------------------------- records
@dataclass
class ReceiverRecord:
    """The outcome for one receiver.

    ``image``/``reference_image``/``alone_image``: ``np.uint8 [H, W, 3]``
    (``alone_image`` None unless ``compare_alone``). ``metrics``, ``link``,
    ``payload``, ``compute``, ``info``: flat dicts of scalars merged by
    :meth:`to_row`.
    """

    receiver_prompt: str
    image: np.ndarray
    reference_image: np.ndarray
    alone_image: np.ndarray | None = None
    metrics: dict = field(default_factory=dict)
    link: dict = field(default_factory=dict)
    payload: dict = field(default_factory=dict)
    compute: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def to_row(self) -> dict:
        """Flat scalar columns, units in the names (``psnr_db``, ``airtime_s``, ...)."""
        row = {}
        for part in (self.info, self.metrics, self.link, self.payload, self.compute):
            row.update(part)
        return row


# ------------------------------------------------------------------------------------- the chain
class CollaborativeChain:
    """Shared steps on the sender, transmission, and each receiver finishing with its own prompt.

    Parameters
    ----------
    pipe : diffusers.StableDiffusionPipeline
        The model (same on sender and receivers, as in the paper).
    config : ChainConfig | dict
    state_cache : pipeline.cache.StateCache | None
        Optional semantic cache of sender states (near-duplicate shared
        prompts reuse a cached state; its hit counts appear in the rows).
    judge : pipeline.judge.Judge | None
        Prompt adherence of each receiver's image, its reference and its
        stand-alone image (columns ``classified_as``, ``adherent``,
        ``judge_abstained``, ``reference_adherent``, ``alone_adherent``);
        None (or ``config.classify`` False): those columns are None.
    embedder : callable | None
        ``list[str] -> float32 [B, D]`` prompt embedder for a ``state_cache``
        that has none (None: the cache's default, the model's text encoder).
    transport : pipeline.transport.Transport | None
        How the latents reach each receiver; None builds the one ``config``
        describes (:func:`pipeline.transport.build_transport`). Any object
        with ``send(latents, *, generator) -> Received`` works (e.g. a
        learned transport); one whose ``send`` also takes
        ``control_generator`` gets a second, independent generator.
    """

    def __init__(self, pipe, config: ChainConfig | dict | None = None, state_cache=None, transport=None, *,
                 judge: Judge | None = None, embedder=None):
        self.split = pipe if isinstance(pipe, SplitDiffusion) else SplitDiffusion(pipe)
        self.config = ChainConfig.model_validate(config or {}) if not isinstance(config, ChainConfig) else config
        if judge is not None and not isinstance(judge, Judge):
            raise ValueError(f"judge must follow pipeline.judge.Judge (a judge(images, prompts) method), "
                             f"got {type(judge).__name__}")
        if embedder is not None and not callable(embedder):
            raise ValueError(f"embedder must be callable (list[str] -> float32 [B, D]), got {type(embedder).__name__}")
        self.judge = judge
        self.embedder = embedder
        if state_cache is not None and getattr(state_cache, "embedder", None) is None and embedder is not None:
            state_cache.embedder = embedder
        self.state_cache = state_cache
        if transport is not None and not callable(getattr(transport, "send", None)):
            raise ValueError(f"transport must have a send(latents, *, generator) method (pipeline.transport."
                             f"Transport), got {type(transport).__name__}")
        self.transport = build_transport(self.config) if transport is None else transport
        self.codec = getattr(self.transport, "codec", None)
        params = inspect.signature(self.transport.send).parameters
        self._send_takes_control = "control_generator" in params or any(
            p.kind == p.VAR_KEYWORD for p in params.values())

    # ---------------------------------------------------------------- memoised
    @property
    def scheduler_name(self) -> str:
        """The scheduler the chain runs: the configured one, or the pipeline's own."""
        return self.config.scheduler or scheduler_name_of(self.split.pipe.scheduler)

    def _key(self, prompt: str, seed: int, k: int | None = None) -> tuple:
        c = self.config
        return state_key(self.split.fingerprint, self.split.device, self.scheduler_name, c.num_inference_steps,
                         c.num_shared_steps if k is None else k, seed, c.guidance_scale) + (prompt,)

    def sender_state(self, shared_prompt: str, seed: int) -> tuple[IntermediateState, bool]:
        """The sender's state after the shared steps (memoised); ``(state, semantic_cache_hit)``."""
        c = self.config
        if self.state_cache is not None:
            return self.state_cache.get_or_compute(self.split, shared_prompt, c.num_inference_steps,
                                                   c.num_shared_steps, seed, c.guidance_scale, c.scheduler)
        state = MEMO["state"].get_or(self._key(shared_prompt, seed), lambda: self.split.shared(
            shared_prompt, c.num_inference_steps, c.num_shared_steps, seed=seed,
            guidance_scale=c.guidance_scale, scheduler=c.scheduler))
        return state, False

    def reference(self, state: IntermediateState, receiver_prompt: str) -> np.ndarray:
        """The receiver's image from the state exactly as sent (memoised)."""
        key = (self._key(state.prompts[0], state.seeds[0], state.step), receiver_prompt)
        return MEMO["reference"].get_or(key, lambda: self.split.finish(state, receiver_prompt))

    def _batched(self, num_images: int) -> bool:
        """Whether ``num_images`` receivers' images are made in one UNet batch (``batch_receivers``)."""
        return self.config.batch_receivers and num_images > 1

    def references(self, groups: list[tuple[IntermediateState, list[str]]]) -> list[np.ndarray]:
        """Every receiver's reference image, groups given as ``(state, receiver prompts)``, in order; one
        batch of all of them when ``batch_receivers`` (memoised per batch)."""
        if not self._batched(sum(len(p) for _, p in groups)):
            return [self.reference(state, p) for state, prompts in groups for p in prompts]
        key = tuple((self._key(st.prompts[0], st.seeds[0], st.step), tuple(p)) for st, p in groups) + ("batch",)
        batch = IntermediateState.stack([st.repeat(len(p)) for st, p in groups])
        prompts = [x for _, p in groups for x in p]
        return list(MEMO["reference"].get_or(key, lambda: self.split.finish(batch, prompts)))

    def alone(self, receiver_prompt: str, seed: int) -> np.ndarray:
        """The receiver's image generated alone (all ``N`` steps, same seed; memoised)."""
        c = self.config
        return MEMO["alone"].get_or(self._key(receiver_prompt, seed, c.num_inference_steps) + ("alone",),
                                    lambda: self.split.generate(
            receiver_prompt, c.num_inference_steps, seed=seed, guidance_scale=c.guidance_scale,
            scheduler=c.scheduler))

    def alones(self, receiver_prompts: list[str], seed: int) -> list[np.ndarray]:
        """Every receiver's image generated alone: one batch when ``batch_receivers`` (memoised per batch)."""
        c = self.config
        if not self._batched(len(receiver_prompts)):
            return [self.alone(p, seed) for p in receiver_prompts]
        key = self._key("", seed, c.num_inference_steps) + (tuple(receiver_prompts), "alone", "batch")
        return list(MEMO["alone"].get_or(key, lambda: self.split.generate(
            list(receiver_prompts), c.num_inference_steps, seed=seed, guidance_scale=c.guidance_scale,
            scheduler=c.scheduler)))

    def _finish_received(self, received: list[tuple[IntermediateState, torch.Tensor | None]], prompts: list[str],
                         variances: list[float | None]) -> list[np.ndarray | None]:
        """Each receiver's image from its ``(sender state, received latents)`` (None where its header was lost)."""
        todo = [r for r, (_, rx) in enumerate(received) if rx is not None]
        images: list[np.ndarray | None] = [None] * len(received)
        states = {r: received[r][0].with_latents(received[r][1].to(received[r][0].latents.dtype)) for r in todo}
        if self._batched(len(todo)) and not self.config.analog_noise_matching:
            batch = IntermediateState.stack([states[r] for r in todo])
            for r, image in zip(todo, self.split.finish(batch, [prompts[r] for r in todo])):
                images[r] = image
            return images
        for r in todo:
            images[r] = self.split.finish(states[r], prompts[r], latent_noise_variance=variances[r])
        return images

    # ---------------------------------------------------------------- transmission
    def _generator(self, seed: int, receiver: int) -> torch.Generator:
        return derive_generator(f"distdiff-link/{seed}/{receiver}")

    def _transmit(self, state: IntermediateState, seed: int, receiver: int) -> tuple[torch.Tensor | None, dict, dict]:
        """Latents as received by ``receiver`` (None if it cannot decode), link stats, payload stats.

        The transport does the work; the chain gives it the receiver's link
        generator (and a control-link one), then replaces any non-finite
        received value (counted in ``num_repaired``): the UNet never sees NaN/Inf.
        """
        extra = {"control_generator": self._generator(seed, receiver + 1_000_000)} if self._send_takes_control else {}
        rx = self.transport.send(state.latents.float(), generator=self._generator(seed, receiver), **extra)
        stats = dict(rx.link_stats)
        if rx.latents is None:
            return None, stats, dict(rx.payload_stats)
        latents = rx.latents.float()
        bad = ~torch.isfinite(latents)
        if bad.any():
            latents = torch.nan_to_num(latents, nan=0.0, posinf=0.0, neginf=0.0)
            stats["num_repaired"] = int(stats.get("num_repaired", 0)) + int(bad.sum())
        return latents, stats, dict(rx.payload_stats)

    # ---------------------------------------------------------------- judging
    @staticmethod
    def _judge(judge, image, reference, alone, prompt: str) -> dict:
        """Adherence columns from ``judge.judge`` (all None without a judge)."""
        if judge is None:
            return dict(classified_as=None, adherent=None, judge_abstained=None, reference_adherent=None,
                        alone_adherent=None)
        imgs = [image, reference] + ([alone] if alone is not None else [])
        verdicts = list(judge.judge(np.stack(imgs), [prompt] * len(imgs)))
        if len(verdicts) != len(imgs):
            raise ValueError(f"the judge returned {len(verdicts)} verdicts for {len(imgs)} images")
        return dict(classified_as=verdicts[0].label, adherent=bool(verdicts[0].adherent),
                    judge_abstained=bool(verdicts[0].abstained), reference_adherent=bool(verdicts[1].adherent),
                    alone_adherent=bool(verdicts[2].adherent) if alone is not None else None)

    # ---------------------------------------------------------------- run
    def run(self, shared_prompt: str, receiver_prompts: list[str] | str, seed: int = 0) -> list[ReceiverRecord]:
        """Run the chain for one group; one :class:`ReceiverRecord` per receiver prompt."""
        return self.run_groups([(shared_prompt, receiver_prompts)], seed)[0]

    def run_groups(self, groups: list[tuple[str, list[str] | str]], seed: int = 0) -> list[list[ReceiverRecord]]:
        """Run the chain for several groups ``(shared_prompt, receiver_prompts)`` of one seed; per group, one
        :class:`ReceiverRecord` per receiver prompt. Each group is :meth:`run` alone, except that with
        ``batch_receivers`` the receivers of all the groups finish in one UNet batch (so do their references
        and their images generated alone)."""
        if not isinstance(groups, (list, tuple)) or not groups:
            raise ValueError("groups must be a non-empty list of (shared_prompt, receiver_prompts)")
        checked = []
        for shared_prompt, receiver_prompts in groups:
            if isinstance(receiver_prompts, str):
                receiver_prompts = [receiver_prompts]
            if not isinstance(shared_prompt, str) or not shared_prompt.strip():
                raise ValueError(f"shared_prompt must be a non-empty string, got {shared_prompt!r}")
            if not receiver_prompts or not all(isinstance(p, str) and p.strip() for p in receiver_prompts):
                raise ValueError("receiver_prompts must be a non-empty list of non-empty strings")
            checked.append((shared_prompt, list(receiver_prompts)))
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seed must be an int, got {seed!r}")
        c, seed = self.config, int(seed)
        senders = [self.sender_state(shared_prompt, seed) for shared_prompt, _ in checked]
        # receivers are numbered within their group (their link generators do not depend on the other groups)
        transmitted = [[self._transmit(state, seed, r) for r in range(len(prompts))]
                       for (state, _), (_, prompts) in zip(senders, checked)]
        flat_prompts = [p for _, prompts in checked for p in prompts]
        flat_rx = [(state, rx) for (state, _), group in zip(senders, transmitted) for rx, _, _ in group]
        flat_tx = [t for group in transmitted for t in group]
        references = self.references([(state, prompts) for (state, _), (_, prompts) in zip(senders, checked)])
        if c.compare_alone:
            alones = self.alones(flat_prompts, seed)
        else:  # only the receivers that fell back need their image generated alone
            alones = [self.alone(p, seed) if rx is None else None for p, (rx, _, _) in zip(flat_prompts, flat_tx)]
        variances = [link_stats.get("latent_noise_var", 0.0) if c.analog_noise_matching else None
                     for _, link_stats, _ in flat_tx]
        finished = self._finish_received(flat_rx, flat_prompts, variances)
        out, offset = [], 0
        for (state, cache_hit), (_, receiver_prompts), group in zip(senders, checked, transmitted):
            n = len(receiver_prompts)
            out.append(self._records(state, cache_hit, receiver_prompts, group, references[offset:offset + n],
                                     alones[offset:offset + n], finished[offset:offset + n],
                                     variances[offset:offset + n]))
            offset += n
        return out

    def _records(self, state, cache_hit, receiver_prompts, transmitted, references, alones, finished,
                 variances) -> list[ReceiverRecord]:
        c = self.config
        # one accounting for the group: receivers whose header was lost generated alone
        compute = ComputeAccount(c.num_inference_steps, c.num_shared_steps, len(receiver_prompts),
                                 self.split.uses_cfg(c.guidance_scale),
                                 num_fallbacks=sum(rx is None for rx, _, _ in transmitted))
        judge = self.judge if c.classify else None
        records = []
        for r, prompt in enumerate(receiver_prompts):
            reference = references[r]
            rx, link_stats, pay = transmitted[r]
            comp = compute.to_row(fallback=rx is None)
            info = {"transmission": c.transmission, "snr_db": c.snr_db, "num_inference_steps": c.num_inference_steps,
                    "num_shared_steps": c.num_shared_steps, "num_receivers": len(receiver_prompts),
                    "state_cache_hit": cache_hit, "fallback_generate_alone": rx is None}
            if rx is None:  # header lost: the receiver cannot use the state and generates alone
                image = alones[r]
            else:
                image = finished[r]
                if c.analog_noise_matching:
                    sk, sm, tm = self.split.matched_sigma(state, variances[r])
                    info.update(nominal_sigma=sk, matched_sigma=sm, matched_timestep=tm)
            metrics = image_metrics(image, reference)
            if rx is not None and c.analog_noise_matching:  # the comparison: same received latents, nominal step
                nominal = self.split.finish(state.with_latents(rx.to(state.latents.dtype)), prompt)
                metrics.update({f"{k}_nominal_resume": v for k, v in image_metrics(nominal, reference).items()})
            link = dict(link_stats)
            nb = link.get("num_bits") or 0
            link["ber"] = link["bit_errors"] / nb if nb else 0.0
            if link.get("num_blocks"):
                link["bler"] = (link.get("block_errors") or 0) / link["num_blocks"]
            cu = link.get("channel_uses") or 0
            link["airtime_s"] = cu / c.bandwidth_hz if c.bandwidth_hz else None
            link["channel_uses_per_pixel"] = cu / (image.shape[0] * image.shape[1])
            # complex channel uses per latent value, every transport alike (the learned codec's rho, header included)
            link["channel_uses_per_latent_value"] = cu / state.latents[0].numel()
            # what crossed, every transport alike: received against sent latents [latent units^2] (None: fell back)
            link["latent_mse"] = None if rx is None else float((rx.float() - state.latents.float()).pow(2).mean())
            if "spectral_efficiency" in link:
                link["spectral_efficiency_bits_per_symbol"] = link.pop("spectral_efficiency")
            alone = alones[r] if c.compare_alone else None
            if alone is not None:
                metrics.update({f"{k}_vs_alone": v for k, v in image_metrics(image, alone).items()})
            metrics.update(self._judge(judge, image, reference, alone, prompt))
            records.append(ReceiverRecord(prompt, image, reference, alone, metrics, link, pay, comp, info))
        return records
