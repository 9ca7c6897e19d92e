import math

import pytest

from raysearch.evaluation import load_qrels, ndcg_at_k, percentile, recall_at_k

J = {"a": 2, "b": 1, "c": 0, "d": 1}  # c is judged but not relevant


def test_ndcg_graded_hand_computed(no_ray):
    # DCG = 1/log2(2) + 0 + 2/log2(4) = 2; ideal = 2/1 + 1/log2(3) + 1/log2(4)
    ideal = 2 + 1 / math.log2(3) + 0.5
    assert ndcg_at_k(["b", "x", "a"], J, 10) == pytest.approx(2 / ideal)
    assert ndcg_at_k(["b", "x", "a"], J, 10) == pytest.approx(0.638787, abs=1e-6)


def test_ndcg_cutoff_perfect_and_empty(no_ray):
    assert ndcg_at_k(["b", "a"], J, 1) == pytest.approx(0.5)  # 1 / 2
    assert ndcg_at_k(["a", "b", "d"], J, 10) == pytest.approx(1.0)
    assert ndcg_at_k(["a", "d", "b", "c"], J, 10) == pytest.approx(1.0)  # equal grades swap freely
    assert ndcg_at_k([], J, 10) == 0.0
    assert ndcg_at_k(["c", "x"], J, 10) == 0.0
    assert ndcg_at_k(["a"], {"a": 0}, 10) == 0.0  # nothing relevant: 0, not a division by zero


def test_ndcg_ideal_uses_every_judgment_not_only_retrieved(no_ray):
    # 11 relevant documents of grade 1; the ideal top 10 is all ones
    judgments = {f"d{i}": 1 for i in range(11)}
    ideal = sum(1 / math.log2(i + 2) for i in range(10))
    assert ndcg_at_k(["d0"], judgments, 10) == pytest.approx(1 / ideal)
    # a document past the cutoff does not count
    assert ndcg_at_k([f"n{i}" for i in range(10)] + ["d0"], judgments, 10) == 0.0


def test_ndcg_counts_a_duplicate_id_once(no_ray):
    assert ndcg_at_k(["a", "a"], {"a": 1, "b": 1}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_ndcg_binary_treats_every_relevant_grade_as_one(no_ray):
    # gains 1, 0, 1 against an ideal of three ones
    ideal = 1 + 1 / math.log2(3) + 0.5
    assert ndcg_at_k(["b", "x", "a"], J, 10, binary=True) == pytest.approx(1.5 / ideal)
    assert ndcg_at_k(["d", "b", "a"], J, 10, binary=True) == pytest.approx(1.0)
    assert ndcg_at_k(["d", "b", "a"], J, 10) < 1.0  # graded: a (2) should come first


def test_recall(no_ray):
    assert recall_at_k(["b", "x", "a"], J, 100) == pytest.approx(2 / 3)
    assert recall_at_k(["b", "x", "a"], J, 2) == pytest.approx(1 / 3)
    assert recall_at_k(["c"], J, 100) == 0.0
    assert recall_at_k(["a"], {"a": 0}, 100) == 0.0


def test_load_qrels(tmp_path, no_ray):
    path = tmp_path / "qrels.tsv"
    path.write_text("1\t10\t1\n1\t11\t2\n\n2 0 20 3\n2\t21\t0\nquery_id\tdoc_id\tgrade\n")
    assert load_qrels(path) == {"1": {"10": 1, "11": 2}, "2": {"20": 3, "21": 0}}


def test_percentile(no_ray):
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([1.0, 2.0], 0.5) == 1.5
    assert percentile([], 0.5) == 0.0
