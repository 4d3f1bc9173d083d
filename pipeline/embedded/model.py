"""Architecture of the project's embedded Stable-Diffusion-format model.

One place for the component configs (VAE, UNet, text encoder, tokenizer,
scheduler) of the small model the project trains on procedural scenes
(:mod:`pipeline.embedded.scenes`) and ships in ``pipeline/models/distdiff-tiny-sd``.
The same builders make *tiny random* pipelines for tests.

Example
-------
>>> from pipeline.embedded.model import build_pipeline, EmbeddedModelConfig
>>> pipe = build_pipeline(EmbeddedModelConfig.tiny(), seed=0)
>>> type(pipe).__name__
'StableDiffusionPipeline'
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from .scenes import vocabulary

#: special tokens of the word-level tokenizer
PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<|startoftext|>", "<|endoftext|>"


@dataclass
class EmbeddedModelConfig:
    """Sizes of the embedded model (all components).

    ``image_size`` [pixel] is the side of the RGB image; the VAE down-samples by
    ``2 ** (len(vae_channels) - 1)``.
    """

    image_size: int = 64
    vae_channels: tuple[int, ...] = (16, 32, 64)
    latent_channels: int = 4
    unet_channels: tuple[int, ...] = (48, 96, 96)
    unet_layers_per_block: int = 1
    unet_attention_head_dim: int = 8
    unet_norm_groups: int = 16
    text_hidden_size: int = 64
    text_layers: int = 2
    text_heads: int = 4
    max_prompt_tokens: int = 16
    extra_words: list[str] = field(default_factory=list)

    @classmethod
    def tiny(cls) -> "EmbeddedModelConfig":
        """A very small configuration for tests (random weights, fast)."""
        return cls(image_size=32, vae_channels=(8, 16), unet_channels=(16, 32), unet_norm_groups=8,
                   unet_attention_head_dim=4, text_hidden_size=32, text_layers=1, text_heads=2)

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** (len(self.vae_channels) - 1)

    def to_dict(self) -> dict:
        return asdict(self)


def build_tokenizer(config: EmbeddedModelConfig):
    """Word-level tokenizer over the scene vocabulary, as a transformers fast tokenizer.

    Case and punctuation are normalised away (``"Lemon,"`` is ``lemon``);
    unknown words map to ``<unk>``; every prompt is wrapped in BOS/EOS and padded
    to ``config.max_prompt_tokens``.
    """
    from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    words = [PAD, UNK, BOS, EOS] + vocabulary() + sorted(set(config.extra_words) - set(vocabulary()))
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(WordLevel(vocab, unk_token=UNK))
    # case and punctuation never make a word unknown: "Lemon," -> "lemon"
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(),
                                           normalizers.Replace(Regex(r"[^\w\s]"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", special_tokens=[(BOS, vocab[BOS]), (EOS, vocab[EOS])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=PAD,
                                   unk_token=UNK, model_max_length=config.max_prompt_tokens)


def build_components(config: EmbeddedModelConfig, seed: int = 0) -> dict:
    """Fresh (randomly initialised, seeded) components of a StableDiffusionPipeline."""
    from diffusers import AutoencoderKL, EulerAncestralDiscreteScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = build_tokenizer(config)
    n_vae = len(config.vae_channels)
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=config.latent_channels,
        down_block_types=("DownEncoderBlock2D",) * n_vae, up_block_types=("UpDecoderBlock2D",) * n_vae,
        block_out_channels=tuple(config.vae_channels), layers_per_block=1,
        norm_num_groups=min(8, config.vae_channels[0]), sample_size=config.image_size)
    n_unet = len(config.unet_channels)
    down = ("CrossAttnDownBlock2D",) * (n_unet - 1) + ("DownBlock2D",)
    up = ("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (n_unet - 1)
    unet = UNet2DConditionModel(
        sample_size=config.latent_size, in_channels=config.latent_channels, out_channels=config.latent_channels,
        layers_per_block=config.unet_layers_per_block, block_out_channels=tuple(config.unet_channels),
        down_block_types=down, up_block_types=up, cross_attention_dim=config.text_hidden_size,
        attention_head_dim=config.unet_attention_head_dim, norm_num_groups=config.unet_norm_groups)
    text_config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=config.text_hidden_size,
        intermediate_size=4 * config.text_hidden_size, num_hidden_layers=config.text_layers,
        num_attention_heads=config.text_heads, max_position_embeddings=config.max_prompt_tokens,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id)
    text_encoder = CLIPTextModel(text_config)
    from ..split import quiet_upstream

    # Stable Diffusion v1's noise schedule with the paper's sampler (Euler Ancestral)
    with quiet_upstream():
        scheduler = EulerAncestralDiscreteScheduler(
            num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
            prediction_type="epsilon", timestep_spacing="linspace", steps_offset=1)
    return dict(vae=vae, unet=unet, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=scheduler)


def assemble_pipeline(components: dict):
    """A diffusers ``StableDiffusionPipeline`` from components (no safety checker)."""
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline(**components, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def build_pipeline(config: EmbeddedModelConfig | None = None, seed: int = 0):
    """A randomly initialised pipeline of this architecture (tests, training start)."""
    pipe = assemble_pipeline(build_components(config or EmbeddedModelConfig(), seed=seed))
    pipe.set_progress_bar_config(disable=True)
    return pipe


#: the model names that mean a randomly initialised pipeline (smoke tests, CLI ``--model tiny-random``)
RANDOM_MODELS = {"tiny-random": EmbeddedModelConfig.tiny, "embedded-random": EmbeddedModelConfig}


def random_pipeline(name: str = "tiny-random", seed: int = 0, device: str = "cpu"):
    """The one builder of the named random pipelines: ``"tiny-random"`` (tests, doctests) or ``"embedded-random"``.

    >>> random_pipeline().unet.config.sample_size
    16
    """
    if name not in RANDOM_MODELS:
        raise ValueError(f"random model {name!r} is unknown; allowed: {sorted(RANDOM_MODELS)}")
    return build_pipeline(RANDOM_MODELS[name](), seed=seed).to(device)
