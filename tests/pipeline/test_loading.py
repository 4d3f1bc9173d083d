"""Loading: the shipped model, local folders, hub ids (offline), clear errors."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from pipeline.embedded.model import random_pipeline
from pipeline.loading import DEFAULT_MODEL_DIR, ModelNotFoundError, load_pipeline, model_fingerprint, resolve_dtype
from pipeline.split import SplitDiffusion

@pytest.fixture(scope="module")
def saved_tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny-sd"
    pipe = random_pipeline()
    pipe.save_pretrained(path, safe_serialization=True)
    return path, pipe


def test_loads_a_local_folder_and_generates_identically(saved_tiny):
    path, original = saved_tiny
    pipe = load_pipeline(path)
    assert pipe.unet.dtype == torch.float32 and pipe.safety_checker is None
    assert model_fingerprint(pipe) == model_fingerprint(original)
    a = SplitDiffusion(pipe).generate("a red apple on a wooden table", 3, seed=0)
    b = SplitDiffusion(original).generate("a red apple on a wooden table", 3, seed=0)
    np.testing.assert_array_equal(a, b)
    assert load_pipeline(str(path), dtype="float16").unet.dtype == torch.float16


def test_missing_folder_says_what_was_looked_for(tmp_path):
    with pytest.raises(ModelNotFoundError, match=f"looked for at {tmp_path / 'nope'}"):
        load_pipeline(tmp_path / "nope")
    with pytest.raises(ValueError):  # also a ValueError
        load_pipeline(str(tmp_path / "nope"))


def test_broken_folders_get_clear_errors(tmp_path, saved_tiny):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no model_index.json"):
        load_pipeline(tmp_path / "empty")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "model_index.json").write_text(json.dumps(
        {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"],
         "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers", "CLIPTextModel"],
         "tokenizer": ["transformers", "PreTrainedTokenizerFast"], "scheduler": ["diffusers", "DDIMScheduler"]}))
    with pytest.raises(ModelNotFoundError, match="lacks the component"):
        load_pipeline(partial)
    # all folders there but the weights are garbage
    path, _ = saved_tiny
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    for f in (broken / "unet").glob("*.safetensors"):
        f.write_bytes(b"garbage")
    with pytest.raises(ModelNotFoundError, match="could not be loaded"):
        load_pipeline(broken)


def test_hub_id_not_cached_fails_fast_without_network():
    t0 = time.time()
    with pytest.raises(ModelNotFoundError, match="not in the local hub cache.*huggingface-cli download"):
        load_pipeline("distdiff-test/definitely-not-a-model")
    assert time.time() - t0 < 30


def test_bad_dtype_and_device():
    with pytest.raises(ValueError, match="dtype='int8' is not supported"):
        resolve_dtype("int8", "cpu")
    assert resolve_dtype(None, "cpu") == torch.float32 and resolve_dtype(None, "cuda") == torch.float16
    with pytest.raises(ValueError, match="device="):
        load_pipeline(device="nonsense")


def test_missing_shipped_model_explains_how_to_get_it(tmp_path, monkeypatch):
    import pipeline.loading

    monkeypatch.setattr(pipeline.loading, "DEFAULT_MODEL_DIR", tmp_path / "distdiff-tiny-sd")
    with pytest.raises(ModelNotFoundError, match="python -m pipeline.embedded.training"):
        load_pipeline()


def test_shipped_model_loads_offline_and_generates():
    # the model is committed in the repository: its absence is a failure, not a skip
    assert (DEFAULT_MODEL_DIR / "model_index.json").is_file(), DEFAULT_MODEL_DIR
    pipe = load_pipeline()
    sd = SplitDiffusion(pipe)
    image = sd.generate("a red apple on a wooden table", 11, seed=0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert image.std() > 5  # not a flat image
    state = sd.shared("a red apple on a wooden table", 11, 5, seed=0)
    np.testing.assert_array_equal(sd.finish(state, "a red apple on a wooden table"), image)


def test_shipped_model_loads_with_plain_diffusers_defaults():
    # the README's promise: an exact diffusers folder, loadable with no arguments at all
    import json as _json

    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    pipe = StableDiffusionPipeline.from_pretrained(str(DEFAULT_MODEL_DIR))
    pipe.set_progress_bar_config(disable=True)
    assert {pipe.unet.dtype, pipe.vae.dtype, pipe.text_encoder.dtype} == {torch.float32}
    image = pipe("a red apple on a wooden table", num_inference_steps=3, output_type="np",
                 generator=torch.Generator().manual_seed(0)).images
    assert image.shape == (1, 64, 64, 3) and np.isfinite(image).all() and image.std() > 0.01
    # the stored weights are float32, and the tokenizer class is one every transformers >= 4.45 knows
    for part in ("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model"):
        with safe_open(str(DEFAULT_MODEL_DIR / f"{part}.safetensors"), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"F32"}, part
    index = _json.loads((DEFAULT_MODEL_DIR / "model_index.json").read_text())
    assert index["tokenizer"] == ["transformers", "PreTrainedTokenizerFast"]
    # load_pipeline loads the same float32 values
    assert model_fingerprint(load_pipeline()) == model_fingerprint(pipe)


def test_loading_is_quiet_and_wraps_only_loading_failures(monkeypatch, capfd):
    import warnings

    import diffusers

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a harmless upstream warning must not become "could not be loaded"
        pipe = load_pipeline()
    assert pipe.unet.dtype == torch.float32
    assert "accelerate" not in capfd.readouterr().err

    def warns(*args, **kwargs):
        warnings.warn("an upstream notice", UserWarning)
        raise AssertionError("not reached under -W error")

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", warns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match="an upstream notice"):
            load_pipeline()
