"""Exceptions raised by :mod:`latent_codec`."""

from __future__ import annotations

__all__ = ["HeaderCorruptedError"]


class HeaderCorruptedError(ValueError):
    """The header of a payload could not be recovered intact.

    Raised by :func:`latent_codec.parse_header` when the CRC-32 of one or more
    header rows fails after combining the repetitions, or when a row whose CRC
    passes carries fields that no codec writes. Decoding a body with a wrong
    header would silently produce garbage latents, so it is refused.

    Attributes
    ----------
    failed_rows : list[int]
        Batch rows whose header could not be recovered.
    """

    def __init__(self, message: str, failed_rows: list[int] | None = None):
        super().__init__(message)
        self.failed_rows = list(failed_rows or [])
