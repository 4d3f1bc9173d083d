"""The prompt-adherence judge contract: does an image show what its prompt asks for?

The runtime (:class:`pipeline.chain.CollaborativeChain`) takes any object that
follows :class:`Judge`; it never imports a particular judge. The shipped one,
trained on the embedded model's scenes, is
:func:`pipeline.embedded.classifier.load_judge`, wired in as a default by the
experiments layer. A judge for Stable Diffusion images (a CLIP score with a
threshold, a VQA model) plugs in the same way.

A judge may abstain: an image it cannot read with confidence (noise, a blank
or half-drawn picture, an object it does not know) is *rejected*, and a
rejected image is never adherent.

Example
-------
>>> import numpy as np
>>> class AlwaysRed:
...     def judge(self, images, prompts):
...         return [Judgement(label="red apple", adherent="red apple" in p, abstained=False, confidence=1.0)
...                 for p in prompts]
>>> images = np.zeros((2, 8, 8, 3), np.uint8)
>>> [j.adherent for j in AlwaysRed().judge(images, ["a red apple", "a green apple"])]
[True, False]
>>> isinstance(AlwaysRed(), Judge)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

__all__ = ["Judge", "Judgement"]


@dataclass(frozen=True)
class Judgement:
    """One image's verdict.

    Attributes
    ----------
    label : str | None
        What the judge sees (for the shipped judge ``"<colour> <object>"``,
        e.g. ``"red apple"``); None when it abstained.
    adherent : bool
        The image shows what the prompt asks for (for the shipped judge: the
        right object *and* the right colour) and the judge did not abstain.
    abstained : bool
        The judge rejected the image as unreadable (never adherent).
    confidence : float
        The judge's confidence in ``label`` in [0, 1] (the rejection score's complement).
    """

    label: str | None
    adherent: bool
    abstained: bool
    confidence: float


@runtime_checkable
class Judge(Protocol):
    """Anything with ``judge(images, prompts) -> list[Judgement]``.

    ``images``: ``np.uint8 [N, H, W, 3]``; ``prompts``: N strings (the prompt
    each image should follow). Returns N :class:`Judgement`.
    """

    def judge(self, images: np.ndarray, prompts: Sequence[str]) -> list[Judgement]:
        ...
