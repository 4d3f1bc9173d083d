"""distdiff: pipeline package -- the diffusion side of collaborative split inference.

Public API (see each module's docstring):

- :func:`load_pipeline` (:mod:`pipeline.loading`): the shipped model, a local folder or a hub id.
- :class:`SplitDiffusion`, :class:`IntermediateState` (:mod:`pipeline.split`, :mod:`pipeline.state`):
  shared steps, exact resume, uninterrupted reference.
- :class:`ChainConfig`, :class:`CollaborativeChain`, :class:`ReceiverRecord` (:mod:`pipeline.chain`):
  pipeline + latent_codec + phy for one group of receivers; a :class:`Judge` (:mod:`pipeline.judge`)
  and a prompt embedder are passed in as objects.
- :mod:`pipeline.grouping` (:class:`PromptGrouper`, :func:`shared_steps_for_group`),
  :class:`StateCache` (:mod:`pipeline.cache`), :class:`ComputeAccount` (:mod:`pipeline.compute`),
  :func:`image_metrics` (:mod:`pipeline.metrics`).

Heavy modules are imported lazily, so ``import pipeline`` stays cheap.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "load_pipeline": "loading", "ModelNotFoundError": "loading", "DEFAULT_MODEL_DIR": "loading",
    "model_fingerprint": "loading",
    "IntermediateState": "state", "StateError": "state",
    "SplitDiffusion": "split", "SCHEDULERS": "split", "ResumeWarning": "split",
    "ChainConfig": "chain", "CollaborativeChain": "chain", "ReceiverRecord": "chain",
    "PromptGrouper": "grouping", "shared_steps_for_group": "grouping", "TextEncoderEmbedder": "grouping",
    "Judge": "judge", "Judgement": "judge", "clear_memo": "cache",
    "StateCache": "cache", "ComputeAccount": "compute", "image_metrics": "metrics",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
