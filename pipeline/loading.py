"""Loading a Stable-Diffusion-family pipeline: the shipped model or any diffusers one.

:func:`load_pipeline` is the one entry point. With no argument it loads the
project's embedded model from ``pipeline/models/distdiff-tiny-sd`` (inside the
installed package: no network, no hub cache). With a local folder or a hub id
(e.g. ``CompVis/stable-diffusion-v1-4``) it loads that through
``diffusers.StableDiffusionPipeline.from_pretrained`` on the device and dtype
asked for. Hub ids are resolved from the local hub cache only unless
``allow_download=True``. A missing or broken model gives a
:class:`ModelNotFoundError` (a ``FileNotFoundError`` and a ``ValueError``) that
says what was looked for and how to get it -- never a long hub traceback.

Example
-------
>>> from pipeline.loading import load_pipeline, DEFAULT_MODEL_DIR
>>> pipe = load_pipeline()              # doctest: +SKIP
>>> pipe.unet.config.sample_size        # doctest: +SKIP
16
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import re
import warnings
from pathlib import Path

import torch

__all__ = ["ModelNotFoundError", "DEFAULT_MODEL_DIR", "load_pipeline", "model_fingerprint", "quiet_upstream", "resolve_dtype"]

#: the shipped model (a diffusers folder inside the package)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "models" / "distdiff-tiny-sd"

_SHIPPED_HINT = ("it is committed in the repository (git checkout of distdiff) and can be rebuilt with "
                 "`python -m pipeline.embedded.training --out {path}` (about 90 minutes on a 2-core CPU)")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


class ModelNotFoundError(FileNotFoundError, ValueError):
    """A model folder or hub id that cannot be loaded (missing, incomplete or broken)."""


def resolve_dtype(dtype, device) -> torch.dtype:
    """``None`` -> float32 on CPU, float16 on CUDA; strings like ``"float16"`` accepted."""
    if dtype is None:
        return torch.float16 if torch.device(device).type == "cuda" else torch.float32
    if isinstance(dtype, str):
        name = dtype.replace("torch.", "")
        allowed = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16,
                   "fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
        if name not in allowed:
            raise ValueError(f"dtype={dtype!r} is not supported; allowed: {sorted(allowed)}")
        return allowed[name]
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype={dtype!r} must be a floating torch.dtype (float32, float16, bfloat16)")
    return dtype


def _check_folder(path: Path, shipped: bool) -> None:
    hint = _SHIPPED_HINT.format(path=path) if shipped else (
        "pass the folder written by `StableDiffusionPipeline.save_pretrained` or a hub id present in the local cache")
    what = "the shipped model" if shipped else "a diffusers model folder"
    if not path.is_dir():
        raise ModelNotFoundError(f"{what} was looked for at {path} but there is no such folder; {hint}")
    index = path / "model_index.json"
    if not index.is_file():
        raise ModelNotFoundError(f"{what} at {path} has no model_index.json (not a diffusers pipeline folder); {hint}")
    try:
        spec = json.loads(index.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelNotFoundError(f"{index} is not valid JSON ({err}); {hint}") from None
    missing = [c for c in _COMPONENTS if c in spec and spec[c] and spec[c][0] is not None and not (path / c).is_dir()]
    missing += [c for c in _COMPONENTS if c not in spec]
    if missing:
        raise ModelNotFoundError(f"{what} at {path} lacks the component(s) {missing}; {hint}")


@contextlib.contextmanager
def _quiet_loading():
    """No diffusers/transformers loading progress bars (restored afterwards)."""
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    restore = [(m, m.is_progress_bar_enabled()) for m in (dlog, tlog) if hasattr(m, "is_progress_bar_enabled")]
    for m, _ in restore:
        m.disable_progress_bar()
    try:
        yield
    finally:
        for m, was_enabled in restore:
            if was_enabled:
                m.enable_progress_bar()


@contextlib.contextmanager
def quiet_upstream():
    """Silence, deliberately and only around our own calls, upstream warnings a user cannot act on.

    diffusers' schedulers call ``np.array(tensor)``, which numpy 2 answers with a
    ``DeprecationWarning`` about the ``copy`` keyword at every construction and
    ``set_timesteps`` (and at each ``step`` of some).
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"__array__ implementation doesn't accept a copy keyword",
                                category=DeprecationWarning)
        yield


def load_pipeline(model: str | os.PathLike | None = None, device: str | torch.device = "cpu", dtype=None,
                  allow_download: bool = False):
    """Load a Stable-Diffusion-family text-to-image pipeline.

    Parameters
    ----------
    model : str | Path | None
        ``None``: the shipped model (:data:`DEFAULT_MODEL_DIR`). A path: a
        diffusers folder. Otherwise a hub id such as
        ``"CompVis/stable-diffusion-v1-4"`` (local hub cache only unless
        ``allow_download``).
    device : str | torch.device
        Where the modules live (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    dtype : torch.dtype | str | None
        Weight dtype; ``None`` means float32 on CPU and float16 on CUDA (the
        shipped fp16 weights are upcast on CPU).
    allow_download : bool
        Let diffusers download a hub id that is not cached.

    Returns
    -------
    diffusers.StableDiffusionPipeline
        Safety checker off, progress bar off, ``pipe.name_or_path`` set.

    Raises
    ------
    ModelNotFoundError
        The folder or hub id is missing, incomplete or fails to load; the
        message names what was looked for and how to get it. Only loading
        failures: a warning raised as an error (``-W error``) propagates
        unchanged. Upstream notices a user cannot act on (diffusers'
        "accelerate not found", numpy deprecations inside schedulers) are
        silenced around this call only.
    """
    from diffusers import StableDiffusionPipeline

    try:
        torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device ({str(err).splitlines()[0][:120]})") from None
    torch_dtype = resolve_dtype(dtype, device)
    shipped = model is None
    path = DEFAULT_MODEL_DIR if shipped else Path(os.fspath(model)).expanduser()
    is_local = shipped or path.exists() or not _HUB_ID.match(str(model))
    kwargs = dict(dtype=torch_dtype, safety_checker=None, requires_safety_checker=False)
    if importlib.util.find_spec("accelerate") is None:  # say so, rather than have diffusers warn mid-run
        kwargs["low_cpu_mem_usage"] = False
    if is_local:
        _check_folder(path, shipped)
        source, kwargs["local_files_only"] = str(path), True
    else:
        source, kwargs["local_files_only"] = str(model), not allow_download
    try:
        with _quiet_loading(), quiet_upstream():
            pipe = StableDiffusionPipeline.from_pretrained(source, **kwargs)
    except Warning:  # a warning turned into an error (-W error) is not a loading failure: let it be seen as is
        raise
    except Exception as err:  # noqa: BLE001 - any loader failure becomes one clear message
        first = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
        if is_local:
            raise ModelNotFoundError(f"the model folder {path} could not be loaded ({type(err).__name__}: {first}); "
                                     + (_SHIPPED_HINT.format(path=path) if shipped else
                                        "check that it is a complete diffusers StableDiffusionPipeline folder")
                                     ) from None
        how = ("it is not in the local hub cache "
               f"(HF_HOME={os.environ.get('HF_HOME', '~/.cache/huggingface')}); download it once with "
               f"`huggingface-cli download {model}` or pass allow_download=True" if not allow_download else
               "the download failed (network, gated model or wrong id)")
        raise ModelNotFoundError(f"model {str(model)!r} could not be loaded: {how} ({type(err).__name__}: {first})"
                                 ) from None
    pipe = pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def model_fingerprint(pipe) -> str:
    """A short hex digest identifying a pipeline's weights and component configs.

    Hashes the configs of UNet, VAE and text encoder, the tokenizer's vocabulary
    size, and for every parameter its name, shape, dtype, a float64 sum and the
    bytes of its first and last 64 values. Two different trained models (or
    random initialisations) differ; the same model loaded twice on the same
    dtype does not. Cached on the pipeline object (per dtype).

    Input: a diffusers ``StableDiffusionPipeline``. Output: ``str``, 16 hex digits.
    """
    cached = getattr(pipe, "_distdiff_fingerprint", None)
    if cached is not None and cached[0] == pipe.unet.dtype:
        return cached[1]
    h = hashlib.sha256()
    for name in ("unet", "vae", "text_encoder"):
        module = getattr(pipe, name)
        cfg = dict(module.config) if hasattr(module.config, "items") else module.config.to_dict()
        cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}  # e.g. _use_default_values: set order
        h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
        with torch.no_grad():
            for pname, p in module.named_parameters():
                flat = p.detach().cpu().reshape(-1)
                h.update(f"{name}.{pname}{tuple(p.shape)}{p.dtype}{flat.double().sum().item():.10e}".encode())
                h.update(flat[:64].float().numpy().tobytes())
                h.update(flat[-64:].float().numpy().tobytes())
    h.update(str(len(pipe.tokenizer)).encode())
    digest = h.hexdigest()[:16]
    try:
        pipe._distdiff_fingerprint = (pipe.unet.dtype, digest)
    except Exception:  # noqa: BLE001 - pipelines that refuse attributes just recompute
        pass
    return digest
