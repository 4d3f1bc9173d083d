"""Caching of states and images: one key definition, one LRU mechanism, the paper's edge cache.

:func:`state_key` is the one key of a denoising trajectory: ``(model
fingerprint, device, scheduler, total steps, shared steps, seeds, guidance
scale)``. :class:`Memo` is the one least-recently-used store: the chain's
process-wide memo of sender states, reference and stand-alone images
(:data:`MEMO`, exact prompts) and the entries of :class:`StateCache` both
use it.

:class:`StateCache` is the sender's semantic cache: entries are keyed by
:func:`state_key` -- all must match exactly -- and by the prompt
*embedding*: a request whose prompt is at least
``similarity_threshold`` cosine-similar to a cached one reuses that state
instead of recomputing the shared steps. Hits, misses, evictions and the
UNet evaluations saved (:mod:`pipeline.compute` units) are counted. The cache
holds at most ``capacity`` states (least recently used evicted first) and
can persist to a directory (``index.json`` plus one content-addressed state
file per entry, named by the hash of its key and contents and verified on
load), either on demand (:meth:`StateCache.save` / :meth:`StateCache.load`)
or on every insertion (``persist_dir``).

Example
-------
>>> from pipeline.embedded.model import random_pipeline
>>> from pipeline.split import SplitDiffusion
>>> from pipeline.embedded.vocabulary import VocabularyEmbedder
>>> sd = SplitDiffusion(random_pipeline())
>>> cache = StateCache(capacity=4, similarity_threshold=0.95, embedder=VocabularyEmbedder())
>>> s, hit = cache.get_or_compute(sd, "a red apple on a wooden table", 4, 2, seed=0)
>>> s, hit = cache.get_or_compute(sd, "a green apple on a blue table", 4, 2, seed=0)
>>> hit, cache.stats()["hits"], cache.stats()["misses"]
(True, 1, 1)
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable

import torch

from .compute import evals_per_step
from .state import IntermediateState, StateError

__all__ = ["StateCache", "CacheEntry", "Memo", "MEMO", "state_key", "clear_memo"]


def state_key(model_fingerprint: str, device: str, scheduler: str, num_inference_steps: int, num_shared_steps: int,
              seed, guidance_scale: float) -> tuple:
    """The one key of a denoising trajectory (hashable, JSON-able once tuples become lists).

    ``seed``: an int, a list of ints (one per sample) or None entries (a
    caller's generator). ``device``: a device type or name (``"cpu"``).
    """
    seeds = (seed if seed is None else int(seed),) if not isinstance(seed, (list, tuple)) else \
        tuple(s if s is None else int(s) for s in seed)
    return (str(model_fingerprint), torch.device(device).type, str(scheduler), int(num_inference_steps),
            int(num_shared_steps), seeds, round(float(guidance_scale), 6))


class Memo(OrderedDict):
    """A least-recently-used store of at most ``capacity`` values, computed on first use.

    >>> m = Memo(2)
    >>> m.get_or("a", lambda: 1), m.get_or("b", lambda: 2), m.get_or("a", lambda: 99), m.get_or("c", lambda: 3)
    (1, 2, 1, 3)
    >>> list(m)
    ['a', 'c']
    """

    def __init__(self, capacity: int):
        super().__init__()
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        self.capacity = capacity

    def get_or(self, key: Hashable, fn: Callable[[], object]):
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = fn()
        self.put(key, value)
        return value

    def put(self, key: Hashable, value) -> list:
        """Insert ``value`` as most recently used; returns the evicted ``(key, value)`` pairs."""
        self[key] = value
        self.move_to_end(key)
        evicted = []
        while len(self) > self.capacity:
            evicted.append(self.popitem(last=False))
        return evicted


#: the process-wide memo of exact results (sender states, reference and stand-alone images)
MEMO = {"state": Memo(64), "reference": Memo(512), "alone": Memo(512)}


def clear_memo() -> None:
    """Forget the process-wide memo of sender states, reference and stand-alone images."""
    for memo in MEMO.values():
        memo.clear()


def _digest(key: tuple, prompt: str, data: bytes) -> str:
    """The content address of a cached state: sha256 of its key, prompt and file bytes."""
    return hashlib.sha256(json.dumps([list(key[:5]), list(key[5]), key[6], prompt]).encode() + data).hexdigest()


def _state_bytes(state: IntermediateState) -> bytes:
    buf = io.BytesIO()
    torch.save(state.to_dict(), buf)
    return buf.getvalue()


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
        self._entries: Memo = Memo(capacity)
        self._next_uid = 0
        self.hits = self.misses = self.evictions = 0
        self.unet_evals_saved = self.unet_evals_computed = 0
        self.persist_dir = Path(persist_dir) if persist_dir is not None else None
        if self.persist_dir is not None and (self.persist_dir / "index.json").is_file():
            self._load_into(self.persist_dir)

    # -------------------------------------------------------------------- keys
    @staticmethod
    def make_key(model_fingerprint: str, scheduler: str, num_inference_steps: int, num_shared_steps: int,
                 seed, guidance_scale: float, device: str = "cpu") -> tuple:
        """:func:`state_key` (argument order kept for callers of earlier versions)."""
        return state_key(model_fingerprint, device, scheduler, num_inference_steps, num_shared_steps, seed,
                         guidance_scale)

    @staticmethod
    def key_of(state: IntermediateState) -> tuple:
        """:func:`state_key` of a state (from its own fields)."""
        seeds = tuple(state.seeds)
        return state_key(state.model_fingerprint, state.device, state.scheduler_name, state.num_inference_steps,
                         state.step, seeds[0] if len(set(seeds)) == 1 else seeds, state.guidance_scale)

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
        return state.step * evals_per_step(state.guidance_scale) * state.batch_size

    def put(self, state: IntermediateState, prompt: str | None = None, embedding: torch.Tensor | None = None) -> None:
        """Insert ``state`` (its first prompt unless ``prompt`` is given); evicts the LRU entry when full."""
        if not isinstance(state, IntermediateState):
            raise ValueError(f"state must be an IntermediateState, got {type(state).__name__}")
        prompt = state.prompts[0] if prompt is None else prompt
        emb = self._embed(prompt) if embedding is None else torch.nn.functional.normalize(embedding.float(), dim=0)
        uid = self._next_uid
        self._next_uid += 1
        evicted = self._entries.put(uid, CacheEntry(self.key_of(state), prompt, emb.cpu(), state, uid))
        self.evictions += len(evicted)
        if self.persist_dir is not None:
            self.save(self.persist_dir)

    def get_or_compute(self, split, prompt: str, num_inference_steps: int, num_shared_steps: int, seed: int = 0,
                       guidance_scale: float = 7.5, scheduler: str | None = "euler_ancestral"
                       ) -> tuple[IntermediateState, bool]:
        """The shared state for ``prompt``: a cached one when close enough, else computed and cached.

        Returns ``(state, hit)``. On a hit the state's ``prompts`` are those of
        the cached request (the one actually used for the shared steps).
        """
        if self.embedder is None:
            from .grouping import TextEncoderEmbedder

            self.embedder = TextEncoderEmbedder(split.pipe)
        from .split import scheduler_name_of

        name = scheduler if scheduler is not None else scheduler_name_of(split.pipe.scheduler)
        key = state_key(split.fingerprint, split.device, name, num_inference_steps, num_shared_steps, seed,
                        guidance_scale)
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

    @property
    def capacity(self) -> int:
        return self._capacity

    @capacity.setter
    def capacity(self, value: int) -> None:
        self._capacity = value
        if hasattr(self, "_entries"):
            self._entries.capacity = value

    # ---------------------------------------------------------------- on disk
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``index.json`` and one content-addressed ``state_<sha256>.pt`` per entry (LRU order kept).

        A state file's name is the hash of its entry's key, prompt and state
        bytes, so two caches saved into one folder never point at each other's
        states; files no longer indexed are removed.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        index = []
        for entry in self._entries.values():
            data = _state_bytes(entry.state)
            digest = _digest(entry.key, entry.prompt, data)
            path = directory / f"state_{digest}.pt"
            if not path.exists():
                tmp = path.with_name(path.name + ".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, path)
            index.append({"uid": entry.uid, "prompt": entry.prompt, "file": path.name, "sha256": digest,
                          "embedding": entry.embedding.tolist()})
        meta = {"capacity": self.capacity, "similarity_threshold": self.similarity_threshold,
                "next_uid": self._next_uid, "entries": index, "stats": self.stats()}
        meta["format"] = 2
        tmp = directory / "index.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, directory / "index.json")
        for stale in directory.glob("state_*.pt"):  # this folder now holds this cache
            if stale.name not in {item["file"] for item in index}:
                stale.unlink(missing_ok=True)
        return directory

    def _load_into(self, directory: Path) -> None:
        meta = json.loads((directory / "index.json").read_text())
        if meta.get("format") != 2:
            raise StateError(f"{directory / 'index.json'} is a state cache index of an older format "
                             "(states not content-addressed); delete the folder and let the cache refill it")
        for item in meta["entries"]:
            path = directory / item["file"]
            if not path.is_file():
                raise StateError(f"state cache {directory}: {item['file']} (prompt {item['prompt']!r}) is missing")
            state = IntermediateState.load(path)
            key = self.key_of(state)
            digest = _digest(key, item["prompt"], path.read_bytes())
            if digest != item["sha256"] or path.name != f"state_{digest}.pt":
                raise StateError(f"state cache {directory}: {item['file']} does not hold the state indexed for "
                                 f"prompt {item['prompt']!r} (content hash mismatch)")
            self._entries.put(item["uid"], CacheEntry(key, item["prompt"], torch.tensor(item["embedding"]), state,
                                                      item["uid"]))
        self._next_uid = max(meta.get("next_uid", 0), max(self._entries, default=-1) + 1)

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
