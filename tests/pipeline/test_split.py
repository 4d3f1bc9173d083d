"""Split inference: exact resume per scheduler, across processes, state handling, clear errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.embedded.model import random_pipeline
from pipeline.split import SCHEDULERS, ResumeWarning, SplitDiffusion, sigma_to_timestep
from pipeline.state import IntermediateState, StateError

APPLE = "a red apple on a wooden table"
LEMON = "a yellow lemon on a wooden table"
BUS = "a blue bus on a white table"
N = 6
EXACT_SCHEDULERS = ("euler_ancestral", "ddim", "dpmsolver++")


@pytest.fixture(scope="module")
def sd():
    return SplitDiffusion(random_pipeline())


@pytest.fixture(scope="module")
def references(sd):
    return {s: sd.generate(APPLE, N, seed=3, scheduler=s) for s in EXACT_SCHEDULERS}


@pytest.mark.parametrize("scheduler", EXACT_SCHEDULERS)
@pytest.mark.parametrize("k", [0, 1, 3, N - 1, N])
def test_shared_then_finish_is_bit_identical(sd, references, scheduler, k):
    state = sd.shared(APPLE, N, k, seed=3, scheduler=scheduler)
    assert state.step == k and state.scheduler_name == scheduler
    image = sd.finish(state, APPLE)
    assert image.dtype == np.uint8 and image.shape == (32, 32, 3)
    np.testing.assert_array_equal(image, references[scheduler])


@pytest.mark.parametrize("scheduler", EXACT_SCHEDULERS)
def test_save_load_round_trip_is_exact(sd, references, scheduler, tmp_path):
    state = sd.shared(APPLE, N, 2, seed=3, scheduler=scheduler)
    loaded = IntermediateState.load(state.save(tmp_path / "s.pt"))
    assert loaded.equals(state)
    np.testing.assert_array_equal(sd.finish(loaded, APPLE), references[scheduler])


def test_dpmsolver_state_carries_multistep_history(sd):
    state = sd.shared(APPLE, N, 3, seed=3, scheduler="dpmsolver++")
    assert state.scheduler_state["lower_order_nums"] >= 1
    assert any(isinstance(t, torch.Tensor) for t in state.scheduler_state["model_outputs"])
    assert state.scheduler_config["algorithm_type"] == "dpmsolver++"


def test_resume_in_stages_is_exact(sd, references):
    state = sd.shared(APPLE, N, 1, seed=3)
    mid = sd.resume(state, APPLE, until=4)
    assert mid.step == 4
    np.testing.assert_array_equal(sd.finish(mid, APPLE), references["euler_ancestral"])


def test_matches_diffusers_pipeline_at_batch_one(sd):
    pipe = sd.pipe
    out = pipe(APPLE, num_inference_steps=N, generator=torch.Generator().manual_seed(3), output_type="latent").images
    state = sd.shared(APPLE, N, N, seed=3)
    assert torch.equal(out, state.latents)


# PNDM runs N + 1 (skip_prk_steps) or 2N + 3 scheduler steps over N inference steps (Runge-Kutta / PLMS
# warm-up); the split must run all of them, as diffusers' loop does (this test found the defect, issue 11)
@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
@pytest.mark.parametrize("k", [0, 3])
def test_every_scheduler_matches_diffusers_own_pipeline_call(sd, scheduler, k):
    """Each listed scheduler, shared for k steps and finished (split across two calls), gives bit for bit
    the latents and the image of diffusers' own ``StableDiffusionPipeline.__call__`` with that scheduler and
    the same generator, at batch 1 (the project's loop is not its own reference)."""
    from pipeline.split import make_scheduler

    pipe = sd.pipe
    own = pipe.scheduler
    try:
        pipe.scheduler = make_scheduler(scheduler, own.config)
        ref = pipe(APPLE, num_inference_steps=N, generator=torch.Generator().manual_seed(3),
                   output_type="latent").images
        ref_image = pipe(APPLE, num_inference_steps=N, generator=torch.Generator().manual_seed(3),
                         output_type="np").images[0]
    finally:
        pipe.scheduler = own
    state = sd.shared(APPLE, N, k, seed=3, scheduler=scheduler)
    final = sd.resume(state, APPLE)                  # to the scheduler's last step
    assert final.step == (N if scheduler != "pndm" else len(state.scheduler_state["timesteps"]))
    assert torch.equal(final.latents, ref), float((final.latents - ref).abs().max())
    image = sd.finish(state, APPLE)
    # diffusers returns floats in [0, 1]; SplitDiffusion rounds them to uint8
    np.testing.assert_array_equal(image, (ref_image * 255).round().astype(np.uint8))


def test_batched_prompts_resume_exactly_and_per_sample(sd):
    prompts = [APPLE, BUS]
    ref = sd.generate(prompts, N, seed=[3, 4])
    assert ref.shape == (2, 32, 32, 3)
    state = sd.shared(prompts, N, 3, seed=[3, 4])
    np.testing.assert_array_equal(sd.finish(state), ref)
    # a batch-1 slice of a batch continues the same trajectory
    one = state.select(1)
    assert one.prompts == [BUS] and one.seeds == [4]
    assert IntermediateState.stack([state.select(0), one]).equals(state)


def test_one_state_many_receivers(sd):
    state = sd.shared(APPLE, N, 3, seed=3)
    images = sd.finish(state, [APPLE, LEMON])
    assert images.shape == (2, 32, 32, 3)
    both = sd.finish(state.repeat(2), LEMON)  # one string prompt for a batch
    assert both.shape == (2, 32, 32, 3)
    np.testing.assert_array_equal(both[0], images[1])
    assert not np.array_equal(images[0], images[1])  # the receiver's prompt matters


def test_receiver_prompt_changes_image_but_state_does_not_change(sd):
    state = sd.shared(APPLE, N, 3, seed=3)
    before = state.latents.clone()
    sd.finish(state, LEMON)
    assert torch.equal(before, state.latents)


_CHILD = textwrap.dedent("""
    import sys, numpy as np, torch
    torch.set_num_threads(1)
    from pipeline.embedded.model import random_pipeline
    from pipeline.split import SplitDiffusion
    from pipeline.state import IntermediateState
    sd = SplitDiffusion(random_pipeline())
    for path in sys.argv[1:]:
        state = IntermediateState.load(path)
        np.save(path + ".npy", sd.finish(state, state.prompts[0]))
""")


def test_resume_in_another_process_is_exact(sd, references, tmp_path):
    paths = []
    for s in EXACT_SCHEDULERS:
        state = sd.shared(APPLE, N, 3, seed=3, scheduler=s)
        assert state.num_threads == torch.get_num_threads() == 1
        paths.append(str(state.save(tmp_path / f"{s}.pt")))
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    root = Path(__file__).resolve().parents[2]  # this checkout's packages, not an installed copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    subprocess.run([sys.executable, str(script), *paths], check=True, timeout=300, cwd=root, env=env)
    for s, path in zip(EXACT_SCHEDULERS, paths):
        np.testing.assert_array_equal(np.load(path + ".npy"), references[s])


# ------------------------------------------------------------------------------------ clear errors
def test_shared_rejects_bad_arguments(sd):
    with pytest.raises(ValueError, match="num_shared_steps must be an int in \\[0, num_inference_steps=6\\]"):
        sd.shared(APPLE, N, N + 1)
    with pytest.raises(ValueError, match="num_shared_steps"):
        sd.shared(APPLE, N, -1)
    with pytest.raises(ValueError, match="scheduler='heun' is not supported; allowed: .*euler_ancestral"):
        sd.shared(APPLE, N, 2, scheduler="heun")
    with pytest.raises(ValueError, match="num_inference_steps must be a positive int"):
        sd.shared(APPLE, 0, 0)
    with pytest.raises(ValueError, match="prompt must be a non-empty string"):
        sd.shared([], N, 2)
    with pytest.raises(ValueError, match="seed must be an int or a list of 2 ints"):
        sd.shared([APPLE, LEMON], N, 2, seed=[1])
    with pytest.raises(ValueError, match="guidance_scale"):
        sd.shared(APPLE, N, 2, guidance_scale=float("nan"))


def test_finish_refuses_state_of_another_model(sd):
    other = SplitDiffusion(random_pipeline(seed=1))
    state = other.shared(APPLE, N, 2, seed=3)
    with pytest.raises(StateError, match="another model"):
        sd.finish(state, APPLE)


def test_finish_refuses_tampered_or_inconsistent_states(sd):
    state = sd.shared(APPLE, N, 2, seed=3, scheduler="ddim")
    bad = state.clone()
    bad.scheduler_config = dict(bad.scheduler_config, timestep_spacing="trailing")
    with pytest.raises(StateError, match="timesteps do not match its scheduler config"):
        sd.finish(bad, APPLE)
    bad = state.clone()
    bad.scheduler_class = "NoSuchScheduler"
    with pytest.raises(StateError, match="unknown to diffusers"):
        sd.finish(bad, APPLE)
    bad = state.clone()
    bad.dtype = "float16"
    with pytest.raises(StateError, match="float16 but this pipeline runs in torch.float32"):
        sd.finish(bad, APPLE)
    with pytest.raises(StateError, match="step must be an int in \\[0, num_inference_steps=6\\]"):
        bad = state.clone()
        bad.step = N + 1
        sd.finish(bad, APPLE)
    with pytest.raises(StateError, match="must be an IntermediateState"):
        sd.finish(state.latents, APPLE)
    with pytest.raises(ValueError, match="got 3 prompts for a state of batch size 2"):
        sd.finish(IntermediateState.stack([state, state]), [APPLE] * 3)


def test_thread_count_mismatch_warns_or_refuses(sd):
    state = sd.shared(APPLE, N, 2, seed=3)
    state.num_threads = torch.get_num_threads() + 1
    with pytest.warns(ResumeWarning, match="thread count differs"):
        sd.finish(state, APPLE)
    with pytest.raises(StateError, match="thread count differs"):
        sd.finish(state, APPLE, strict=True)


def test_state_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no state file"):
        IntermediateState.load(tmp_path / "missing.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(StateError, match="not a readable state file"):
        IntermediateState.load(tmp_path / "junk.pt")
    torch.save({"format_version": 99}, tmp_path / "v.pt")
    with pytest.raises(StateError, match="format version 99"):
        IntermediateState.load(tmp_path / "v.pt")


def test_state_describe_is_json(sd):
    d = sd.shared(APPLE, N, 2, seed=3).describe()
    assert d["latent_shape"] == [1, 4, 16, 16] and d["step"] == 2 and d["prompts"] == [APPLE]
    assert d["versions"]["diffusers"]


# ------------------------------------------------------------------------------------ noise matching
def test_sigma_to_timestep_inverts_the_training_schedule(sd):
    from diffusers import EulerAncestralDiscreteScheduler

    sched = EulerAncestralDiscreteScheduler.from_config(sd.pipe.scheduler.config)
    ac = sched.alphas_cumprod
    for t in (10, 250, 500, 999):
        sigma = float(((1 - ac[t]) / ac[t]) ** 0.5)
        assert sigma_to_timestep(sigma, ac) == pytest.approx(t, abs=1e-3)


def test_noise_matching_zero_variance_is_nominal_and_positive_moves_sigma(sd):
    state = sd.shared(APPLE, N, 3, seed=3)
    nominal = sd.finish(state, LEMON)
    np.testing.assert_array_equal(sd.finish(state, LEMON, latent_noise_variance=0.0), nominal)
    sk, sm, tm = sd.matched_sigma(state, 2.0)
    assert sm == pytest.approx((sk ** 2 + 2.0) ** 0.5)
    assert tm > float(sd._scheduler_from_state(state).timesteps[3])
    assert not np.array_equal(sd.finish(state, LEMON, latent_noise_variance=2.0), nominal)


def test_noise_matching_refuses_non_euler_schedulers(sd):
    state = sd.shared(APPLE, N, 3, seed=3, scheduler="ddim")
    with pytest.raises(ValueError, match="Euler-type"):
        sd.finish(state, LEMON, latent_noise_variance=0.5)


def test_all_listed_schedulers_resume_exactly(sd):
    for name in set(SCHEDULERS) - set(EXACT_SCHEDULERS):
        ref = sd.generate(APPLE, 4, seed=1, scheduler=name)
        np.testing.assert_array_equal(sd.finish(sd.shared(APPLE, 4, 2, seed=1, scheduler=name), APPLE), ref)


def test_state_fields_that_lie_are_one_clear_error(sd):
    state = sd.shared(APPLE, N, 2, seed=3, scheduler="ddim")
    bad = state.clone()
    bad.scheduler_name = "euler_ancestral"  # says Euler Ancestral, is DDIM
    with pytest.raises(StateError, match="scheduler_name='euler_ancestral' disagrees with scheduler_class='DDIMScheduler'"):
        sd.finish(bad, APPLE)
    bad = state.clone()
    bad.scheduler_class = "StableDiffusionPipeline"  # a diffusers name, not a scheduler
    with pytest.raises(StateError, match="unknown to diffusers .* as a scheduler class"):
        sd.finish(bad, APPLE)
    bad = state.clone()
    bad.scheduler_state = dict(bad.scheduler_state, step=0)  # would replace the scheduler's step() method
    with pytest.raises(StateError, match=r"keys \['step'\] would shadow"):
        sd.finish(bad, APPLE)
    for field, value, match in [("generator_states", [torch.zeros(3, dtype=torch.uint8)], "generator_states\\[0\\]"),
                                ("generator_states", ["abc"], "generator_states\\[0\\]"),
                                ("scheduler_state", {"__class__": 1}, "not scheduler attributes"),
                                ("seeds", [1.5], "seeds must be ints")]:
        d = state.to_dict()
        d[field] = value
        with pytest.raises(StateError, match=match):
            IntermediateState.from_dict(d)


def test_non_finite_latents_are_refused_not_drawn_black(sd):
    state = sd.shared(APPLE, N, 2, seed=3)
    lat = state.latents.clone()
    lat[0, 0, 0, 0] = float("nan")
    with pytest.raises(StateError, match="1 non-finite value"):
        sd.finish(state.with_latents(lat), APPLE)
    with pytest.raises(ValueError, match="non-finite"):
        sd.decode(lat)


def test_follows_diffusers_pipe_scheduler_generator_and_output_type():
    from diffusers import DDIMScheduler

    pipe = random_pipeline()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    sd = SplitDiffusion(pipe)
    state = sd.shared(APPLE, N, 2, generator=torch.Generator().manual_seed(3))
    assert state.scheduler_class == "DDIMScheduler" and state.scheduler_name == "ddim" and state.seeds == [None]
    # the pipeline's own scheduler, a caller's generator: the same as naming the scheduler and the seed
    ref = sd.generate(APPLE, N, seed=3, scheduler="ddim")
    np.testing.assert_array_equal(sd.finish(state, APPLE), ref)
    np.testing.assert_array_equal(sd.generate(APPLE, N, generator=torch.Generator().manual_seed(3)), ref)
    # and the same as diffusers' own pipeline with that generator
    out = pipe(APPLE, num_inference_steps=N, generator=torch.Generator().manual_seed(3), output_type="np").images[0]
    np.testing.assert_array_equal((out * 255).round().astype(np.uint8), ref)
    # a list of generators for a batch; output types
    lat = sd.generate([APPLE, LEMON], N, generator=[torch.Generator().manual_seed(s) for s in (3, 4)],
                      output_type="latent")
    assert isinstance(lat, torch.Tensor) and lat.shape == (2, *sd.latent_shape)
    assert torch.equal(lat, sd.generate([APPLE, LEMON], N, seed=[3, 4], scheduler="ddim", output_type="latent"))
    pil = sd.finish(state, APPLE, output_type="pil")
    np.testing.assert_array_equal(np.asarray(pil), ref)
    with pytest.raises(ValueError, match="output_type='png' is not supported; allowed"):
        sd.generate(APPLE, N, output_type="png")
    with pytest.raises(ValueError, match="list of 2 torch.Generator"):
        sd.generate([APPLE, LEMON], N, generator=torch.Generator())
    with pytest.raises(ValueError, match="seed must fit"):
        sd.generate(APPLE, N, seed=10 ** 20)


def test_prompt_words_the_model_cannot_see_are_named_once(sd):
    from pipeline.split import PromptWarning

    fresh = SplitDiffusion(sd.pipe)
    with pytest.warns(PromptWarning, match="unknown to the model's tokenizer .* 'purple', 'zebra'.*model card"):
        fresh.encode(["a purple zebra, on a wooden table"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # named once: the same words do not warn again
        fresh.encode(["a Zebra on a white table"])
        fresh.encode(["A Red apple, on a WOODEN table."])  # case and punctuation are not unknown words
    with pytest.warns(PromptWarning, match="prompt of 37 tokens is cut to the model's 16; ignored: 'a red apple"):
        fresh.encode([" ".join([APPLE] * 5)])
