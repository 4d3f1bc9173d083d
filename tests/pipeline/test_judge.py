"""The shipped adherence judge (pipeline.embedded.classifier): object and colour, abstention, its card."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from scipy.stats import binom

from pipeline.embedded.classifier import (CLASSES, DEFAULT_CLASSIFIER_DIR, NEGATIVE_FAMILIES, REJECT, SceneJudge,
                                          colour_in_prompt, load_judge, negatives, train_judge, wilson, write_card)
from pipeline.embedded.scenes import OBJECT_COLOURS, OBJECTS, SceneGenerator
from pipeline.judge import Judge, Judgement


@pytest.fixture(scope="module")
def judge():
    return load_judge()


@pytest.fixture(scope="module")
def record():
    return json.loads((DEFAULT_CLASSIFIER_DIR / "evaluation.json").read_text())


def test_the_shipped_judge_follows_the_judge_protocol(judge):
    assert isinstance(judge, Judge)
    out = judge.judge(SceneGenerator(seed=11).scene(0).image[None], ["a red apple"])
    assert len(out) == 1 and isinstance(out[0], Judgement) and 0.0 <= out[0].confidence <= 1.0


def test_junk_images_are_rejected(judge):
    rng = np.random.default_rng(12345)  # not the generator of the training negatives
    noise = rng.integers(0, 256, (16, 64, 64, 3), dtype=np.uint8)
    blank = np.stack([np.full((64, 64, 3), v, np.uint8) for v in (0, 64, 128, 192, 255)])
    images = np.concatenate([noise, blank])
    verdicts = judge.judge(images, ["a blue bus on a wooden table"] * len(images))
    assert all(v.abstained and v.label is None and not v.adherent for v in verdicts), \
        [(i, v.label) for i, v in enumerate(verdicts) if not v.abstained]


def test_a_red_apple_is_not_a_green_apple(judge):
    red = SceneGenerator(seed=9100).scene(0, obj="apple", colour="red").image
    green = SceneGenerator(seed=9100).scene(1, obj="apple", colour="green").image
    verdicts = judge.judge(np.stack([red, red, green, green, red]),
                           ["a red apple on a wooden table", "a green apple on a wooden table",
                            "a green apple on a blue table", "a red apple on a blue table", "an apple"])
    assert [v.adherent for v in verdicts] == [True, False, True, False, True]
    assert verdicts[0].label == "red apple" and verdicts[2].label == "green apple"


def test_every_object_and_colour_is_judged_at_the_measured_accuracy(judge, record):
    """Fresh scenes of every (object, colour): the number right is what the card's accuracy predicts.

    Bound: the 0.1% quantile of Binomial(n, p) with p the lower end of the
    card's 95% interval for the accuracy on fresh scenes.
    """
    gen = SceneGenerator(seed=9200)
    pairs = [(o, c) for o in OBJECTS for c in OBJECT_COLOURS[o]]
    scenes = [gen.scene(i * 3 + k, obj=o, colour=c) for i, (o, c) in enumerate(pairs) for k in range(3)]
    labels = judge.classify(np.stack([s.image for s in scenes]))
    right = sum(label == f"{s.colour} {s.obj}" for label, s in zip(labels, scenes))
    p_low = record["scenes"]["accuracy"]["ci95"][0]
    assert right >= binom.ppf(0.001, len(scenes), p_low), (right, len(scenes), p_low)
    prompts = [f"a {s.colour} {s.obj} on a {s.table} table" for s in scenes]
    assert judge.adherence(np.stack([s.image for s in scenes]), prompts).sum() == right


def test_colour_in_prompt():
    assert colour_in_prompt("an orange cat on a wooden table") == "orange"
    assert colour_in_prompt("a photo of a big blue bus on a white table") == "blue"
    assert colour_in_prompt("a small red apple on a green table") == "red"
    assert colour_in_prompt("an orange on a wooden table") is None  # the object, not a colour
    assert colour_in_prompt("a cat") is None and colour_in_prompt("a purple zebra") is None


def test_labels_cover_every_object_and_colour_and_reject():
    assert CLASSES[-1] == REJECT
    assert set(CLASSES[:-1]) == {f"{c} {o}" for o in OBJECTS for c in OBJECT_COLOURS[o]}


def test_judge_input_validation():
    j = SceneJudge()
    with pytest.raises(ValueError, match=r"uint8 \[N, H, W, 3\]"):
        j.judge(np.zeros((2, 64, 64), np.uint8), ["a", "b"])
    with pytest.raises(ValueError, match="2 images but 1 prompts"):
        j.judge(np.zeros((2, 64, 64, 3), np.uint8), ["a red apple"])
    with pytest.raises(ValueError, match="family must be one of"):
        negatives("static", 2, seed=0)


def test_negatives_are_deterministic_and_of_every_family():
    for family in NEGATIVE_FAMILIES:
        a, b = negatives(family, 3, seed=5), negatives(family, 3, seed=5)
        assert a.shape == (3, 64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b), family
        assert not np.array_equal(a, negatives(family, 3, seed=6)), family


def test_training_is_seeded_and_deterministic():
    kwargs = dict(seed=3, num_train=32, num_negatives=4, steps=2, batch_size=16)
    a, b = train_judge(**kwargs).state_dict(), train_judge(**kwargs).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_wilson_interval():
    lo, hi = wilson(5, 12)  # scipy.stats.binomtest(5, 12).proportion_ci(method="wilson")
    assert lo == pytest.approx(0.19326, abs=1e-4) and hi == pytest.approx(0.68049, abs=1e-4)
    assert wilson(0, 10)[0] == 0.0 and wilson(10, 10)[1] == 1.0


def test_the_card_is_written_from_the_measurement_record(record, tmp_path):
    write_card(tmp_path, record)
    assert (tmp_path / "README.md").read_text() == (DEFAULT_CLASSIFIER_DIR / "README.md").read_text()
    assert {g["guidance_scale"] for g in record["generator"]} == {7.5, 4.0}
    for g in record["generator"]:  # the headline is the fraction of all generations
        assert g["adherence"]["n"] == sum(v["n"] for v in g["per_object"].values())
        assert g["adherence"]["k"] == sum(v["k"] for v in g["per_object"].values())
    config = json.loads((DEFAULT_CLASSIFIER_DIR / "config.json").read_text())
    assert config["threshold"] == record["calibration"]["threshold"]


def test_the_model_card_states_adherence_as_the_fraction_of_all_generations(record, tmp_path):
    import shutil

    from pipeline.embedded import model_card
    from pipeline.loading import DEFAULT_MODEL_DIR

    shutil.copy(DEFAULT_MODEL_DIR / "training.json", tmp_path)
    timing = dict(seconds_per_image=0.5, seconds_per_step_cfg=0.02, threads=1, steps=20)
    model_card.write_card(tmp_path, dict(measure=record["generator"], timing=timing, grid_guidance=4.0,
                                         grid_prompts=["a red apple on a wooden table"]))
    text = (tmp_path / "README.md").read_text()
    for g in record["generator"]:
        a = g["adherence"]
        assert f"### Guidance scale {g['guidance_scale']}" in text
        assert f"**Adherence: {a['k'] / a['n']:.1%} ({a['k']}/{a['n']};" in text
    assert "Mean adherence" not in text
