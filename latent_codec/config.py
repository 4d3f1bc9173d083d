"""Codec factory and the pydantic configuration embedded in experiment YAMLs."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .analog import AnalogCodec
from .base import CODECS, LatentCodec, codec_init_kwargs
from .codecs import DIGITAL_CODECS
from .header import DEFAULT_HEADER_REPETITION, Header

__all__ = ["BUILTIN_CODECS", "CodecConfig", "make_codec", "codec_from_header", "codec_kwargs_allowed"]

BUILTIN_CODECS: tuple[type[LatentCodec], ...] = (*DIGITAL_CODECS, AnalogCodec)
"""The codecs shipped with distdiff, in registry order. Each module registers its
codec with :func:`latent_codec.base.register_codec` when imported; importing them
here is what puts every built-in name into :data:`latent_codec.CODECS` before
:class:`CodecConfig` derives its allowed names from the registry."""


def codec_kwargs_allowed(name: str) -> tuple[str, ...]:
    """Constructor arguments a registered codec takes (from its signature, not a hand-kept list).

    Parameters
    ----------
    name : str
        A name in :data:`latent_codec.CODECS`.

    Returns
    -------
    tuple of str

    Example
    -------
    >>> codec_kwargs_allowed("lloydmax")
    ('bits', 'soft_prior', 'bit_order', 'bits_per_symbol', 'header_repetition')
    """
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; allowed: {', '.join(CODECS)}")
    return tuple(codec_init_kwargs(CODECS[name]))


def make_codec(name: str, **kwargs) -> LatentCodec:
    """Build a codec by name.

    Parameters
    ----------
    name : str
        ``"float16"``, ``"uniform"``, ``"lloydmax"`` or ``"analog"``.
    **kwargs
        Constructor arguments of that codec (see :func:`codec_kwargs_allowed`): e.g.
        ``bits``, ``clip``, ``bit_order``, ``bits_per_symbol``,
        ``header_repetition``, ``soft_prior``, ``compression_ratio``,
        ``selection``, ``num_bands``.

    Returns
    -------
    LatentCodec

    Raises
    ------
    ValueError
        Unknown name (the message lists the allowed ones), an argument the
        codec does not take, or a bad value.

    Example
    -------
    >>> make_codec("uniform", bits=6, clip="auto")
    UniformQuantizerCodec(clip='auto', bits_per_value=6, bit_order='msb_first', header_repetition=5)
    """
    allowed = codec_kwargs_allowed(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"codec {name!r} does not take {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    return CODECS[name](**kwargs)


def codec_from_header(header: Header, *, header_repetition: int = DEFAULT_HEADER_REPETITION) -> LatentCodec:
    """Build the codec that decodes a given header.

    Parameters
    ----------
    header : Header
    header_repetition : int

    Returns
    -------
    LatentCodec

    Example
    -------
    >>> import torch
    >>> p = CODECS["lloydmax"](bits=3).compress(torch.randn(1, 4, 8, 8))
    >>> codec_from_header(p.header)
    LloydMaxCodec(soft_prior='gaussian', bits_per_value=3, bit_order='msb_first', header_repetition=5)
    """
    if header.codec not in CODECS:
        raise ValueError(f"the header names codec {header.codec!r}, which is not registered")
    return CODECS[header.codec].from_header(header, header_repetition=header_repetition)


class CodecConfig(BaseModel):
    """Configuration of a latent codec, for experiment YAML files.

    Unknown keys are an error (``extra="forbid"``), and so is a key that does
    not apply to the chosen codec unless it holds its default value (so a
    dumped config validates again). The names come from the registry
    :data:`latent_codec.CODECS` and which keys apply from each codec's
    constructor signature. ``decoding`` (digital codecs: decode from LLRs or
    from hard bits) and ``estimator`` (one of the codec's ``estimators``:
    digital ``mmse``/``hard``/``sample`` for code blocks whose CRC failed,
    analog ``mmse``/``unbiased``) are receiver-side choices for the pipeline
    (``decompress(..., llrs=..., estimator=...)``); they do not change the
    codec object.

    Example
    -------
    >>> cfg = CodecConfig.model_validate({"name": "uniform", "bits": 6, "clip": "auto"})
    >>> cfg.build().bits_per_value
    6
    """

    model_config = ConfigDict(extra="forbid")

    name: Literal[tuple(CODECS)] = "uniform"  # type: ignore[valid-type]
    bits: int | None = Field(default=None, ge=1, le=16, description="bits per value (uniform 1..16, lloydmax 1..10)")
    clip: Union[Literal["minmax", "auto"], float] = Field(default="minmax", description="uniform: range rule")
    soft_prior: Literal["gaussian", "uniform"] = "gaussian"
    bit_order: Literal["msb_first", "bitplane", "interleaved_by_importance"] = "msb_first"
    bits_per_symbol: int | None = Field(default=None, ge=1, le=16)
    compression_ratio: float = Field(default=1.0, gt=0.0, le=1.0)
    selection: Literal["lowpass", "identity"] = "lowpass"
    num_bands: int = Field(default=8, ge=1, le=255)
    power_allocation: Literal["equal", "optimal"] = Field(
        default="equal", description="analog: power per band, equal or the MSE-optimal linear allocation")
    design_snr_db: float | None = Field(default=None, allow_inf_nan=False,
                                        description="analog, power_allocation='optimal': design SNR [dB]")
    header_repetition: int = Field(default=DEFAULT_HEADER_REPETITION, ge=1, le=63)
    sanitize: bool = Field(default=True, description="float16: repair and range-clamp (False: the raw arm)")
    decoding: Literal["soft", "hard"] = "soft"
    estimator: Literal[tuple(dict.fromkeys(e for c in CODECS.values() for e in c.estimators))] = "mmse"  # type: ignore[valid-type]

    @model_validator(mode="after")
    def _check_applicable(self) -> "CodecConfig":
        cls = CODECS[self.name]
        applicable = set(codec_kwargs_allowed(self.name)) | {"name", "estimator"}
        if "mmse" in cls.estimators and "hard" in cls.estimators:  # decodes bits or LLRs
            applicable.add("decoding")
        if self.estimator not in cls.estimators:
            raise ValueError(f"estimator must be one of {cls.estimators} for codec {self.name!r}, "
                             f"got {self.estimator!r}")
        # a key that does not apply is an error unless it holds the default (so
        # that model_validate(model_dump()) round-trips)
        fields = type(self).model_fields
        misplaced = sorted(k for k in set(self.model_fields_set) - applicable
                           if getattr(self, k) != fields[k].default)
        if misplaced:
            raise ValueError(f"codec {self.name!r} does not use {', '.join(misplaced)}")
        if self.power_allocation == "optimal" and self.design_snr_db is None:
            raise ValueError("power_allocation='optimal' needs design_snr_db [dB]")
        if self.name == "lloydmax" and self.bits is not None and self.bits > 10:
            raise ValueError(f"bits must be in [1, 10] for lloydmax, got {self.bits}")
        if isinstance(self.clip, float) and not self.clip > 0:
            raise ValueError(f"clip must be 'minmax', 'auto' or a float > 0, got {self.clip}")
        return self

    def codec_kwargs(self) -> dict:
        """Constructor arguments of the configured codec (only those that apply)."""
        defaults = codec_init_kwargs(CODECS[self.name])
        out = {k: getattr(self, k) for k in defaults if k in type(self).model_fields}
        if "bits" in out and out["bits"] is None:
            out["bits"] = defaults["bits"]
        return out

    def build(self) -> LatentCodec:
        """Instantiate the codec."""
        return make_codec(self.name, **self.codec_kwargs())

