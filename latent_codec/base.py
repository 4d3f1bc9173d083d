"""The latent codec contract: one abstract base, two payload types, one registry.

Every codec (digital: ``float16``, ``uniform``, ``lloydmax``; analog:
``analog``) implements the same four calls, and each argument has one
meaning in all of them:

* ``compress(latents [B, C, H, W]) -> Payload``: a :class:`BitPayload`
  (body bits for a digital link) or a :class:`SymbolPayload` (complex
  symbols for a symbol link); both carry the :class:`Header` and its
  repetition-protected bits ``header_bits``.
* ``parse_header(received_header, *, llrs) -> Header``: ``llrs=True`` means
  the received header values are LLRs (positive means bit = 1), else hard
  bits. Raises :class:`HeaderCorruptedError` when the CRC fails.
* ``decompress(received, header, *, llrs=False, noise_var=None,
  estimator=None, crc_ok=None, generator=None) -> DecodeResult``:
  ``received`` is the body as the link delivered it (bits or LLRs
  ``[B, n]`` for a :class:`BitPayload`, complex symbols ``[B, m]`` for a
  :class:`SymbolPayload`); ``llrs=True`` always means "the received body
  values are LLRs"; ``header`` a parsed :class:`Header` (or hard header
  bits); ``estimator`` one of the codec's :attr:`~LatentCodec.estimators`.
* ``forward(latents, *, mode="ste", noise_var=0.0, estimator=None,
  generator=None) -> latents_hat``: the differentiable training surrogate.

Codecs register under their ``name`` with :func:`register_codec`; the
:data:`CODECS` registry is where :func:`latent_codec.make_codec` and
:class:`latent_codec.CodecConfig` take names and constructor arguments from.

Example
-------
>>> import torch
>>> codec = CODECS["uniform"](bits=4)
>>> x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
>>> p = codec.compress(x)
>>> type(p).__name__, p.num_body_bits, p.num_header_bits > 0
('BitPayload', 1024, True)
>>> llrs = (2 * p.bits - 1) * 60.0            # perfect LLRs
>>> header = codec.parse_header(p.header_bits, llrs=False)
>>> a = codec.decompress(p.bits, header).latents
>>> b = codec.decompress(llrs, header, llrs=True, estimator="mmse").latents
>>> bool(torch.equal(a, b))
True
"""

from __future__ import annotations

import abc
import inspect
import math
from dataclasses import dataclass

import torch

from .bitops import clean_llrs, hard_decision_bits, hard_decision_llrs
from .header import BIT_ORDERS, DEFAULT_HEADER_REPETITION, Header, parse_header
from .ordering import bitplane_permutation, importance_permutation, inverse_permutation
from .sanitize import sanitize

__all__ = [
    "CODECS",
    "BitPayload",
    "DecodeResult",
    "DigitalCodec",
    "LatentCodec",
    "Payload",
    "SymbolPayload",
    "check_bits",
    "check_latents",
    "codec_init_kwargs",
    "fp16_round",
    "minmax_range",
    "nonempty_range",
    "register_codec",
]

FP16_MAX = 65504.0
#: LLR magnitude given to a bit known to be right (its code block's CRC held)
KNOWN_LLR = 60.0

#: name -> codec class, filled by :func:`register_codec`
CODECS: dict[str, type["LatentCodec"]] = {}


def register_codec(cls: type["LatentCodec"]) -> type["LatentCodec"]:
    """Class decorator: register a codec class under its ``name``.

    Parameters
    ----------
    cls : type
        A subclass of :class:`LatentCodec` with a non-empty ``name``.

    Returns
    -------
    type
        ``cls`` unchanged.

    Example
    -------
    >>> sorted(CODECS)
    ['analog', 'float16', 'lloydmax', 'uniform']
    """
    if not (isinstance(cls, type) and issubclass(cls, LatentCodec)) or not cls.name:
        raise ValueError(f"register_codec needs a LatentCodec subclass with a name, got {cls!r}")
    if cls.name in CODECS and CODECS[cls.name] is not cls:
        raise ValueError(f"a codec named {cls.name!r} is already registered ({CODECS[cls.name].__name__})")
    CODECS[cls.name] = cls
    return cls


def codec_init_kwargs(cls: type["LatentCodec"]) -> dict[str, object]:
    """Constructor arguments of a codec class and their defaults (from its signature).

    Parameters
    ----------
    cls : type
        A codec class.

    Returns
    -------
    dict
        name -> default (``inspect.Parameter.empty`` when it has none).

    Example
    -------
    >>> codec_init_kwargs(CODECS["lloydmax"])["bits"]
    4
    """
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items()
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


# ----------------------------------------------------------------------------- payloads


@dataclass
class Payload:
    """What a codec sends for a batch of latents (base of the two payload types).

    Attributes
    ----------
    header : Header
        The decoded form of the header (what the receiver recovers).
    header_bits : torch.Tensor, float32 0/1, shape ``[B, h]``
        The header as sent: ``repetition`` copies of each row, CRC-32 inside.
    num_values : int
        Latent values per batch element (``C * H * W``).
    """

    header: Header
    header_bits: torch.Tensor
    num_values: int

    @property
    def num_header_bits(self) -> int:
        """Header bits per batch element, repetition included."""
        return int(self.header_bits.shape[1])

    @property
    def num_body_bits(self) -> int:
        """Body bits per batch element (0 for a symbol payload)."""
        return 0

    @property
    def num_bits(self) -> int:
        """Body + header bits per batch element."""
        return self.num_body_bits + self.num_header_bits

    def body_channel_uses(self, info_bits_per_channel_use: float) -> int:
        """Complex channel uses of the body per batch element at a given rate [bits/channel use]."""
        raise NotImplementedError


@dataclass
class BitPayload(Payload):
    """A digital codec's payload: body bits for a bit link.

    Attributes
    ----------
    bits : torch.Tensor, float32 0/1, shape ``[B, n]``
        The body, in the codec's bit order.
    bit_importance : torch.Tensor, float32, shape ``[n]``
        Expected squared error caused by flipping each body bit (units:
        quantiser step^2 for uniform, channel std^2 for Lloyd-Max, value^2
        at ``|x| ~ 1`` for float16). Larger = more important.
    num_clipped : torch.Tensor, int64, shape ``[B]``
        Values per batch element beyond the float16 range ``|x| > 65504``
        (:data:`FP16_MAX`), which every digital codec clips to +-65504 before
        sending (its header parameters are float16): a counted repair, 0 for
        ordinary latents.
    """

    bits: torch.Tensor = None  # type: ignore[assignment]
    bit_importance: torch.Tensor = None  # type: ignore[assignment]
    num_clipped: torch.Tensor = None  # type: ignore[assignment]

    @property
    def num_body_bits(self) -> int:
        """Body bits per batch element."""
        return int(self.bits.shape[1])

    @property
    def bits_per_value(self) -> float:
        """Body bits per latent value."""
        return self.num_body_bits / self.num_values

    def body_channel_uses(self, info_bits_per_channel_use: float) -> int:
        """``ceil(body bits / rate)``."""
        return math.ceil(self.num_body_bits / info_bits_per_channel_use)


@dataclass
class SymbolPayload(Payload):
    """An analog codec's payload: power-normalised complex symbols for a symbol link.

    Attributes
    ----------
    symbols : torch.Tensor, complex64, shape ``[B, m]``
        ``mean |s|^2 = 1`` per batch element.
    """

    symbols: torch.Tensor = None  # type: ignore[assignment]

    @property
    def num_symbols(self) -> int:
        """Complex symbols per batch element."""
        return int(self.symbols.shape[1])

    def body_channel_uses(self, info_bits_per_channel_use: float) -> int:
        """One channel use per symbol, whatever the rate."""
        return self.num_symbols


@dataclass
class DecodeResult:
    """Output of ``decompress``.

    Attributes
    ----------
    latents : torch.Tensor, float32, shape ``[B, C, H, W]``
        Finite and within the codec's range.
    num_repaired : torch.Tensor, int64, shape ``[B]``
        Values per batch element that were non-finite or out of range and
        were sanitised.
    header : Header
    noise_var : torch.Tensor or None, float32, shape ``[B, C, H, W]``
        Error variance of each returned value caused by the channel:
        analog codec: see ``AnalogCodec.latent_noise_var``; digital codecs
        with LLRs: the posterior variance of the value given the LLRs for
        ``estimator="mmse"``, twice that for ``"sample"`` (quantisation error
        excluded; 0 where every bit was known right); None for hard decisions.
    """

    latents: torch.Tensor
    num_repaired: torch.Tensor
    header: Header
    noise_var: torch.Tensor | None = None


# ----------------------------------------------------------------------------- helpers


def check_latents(latents: torch.Tensor, *, detach: bool = True) -> torch.Tensor:
    if not isinstance(latents, torch.Tensor):
        raise ValueError(f"latents must be a torch.Tensor, got {type(latents).__name__}")
    if latents.ndim != 4:
        raise ValueError(f"latents must have shape [batch, C, H, W], got {list(latents.shape)}")
    if not latents.dtype.is_floating_point:
        raise ValueError(f"latents must be a float tensor, got {latents.dtype}")
    if latents.numel() == 0:
        raise ValueError(f"latents must not be empty, got shape {list(latents.shape)}")
    if max(latents.shape[1:]) >= 65536:
        raise ValueError(f"C, H and W must each be < 65536, got {list(latents.shape[1:])}")
    nonfinite = int((~torch.isfinite(latents.detach())).sum())
    if nonfinite:
        raise ValueError(
            f"latents contain {nonfinite} non-finite values; sanitise them before compressing"
        )
    x = latents.detach() if detach else latents
    return x.to(torch.float32)


def fp16_round(x: torch.Tensor, direction: str = "nearest") -> torch.Tensor:
    """Round float32 values to float16-representable float32 values.

    Parameters
    ----------
    x : torch.Tensor, float32
        Clamped to ``[-65504, 65504]`` first.
    direction : str
        ``"nearest"``, ``"down"`` (result <= x) or ``"up"`` (result >= x).

    Returns
    -------
    torch.Tensor, float32, same shape.

    Example
    -------
    >>> fp16_round(torch.tensor([0.1]), "up") >= 0.1
    tensor([True])
    """
    x = x.to(torch.float32).clamp(-FP16_MAX, FP16_MAX)
    h = x.half()
    if direction == "down":
        h = torch.where(h.float() > x, torch.nextafter(h, torch.full_like(h, -math.inf)), h)
    elif direction == "up":
        h = torch.where(h.float() < x, torch.nextafter(h, torch.full_like(h, math.inf)), h)
    elif direction != "nearest":
        raise ValueError(f"direction must be 'nearest', 'down' or 'up', got {direction!r}")
    return h.float()


def nonempty_range(low: torch.Tensor, high: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Make fp16-exact ranges non-empty (low < high) by one float16 ulp, staying finite."""
    same = high <= low
    lo16 = low.half()
    down = torch.nextafter(lo16, torch.full_like(lo16, -math.inf)).float()
    up = torch.nextafter(high.half(), torch.full_like(lo16, math.inf)).float()
    at_bottom = low <= -FP16_MAX
    low = torch.where(same & ~at_bottom, down, low)
    high = torch.where(same & at_bottom, up, high)
    return low, high


def minmax_range(flat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """fp16-exact [low, high] per (batch, channel) containing all values, low < high."""
    return nonempty_range(fp16_round(flat.amin(-1), "down"), fp16_round(flat.amax(-1), "up"))




def check_bits(bits, low: int, high: int, what: str) -> None:
    """ValueError unless ``bits`` is an int in ``[low, high]`` (``what`` names the quantiser)."""
    if not isinstance(bits, int) or isinstance(bits, bool) or not low <= bits <= high:
        raise ValueError(f"bits must be an int in [{low}, {high}] for {what}, got {bits!r}")


# ----------------------------------------------------------------------------- the contract


class LatentCodec(torch.nn.Module, abc.ABC):
    """Abstract base of all latent codecs: the whole contract (see the module docstring).

    A new codec subclasses this (or :class:`DigitalCodec` for a bit-producing
    one), sets ``name``, ``estimators`` and ``forward_modes``, implements the
    abstract methods, and is decorated with :func:`register_codec`.

    Parameters
    ----------
    header_repetition : int
        Copies of each header row (channel-agnostic protection), >= 1.

    Class attributes
    ----------------
    name : str
        Registry name, also written in the header.
    estimators : tuple of str
        Allowed ``estimator`` values of :meth:`decompress` and :meth:`forward`;
        the first is the default.
    forward_modes : tuple of str
        Allowed ``mode`` values of :meth:`forward`; the first is the default.
    """

    name: str = ""
    estimators: tuple[str, ...] = ("mmse",)
    forward_modes: tuple[str, ...] = ("ste",)

    def __init__(self, *, header_repetition: int = DEFAULT_HEADER_REPETITION):
        super().__init__()
        if not isinstance(header_repetition, int) or isinstance(header_repetition, bool) or header_repetition < 1:
            raise ValueError(f"header_repetition must be an int >= 1, got {header_repetition!r}")
        self.header_repetition = header_repetition

    # -- the contract ----------------------------------------------------------------
    @abc.abstractmethod
    def compress(self, latents: torch.Tensor) -> Payload:
        """latents ``[B, C, H, W]`` (finite floats) -> :class:`BitPayload` or :class:`SymbolPayload`."""

    @abc.abstractmethod
    def decompress(self, received: torch.Tensor, header, *, llrs: bool = False, noise_var=None,
                   estimator: str | None = None, crc_ok: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> DecodeResult:
        """Received body -> :class:`DecodeResult` (see the subclass for the body's form)."""

    @abc.abstractmethod
    def forward(self, latents: torch.Tensor, *, mode: str | None = None, noise_var: float = 0.0,
                estimator: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Differentiable training surrogate, same shape and dtype as ``latents``."""

    @abc.abstractmethod
    def roundtrip(self, latents: torch.Tensor) -> torch.Tensor:
        """The exact noise-free reconstruction, float32 ``[B, C, H, W]``."""

    @classmethod
    @abc.abstractmethod
    def from_header(cls, header: Header, *, header_repetition: int = DEFAULT_HEADER_REPETITION) -> "LatentCodec":
        """The codec that decodes ``header``."""

    @abc.abstractmethod
    def _ranges(self, params: torch.Tensor):  # -> low, high, fill, each [B, C, 1]
        """Per-channel clipping range and fill value from the header parameters."""

    # -- shared ------------------------------------------------------------------------
    def parse_header(self, received_header: torch.Tensor, *, llrs: bool = False) -> Header:
        """Recover the header from the received header values.

        Parameters
        ----------
        received_header : torch.Tensor, float32, shape ``[B, h]``
            Hard bits (``llrs=False``) or LLRs (``llrs=True``, positive means bit = 1).
        llrs : bool
            The received values are LLRs.

        Returns
        -------
        Header
            Raises :class:`HeaderCorruptedError` when the CRC fails, ValueError
            when the header was written by another codec configuration.
        """
        header = parse_header(received_header, llrs=bool(llrs), repetition=self.header_repetition)
        self._check_header(header)
        return header

    def _resolve_header(self, header, llrs: bool) -> Header:
        if isinstance(header, torch.Tensor):
            if llrs:
                raise ValueError("header must be a Header when llrs=True: parse received header LLRs with "
                                 "codec.parse_header(received_header, llrs=True) first")
            header = parse_header(header, llrs=False, repetition=self.header_repetition)
        if not isinstance(header, Header):
            raise ValueError(f"header must be a Header or the received header bits, got {type(header).__name__}")
        self._check_header(header)
        return header

    def resolve_estimator(self, estimator: str | None) -> str:
        """The estimator to use: ``estimator``, or the default when None (ValueError if not allowed)."""
        if estimator is None:
            return self.estimators[0]
        if estimator not in self.estimators:
            raise ValueError(f"estimator must be one of {self.estimators} for codec {self.name!r}, got {estimator!r}")
        return estimator

    def _forward_mode(self, mode: str | None) -> str:
        if mode is None:
            return self.forward_modes[0]
        if mode not in self.forward_modes:
            raise ValueError(f"mode must be one of {self.forward_modes} for {self.name!r}, got {mode!r}")
        return mode

    def value_range(self, header: Header) -> tuple[torch.Tensor, torch.Tensor]:
        """The range every decoded value is clipped to.

        Parameters
        ----------
        header : Header

        Returns
        -------
        low, high : torch.Tensor, float32, shape ``[B, C, 1, 1]``
        """
        self._check_header(header)
        low, high, _ = self._ranges(header.params)
        return low.unsqueeze(-1), high.unsqueeze(-1)

    def _check_header(self, header: Header) -> None:
        if header.codec != self.name:
            raise ValueError(
                f"the header was written by codec {header.codec!r} but this is {self.name!r}; "
                "build the decoder with latent_codec.codec_from_header(header)"
            )

    def extra_repr(self) -> str:
        return f"header_repetition={self.header_repetition}"


class DigitalCodec(LatentCodec):
    """Shared machinery of the bit-producing codecs (they send a :class:`BitPayload`).

    Estimators on received LLRs (``decompress(..., llrs=True, estimator=...)``):
    ``"mmse"`` (default: the posterior mean of each value given the LLRs),
    ``"hard"`` (LLRs thresholded at 0) and ``"sample"`` (each value drawn
    from its posterior given the LLRs, with an explicit ``generator``; keeps
    the latent's spread where MMSE shrinks it toward the mean). Bits marked
    ``crc_ok`` are decoded exactly from their hard decisions whatever the
    estimator. With hard bits (``llrs=False``) every estimator is the hard
    decision.
    """

    estimators = ("mmse", "hard", "sample")
    forward_modes: tuple[str, ...] = ("ste",)

    def __init__(self, bits_per_value: int, *, bit_order: str = "msb_first",
                 bits_per_symbol: int | None = None,
                 header_repetition: int = DEFAULT_HEADER_REPETITION):
        super().__init__(header_repetition=header_repetition)
        if bit_order not in BIT_ORDERS:
            raise ValueError(f"bit_order must be one of {BIT_ORDERS}, got {bit_order!r}")
        if bit_order == "interleaved_by_importance":
            if bits_per_symbol is None:
                raise ValueError(
                    "bit_order='interleaved_by_importance' needs bits_per_symbol "
                    "(bits per QAM symbol of the PHY: 1, 2, 4, 6, 8, ...)"
                )
            # validates
            importance_permutation(torch.ones(1), bits_per_symbol)
        elif bits_per_symbol is not None:
            raise ValueError(
                f"bits_per_symbol is only used with bit_order='interleaved_by_importance', "
                f"got bit_order={bit_order!r}"
            )
        self.bits_per_value = bits_per_value
        self.bit_order = bit_order
        self.bits_per_symbol = int(bits_per_symbol or 0)
        self._perm_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_header(cls, header: Header, *, header_repetition: int = DEFAULT_HEADER_REPETITION) -> "DigitalCodec":
        """The codec that decodes ``header`` (bits per value, bit order, bits per symbol)."""
        kwargs = dict(bit_order=header.bit_order, bits_per_symbol=header.bits_per_symbol or None,
                      header_repetition=header_repetition)
        if "bits" in codec_init_kwargs(cls):
            kwargs["bits"] = header.bits_per_value
        return cls(**kwargs)

    # -- to implement --------------------------------------------------------------
    def _make_params(self, flat: torch.Tensor) -> torch.Tensor:  # [B, C, N] -> [B, C, P]
        raise NotImplementedError

    def _encode(self, flat: torch.Tensor, params: torch.Tensor) -> torch.Tensor:  # -> [B, C*N*b]
        raise NotImplementedError

    def _decode_hard(self, bits: torch.Tensor, params: torch.Tensor, n: int) -> torch.Tensor:
        raise NotImplementedError  # -> [B, C, N] float32 (may be non-finite for float16)

    def _decode_soft(self, llrs: torch.Tensor, params: torch.Tensor, n: int):
        """-> (posterior mean [B, C, N], posterior variance [B, C, N] or None)."""
        return self._decode_hard(hard_decision_llrs(llrs), params, n), None

    def _decode_sample(self, llrs: torch.Tensor, params: torch.Tensor, n: int, generator: torch.Generator):
        """One draw per value from its posterior; default: independent bits ``P(b=1) = sigmoid(llr)``."""
        u = torch.rand(llrs.shape, generator=generator, device=llrs.device, dtype=torch.float32)
        return self._decode_hard((u < torch.sigmoid(llrs)).to(torch.float32), params, n)

    def value_bit_importance(self) -> torch.Tensor:
        """Importance of each bit of one value, MSB first, float32 ``[bits_per_value]``."""
        raise NotImplementedError

    def _quantize_dequantize(self, flat: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return self._decode_hard(self._encode(flat, params), params, flat.shape[-1])

    def _forward_noise(self, x, params, generator):
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------
    def _permutation(self, num_values: int):
        if self.bit_order == "msb_first":
            return None, None
        if num_values not in self._perm_cache:
            if self.bit_order == "bitplane":
                perm = bitplane_permutation(num_values, self.bits_per_value)
            else:
                imp = self.value_bit_importance().repeat(num_values)
                perm = importance_permutation(imp, self.bits_per_symbol)
            self._perm_cache[num_values] = (perm, inverse_permutation(perm))
        return self._perm_cache[num_values]

    def _header(self, shape, params) -> Header:
        return Header(self.name, tuple(shape[1:]), params, bits_per_value=self.bits_per_value,
                      bit_order=self.bit_order, bits_per_symbol=self.bits_per_symbol)

    def _check_header(self, header: Header) -> None:
        super()._check_header(header)
        mine = (self.bits_per_value, self.bit_order, self.bits_per_symbol)
        theirs = (header.bits_per_value, header.bit_order, header.bits_per_symbol)
        if mine != theirs:
            raise ValueError(
                f"header says (bits_per_value, bit_order, bits_per_symbol) = {theirs} but this codec "
                f"uses {mine}; build the decoder with latent_codec.codec_from_header(header)"
            )

    def compress(self, latents: torch.Tensor) -> BitPayload:
        """Quantise and pack a batch of latents.

        Parameters
        ----------
        latents : torch.Tensor, float16/bfloat16/float32, shape ``[B, C, H, W]``
            Finite values (a ValueError names the count of non-finite ones).
            Values beyond +-65504 are clipped to it and counted in
            ``num_clipped``.

        Returns
        -------
        BitPayload
            ``bits`` float32 ``[B, C*H*W*bits_per_value]``.
        """
        x = check_latents(latents)
        num_clipped = (x.abs() > FP16_MAX).flatten(1).sum(1)
        bsz, c, h, w = x.shape
        flat = x.reshape(bsz, c, h * w)
        params = self._make_params(flat)
        header = self._header(x.shape, params)
        bits = self._encode(flat, params)
        importance = self.value_bit_importance().to(x.device).repeat(c * h * w)
        perm, _ = self._permutation(c * h * w)
        if perm is not None:
            perm = perm.to(x.device)
            bits, importance = bits[:, perm], importance[perm]
        return BitPayload(header=header, header_bits=header.to_bits(self.header_repetition),
                          num_values=c * h * w, bits=bits, bit_importance=importance,
                          num_clipped=num_clipped)

    def _check_received(self, received: torch.Tensor, header: Header, what: str) -> torch.Tensor:
        if not isinstance(received, torch.Tensor) or received.ndim != 2 or received.is_complex():
            raise ValueError(f"received {what} must be a real tensor of shape [batch, n]")
        n = header.num_values * self.bits_per_value
        if received.shape != (header.batch_size, n):
            raise ValueError(
                f"received {what} have shape {list(received.shape)} but the header implies "
                f"[{header.batch_size}, {n}] (strip any PHY padding first)"
            )
        return received

    def _finish(self, values: torch.Tensor, header: Header, var: torch.Tensor | None = None) -> DecodeResult:
        low, high, fill = self._ranges(header.params.to(values.device))
        out, repaired = sanitize(values, low, high, fill)
        shape = (header.batch_size, *header.shape)
        if var is not None:
            var = torch.nan_to_num(var, nan=0.0).clamp_min(0.0).reshape(shape)
        return DecodeResult(out.reshape(shape), repaired, header, noise_var=var)

    def _to_value_major(self, x: torch.Tensor, n_values: int) -> torch.Tensor:
        _, inv = self._permutation(n_values)
        return x if inv is None else x[:, inv.to(x.device)]

    def decompress(self, received: torch.Tensor, header, *, llrs: bool = False, noise_var=None,
                   estimator: str | None = None, crc_ok: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> DecodeResult:
        """Decode the received body: hard bits, or LLRs with ``llrs=True``.

        Parameters
        ----------
        received : torch.Tensor, float32, shape ``[B, n]``
            Bits 0/1 (``llrs=False``; values > 0.5 count as 1, NaN as 0) or
            LLRs (``llrs=True``; positive means bit = 1; NaN is read as 0, +-inf
            as +-60), in the transmitted (payload) bit order.
        header : Header or torch.Tensor
            A parsed header, or the received header as hard bits (parse header
            LLRs with :meth:`parse_header` first).
        llrs : bool
            The received body values are LLRs.
        noise_var : None
            Symbol links only; a digital codec reads the channel quality from the
            LLRs (anything but None is an error).
        estimator : str or None
            ``"mmse"`` (default), ``"hard"`` or ``"sample"`` (see the class
            docstring); only matters with ``llrs=True``.
        crc_ok : torch.Tensor or None, bool, shape ``[B, n]``
            True where the bit belongs to a code block whose CRC held: such
            bits are taken from their hard decision, and values whose bits
            are all known are decoded exactly (bit-identical to hard bits).
        generator : torch.Generator or None
            Needed by ``estimator="sample"``.

        Returns
        -------
        DecodeResult
        """
        est = self.resolve_estimator(estimator)
        if noise_var is not None:
            raise ValueError(f"noise_var is for codecs that send symbols; the digital codec {self.name!r} "
                             "reads the channel quality from LLRs (pass llrs=True)")
        header = self._resolve_header(header, llrs)
        received = self._check_received(received, header, "LLRs" if llrs else "bits")
        if crc_ok is not None and (not isinstance(crc_ok, torch.Tensor) or crc_ok.dtype != torch.bool
                                   or crc_ok.shape != received.shape):
            raise ValueError(f"crc_ok must be a torch.bool tensor of the received shape {list(received.shape)}")
        params = header.params.to(received.device)
        nv = header.num_values
        if not llrs:
            bits = self._to_value_major(hard_decision_bits(received), nv)
            return self._finish(self._decode_hard(bits, params, nv), header)
        llr = clean_llrs(received)
        if crc_ok is not None:
            llr = torch.where(crc_ok.to(llr.device), torch.where(llr > 0, KNOWN_LLR, -KNOWN_LLR), llr)
        llr = self._to_value_major(llr, nv)
        hard = self._decode_hard(hard_decision_llrs(llr), params, nv)
        if est == "hard":
            return self._finish(hard, header)
        values, var = self._decode_soft(llr, params, nv)
        if est == "sample":
            if not isinstance(generator, torch.Generator):
                raise ValueError("estimator='sample' needs an explicit generator=torch.Generator")
            values = self._decode_sample(llr, params, nv, generator)
            var = None if var is None else 2.0 * var
        if crc_ok is not None:
            known = self._to_value_major(crc_ok.to(llr.device), nv)
            known = known.reshape(hard.shape[0], hard.shape[1], -1, self.bits_per_value).all(-1)
            values = torch.where(known, hard, values)
            if var is not None:
                var = torch.where(known, torch.zeros_like(var), var)
        return self._finish(values, header, var)

    def roundtrip(self, latents: torch.Tensor) -> torch.Tensor:
        """Noise-free reconstruction, bit-identical to ``decompress(compress(x).bits, ...)``.

        Parameters
        ----------
        latents : torch.Tensor, shape ``[B, C, H, W]``

        Returns
        -------
        torch.Tensor, float32, shape ``[B, C, H, W]``
        """
        x = check_latents(latents)
        flat = x.reshape(*x.shape[:2], -1)
        params = self._make_params(flat)
        low, high, fill = self._ranges(params)
        out, _ = sanitize(self._quantize_dequantize(flat, params), low, high, fill)
        return out.reshape(x.shape)

    def forward(self, latents: torch.Tensor, *, mode: str | None = None, noise_var: float = 0.0,
                estimator: str | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """Differentiable quantisation for training.

        Parameters
        ----------
        latents : torch.Tensor, shape ``[B, C, H, W]``
        mode : str or None
            ``"ste"`` (default): the forward value is the exact reconstruction,
            the gradient is the identity (straight-through estimator).
            ``"noise"`` (uniform codec only): ``x`` clipped to the range plus
            ``U(-step/2, step/2)`` noise drawn from ``generator``.
        noise_var : float
            Must be 0: a bit link has no differentiable model here (symbol
            codecs only).
        estimator : str or None
            Checked against :attr:`estimators`; error-free bits make every
            estimator the same.
        generator : torch.Generator or None

        Returns
        -------
        torch.Tensor, same dtype and shape as ``latents``.
        """
        mode = self._forward_mode(mode)
        self.resolve_estimator(estimator)
        if noise_var != 0:
            raise ValueError(f"noise_var must be 0 for the digital codec {self.name!r} (a bit link has no "
                             f"differentiable channel model here), got {noise_var!r}")
        x = check_latents(latents, detach=False)
        flat_d = x.detach().reshape(*x.shape[:2], -1)
        params = self._make_params(flat_d)
        if mode == "noise":
            return self._forward_noise(x, params, generator).to(latents.dtype)
        low, high, fill = self._ranges(params)
        q, _ = sanitize(self._quantize_dequantize(flat_d, params), low, high, fill)
        return (x + (q.reshape(x.shape) - x).detach()).to(latents.dtype)

    def extra_repr(self) -> str:
        s = f"bits_per_value={self.bits_per_value}, bit_order={self.bit_order!r}"
        if self.bits_per_symbol:
            s += f", bits_per_symbol={self.bits_per_symbol}"
        return s + ", " + super().extra_repr()
