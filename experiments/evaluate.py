"""The point function of real experiments: one grid point -> the collaborative chain of :mod:`pipeline`.

:func:`evaluate_point` is what the sweep runner calls in each worker. It holds
no model or PHY logic: it loads the pipeline once per worker process, builds a
:class:`pipeline.CollaborativeChain` from the point's resolved chain config,
runs it for every user group with the point's seed, and flattens each
receiver's record (``record.to_row()``) into a results row, adding the group,
user and prompts (and, when the config has ``latency_energy``, the columns of
:mod:`experiments.latency_energy`).

Model names: ``None`` (or ``"embedded"``) is the shipped embedded model;
``"tiny-random"`` a randomly initialised tiny model of the same architecture
(tests, smoke runs: the numbers mean nothing); ``"embedded-random"`` the
shipped architecture at full size with random weights (timing without the
trained weights); anything else a diffusers folder
or hub id handed to :func:`pipeline.load_pipeline`.

Example
-------
>>> from experiments.config import load_config
>>> from experiments.grid import expand_grid
>>> cfg = load_config("default", overrides=["model=tiny-random", "grid.snr_db=[10]", "seeds=[0]"])
>>> result = evaluate_point(expand_grid(cfg)[0])                    # doctest: +SKIP
>>> sorted(result.rows[0])[:3]                                       # doctest: +SKIP
"""

from __future__ import annotations

import re

from .grid import Point, PointResult
from .latency_energy import latency_energy_columns

_PIPELINES: dict = {}


def get_pipeline(model: str | None, device: str = "cpu"):
    """The diffusers pipeline of ``model`` on ``device``, loaded once per process."""
    key = (model, device)
    if key not in _PIPELINES:
        _PIPELINES.clear()           # one model per worker at a time
        from pipeline.embedded.model import RANDOM_MODELS, random_pipeline

        if model in RANDOM_MODELS:
            pipe = random_pipeline(model, seed=0, device=device)
        else:
            from pipeline import load_pipeline

            pipe = load_pipeline(None if model in (None, "embedded") else model, device=device)
        import torch

        unet = getattr(pipe, "unet", None)
        if isinstance(unet, torch.nn.Module):
            unet.register_forward_hook(_count_unet_call)
        _PIPELINES[key] = pipe
    return _PIPELINES[key]


#: UNet forward calls in this process (all models): the sweep runner records each point's share
#: in ``timings.csv`` (``unet_calls``), which shows the work a schedule saves or repeats
UNET_CALLS = [0]


def _count_unet_call(_module, _inputs, _output) -> None:
    UNET_CALLS[0] += 1


def unet_calls() -> int:
    """UNet forward calls so far in this process (pipelines loaded by :func:`get_pipeline`)."""
    return UNET_CALLS[0]


_JUDGES: dict = {}


def get_judge():
    """The shipped prompt-adherence judge (the default judge of every chain here), loaded once per process."""
    if "judge" not in _JUDGES:
        from pipeline.embedded.judging import default_judge

        _JUDGES["judge"] = default_judge()
    return _JUDGES["judge"]


def user_groups(point: Point, pipe) -> list[dict]:
    """The point's user groups: explicit, or free prompts grouped by meaning.

    With ``grouping``, :class:`pipeline.grouping.PromptGrouper` clusters the
    prompts (embedder per the config); each group's representative (medoid)
    prompt is the shared prompt and every member is a receiver. With
    ``auto_shared_steps`` the group's ``num_shared_steps`` comes from the
    pipeline's similarity rule instead of the chain config.
    """
    if point.groups is not None:
        return point.groups
    from pipeline import grouping as pg

    g = point.grouping
    from pipeline.embedded.vocabulary import VocabularyEmbedder

    embedder = {"default": lambda: pg.default_embedder(pipe), "text_encoder": lambda: pg.TextEncoderEmbedder(pipe),
                "vocabulary": VocabularyEmbedder}[g["embedder"]]()
    kwargs = {k: g[k] for k in ("threshold", "max_group_size") if g.get(k) is not None}
    grouper = pg.PromptGrouper(embedder, **kwargs)
    grouper.add(list(g["prompts"]))
    out = []
    for i, grp in enumerate(grouper.groups(num_inference_steps=int(point.chain["num_inference_steps"]))):
        d = {"name": f"group{i}", "shared_prompt": grp.representative, "receiver_prompts": list(grp.prompts),
             "group_similarity": grp.similarity, "embedder": getattr(embedder, "name", type(embedder).__name__)}
        if g.get("auto_shared_steps"):
            d["num_shared_steps"] = grp.num_shared_steps
        out.append(d)
    return out


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "group"


#: torch threads every point computes with: results do not depend on the executor or ``--threads``
POINT_TORCH_THREADS = 1


def evaluate_point(point: Point) -> PointResult:
    """Run the collaborative chain for every user group of ``point`` (see the module docstring).

    The point computes with :data:`POINT_TORCH_THREADS` torch thread(s) whatever
    the process was set to (restored afterwards), so ``--serial``, worker
    processes and any ``--threads`` give bit-identical rows.

    Returns
    -------
    PointResult
        One row per receiver: ``group``, ``group_index``, ``user``, ``shared_prompt``,
        ``receiver_prompt``, then the chain record's metrics (and latency/energy
        columns); images ``<group>_u<user>`` (received), ``<group>_u<user>_ref``
        (error-free reference) and ``<group>_u<user>_alone`` (generated alone, when
        the chain computes it), uint8 [H, W, 3].
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(POINT_TORCH_THREADS)
    try:
        return _evaluate(point)
    finally:
        torch.set_num_threads(before)


evaluate_point.torch_threads = POINT_TORCH_THREADS      # recorded in environment.json by the runner


def _evaluate(point: Point) -> PointResult:
    from pipeline import ChainConfig, CollaborativeChain

    pipe = get_pipeline(point.model, point.device)
    base = ChainConfig.model_validate(point.chain)
    groups = user_groups(point, pipe)
    configs = [base if g.get("num_shared_steps") is None else
               ChainConfig.model_validate({**point.chain, "num_shared_steps": g["num_shared_steps"]}) for g in groups]
    # groups of one configuration run together (with batch_receivers: all their receivers in one UNet batch)
    records_of: dict[int, list] = {}
    distinct = [cfg for i, cfg in enumerate(configs) if cfg not in configs[:i]]
    for config in distinct:
        members = [gi for gi, cfg in enumerate(configs) if cfg == config]
        chain = CollaborativeChain(pipe, config, judge=get_judge() if config.classify else None)
        outcome = chain.run_groups([(groups[gi]["shared_prompt"], list(groups[gi]["receiver_prompts"]))
                                    for gi in members], seed=point.seed)
        records_of.update(zip(members, outcome))
    rows, images = [], {}
    for gi, group in enumerate(groups):
        config, records = configs[gi], records_of[gi]
        for u, (prompt, rec) in enumerate(zip(group["receiver_prompts"], records)):
            row = {"group": group["name"], "group_index": gi, "user": u, "pair": f"{group['name']}/u{u}",
                   "shared_prompt": group["shared_prompt"],
                   "receiver_prompt": prompt}
            for extra in ("group_similarity", "embedder"):
                if extra in group:
                    row[extra] = group[extra]
            row.update(rec.to_row())
            if point.latency_energy:
                row.update(latency_energy_columns(
                    point.latency_energy, num_inference_steps=config.num_inference_steps,
                    num_shared_steps=config.num_shared_steps, group_size=len(records),
                    airtime_s=row.get("airtime_s"), payload_bits=row.get("payload_bits")))
            rows.append(row)
            name = f"{_safe(group['name'])}_u{u}"
            images[name] = rec.image
            images[f"{name}_ref"] = rec.reference_image
            if getattr(rec, "alone_image", None) is not None:
                images[f"{name}_alone"] = rec.alone_image
    return PointResult(rows=rows, images=images)


__all__ = ["evaluate_point", "get_pipeline", "user_groups", "unet_calls", "POINT_TORCH_THREADS"]
