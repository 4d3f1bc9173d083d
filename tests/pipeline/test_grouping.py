"""Semantic grouping of prompts, the shared-steps rule, and the state cache."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.cache import StateCache
from pipeline.embedded.model import random_pipeline
from pipeline.grouping import (CombinedEmbedder, PromptGrouper, SharedStepsRule, TextEncoderEmbedder,
                               cosine_similarity, shared_steps_for_group)
from pipeline.embedded.vocabulary import VocabularyEmbedder

from pipeline.embedded.scenes import OBJECT_GROUPS, OBJECTS, make_caption, object_in_prompt
from pipeline.split import SplitDiffusion
from pipeline.state import StateError

# the shipped vocabulary: one prompt per object, varied colours and tables
PROMPTS = [make_caption(colour, obj, table) for obj, colour, table in [
    ("apple", "red", "wooden"), ("lemon", "yellow", "blue"), ("orange", "orange", "white"),
    ("bird", "brown", "wooden"), ("cat", "black", "blue"), ("rabbit", "white", "white"),
    ("car", "red", "wooden"), ("bus", "yellow", "blue"), ("boat", "white", "white")]]


def _group_names(groups):
    return [sorted({OBJECT_GROUPS[object_in_prompt(p)] for p in g.prompts}) for g in groups]


@pytest.fixture(scope="module")
def sd():
    return SplitDiffusion(random_pipeline())


# ------------------------------------------------------------------------------------ grouping
def test_vocabulary_graph_groups_fruits_with_fruits_and_animals_with_animals():
    g = PromptGrouper(VocabularyEmbedder(), threshold=0.5, max_group_size=8)
    g.add(PROMPTS)
    groups = g.groups(num_inference_steps=11)
    assert sorted(map(tuple, _group_names(groups))) == [("animal",), ("fruit",), ("vehicle",)]
    assert all(len(grp) == 3 for grp in groups)
    # within a group the vocabulary similarity is 1 - object_weight
    assert groups[0].similarity == pytest.approx(0.7, abs=1e-6)
    assert groups[0].num_shared_steps == shared_steps_for_group(0.7, 11)


def test_grouping_is_incremental_and_respects_max_group_size():
    g = PromptGrouper(VocabularyEmbedder(), threshold=0.5, max_group_size=2)
    assert g.add(PROMPTS[:3]) == [0, 1, 2]
    edges_before = g.graph.number_of_edges()
    assert edges_before == 3  # the three fruits are pairwise similar
    assert g.add(PROMPTS[3:6]) == [3, 4, 5]
    assert g.graph.number_of_edges() == 6 and g.graph.number_of_nodes() == 6
    groups = g.groups()
    assert max(len(x) for x in groups) <= 2
    assert sorted(i for grp in groups for i in grp.indices) == list(range(6))
    for names in _group_names(groups):
        assert len(names) == 1  # never mixes fruits and animals
    with pytest.raises(ValueError, match="max_group_size"):
        PromptGrouper(VocabularyEmbedder(), max_group_size=0)
    with pytest.raises(ValueError, match="non-empty strings"):
        g.add([""])


def test_identical_prompts_share_everything_and_unrelated_share_nothing():
    g = PromptGrouper(VocabularyEmbedder(), threshold=0.5)
    g.add([PROMPTS[0], PROMPTS[0], PROMPTS[8]])
    groups = g.groups(num_inference_steps=11)
    assert [len(x) for x in groups] == [2, 1]
    assert groups[0].num_shared_steps == 11 and groups[0].representative == PROMPTS[0]


def test_shared_steps_rule_is_documented_monotone_and_bounded():
    rule = SharedStepsRule(min_similarity=0.5, max_fraction=0.5)
    sims = np.linspace(-1, 1, 201)
    ks = [rule(float(s), 11) for s in sims]
    assert all(a <= b for a, b in zip(ks, ks[1:]))
    assert ks[0] == 0 and max(ks) == 5 == rule(1.0, 11)
    assert rule(0.75, 11) == 2  # floor(11 * 0.5 * 0.5)
    # the default rule on the vocabulary scale: same object, same group, other group (module docstring)
    assert [shared_steps_for_group(s, 11) for s in (1.0, 0.7, 0.0)] == [8, 5, 0]
    assert shared_steps_for_group(0.2, 11, identical=True) == 11
    with pytest.raises(ValueError, match="num_inference_steps"):
        rule(0.9, 0)
    with pytest.raises(ValueError, match="max_fraction"):
        SharedStepsRule(max_fraction=1.5)


def test_text_encoder_embedder_is_unit_norm_and_prompt_sensitive(sd):
    emb = TextEncoderEmbedder(sd.pipe)
    e = emb(PROMPTS[:3] + PROMPTS[:1])
    assert e.shape == (4, 32) and e.dtype == torch.float32
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(4))
    sims = cosine_similarity(e, e)
    assert sims[0, 3] == pytest.approx(1.0, abs=1e-6)
    assert sims[0, 1] < 0.99999


def test_centred_text_encoder_subtracts_a_fixed_reference_mean(sd):
    from pipeline.embedded.vocabulary import scene_reference_prompts

    ref = scene_reference_prompts()
    plain, centred = TextEncoderEmbedder(sd.pipe), TextEncoderEmbedder(sd.pipe, center_on=ref)
    raw = plain._pooled(PROMPTS[:2])
    expected = torch.nn.functional.normalize(raw - plain._pooled(ref).mean(0, keepdim=True), dim=-1)
    torch.testing.assert_close(centred(PROMPTS[:2]), expected)
    # incremental: a prompt's embedding does not depend on the batch it comes in
    torch.testing.assert_close(centred(PROMPTS[:1]), centred(PROMPTS[:3])[:1])
    with pytest.raises(ValueError, match="center_on"):
        TextEncoderEmbedder(sd.pipe, center_on=[])


def test_combined_embedder_weights_the_cosines():
    a, b = VocabularyEmbedder(0.3), VocabularyEmbedder(1.0)
    comb = CombinedEmbedder([a, b], [0.5, 0.5])
    e = comb([PROMPTS[0], PROMPTS[1]])
    # fruit vs fruit: 0.7 under a, 0.0 under b
    assert float(cosine_similarity(e[:1], e[1:])) == pytest.approx(0.35, abs=1e-6)


def test_shipped_text_encoder_groups_by_meaning():
    from pipeline.loading import load_pipeline

    pipe = load_pipeline()
    emb = TextEncoderEmbedder(pipe)
    e = emb(PROMPTS)
    sims = cosine_similarity(e, e)
    groups = [OBJECT_GROUPS[object_in_prompt(p)] for p in PROMPTS]
    same = [float(sims[i, j]) for i in range(9) for j in range(i) if groups[i] == groups[j]]
    diff = [float(sims[i, j]) for i in range(9) for j in range(i) if groups[i] != groups[j]]
    assert np.mean(same) > np.mean(diff)


# ------------------------------------------------------------------------------------ cache
def test_cache_hits_near_duplicate_and_misses_different_prompt(sd):
    cache = StateCache(capacity=4, similarity_threshold=0.95, embedder=VocabularyEmbedder())
    s1, hit = cache.get_or_compute(sd, "a red apple on a wooden table", 6, 3, seed=1)
    assert not hit
    s2, hit = cache.get_or_compute(sd, "a photo of a green apple on a white table", 6, 3, seed=1)
    assert hit and s2 is s1
    s3, hit = cache.get_or_compute(sd, "a blue bus on a white table", 6, 3, seed=1)
    assert not hit and s3.prompts == ["a blue bus on a white table"]
    # any difference in the exact key misses: other k, other seed
    assert not cache.get_or_compute(sd, "a red apple on a wooden table", 6, 2, seed=1)[1]
    assert not cache.get_or_compute(sd, "a red apple on a wooden table", 6, 3, seed=2)[1]
    st = cache.stats()
    assert (st["hits"], st["misses"]) == (1, 4)
    assert st["unet_evals_saved"] == 2 * 3 and st["unet_evals_computed"] == 2 * (3 + 3 + 2 + 3)


def test_cache_with_text_encoder_hits_identical_and_misses_other_object(sd):
    cache = StateCache(capacity=4, similarity_threshold=0.9999)
    cache.get_or_compute(sd, "a red apple on a wooden table", 4, 2, seed=0)
    assert cache.get_or_compute(sd, "A red apple on a wooden table", 4, 2, seed=0)[1]  # lower-cased tokens
    assert not cache.get_or_compute(sd, "a blue bus on a white table", 4, 2, seed=0)[1]


def test_cache_is_lru_bounded(sd):
    cache = StateCache(capacity=2, similarity_threshold=0.99, embedder=VocabularyEmbedder())
    for p in PROMPTS[:1] + PROMPTS[3:4]:  # apple, bird
        cache.get_or_compute(sd, p, 4, 1, seed=0)
    cache.get_or_compute(sd, PROMPTS[0], 4, 1, seed=0)  # touch apple: bird is now LRU
    cache.get_or_compute(sd, PROMPTS[6], 4, 1, seed=0)  # car evicts bird
    assert len(cache) == 2 and cache.evictions == 1
    assert cache.get_or_compute(sd, PROMPTS[0], 4, 1, seed=0)[1]
    assert not cache.get_or_compute(sd, PROMPTS[3], 4, 1, seed=0)[1]


def test_cache_persists_to_disk(sd, tmp_path):
    cache = StateCache(capacity=3, similarity_threshold=0.95, embedder=VocabularyEmbedder(), persist_dir=tmp_path)
    state, _ = cache.get_or_compute(sd, PROMPTS[0], 4, 2, seed=0)
    assert (tmp_path / "index.json").is_file()
    again = StateCache.load(tmp_path, embedder=VocabularyEmbedder())
    assert len(again) == 1
    loaded, hit = again.get_or_compute(sd, PROMPTS[1], 4, 2, seed=0)  # lemon vs apple: 0.7 < 0.95
    assert not hit
    loaded, hit = again.get_or_compute(sd, "a green apple on a blue table", 4, 2, seed=0)
    assert hit and loaded.equals(state)
    # the reloaded state still resumes exactly
    np.testing.assert_array_equal(sd.finish(loaded, PROMPTS[0]), sd.generate(PROMPTS[0], 4, seed=0))
    with pytest.raises(FileNotFoundError, match="no state cache"):
        StateCache.load(tmp_path / "nothing")


def test_two_caches_saved_into_one_folder_never_share_states(sd, tmp_path):
    apple = StateCache(capacity=2, similarity_threshold=0.95, embedder=VocabularyEmbedder())
    apple_state, _ = apple.get_or_compute(sd, PROMPTS[0], 4, 2, seed=0)
    apple.save(tmp_path)
    bus = StateCache(capacity=2, similarity_threshold=0.95, embedder=VocabularyEmbedder())
    bus_state, _ = bus.get_or_compute(sd, "a blue car on a white table", 4, 2, seed=0)
    bus.save(tmp_path)  # same uid 0, another state: a content-addressed file of its own
    again = StateCache.load(tmp_path, embedder=VocabularyEmbedder())
    state, hit = again.get_or_compute(sd, "a blue car on a white table", 4, 2, seed=0)
    assert hit and state.equals(bus_state) and not state.equals(apple_state)
    assert len(list(tmp_path.glob("state_*.pt"))) == 1  # the folder holds the last cache saved
    # a state file swapped behind the index's back is refused on load
    (f,) = tmp_path.glob("state_*.pt")
    apple_state.save(f)
    with pytest.raises(StateError, match="content hash mismatch"):
        StateCache.load(tmp_path, embedder=VocabularyEmbedder())


def test_memo_is_one_lru_with_one_key():
    from pipeline.cache import Memo, state_key

    m = Memo(2)
    assert [m.get_or(k, lambda k=k: k * 10) for k in (1, 2, 1, 3)] == [10, 20, 10, 30]
    assert list(m) == [1, 3]
    key = state_key("f" * 16, "cpu", "ddim", 11, 5, 0, 7.5)
    assert key == StateCache.make_key("f" * 16, "ddim", 11, 5, 0, 7.5) == ("f" * 16, "cpu", "ddim", 11, 5, (0,), 7.5)


def test_cache_rejects_bad_parameters():
    with pytest.raises(ValueError, match="capacity"):
        StateCache(capacity=0)
    with pytest.raises(ValueError, match="similarity_threshold"):
        StateCache(similarity_threshold=1.5)
    with pytest.raises(ValueError, match="no embedder"):
        StateCache().lookup("x", ("k",))


def test_vocabulary_covers_every_object():
    e = VocabularyEmbedder()([make_caption("red", o, "wooden") for o in OBJECTS] + ["a teapot"])
    sims = cosine_similarity(e, e)
    assert float(sims[-1, :-1].abs().max()) == 0.0  # unknown object: similar to nothing
