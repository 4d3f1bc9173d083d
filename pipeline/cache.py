"""A cache of intermediate states on the sender (the paper's edge cache), LRU and persistent.

Entries are keyed by ``(model fingerprint, scheduler, total steps, shared
steps, seeds, guidance scale)`` -- all must match exactly -- and by the
prompt *embedding*: a request whose prompt is at least
``similarity_threshold`` cosine-similar to a cached one reuses that state
instead of recomputing the shared steps. Hits, misses, evictions and the
UNet evaluations saved (:mod:`pipeline.compute` units) are counted. The cache
holds at most ``capacity`` states (least recently used evicted first) and
can persist to a directory (``index.json`` plus one state file per entry),
either on demand (:meth:`StateCache.save` / :meth:`StateCache.load`) or on
every insertion (``persist_dir``).

Example
-------
>>> from pipeline.embedded.model import build_pipeline, EmbeddedModelConfig
>>> from pipeline.split import SplitDiffusion
>>> from pipeline.grouping import VocabularyEmbedder
>>> sd = SplitDiffusion(build_pipeline(EmbeddedModelConfig.tiny()))
>>> cache = StateCache(capacity=4, similarity_threshold=0.95, embedder=VocabularyEmbedder())
>>> s, hit = cache.get_or_compute(sd, "a red apple on a wooden table", 4, 2, seed=0)
>>> s, hit = cache.get_or_compute(sd, "a green apple on a blue table", 4, 2, seed=0)
>>> hit, cache.stats()["hits"], cache.stats()["misses"]
(True, 1, 1)
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch

from .state import IntermediateState

__all__ = ["StateCache", "CacheEntry"]


@dataclass
class CacheEntry:
    key: tuple
    prompt: str
    embedding: torch.Tensor  # float32 [D], unit norm
    state: IntermediateState
    uid: int


class StateCache:
    """LRU cache of :class:`~pipeline.state.IntermediateState` with prompt-similarity lookup.

    Parameters
    ----------
    capacity : int
        Maximum number of cached states (>= 1).
    similarity_threshold : float
        Minimum cosine similarity of prompt embeddings for a hit, in [-1, 1]
        (1.0: only prompts with identical embeddings).
    embedder : callable or None
        ``list[str] -> float32 [B, D]``; ``None``: the model's own text encoder
        (:class:`~pipeline.grouping.TextEncoderEmbedder`) of the first
        :class:`~pipeline.split.SplitDiffusion` given to :meth:`get_or_compute`.
    persist_dir : str | Path | None
        If given, existing entries are loaded from it and every change is written to it.
    """

    def __init__(self, capacity: int = 128, similarity_threshold: float = 0.98, embedder=None,
                 persist_dir: str | os.PathLike | None = None):
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        if not -1.0 <= similarity_threshold <= 1.0:
            raise ValueError(f"similarity_threshold must be in [-1, 1], got {similarity_threshold!r}")
        self.capacity = capacity
        self.similarity_threshold = float(similarity_threshold)
        self.embedder = embedder
        self._entries: OrderedDict[int, CacheEntry] = OrderedDict()
        self._next_uid = 0
        self.hits = self.misses = self.evictions = 0
        self.unet_evals_saved = self.unet_evals_computed = 0
        self.persist_dir = Path(persist_dir) if persist_dir is not None else None
        if self.persist_dir is not None and (self.persist_dir / "index.json").is_file():
            self._load_into(self.persist_dir)

    # -------------------------------------------------------------------- keys
    @staticmethod
    def make_key(model_fingerprint: str, scheduler: str, num_inference_steps: int, num_shared_steps: int,
                 seed, guidance_scale: float) -> tuple:
        seeds = (int(seed),) if isinstance(seed, int) else tuple(int(s) for s in seed)
        return (str(model_fingerprint), str(scheduler), int(num_inference_steps), int(num_shared_steps), seeds,
                round(float(guidance_scale), 6))

    @classmethod
    def key_of(cls, state: IntermediateState) -> tuple:
        seeds = tuple(state.seeds)
        return cls.make_key(state.model_fingerprint, state.scheduler_name, state.num_inference_steps, state.step,
                            seeds[0] if len(set(seeds)) == 1 else seeds, state.guidance_scale)

    def _embed(self, prompt: str) -> torch.Tensor:
        if self.embedder is None:
            raise ValueError("StateCache has no embedder: give one, or call get_or_compute with a SplitDiffusion")
        return torch.nn.functional.normalize(self.embedder([prompt]).float().cpu()[0], dim=0)

    # -------------------------------------------------------------------- API
    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, prompt: str, key: tuple, embedding: torch.Tensor | None = None,
               count: bool = True) -> tuple[IntermediateState | None, float]:
        """Best cached state under ``key`` whose prompt is similar enough; ``(state or None, similarity)``.

        A hit moves the entry to the most-recently-used end and counts the
        shared steps' UNet evaluations as saved.
        """
        emb = self._embed(prompt) if embedding is None else torch.nn.functional.normalize(embedding.float(), dim=0)
        best, best_sim = None, -2.0
        for entry in self._entries.values():
            if entry.key != key or entry.embedding.shape != emb.shape:
                continue
            sim = 1.0 if entry.prompt == prompt else float(entry.embedding @ emb)
            if sim > best_sim:
                best, best_sim = entry, sim
        if best is not None and best_sim >= self.similarity_threshold:
            self._entries.move_to_end(best.uid)
            if count:
                self.hits += 1
                self.unet_evals_saved += self._evals(best.state)
            return best.state, best_sim
        if count:
            self.misses += 1
        return None, best_sim

    @staticmethod
    def _evals(state: IntermediateState) -> int:
        per_step = 2 if state.guidance_scale > 1 else 1
        return state.step * per_step * state.batch_size

    def put(self, state: IntermediateState, prompt: str | None = None, embedding: torch.Tensor | None = None) -> None:
        """Insert ``state`` (its first prompt unless ``prompt`` is given); evicts the LRU entry when full."""
        if not isinstance(state, IntermediateState):
            raise ValueError(f"state must be an IntermediateState, got {type(state).__name__}")
        prompt = state.prompts[0] if prompt is None else prompt
        emb = self._embed(prompt) if embedding is None else torch.nn.functional.normalize(embedding.float(), dim=0)
        uid = self._next_uid
        self._next_uid += 1
        self._entries[uid] = CacheEntry(self.key_of(state), prompt, emb.cpu(), state, uid)
        while len(self._entries) > self.capacity:
            old_uid, _ = self._entries.popitem(last=False)
            self.evictions += 1
            if self.persist_dir is not None:
                (self.persist_dir / f"state_{old_uid}.pt").unlink(missing_ok=True)
        if self.persist_dir is not None:
            self.save(self.persist_dir)

    def get_or_compute(self, split, prompt: str, num_inference_steps: int, num_shared_steps: int, seed: int = 0,
                       guidance_scale: float = 7.5, scheduler: str = "euler_ancestral"
                       ) -> tuple[IntermediateState, bool]:
        """The shared state for ``prompt``: a cached one when close enough, else computed and cached.

        Returns ``(state, hit)``. On a hit the state's ``prompts`` are those of
        the cached request (the one actually used for the shared steps).
        """
        if self.embedder is None:
            from .grouping import TextEncoderEmbedder

            self.embedder = TextEncoderEmbedder(split.pipe)
        key = self.make_key(split.fingerprint, scheduler, num_inference_steps, num_shared_steps, seed, guidance_scale)
        emb = self._embed(prompt)
        state, _ = self.lookup(prompt, key, emb)
        if state is not None:
            return state, True
        state = split.shared(prompt, num_inference_steps, num_shared_steps, seed=seed, guidance_scale=guidance_scale,
                             scheduler=scheduler)
        self.unet_evals_computed += self._evals(state)
        self.put(state, prompt, emb)
        return state, False

    def stats(self) -> dict:
        """Counters: ``hits``, ``misses``, ``hit_rate``, ``evictions``, ``size``, UNet evaluations saved/computed."""
        n = self.hits + self.misses
        return {"hits": self.hits, "misses": self.misses, "hit_rate": self.hits / n if n else 0.0,
                "evictions": self.evictions, "size": len(self), "capacity": self.capacity,
                "unet_evals_saved": self.unet_evals_saved, "unet_evals_computed": self.unet_evals_computed}

    def clear(self) -> None:
        self._entries.clear()

    # ---------------------------------------------------------------- on disk
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``index.json`` and one ``state_<uid>.pt`` per entry (LRU order kept)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        index = []
        for entry in self._entries.values():
            path = directory / f"state_{entry.uid}.pt"
            if not path.exists():
                entry.state.save(path)
            index.append({"uid": entry.uid, "prompt": entry.prompt, "key": list(entry.key[:4]) + [
                list(entry.key[4]), entry.key[5]], "embedding": entry.embedding.tolist()})
        meta = {"capacity": self.capacity, "similarity_threshold": self.similarity_threshold,
                "next_uid": self._next_uid, "entries": index, "stats": self.stats()}
        tmp = directory / "index.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, directory / "index.json")
        return directory

    def _load_into(self, directory: Path) -> None:
        meta = json.loads((directory / "index.json").read_text())
        for item in meta["entries"]:
            key = tuple(item["key"][:4]) + (tuple(item["key"][4]), item["key"][5])
            state = IntermediateState.load(directory / f"state_{item['uid']}.pt")
            self._entries[item["uid"]] = CacheEntry(key, item["prompt"], torch.tensor(item["embedding"]), state,
                                                    item["uid"])
        self._next_uid = max(meta.get("next_uid", 0), max(self._entries, default=-1) + 1)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    @classmethod
    def load(cls, directory: str | os.PathLike, embedder=None, capacity: int | None = None,
             similarity_threshold: float | None = None) -> "StateCache":
        """A cache restored from :meth:`save`'s directory (counters start at zero)."""
        directory = Path(directory)
        if not (directory / "index.json").is_file():
            raise FileNotFoundError(f"no state cache at {directory} (index.json missing)")
        meta = json.loads((directory / "index.json").read_text())
        cache = cls(capacity or meta["capacity"], meta["similarity_threshold"] if similarity_threshold is None
                    else similarity_threshold, embedder)
        cache._load_into(directory)
        return cache
