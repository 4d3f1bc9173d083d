"""Codec factory and the pydantic configuration embedded in experiment YAMLs."""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .analog import AnalogCodec
from .codecs import Float16Codec, LatentCodec, LloydMaxCodec, UniformQuantizerCodec
from .header import CODEC_NAMES, DEFAULT_HEADER_REPETITION, Header

__all__ = ["CodecConfig", "make_codec", "codec_from_header", "CODEC_CLASSES"]

CODEC_CLASSES = {
    "float16": Float16Codec,
    "uniform": UniformQuantizerCodec,
    "lloydmax": LloydMaxCodec,
    "analog": AnalogCodec,
}

_ALLOWED_KWARGS = {
    "float16": ("bit_order", "bits_per_symbol", "header_repetition"),
    "uniform": ("bits", "clip", "bit_order", "bits_per_symbol", "header_repetition"),
    "lloydmax": ("bits", "soft_prior", "bit_order", "bits_per_symbol", "header_repetition"),
    "analog": ("compression_ratio", "selection", "coefficient_order", "num_bands", "header_repetition"),
}


def make_codec(name: str, **kwargs) -> LatentCodec:
    """Build a codec by name.

    Parameters
    ----------
    name : str
        ``"float16"``, ``"uniform"``, ``"lloydmax"`` or ``"analog"``.
    **kwargs
        Constructor arguments of that codec (see ``_ALLOWED_KWARGS``): e.g.
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
    if name not in CODEC_CLASSES:
        raise ValueError(f"unknown codec {name!r}; allowed: {', '.join(CODEC_NAMES)}")
    unknown = sorted(set(kwargs) - set(_ALLOWED_KWARGS[name]))
    if unknown:
        raise ValueError(
            f"codec {name!r} does not take {', '.join(unknown)}; allowed: {', '.join(_ALLOWED_KWARGS[name])}"
        )
    return CODEC_CLASSES[name](**kwargs)


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
    >>> p = LloydMaxCodec(bits=3).compress(torch.randn(1, 4, 8, 8))
    >>> codec_from_header(p.header)
    LloydMaxCodec(soft_prior='gaussian', bits_per_value=3, bit_order='msb_first', header_repetition=5)
    """
    common = {"header_repetition": header_repetition}
    digital = dict(common, bit_order=header.bit_order,
                   bits_per_symbol=header.bits_per_symbol or None)
    if header.codec == "float16":
        return Float16Codec(**digital)
    if header.codec == "uniform":
        return UniformQuantizerCodec(header.bits_per_value, **digital)
    if header.codec == "lloydmax":
        return LloydMaxCodec(header.bits_per_value, **digital)
    if header.selection == "custom":
        raise ValueError("a custom coefficient order cannot be rebuilt from the header (only its hash is sent)")
    ratio = header.num_kept / header.num_values
    return AnalogCodec(ratio, selection=header.selection, num_bands=header.band_var.shape[1], **common)


class CodecConfig(BaseModel):
    """Configuration of a latent codec, for experiment YAML files.

    Unknown keys are an error (``extra="forbid"``), and so is a key that does
    not apply to the chosen codec unless it holds its default value (so a
    dumped config validates again). ``decoding`` and ``estimator`` are
    receiver-side choices for the pipeline (``decompress(..., soft=...)`` and
    ``AnalogCodec.decompress(..., estimator=...)``); they do not change the
    codec object.

    Example
    -------
    >>> cfg = CodecConfig.model_validate({"name": "uniform", "bits": 6, "clip": "auto"})
    >>> cfg.build().bits_per_value
    6
    """

    model_config = ConfigDict(extra="forbid")

    name: Literal["float16", "uniform", "lloydmax", "analog"] = "uniform"
    bits: int | None = Field(default=None, ge=1, le=16, description="bits per value (uniform 1..16, lloydmax 1..10)")
    clip: Union[Literal["minmax", "auto"], float] = Field(default="minmax", description="uniform: range rule")
    soft_prior: Literal["gaussian", "uniform"] = "gaussian"
    bit_order: Literal["msb_first", "bitplane", "interleaved_by_importance"] = "msb_first"
    bits_per_symbol: int | None = Field(default=None, ge=1, le=16)
    compression_ratio: float = Field(default=1.0, gt=0.0, le=1.0)
    selection: Literal["lowpass", "identity"] = "lowpass"
    num_bands: int = Field(default=8, ge=1, le=255)
    header_repetition: int = Field(default=DEFAULT_HEADER_REPETITION, ge=1, le=63)
    decoding: Literal["soft", "hard"] = "soft"
    estimator: Literal["mmse", "unbiased"] = "mmse"

    @model_validator(mode="after")
    def _check_applicable(self) -> "CodecConfig":
        applicable = set(_ALLOWED_KWARGS[self.name]) | {"name", "decoding", "estimator"}
        if self.name == "analog":
            applicable.discard("decoding")
        else:
            applicable.discard("estimator")
        # a key that does not apply is an error unless it holds the default (so
        # that model_validate(model_dump()) round-trips)
        fields = type(self).model_fields
        misplaced = sorted(k for k in set(self.model_fields_set) - applicable
                           if getattr(self, k) != fields[k].default)
        if misplaced:
            raise ValueError(f"codec {self.name!r} does not use {', '.join(misplaced)}")
        if self.name == "lloydmax" and self.bits is not None and self.bits > 10:
            raise ValueError(f"bits must be in [1, 10] for lloydmax, got {self.bits}")
        if isinstance(self.clip, float) and not self.clip > 0:
            raise ValueError(f"clip must be 'minmax', 'auto' or a float > 0, got {self.clip}")
        return self

    def codec_kwargs(self) -> dict:
        """Constructor arguments of the configured codec (only those that apply)."""
        keys = [k for k in _ALLOWED_KWARGS[self.name] if k != "coefficient_order"]
        out = {k: getattr(self, k) for k in keys}
        if "bits" in out and out["bits"] is None:
            out["bits"] = 8 if self.name == "uniform" else 4
        return out

    def build(self) -> LatentCodec:
        """Instantiate the codec."""
        return make_codec(self.name, **self.codec_kwargs())

