"""Multiple-choice questions: valid candidates, strategies, fixed across runs, K limits, training recipe."""

import numpy as np
import pytest

from recbole_bundle.config import BundleConfig
from recbole_bundle.data.dataset import BundleDataset
from recbole_bundle.data.questions import NegativeSampler, build_eval_questions, sample_train_questions
from recbole_bundle.errors import BundleConfigError
from recbole_bundle.data.prepare import eval_questions, make_negative_sampler


def setup(data_root, **cfg):
    config = BundleConfig("Pop", "sample", config_dict={"data_path": str(data_root), "state": "WARNING", **cfg})
    ds = BundleDataset(config)
    train, valid, test = ds.build()
    return config, ds, train, valid, test


def check_questions(qs, eval_bundles, k):
    whole = {b: set(i) | set(g) for b, i, g in zip(eval_bundles.bundles, eval_bundles.inputs, eval_bundles.held_out)}
    held = {b: set(g) for b, g in zip(eval_bundles.bundles, eval_bundles.held_out)}
    assert qs.candidates.shape == (len(qs), k)
    assert len(qs) == sum(len(g) for g in eval_bundles.held_out)
    for q in range(len(qs)):
        b, cands, lab = qs.bundle[q], qs.candidates[q], qs.label[q]
        assert len(set(cands)) == k, "duplicate candidates"
        assert cands[lab] in held[b], "label does not point at a held-out item"
        negs = np.delete(cands, lab)
        assert not (set(negs) & whole[b]), "a negative belongs to the bundle"
        assert (negs > 0).all(), "padding id drawn as a negative"
        partial = qs.partial[q, : qs.partial_len[q]]
        assert set(partial) | held[b] == whole[b]


@pytest.mark.parametrize("k", [2, 10, 50])
@pytest.mark.parametrize("strategy", ["uniform", "popularity", "hard"])
def test_questions_are_valid(data_root, k, strategy):
    config, ds, train, valid, test = setup(data_root, n_candidates=k, neg_strategy=strategy)
    qs = eval_questions(config, ds, train, test, "test")
    check_questions(qs, test.eval_bundles, k)
    counts = np.bincount(qs.label, minlength=k)  # the positive is shuffled: no position dominates
    assert counts.max() < 3 * len(qs) / k and (counts > 0).mean() > 0.8


def test_questions_fixed_across_runs_and_cached(data_root):
    config, ds, train, valid, test = setup(data_root, seed=11)
    first = eval_questions(config, ds, train, test, "test")
    cached = list((data_root / "sample" / "questions").glob("test_K10_uniform_seed11_*.npz"))
    assert len(cached) == 1
    cached[0].unlink()  # rebuild from scratch in a new process-like setup
    config2, ds2, train2, _, test2 = setup(data_root, seed=11)
    second = eval_questions(config2, ds2, train2, test2, "test")
    for key, arr in first.arrays().items():
        np.testing.assert_array_equal(arr, second.arrays()[key])
    config3, ds3, train3, _, test3 = setup(data_root, seed=12)
    assert not np.array_equal(eval_questions(config3, ds3, train3, test3, "test").candidates[:50], first.candidates[:50])
    valid_q = eval_questions(config, ds, train, valid, "valid")
    assert not set(valid_q.bundle) & set(first.bundle)


def test_popularity_and_hard_negatives_differ_from_uniform(data_root):
    config, ds, train, _, test = setup(data_root, n_candidates=10)
    pop = train.item_popularity()

    def neg_stats(strategy):
        cfg = BundleConfig("Pop", "sample", config_dict={"data_path": str(data_root), "state": "WARNING",
                                                          "neg_strategy": strategy, "question_cache": False})
        qs = eval_questions(cfg, ds, train, test, "test")
        mask = np.ones_like(qs.candidates, bool)
        mask[np.arange(len(qs)), qs.label] = False
        return qs, qs.candidates[mask].reshape(len(qs), -1)

    _, uni = neg_stats("uniform")
    _, popneg = neg_stats("popularity")
    assert pop[popneg].mean() > 1.5 * pop[uni].mean()
    from recbole_bundle.data.prepare import relational_embedding

    emb = relational_embedding(config, ds, train)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    qs_h, hard = neg_stats("hard")
    qs_u, _ = neg_stats("uniform")
    sim_h = np.einsum("qd,qkd->qk", emb[qs_h.positive], emb[hard]).mean()
    sim_u = np.einsum("qd,qkd->qk", emb[qs_u.positive], emb[uni]).mean()
    assert sim_h > sim_u + 0.2


def test_k_larger_than_catalogue_is_a_clear_error(data_root):
    config, ds, train, _, test = setup(data_root)
    sampler = NegativeSampler(ds.item_num, "uniform")
    with pytest.raises(BundleConfigError, match="n_candidates=.* larger than the items available"):
        build_eval_questions(test.eval_bundles, sampler, ds.item_num + 5, seed=0)
    with pytest.raises(BundleConfigError, match=">= 2"):
        build_eval_questions(test.eval_bundles, sampler, 1, seed=0)
    with pytest.raises(BundleConfigError, match="neg_strategy"):
        NegativeSampler(ds.item_num, "nearest")


def test_training_questions_follow_the_recipe_and_are_fresh(data_root):
    config, ds, train, _, _ = setup(data_root)
    ids, items = train.train_bundles
    sampler = make_negative_sampler(config, ds, train)
    rng = np.random.default_rng(0)
    q1 = sample_train_questions(items, ids, sampler, 10, rng, max_items=4)
    q2 = sample_train_questions(items, ids, sampler, 10, rng, max_items=4)
    members = dict(zip(ids, map(set, items)))
    for q in range(len(q1)):
        b = q1.bundle[q]
        partial = set(q1.partial[q, : q1.partial_len[q]])
        assert partial <= members[b] and 1 <= len(partial) <= 2
        assert q1.positive[q] in members[b] - partial
        assert not set(np.delete(q1.candidates[q], q1.label[q])) & members[b]
    assert not np.array_equal(q1.candidates, q2.candidates)


@pytest.mark.parametrize("strategy", ["uniform", "popularity", "hard"])
def test_every_negative_draw_is_bounded(strategy):
    """A bundle leaving fewer than K-1 items outside it is refused at once (the uniform draw used to spin)."""
    import time

    from recbole_bundle.data.questions import check_train_bundles
    from recbole_bundle.errors import BundleDataError

    n = 61  # 60 items + padding
    sampler = NegativeSampler(n, strategy, popularity=np.ones(n), embedding=np.random.default_rng(0).normal(size=(n, 4)))
    big = np.arange(1, 59)  # 58 items: 2 left outside
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    with pytest.raises(BundleDataError, match="cannot draw 4 negatives: only 2 items lie outside a bundle of 58 items"):
        sampler.sample(rng, 4, big, int(big[0]))
    assert time.perf_counter() - start < 1.0
    negs = sampler.sample(rng, 2, big, int(big[0]))  # exactly feasible: the two outside items
    assert sorted(negs.tolist()) == [59, 60]
    with pytest.raises(BundleConfigError, match=r"train bundle 'huge' has 58, leaving 2 possible negatives.*at most 3"):
        check_train_bundles(sampler, 5, [np.arange(1, 5), big], ["small", "huge"])
    check_train_bundles(sampler, 3, [np.arange(1, 5), big], ["small", "huge"])  # K-1 = 2 negatives exist
