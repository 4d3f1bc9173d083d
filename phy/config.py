"""The validated configuration of a link: :class:`LinkConfig`.

One object describes a whole link (coding, modulation, channel, receiver);
a typo in a key, an unknown value or a combination Sionna cannot build is a
one-line :class:`ValueError` that names the parameter and the allowed values.
"""

from __future__ import annotations

import inspect
import math
import re
import warnings
from typing import Any, Literal, Optional, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .nr_tables import MCS_TABLES, MODULATIONS, mcs_entry

__all__ = [
    "LinkConfig",
    "LinkConfigError",
    "MAX_DELAY_SPREAD_S",
    "MAX_SPEED_MPS",
    "POLAR_DEFAULT_BLOCK_LENGTH",
    "CHANNELS",
    "SYMBOL_CHANNELS",
    "CODES",
    "MODULATION_NAMES",
    "CSI_MODES",
    "DEMAPPING_METHODS",
    "DECODERS",
    "CRCS",
    "TDL_MODELS",
    "format_validation_error",
    "FIELD_HELP",
    "field_choices",
    "ldpc_support_error",
]

# The allowed names, one source: the Literal types of LinkConfig's fields and
# the tuples derived from them (CLI commands and the pipeline use these).
Modulation = Literal["bpsk", "qpsk", "16qam", "64qam", "256qam"]
Code = Literal["none", "ldpc", "polar"]
ChannelName = Literal["bsc", "awgn", "rayleigh", "tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"]
CsiMode = Literal["perfect", "ls"]
DemappingMethod = Literal["app", "maxlog"]
DecoderName = Literal["early-stop", "sionna"]
CrcName = Literal["auto", "none", "crc24a", "crc24b", "crc24c", "crc16", "crc11", "crc6"]

#: modulation names (``LinkConfig.modulation``)
MODULATION_NAMES: tuple[str, ...] = get_args(Modulation)
#: channel-code names (``LinkConfig.code``)
CODES: tuple[str, ...] = get_args(Code)
#: channel names (``LinkConfig.channel``); all but "bsc" are symbol channels
CHANNELS: tuple[str, ...] = get_args(ChannelName)
#: symbol channels (those :class:`~phy.SymbolLink` accepts)
SYMBOL_CHANNELS: tuple[str, ...] = tuple(c for c in CHANNELS if c != "bsc")
#: CSI modes (``LinkConfig.csi``)
CSI_MODES: tuple[str, ...] = get_args(CsiMode)
#: demapping methods (``LinkConfig.demapping``)
DEMAPPING_METHODS: tuple[str, ...] = get_args(DemappingMethod)
#: LDPC decoders (``LinkConfig.decoder``)
DECODERS: tuple[str, ...] = get_args(DecoderName)
TDL_MODELS = {f"tdl-{m}": m.upper() for m in "abcde"}
#: CRC name -> number of parity bits (TS 38.212 5.1)
CRCS = {"none": 0, "crc24a": 24, "crc24b": 24, "crc24c": 24, "crc16": 16, "crc11": 11, "crc6": 6}

#: LDPC info-block limits of TS 38.212 (base graph 1) and Sionna's rate limit
LDPC_K_MIN, LDPC_K_MAX, LDPC_RATE_MAX = 12, 8448, 0.95
#: below this rate the rate-1/5 mother codeword is repeated cyclically
LDPC_RATE_MIN_NATIVE = 0.2
LDPC_RATE_MIN = 1.0 / 40.0
#: Polar (5G uplink, no segmentation) limits in Sionna
POLAR_N_MAX = 1088

#: default ``block_length`` when ``code="polar"`` and none is given: the largest power of
#: two whose 5G Polar codeword (``K`` + CRC11 at the default rate 1/2) fits in
#: :data:`POLAR_N_MAX` coded bits (the LDPC/uncoded default, 1024, does not)
POLAR_DEFAULT_BLOCK_LENGTH = 512

#: largest ``speed_mps`` [m/s]: 500 m/s (1800 km/h) covers every 3GPP scenario with
#: margin (TR 38.913's 500 km/h high-speed train, TR 38.811's aircraft at ~1000 km/h)
MAX_SPEED_MPS = 500.0

#: largest ``delay_spread_s`` [s]: 10 us. TR 38.901 Table 7.7.3-1 scales its TDL
#: profiles from 10 ns ("very short") to 1000 ns ("very long"); the largest medians of
#: Table 7.5-6 (RMa/UMa NLOS, lgDS) plus two standard deviations stay below ~5 us
MAX_DELAY_SPREAD_S = 10e-6


def ldpc_support_error(k_code: int, n: int) -> Optional[str]:
    """Why Sionna's 5G LDPC encoder cannot build ``k_code`` -> ``n`` bits, or `None`.

    Mirrors the base-graph selection of TS 38.212 (as Sionna implements it):
    base graph 2 for ``k <= 292``, or ``k <= 3824`` and rate <= 0.67, or rate
    <= 1/4; it supports at most 3840 bits; base graph 1 needs rate >= 1/3.
    Rates below 1/5 use the rate-1/5 mother code (cyclic repetition).
    """
    if not LDPC_K_MIN <= k_code <= LDPC_K_MAX:
        return (f"block_length: 5G LDPC needs {LDPC_K_MIN} <= block_length + CRC bits <= {LDPC_K_MAX}, "
                f"got {k_code}")
    rate = k_code / n
    if rate > LDPC_RATE_MAX:
        return f"code_rate: 5G LDPC supports rates up to {LDPC_RATE_MAX}; this gives {k_code}/{n} = {rate:.4f}"
    if rate < LDPC_RATE_MIN:
        return f"code_rate: LDPC rates below {LDPC_RATE_MIN} are not supported, got {rate:.4f}"
    r = max(rate, LDPC_RATE_MIN_NATIVE)
    bg2 = k_code <= 292 or (k_code <= 3824 and r <= 0.67) or r <= 0.25
    if bg2 and k_code > 3840:
        return (f"block_length: at code rate {rate:.3f} 5G LDPC uses base graph 2, which takes at most 3840 "
                f"bits (block_length + CRC); got {k_code} (5G segments such payloads into smaller blocks)")
    if not bg2 and r < 1.0 / 3.0:
        return (f"code_rate: for block_length + CRC = {k_code} > 3824, 5G LDPC base graph 1 needs a code rate "
                f">= 1/3, got {rate:.3f}")
    return None


class LinkConfigError(ValueError):
    """A one-line error about an invalid :class:`LinkConfig`."""


def format_validation_error(exc: ValidationError, model: str = "LinkConfig") -> str:
    """Turn a pydantic error into one line: ``model.field: message (got value)``."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err.get("loc", ()) if x != "__root__")
        msg = err.get("msg", "invalid value")
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err.get("type") == "extra_forbidden":
            parts.append(f"{model}: unknown parameter {loc!r}")
            continue
        got = err.get("input")
        prefix = f"{model}.{loc}: " if loc else f"{model}: "
        if err.get("type", "").startswith("value_error") or loc == "":
            parts.append(prefix + msg)
        else:
            parts.append(prefix + f"{msg} (got {got!r})")
    return "; ".join(parts)


class LinkConfig(BaseModel):
    r"""Configuration of a digital (:class:`~phy.DigitalLink`) or analog
    (:class:`~phy.SymbolLink`) link.

    Coding and modulation

    :param modulation: ``"bpsk" | "qpsk" | "16qam" | "64qam" | "256qam"``
        (Gray-labelled, unit average energy).
    :param code: ``"none" | "ldpc" | "polar"`` (5G NR LDPC, 5G NR Polar with
        CRC-aided SCL decoding).
    :param code_rate: rate of the channel code, (information + CRC bits) /
        coded bits.  Defaults to 0.5 for a code and 1 for ``"none"``.  The
        coded block length is rounded up to a whole number of symbols, see
        :attr:`effective_code_rate`.  LDPC rates below 1/5 repeat the rate-1/5
        codeword cyclically (5G circular-buffer repetition).
    :param block_length: information bits per code block ``K`` (payload; a
        payload of any length is split into blocks of ``K`` bits and the last
        block is zero-padded). Default 1024, or 512 for ``code="polar"``
        (:data:`POLAR_DEFAULT_BLOCK_LENGTH`: 5G Polar codewords have at most
        1088 bits).
    :param crc: CRC attached to every code block: ``"auto"`` (CRC24B for
        LDPC, the code's own CRC11/CRC6 for Polar, none when uncoded),
        ``"none"`` or one of ``"crc24a" | "crc24b" | "crc24c" | "crc16" |
        "crc11" | "crc6"`` (LDPC and uncoded only).
    :param mcs: `None` (use ``modulation`` and ``code_rate``), an MCS index of
        ``mcs_table`` (LDPC only), or ``"auto"`` for adaptive modulation and
        coding: the MCS that maximises throughput at ``target_bler`` for the
        SNR of each transmission (:func:`~phy.select_mcs`).
    :param mcs_table: 5G NR PDSCH MCS table of TS 38.214: 1 (up to 64-QAM),
        2 (up to 256-QAM) or 3 (low spectral efficiency).
    :param target_bler: BLER target of the adaptive MCS.

    Channel

    :param channel: ``"bsc"`` (binary symmetric channel on the coded bits),
        ``"awgn"``, ``"rayleigh"`` (flat block fading), ``"tdl-a"`` ...
        ``"tdl-e"`` (3GPP TR 38.901 tapped delay line over OFDM).
    :param bit_error_rate: crossover probability of the BSC, in [0, 0.5].
    :param coherence_symbols: Rayleigh block length [channel uses]; one fading
        coefficient per block.
    :param num_pilot_symbols: pilot symbols at the start of each Rayleigh
        block when ``csi="ls"``.
    :param speed_mps: user speed [m/s] (TDL; the Doppler shift follows from
        it and the carrier frequency), at most 500 m/s (:data:`MAX_SPEED_MPS`).
    :param carrier_frequency_hz: carrier frequency [Hz].
    :param delay_spread_s: RMS delay spread of the TDL profile [s], in
        (0, 10 us] (:data:`MAX_DELAY_SPREAD_S`; TR 38.901 Table 7.7.3-1 uses
        10 ns to 1000 ns).
    :param subcarrier_spacing_hz: OFDM subcarrier spacing [Hz].
    :param fft_size: OFDM subcarriers (all used, no guard bands).
    :param num_ofdm_symbols: OFDM symbols per slot.
    :param pilot_ofdm_symbol_indices: OFDM symbols that carry pilots on every
        subcarrier (Kronecker pattern, like 5G DMRS).
    :param cyclic_prefix_length: cyclic prefix [samples]; sets the OFDM
        symbol duration, hence how fast the channel ages between symbols.

    Receiver

    :param csi: ``"perfect"`` (genie channel knowledge) or ``"ls"``
        (least-squares estimation on pilots, with interpolation).
    :param ls_interpolation: OFDM LS interpolation: ``"nn" | "lin" |
        "lin_time_avg"`` (Sionna's).
    :param demapping: ``"app"`` (exact) or ``"maxlog"``.
    :param decoder: LDPC decoder: ``"early-stop"`` (this project's; retires
        codewords whose parity checks hold) or ``"sionna"`` (Sionna's
        :class:`~sionna.phy.fec.ldpc.LDPC5GDecoder`, fixed iterations).
    :param decoder_iterations: maximum LDPC BP iterations; default 50 for
        ``"early-stop"``, 20 for ``"sionna"``.
    :param cn_update: LDPC check-node rule; default ``"boxplus"`` for
        ``"early-stop"``, ``"boxplus-phi"`` (Sionna's default) for ``"sionna"``.
    :param polar_list_size: list size of the Polar SCL decoder.
    :param max_codewords_per_batch: at most this many code blocks are decoded
        together (memory and cache use); `None` picks by code size.

    Example::

        >>> from phy import LinkConfig
        >>> cfg = LinkConfig(modulation="16qam", code="ldpc", code_rate=0.5,
        ...                  block_length=1024, channel="awgn")
        >>> cfg.bits_per_symbol, round(cfg.effective_code_rate, 4)
        (4, 0.4885)
        >>> LinkConfig(modulation="8psk")
        Traceback (most recent call last):
        ...
        phy.config.LinkConfigError: LinkConfig.modulation: Input should be 'bpsk', 'qpsk', '16qam', '64qam' or '256qam' (got '8psk')
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    modulation: Modulation = "qpsk"
    code: Code = "ldpc"
    code_rate: float = Field(0.5, gt=0.0, le=1.0)
    block_length: int = Field(1024, ge=1)
    crc: CrcName = "auto"
    mcs: Optional[Union[Literal["auto"], int]] = None
    mcs_table: Literal[1, 2, 3] = 1
    target_bler: float = Field(0.1, gt=0.0, lt=1.0)

    channel: ChannelName = "awgn"
    bit_error_rate: float = Field(0.01, ge=0.0, le=0.5)
    coherence_symbols: int = Field(100, ge=1)
    num_pilot_symbols: int = Field(4, ge=1)
    speed_mps: float = Field(0.0, ge=0.0, le=MAX_SPEED_MPS)
    carrier_frequency_hz: float = Field(3.5e9, gt=0.0)
    delay_spread_s: float = Field(100e-9, gt=0.0, le=MAX_DELAY_SPREAD_S)
    subcarrier_spacing_hz: float = Field(30e3, gt=0.0)
    fft_size: int = Field(72, ge=2)
    num_ofdm_symbols: int = Field(14, ge=2)
    pilot_ofdm_symbol_indices: tuple[int, ...] = (2, 11)
    cyclic_prefix_length: int = Field(5, ge=0)

    csi: CsiMode = "perfect"
    ls_interpolation: Literal["nn", "lin", "lin_time_avg"] = "lin"
    demapping: DemappingMethod = "app"
    decoder: DecoderName = "early-stop"
    decoder_iterations: Optional[int] = Field(None, ge=1, le=1000)
    cn_update: Optional[Literal["boxplus", "boxplus-phi", "minsum", "offset-minsum"]] = None
    polar_list_size: int = Field(8, ge=1, le=64)
    max_codewords_per_batch: Optional[int] = Field(None, ge=1)

    # ------------------------------------------------------------------ #
    # construction: one-line errors
    # ------------------------------------------------------------------ #
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise LinkConfigError(format_validation_error(exc)) from None

    @classmethod
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> "LinkConfig":  # type: ignore[override]
        try:
            return super().model_validate(obj, *args, **kwargs)
        except ValidationError as exc:
            raise LinkConfigError(format_validation_error(exc)) from None

    @model_validator(mode="before")
    @classmethod
    def _fill_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = dict(data)
        for key in ("modulation", "code_rate", "crc", "mcs_table", "decoder", "block_length"):
            if key in data and data[key] is None:
                del data[key]
        code = data.get("code", "ldpc")
        mcs = data.get("mcs")
        if code == "polar" and data.get("block_length") is None:
            data["block_length"] = POLAR_DEFAULT_BLOCK_LENGTH
        if code == "none" and data.get("code_rate") is None:
            data["code_rate"] = 1.0
        if isinstance(mcs, bool):
            raise ValueError(f"mcs must be None, 'auto' or an integer MCS index, got {mcs!r}")
        if isinstance(mcs, str) and mcs != "auto":
            try:
                mcs = int(mcs)
            except ValueError:
                raise ValueError(f"mcs must be None, 'auto' or an integer MCS index, got {mcs!r}") from None
            data["mcs"] = mcs
        if isinstance(mcs, int):
            table = data.get("mcs_table", 1)
            if table not in MCS_TABLES:
                raise ValueError(f"mcs_table must be one of {list(MCS_TABLES)}, got {table!r}")
            entry = mcs_entry(mcs, table)
            for key, value in (("modulation", entry.modulation), ("code_rate", entry.code_rate)):
                given = data.get(key)
                if given is not None and not _same(given, value):
                    raise ValueError(
                        f"{key}={given!r} contradicts mcs={mcs} of MCS table {table} "
                        f"({entry.modulation}, rate {entry.code_rate:.4f}); give one or the other"
                    )
                data[key] = value
        decoder = data.get("decoder", "early-stop")
        if data.get("decoder_iterations") is None:
            data["decoder_iterations"] = 50 if decoder == "early-stop" else 20
        if data.get("cn_update") is None:
            data["cn_update"] = "boxplus" if decoder == "early-stop" else "boxplus-phi"
        return data

    @model_validator(mode="after")
    def _check_combinations(self) -> "LinkConfig":
        if self.mcs is not None and self.code != "ldpc":
            raise ValueError(f"mcs={self.mcs!r} needs code='ldpc' (5G NR data channel), got code={self.code!r}")
        if self.mcs == "auto" and self.channel == "bsc":
            raise ValueError("mcs='auto' needs an SNR; it cannot be used with channel='bsc'")
        if self.code == "none" and self.code_rate != 1.0:
            raise ValueError(f"code_rate must be 1 for code='none', got {self.code_rate}")
        if self.code == "polar" and self.crc not in ("auto",):
            raise ValueError(
                "crc: 5G Polar codes carry their own CRC (CRC11, or CRC6 for 12..19 bits); "
                f"use crc='auto' with code='polar', got {self.crc!r}"
            )
        if self.csi == "ls" and self.channel == "rayleigh" and self.num_pilot_symbols >= self.coherence_symbols:
            raise ValueError(
                f"num_pilot_symbols ({self.num_pilot_symbols}) must be smaller than "
                f"coherence_symbols ({self.coherence_symbols})"
            )
        if self.is_ofdm:
            idx = self.pilot_ofdm_symbol_indices
            if len(idx) == 0 or len(set(idx)) != len(idx) or min(idx) < 0 or max(idx) >= self.num_ofdm_symbols:
                raise ValueError(
                    f"pilot_ofdm_symbol_indices must be distinct indices in 0..{self.num_ofdm_symbols - 1}, "
                    f"got {list(idx)}"
                )
            if len(idx) >= self.num_ofdm_symbols:
                raise ValueError("pilot_ofdm_symbol_indices leave no OFDM symbol for data")
        if self.mcs != "auto":
            self._check_code()
        return self

    def _check_code(self) -> None:
        k = self.block_length + self.crc_length
        n = self.codeword_length
        if self.code == "ldpc":
            error = ldpc_support_error(k, n)
            if error is not None:
                raise ValueError(error)
        elif self.code == "polar":
            from sionna.phy.fec.polar import Polar5GEncoder  # pylint: disable=import-outside-toplevel

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    Polar5GEncoder(self.block_length, n)
            except (ValueError, AssertionError) as exc:
                raise ValueError(
                    f"block_length/code_rate: Sionna's 5G Polar code cannot be built for "
                    f"block_length={self.block_length}, {n} coded bits (code_rate={self.code_rate}): {exc} "
                    f"(it needs 12 <= block_length, block_length + CRC < coded bits <= {POLAR_N_MAX})"
                ) from None

    # ------------------------------------------------------------------ #
    # derived quantities
    # ------------------------------------------------------------------ #
    @property
    def is_ofdm(self) -> bool:
        """Whether the channel is a TDL model over OFDM."""
        return self.channel in TDL_MODELS

    @property
    def tdl_model(self) -> str:
        """Sionna's TDL model letter ("A".."E")."""
        if not self.is_ofdm:
            raise ValueError(f"channel={self.channel!r} is not a TDL channel")
        return TDL_MODELS[self.channel]

    def _require_fixed_mcs(self, what: str) -> None:
        if self.mcs == "auto":
            raise ValueError(
                f"{what} depends on the SNR when mcs='auto'; use phy.select_mcs(snr_db) "
                "or LinkConfig.for_mcs(index)"
            )

    @property
    def bits_per_symbol(self) -> int:
        """Bits per modulation symbol (1 for BPSK ... 8 for 256-QAM)."""
        self._require_fixed_mcs("bits_per_symbol")
        return MODULATIONS[self.modulation]

    @property
    def bits_per_channel_use(self) -> int:
        """Coded bits per channel use: 1 for the BSC, else bits per symbol."""
        return 1 if self.channel == "bsc" else self.bits_per_symbol

    @property
    def crc_name(self) -> str:
        """The CRC actually used ("none", "crc24b", "crc11", ...)."""
        if self.crc != "auto":
            return self.crc
        if self.code == "ldpc":
            return "crc24b"
        if self.code == "polar":
            return "crc11" if self.block_length >= 20 else "crc6"
        return "none"

    @property
    def crc_length(self) -> int:
        """CRC parity bits per code block."""
        return CRCS[self.crc_name]

    @property
    def codeword_length(self) -> int:
        """Coded bits per code block ``n`` (a whole number of channel uses)."""
        self._require_fixed_mcs("codeword_length")
        k = self.block_length + self.crc_length
        if self.code == "none":
            return k
        m = self.bits_per_channel_use
        return int(math.ceil(k / self.code_rate / m - 1e-9)) * m

    @property
    def effective_code_rate(self) -> float:
        """Information bits per coded bit, ``K / n`` (counts CRC and rounding)."""
        return self.block_length / self.codeword_length

    @property
    def pilot_overhead(self) -> float:
        """Fraction of channel uses that carry pilots, not data."""
        if self.is_ofdm:
            return len(self.pilot_ofdm_symbol_indices) / self.num_ofdm_symbols
        if self.channel == "rayleigh" and self.csi == "ls":
            return self.num_pilot_symbols / self.coherence_symbols
        return 0.0

    @property
    def info_bits_per_channel_use(self) -> float:
        """Spectral efficiency [bit/channel use]: information bits per channel
        use, counting the code rate, CRC and pilot overhead (not the padding of
        a last partial block, nor the OFDM cyclic prefix)."""
        return self.bits_per_channel_use * self.effective_code_rate * (1.0 - self.pilot_overhead)

    @property
    def spectral_efficiency(self) -> float:
        """Alias of :attr:`info_bits_per_channel_use`."""
        return self.info_bits_per_channel_use

    def for_mcs(self, index: int) -> "LinkConfig":
        """A copy of this configuration that uses MCS ``index`` of ``mcs_table``."""
        data = self.model_dump()
        data.update(mcs=index, modulation=None, code_rate=None)
        return LinkConfig(**data)

    def replace(self, **changes: Any) -> "LinkConfig":
        """A validated copy with some fields changed (``dataclasses.replace``-like)."""
        data = self.model_dump()
        if "mcs" in changes or "mcs_table" in changes:
            data.update(modulation=None, code_rate=None)
        if "decoder" in changes:
            data.update(decoder_iterations=None, cn_update=None)
        if changes.get("code") == "none":
            data.update(code_rate=None)
        data.update(changes)
        data = {k: v for k, v in data.items() if v is not None or k == "mcs"}
        return LinkConfig(**data)


def _field_help(doc: str) -> dict[str, tuple[str, str]]:
    """``{field: (section, one-paragraph help)}`` from the ``:param`` entries
    of :class:`LinkConfig`'s docstring (the one place the fields are described)."""
    out: dict[str, tuple[str, str]] = {}
    section, name, text = "", None, []

    def flush() -> None:
        if name is not None:
            plain = " ".join(" ".join(text).split())
            plain = re.sub(r":\w+:`~?(?:[\w.]+\.)?([^`]+)`", r"\1", plain).replace("``", "")
            out[name] = (section, plain)

    for line in inspect.cleandoc(doc).splitlines():
        if line.startswith("Example::"):
            break
        m = re.match(r":param (\w+):\s*(.*)", line)
        if m:
            flush()
            name, text = m.group(1), [m.group(2)]
        elif line.startswith(" ") and name is not None:
            text.append(line.strip())
        elif line.strip() and not line.startswith(":"):
            flush()
            name, text, section = None, [], line.strip()
    flush()
    return out


#: ``{field: (section, help)}`` for every :class:`LinkConfig` field, taken
#: from its docstring (command lines build their options from it)
FIELD_HELP: dict[str, tuple[str, str]] = _field_help(LinkConfig.__doc__ or "")


def field_choices(name: str) -> Optional[tuple]:
    """The allowed values of a :class:`LinkConfig` field with a Literal type
    (``None`` left out), or `None` for a free-valued field.

    Example::

        >>> field_choices("csi"), field_choices("code_rate")
        (('perfect', 'ls'), None)
    """
    ann = LinkConfig.model_fields[name].annotation
    values: list = []

    def walk(t: Any) -> bool:
        origin = get_origin(t)
        if origin is Literal:
            values.extend(get_args(t))
            return True
        if origin is Union:
            return all(walk(a) or a is type(None) for a in get_args(t))
        return False

    return tuple(values) if walk(ann) and values else None


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, float):
        try:
            return abs(float(a) - b) < 1e-6
        except (TypeError, ValueError):
            return False
    return a == b
