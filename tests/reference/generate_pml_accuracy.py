"""Reference data for the evaluation metrics (tests/test_retrieval_metrics.cpp,
tests/test_mutual_information.cpp): pytorch-metric-learning 2.8.1's
AccuracyCalculator with its torch k-NN (CustomKNN on a PML distance; faiss is
not used), and scikit-learn's normalized_mutual_info_score and
adjusted_mutual_info_score (average_method="arithmetic") on fixed clusterings.

Embeddings are float32 values (PML computes in float32) written as exact
float64 numbers; they are random, so no two distances of a query tie and the
torch k-NN order is the exact one. Ties are tested in C++ against brute force.

Run: PYTHONPATH=<pml>/src python3 tests/reference/generate_pml_accuracy.py
     (writes tests/reference/data/pml_accuracy.txt and sklearn_mutual_info.txt)
"""
import os

import numpy as np
import torch
from pytorch_metric_learning.distances import CosineSimilarity, DotProductSimilarity, LpDistance
from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
from pytorch_metric_learning.utils.inference import CustomKNN
from sklearn.metrics import adjusted_mutual_info_score, normalized_mutual_info_score

from refdata import ReferenceWriter

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
METRICS = ["precision_at_1", "r_precision", "mean_average_precision_at_r",
           "mean_average_precision", "mean_reciprocal_rank"]
RECALL_AT = [1, 2, 5, 10]


def distance(name):
    if name == "euclidean":
        return LpDistance(normalize_embeddings=False)
    if name == "cosine":
        return CosineSimilarity()
    return DotProductSimilarity(normalize_embeddings=False)


def recall_at(query, query_labels, reference, reference_labels, ref_includes_query, dist):
    """Fraction of non-lone queries with a same-label reference among the first j neighbours."""
    knn = CustomKNN(distance(dist))
    _, idx = knn(torch.tensor(query), max(RECALL_AT), torch.tensor(reference), ref_includes_query)
    same = reference_labels[idx.numpy()] == query_labels[:, None]
    counts = np.array([(reference_labels == y).sum() for y in query_labels]) - int(ref_includes_query)
    keep = counts > 0
    return [same[keep, :j].any(axis=1).mean() for j in RECALL_AT], idx.numpy()


def exact_mrr(query, query_labels, reference, reference_labels, ref_includes_query, dist, k_name):
    """PML computes the mean reciprocal rank in float32; this is the same from its k-NN, in float64."""
    counts = np.array([(reference_labels == y).sum() for y in query_labels]) - int(ref_includes_query)
    k = {"maxbin": counts.max(), "all": len(reference) - int(ref_includes_query), "k5": 5}[k_name]
    _, idx = CustomKNN(distance(dist))(torch.tensor(query), int(k), torch.tensor(reference), ref_includes_query)
    same = reference_labels[idx.numpy()] == query_labels[:, None]
    keep = counts > 0
    rr = [1.0 / (np.argmax(row) + 1) if row.any() else 0.0 for row in same[keep]]
    return float(np.mean(rr))


def add_case(w, name, query, query_labels, reference, reference_labels, ref_includes_query, dist):
    w.add(name + "_queries", query.astype(np.float64))
    w.add(name + "_query_labels", query_labels)
    if reference is not None:
        w.add(name + "_references", reference.astype(np.float64))
        w.add(name + "_reference_labels", reference_labels)
    ref = query if reference is None else reference
    ref_labels = query_labels if reference is None else reference_labels
    for k_name, k in [("maxbin", "max_bin_count"), ("all", None), ("k5", 5)]:
        for avg in [False, True]:
            calc = AccuracyCalculator(include=tuple(METRICS), k=k, avg_of_avgs=avg,
                                      knn_func=CustomKNN(distance(dist)), device=torch.device("cpu"))
            if reference is None:
                acc = calc.get_accuracy(query, query_labels)
            else:
                acc = calc.get_accuracy(query, query_labels, reference, reference_labels, ref_includes_query)
            w.add("%s_%s%s" % (name, k_name, "_avg" if avg else ""), [acc[m] for m in METRICS])
    self = reference is None or ref_includes_query
    for k_name in ["maxbin", "all", "k5"]:
        w.add("%s_%s_mrr64" % (name, k_name), exact_mrr(query, query_labels, ref, ref_labels, self, dist, k_name))
    recalls, idx = recall_at(query, query_labels, ref, ref_labels, self, dist)
    w.add(name + "_recall", recalls)
    w.add(name + "_knn10", idx)


def retrieval(w):
    rng = np.random.default_rng(12)
    d = 8
    # Separate query and reference sets, unbalanced classes, one query label absent from the reference (lone).
    reference_labels = rng.choice(7, size=200, p=[0.3, 0.2, 0.15, 0.15, 0.1, 0.06, 0.04])
    centers = rng.normal(size=(8, d)).astype(np.float32) * 1.5
    reference = (centers[reference_labels] + rng.normal(size=(200, d))).astype(np.float32)
    query_labels = rng.choice(8, size=60)
    query = (centers[query_labels] + rng.normal(size=(60, d))).astype(np.float32)
    for dist in ["euclidean", "cosine", "dot"]:
        add_case(w, "separate_" + dist, query, query_labels, reference, reference_labels, False, dist)
    # Queries inside the reference (the first 60 rows), and a set against itself (no reference).
    inside = np.concatenate([query, reference])
    inside_labels = np.concatenate([query_labels, reference_labels])
    add_case(w, "inside_euclidean", query, query_labels, inside, inside_labels, True, "euclidean")
    add_case(w, "self_euclidean", query, query_labels, None, None, True, "euclidean")
    add_case(w, "self_cosine", reference, reference_labels, None, None, True, "cosine")


def mutual_info(w):
    rng = np.random.default_rng(5)
    cases = {
        "random": (rng.integers(0, 5, 50), rng.integers(0, 4, 50)),
        "large": (rng.integers(0, 10, 1000), rng.integers(0, 12, 1000)),
        "identical": (np.arange(30) % 6, np.arange(30) % 6),
        "permuted": (np.arange(30) % 6, (np.arange(30) % 6 + 2) % 6 * 7 - 3),
        "one_vs_many": (np.zeros(20, dtype=int), np.arange(20) % 4),
        "singletons": (np.arange(25), np.arange(25) % 5),
        "both_one": (np.full(10, 3), np.full(10, -1)),
        "sparse_values": (np.array([-7, 100, 100, 5, -7, 5, 5, 100, -7, 2**40]),
                          np.array([1, 1, 2, 2, 3, 3, 1, 2, 3, 3])),
        "near_independent": (np.arange(40) % 4, np.arange(40) // 10),
    }
    for name, (a, b) in cases.items():
        w.add(name + "_true", a)
        w.add(name + "_pred", b)
        w.add(name + "_nmi", normalized_mutual_info_score(a, b))
        w.add(name + "_ami", adjusted_mutual_info_score(a, b))


def main():
    torch.manual_seed(0)
    w = ReferenceWriter(os.path.join(DATA, "pml_accuracy.txt"),
                        "PML 2.8.1 AccuracyCalculator (CustomKNN, torch) on float32 data; generate_pml_accuracy.py\n"
                        "<case>_<k>[_avg]: " + " ".join(METRICS) + "\n"
                        "<case>_<k>_mrr64: mean_reciprocal_rank from the same k-NN in float64 (PML's is float32)\n"
                        "<case>_recall: recall@" + ",".join(map(str, RECALL_AT)) + " from the torch k-NN; "
                        "<case>_knn10: its 10 nearest reference indices")
    retrieval(w)
    w.save()
    w = ReferenceWriter(os.path.join(DATA, "sklearn_mutual_info.txt"),
                        "scikit-learn normalized_mutual_info_score / adjusted_mutual_info_score "
                        "(arithmetic); generate_pml_accuracy.py")
    mutual_info(w)
    w.save()


if __name__ == "__main__":
    main()
