"""The shipped prompt-adherence judge as a :class:`pipeline.judge.Judge`: the default the experiments layer wires in.

:func:`default_judge` returns :func:`pipeline.embedded.classifier.load_judge`'s
judge when that exists, else wraps today's scene classifier
(:func:`~pipeline.embedded.classifier.load_classifier`) in
:class:`ClassifierJudge`; ``None``, with one warning, when no classifier is
shipped (the adherence columns then stay empty).

Example
-------
>>> import numpy as np
>>> from pipeline.embedded.judging import ClassifierJudge
>>> from pipeline.embedded.classifier import SceneClassifier
>>> judge = ClassifierJudge(SceneClassifier(width=4))
>>> [type(j).__name__ for j in judge.judge(np.zeros((2, 32, 32, 3), np.uint8), ["a red apple", "a cat"])]
['Judgement', 'Judgement']
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from ..judge import Judge, Judgement
from .scenes import object_in_prompt

__all__ = ["ClassifierJudge", "default_judge"]


class ClassifierJudge:
    """A :class:`~pipeline.judge.Judge` over a scene classifier (object names; never abstains).

    ``adherent``: the classifier names the object the prompt asks for;
    ``confidence``: the softmax probability of the named object.
    """

    def __init__(self, classifier):
        self.classifier = classifier

    @torch.no_grad()
    def judge(self, images: np.ndarray, prompts: Sequence[str]) -> list[Judgement]:
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[None]
        if len(images) != len(prompts):
            raise ValueError(f"got {len(images)} images but {len(prompts)} prompts")
        clf = self.classifier.eval()
        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
        prob = torch.softmax(clf(x), dim=1)
        conf, idx = prob.max(dim=1)
        out = []
        for i, p in enumerate(prompts):
            label = clf.classes[int(idx[i])]
            out.append(Judgement(label=label, adherent=label == object_in_prompt(p), abstained=False,
                                 confidence=float(conf[i])))
        return out


def default_judge() -> Judge | None:
    """The shipped judge, or None (with a warning) when it cannot be loaded."""
    try:
        from . import classifier

        if hasattr(classifier, "load_judge"):
            return classifier.load_judge()
        return ClassifierJudge(classifier.load_classifier())
    except Exception as err:  # noqa: BLE001 - no judge shipped (yet): adherence columns stay empty
        warnings.warn(f"prompt adherence not measured: the shipped judge is unavailable ({err})", stacklevel=2)
        return None
