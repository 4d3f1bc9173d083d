"""Seed derivation: one place that turns a description of a random stream into a seed.

Every random stream of distdiff (a sweep point's noise, a receiver's channel
realisation, a calibration curve) is seeded from a text that names it, so the
streams are independent of one another and reproducible from the config alone.

>>> derive_seed("distdiff-link/0/1") == derive_seed("distdiff-link/0/1")
True
>>> derive_seed("distdiff-link/0/1") != derive_seed("distdiff-link/0/2")
True
>>> 0 <= derive_seed("anything") < 2**63
True
>>> g = derive_generator("distdiff-link/0/1")
>>> g.initial_seed() == derive_seed("distdiff-link/0/1")
True
"""

from __future__ import annotations

import hashlib

import torch

__all__ = ["derive_seed", "derive_generator"]


def derive_seed(text: str) -> int:
    """A 63-bit seed from the SHA-256 of ``text`` (its first 8 bytes, little-endian)."""
    digest = hashlib.sha256(text.encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def derive_generator(text: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`derive_seed` of ``text``."""
    return torch.Generator(device).manual_seed(derive_seed(text))
