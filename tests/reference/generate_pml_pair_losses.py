"""Reference values for multi_similarity_loss, mine_multi_similarity and
circle_loss from pytorch-metric-learning (PML) 2.8.1 itself, in float64 with
autograd. PML is not installed system-wide: point PYTHONPATH at PML 2.8.1's
src directory (the unpacked sdist or a checkout of tag v2.8.1). Run from the
repository root:

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src \\
        /usr/bin/python3 tests/reference/generate_pml_pair_losses.py

Needs torch (Debian's python3-torch, 1.13), numpy and tqdm (PML imports it).
Writes tests/reference/data/pml_multi_similarity.txt and pml_circle.txt.

Every case k holds: case<k>_X (raw embeddings), case<k>_labels, case<k>_value,
case<k>_grad (dL/dX through PML's own normalisation where its distance
normalises), case<k>_terms (the per-row losses, PML's DoNothingReducer; all
zeros when PML returns zero losses) and the parameters. Mined cases add the
miner's output case<k>_a1, _p, _a2, _n (in PML's order) and the loss on it.
"""
import os
import sys

import torch

try:
    import pytorch_metric_learning
    from pytorch_metric_learning import distances, losses, miners, reducers
except ImportError:
    sys.exit("generate_pml_pair_losses.py needs PYTHONPATH pointing at pytorch-metric-learning 2.8.1's src")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refdata import ReferenceWriter  # noqa: E402

if pytorch_metric_learning.__version__ != "2.8.1":
    sys.exit("expected pytorch-metric-learning 2.8.1, found " + pytorch_metric_learning.__version__)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
torch.set_default_dtype(torch.float64)

# Distance codes the C++ test maps to metrics: 0 Cosine, 1 DotProduct, 2 Euclidean, 3 SquaredEuclidean.
# The scale of the raw rows puts each distance's values around base = 0.5.
DISTANCES = [
    (0, "CosineSimilarity()", lambda: distances.CosineSimilarity(), 1.0),
    (1, "DotProductSimilarity(normalize_embeddings=False)",
     lambda: distances.DotProductSimilarity(normalize_embeddings=False), 0.5),
    (2, "LpDistance(normalize_embeddings=False)", lambda: distances.LpDistance(normalize_embeddings=False), 0.2),
    (3, "LpDistance(normalize_embeddings=False, power=2)",
     lambda: distances.LpDistance(normalize_embeddings=False, power=2), 0.2),
]


def layouts(gen):
    """(name, labels): P x K, random labels, skewed with singletons, all one class."""
    pk = torch.arange(4).repeat_interleave(3)
    pk = pk[torch.randperm(len(pk), generator=gen)]
    rand = torch.randint(0, 4, (16,), generator=gen)
    skewed = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 3, 4])
    skewed = skewed[torch.randperm(len(skewed), generator=gen)]
    one = torch.zeros(8, dtype=torch.long)
    return [("pk 4x3", pk), ("random", rand), ("skewed with singletons", skewed), ("one class", one)]


def run(loss_fn, x, labels, indices_tuple=None):
    xr = x.clone().requires_grad_(True)
    value = loss_fn(xr, labels, indices_tuple)
    value.backward()
    grad = xr.grad if xr.grad is not None else torch.zeros_like(x)
    return value.item(), grad


def per_row(loss_cls, kwargs, x, labels, indices_tuple=None):
    out = loss_cls(reducer=reducers.DoNothingReducer(), **kwargs)(x, labels, indices_tuple)
    row = out["loss"]["losses"]
    if not torch.is_tensor(row):
        return torch.zeros(len(labels))
    return row.detach().reshape(-1)


def add_case(w, k, x, labels, code, value, grad, terms, params):
    w.add("case%d_X" % k, x)
    w.add("case%d_labels" % k, labels.to(torch.float64))
    w.add("case%d_distance" % k, code)
    for name, v in params.items():
        w.add("case%d_%s" % (k, name), v)
    w.add("case%d_value" % k, value)
    w.add("case%d_grad" % k, grad)
    w.add("case%d_terms" % k, terms)


def add_mined(w, k, mined):
    for name, t in zip(("a1", "p", "a2", "n"), mined):
        w.add("case%d_%s" % (k, name), t.to(torch.float64))


def multi_similarity(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_multi_similarity.txt"), """
pytorch-metric-learning 2.8.1 MultiSimilarityLoss (MeanReducer) and MultiSimilarityMiner,
float64, autograd; written by tests/reference/generate_pml_pair_losses.py.
case<k>_mined = 1: the loss is PML's loss(X, labels, indices_tuple=MultiSimilarityMiner(epsilon)(X, labels)).
""")
    k = 0
    for code, desc, make, scale in DISTANCES:
        for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
            x = scale * torch.randn(len(labels), dim, generator=gen)
            settings = [(2.0, 50.0, 0.5)]
            if lname == "random":
                settings.append((1.0, 10.0, 0.3))
            for alpha, beta, base in settings:
                kwargs = dict(alpha=alpha, beta=beta, base=base, distance=make())
                loss = losses.MultiSimilarityLoss(**kwargs)
                params = dict(alpha=alpha, beta=beta, base=base, mined=0, epsilon=0.0)
                value, grad = run(loss, x, labels)
                terms = per_row(losses.MultiSimilarityLoss, kwargs, x, labels)
                add_case(w, k, x, labels, code, value, grad, terms, params)
                print("case %d: MultiSimilarityLoss(%g, %g, %g), %s, %s: %.17g" % (k, alpha, beta, base, desc, lname, value))
                k += 1
            for epsilon in (0.1, 0.3):
                miner = miners.MultiSimilarityMiner(epsilon=epsilon, distance=make())
                mined = miner(x, labels)
                kwargs = dict(distance=make())
                loss = losses.MultiSimilarityLoss(**kwargs)
                value, grad = run(loss, x, labels, mined)
                terms = per_row(losses.MultiSimilarityLoss, kwargs, x, labels, mined)
                params = dict(alpha=2.0, beta=50.0, base=0.5, mined=1, epsilon=epsilon)
                add_case(w, k, x, labels, code, value, grad, terms, params)
                add_mined(w, k, mined)
                print("case %d: MultiSimilarityMiner(%g) + MultiSimilarityLoss(), %s, %s: %d + %d pairs, %.17g"
                      % (k, epsilon, desc, lname, len(mined[0]), len(mined[2]), value))
                k += 1
    w.add("cases", k)
    w.save()


def circle(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_circle.txt"), """
pytorch-metric-learning 2.8.1 CircleLoss (CosineSimilarity, AvgNonZeroReducer), float64,
autograd (PML detaches the weights relu(1 + m - s_p) and relu(s_n + m): the gradient is PML's, not
the derivative of the value); written by tests/reference/generate_pml_pair_losses.py.
case<k>_mined = 1: on MultiSimilarityMiner(epsilon)(X, labels) (CosineSimilarity).
""")
    k = 0
    for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
        x = torch.randn(len(labels), dim, generator=gen)
        for m, gamma in ((0.4, 80.0), (0.25, 256.0)):
            kwargs = dict(m=m, gamma=gamma)
            value, grad = run(losses.CircleLoss(**kwargs), x, labels)
            terms = per_row(losses.CircleLoss, kwargs, x, labels)
            add_case(w, k, x, labels, 0, value, grad, terms, dict(m=m, gamma=gamma, mined=0, epsilon=0.0))
            print("case %d: CircleLoss(%g, %g), %s: %.17g" % (k, m, gamma, lname, value))
            k += 1
        mined = miners.MultiSimilarityMiner(epsilon=0.3)(x, labels)
        value, grad = run(losses.CircleLoss(), x, labels, mined)
        terms = per_row(losses.CircleLoss, {}, x, labels, mined)
        add_case(w, k, x, labels, 0, value, grad, terms, dict(m=0.4, gamma=80.0, mined=1, epsilon=0.3))
        add_mined(w, k, mined)
        print("case %d: MultiSimilarityMiner(0.3) + CircleLoss(), %s: %.17g" % (k, lname, value))
        k += 1
    w.add("cases", k)
    w.save()


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(20250613)
    multi_similarity(gen)
    circle(gen)
