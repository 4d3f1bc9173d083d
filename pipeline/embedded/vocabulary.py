"""The scene vocabulary as prompt embedder: the embedded model's defaults for grouping.

:class:`VocabularyEmbedder` maps a prompt to its object and object group
(fruit, animal, vehicle) of :mod:`pipeline.embedded.scenes`;
:func:`scene_reference_prompts` is a fixed centring set for
:class:`pipeline.grouping.TextEncoderEmbedder`. The runtime
(:mod:`pipeline.grouping`) takes embedders as objects; the experiments layer
passes these as defaults for the shipped model.

Example
-------
>>> from pipeline.embedded.vocabulary import VocabularyEmbedder
>>> e = VocabularyEmbedder()(["a red apple on a wooden table", "a yellow lemon on a table", "a blue bus"])
>>> [round(float(e[0] @ e[i]), 2) for i in range(3)]
[1.0, 0.7, 0.0]
"""

from __future__ import annotations

import math

import torch

from .scenes import GROUPS, OBJECT_COLOURS, OBJECT_GROUPS, OBJECTS, TABLES, make_caption, object_in_prompt

__all__ = ["VocabularyEmbedder", "scene_reference_prompts"]


class VocabularyEmbedder:
    """The scene vocabulary as a two-level knowledge graph (object -> group).

    A prompt maps to ``[group one-hot * sqrt(1 - w), object one-hot * sqrt(w)]``
    (``w = object_weight``), so the cosine similarity is 1 for the same object,
    ``1 - w`` for two objects of the same group (fruit, animal, vehicle) and 0
    across groups; a prompt naming no known object is orthogonal to all.
    Output: float32 ``[B, len(GROUPS) + len(OBJECTS) + 1 + B]``.
    """

    name = "vocabulary"

    def __init__(self, object_weight: float = 0.3):
        if not 0.0 <= object_weight <= 1.0:
            raise ValueError(f"object_weight must be in [0, 1], got {object_weight}")
        self.object_weight = object_weight

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), len(GROUPS) + len(OBJECTS) + 1 + len(prompts))
        for i, p in enumerate(prompts):
            obj = object_in_prompt(p)
            if obj is None:  # unknown: orthogonal to everything but itself
                out[i, len(GROUPS) + len(OBJECTS) + 1 + i] = 1.0
                continue
            out[i, GROUPS.index(OBJECT_GROUPS[obj])] = math.sqrt(1 - self.object_weight)
            out[i, len(GROUPS) + OBJECTS.index(obj)] = math.sqrt(self.object_weight)
        return out


def scene_reference_prompts() -> list[str]:
    """One caption per (object, typical colour, table) of the scene vocabulary: a fixed centring set."""
    return [make_caption(OBJECT_COLOURS[o][0], o, t) for o in OBJECTS for t in TABLES]
