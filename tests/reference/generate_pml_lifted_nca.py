"""Reference values for lifted_structure_loss, generalized_lifted_structure_loss
and nca_loss from pytorch-metric-learning (PML) 2.8.1 itself, in float64 with
autograd. PML is not installed system-wide: point PYTHONPATH at PML 2.8.1's
src directory (the unpacked sdist or a checkout of tag v2.8.1). Run from the
repository root:

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src \\
        /usr/bin/python3 tests/reference/generate_pml_lifted_nca.py

Needs torch (Debian's python3-torch, 1.13), numpy and tqdm (PML imports it).
Writes tests/reference/data/pml_lifted.txt, pml_nca.txt and pml_npairs.txt.

Every case k holds: case<k>_X (raw embeddings), case<k>_labels, case<k>_distance
(the code below), case<k>_generalized (pml_lifted.txt: 0 LiftedStructureLoss,
1 GeneralizedLiftedStructureLoss), the parameters, case<k>_value, case<k>_grad
(dL/dX, through PML's own normalisation where its distance normalises) and
case<k>_terms: one per row, from PML's DoNothingReducer: LiftedStructureLoss's
per-positive-pair losses summed by their anchor a1, the per-row losses
otherwise (NCALoss: 0 for the rows it drops); all zeros when PML returns zero
losses.
"""
import os
import sys

import torch

try:
    import pytorch_metric_learning
    from pytorch_metric_learning import distances, losses, reducers
except ImportError:
    sys.exit("generate_pml_lifted_nca.py needs PYTHONPATH pointing at pytorch-metric-learning 2.8.1's src")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refdata import ReferenceWriter  # noqa: E402

if pytorch_metric_learning.__version__ != "2.8.1":
    sys.exit("expected pytorch-metric-learning 2.8.1, found " + pytorch_metric_learning.__version__)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
torch.set_default_dtype(torch.float64)

# Distance codes the C++ tests map to metrics: 0 Cosine, 1 DotProduct, 2 Euclidean, 3 SquaredEuclidean;
# 4 (nca only): PML's default LpDistance(power=2) with its normalisation, which the C++ test reproduces
# as Cosine at twice the scale (|u - v|^2 = 2 (1 - cos) on unit rows).
DISTANCES = [
    (0, "CosineSimilarity()", lambda: distances.CosineSimilarity(), 1.0),
    (1, "DotProductSimilarity(normalize_embeddings=False)",
     lambda: distances.DotProductSimilarity(normalize_embeddings=False), 0.5),
    (2, "LpDistance(normalize_embeddings=False)", lambda: distances.LpDistance(normalize_embeddings=False), 0.4),
    (3, "LpDistance(normalize_embeddings=False, power=2)",
     lambda: distances.LpDistance(normalize_embeddings=False, power=2), 0.4),
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


def run(loss_fn, x, labels):
    xr = x.clone().requires_grad_(True)
    value = loss_fn(xr, labels)
    if value.requires_grad:
        value.backward()
    grad = xr.grad if xr.grad is not None else torch.zeros_like(x)
    return value.item(), grad


def per_row(loss_cls, kwargs, x, labels):
    """PML's unreduced losses, summed per row of X by their first index."""
    out = loss_cls(reducer=reducers.DoNothingReducer(), **kwargs)(x, labels)
    row = out["loss"]["losses"]
    terms = torch.zeros(len(labels))
    if not torch.is_tensor(row) or row.numel() == 0:
        return terms
    idx = out["loss"]["indices"]
    first = idx[0] if isinstance(idx, tuple) else idx
    terms.index_add_(0, first, row.detach().reshape(-1))
    return terms


def add_case(w, k, x, labels, code, value, grad, terms, params):
    w.add("case%d_X" % k, x)
    w.add("case%d_labels" % k, labels.to(torch.float64))
    w.add("case%d_distance" % k, code)
    for name, v in params.items():
        w.add("case%d_%s" % (k, name), v)
    w.add("case%d_value" % k, value)
    w.add("case%d_grad" % k, grad)
    w.add("case%d_terms" % k, terms)


def lifted(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_lifted.txt"), """
pytorch-metric-learning 2.8.1 LiftedStructureLoss and GeneralizedLiftedStructureLoss (MeanReducer),
float64, autograd; written by tests/reference/generate_pml_lifted_nca.py.
case<k>_generalized = 1: GeneralizedLiftedStructureLoss. terms: per row (lifted: summed over the pairs it anchors).
""")
    k = 0
    for code, desc, make, scale in DISTANCES:
        for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
            x = scale * torch.randn(len(labels), dim, generator=gen)
            margins = [(1.0, 0.0)]
            if lname in ("random", "skewed with singletons"):
                margins.append((0.3, 0.8) if code in (0, 1) else (2.0, 0.5))
            for generalized, cls in ((0, losses.LiftedStructureLoss), (1, losses.GeneralizedLiftedStructureLoss)):
                for neg_margin, pos_margin in margins:
                    kwargs = dict(neg_margin=neg_margin, pos_margin=pos_margin, distance=make())
                    value, grad = run(cls(**kwargs), x, labels)
                    terms = per_row(cls, kwargs, x, labels)
                    params = dict(generalized=generalized, neg_margin=neg_margin, pos_margin=pos_margin)
                    add_case(w, k, x, labels, code, value, grad, terms, params)
                    print("case %d: %s(%g, %g), %s, %s: %.17g" % (k, cls.__name__, neg_margin, pos_margin, desc,
                                                                   lname, value))
                    k += 1
    w.add("cases", k)
    w.save()


def nca(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_nca.txt"), """
pytorch-metric-learning 2.8.1 NCALoss (MeanReducer over the rows it keeps), float64, autograd;
written by tests/reference/generate_pml_lifted_nca.py. case<k>_distance = 4: NCALoss's default
distance LpDistance(power=2) with its normalisation (raw rows given).
""")
    k = 0
    nca_distances = DISTANCES + [(4, "LpDistance(power=2) (PML's default, normalising)", lambda: distances.LpDistance(power=2), 1.0)]
    for code, desc, make, scale in nca_distances:
        for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
            x = scale * torch.randn(len(labels), dim, generator=gen)
            for softmax_scale in (1.0, 4.0):
                kwargs = dict(softmax_scale=softmax_scale, distance=make())
                value, grad = run(losses.NCALoss(**kwargs), x, labels)
                terms = per_row(losses.NCALoss, kwargs, x, labels)
                add_case(w, k, x, labels, code, value, grad, terms, dict(softmax_scale=softmax_scale))
                print("case %d: NCALoss(%g), %s, %s: %.17g" % (k, softmax_scale, desc, lname, value))
                k += 1
    w.add("cases", k)
    w.save()


def npairs(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_npairs.txt"), """
pytorch-metric-learning 2.8.1 NPairsLoss (MeanReducer over its pairs), float64, autograd; written by
tests/reference/generate_pml_lifted_nca.py. case<k>_distance = 0: NPairsLoss()'s default
DotProductSimilarity() with its normalisation (raw rows given), which is the C++ Cosine.
""")
    k = 0
    npairs_distances = [(0, "DotProductSimilarity() (PML's default, normalising)", lambda: distances.DotProductSimilarity(), 1.0)]
    npairs_distances += [d for d in DISTANCES if d[0] != 0]
    for code, desc, make, scale in npairs_distances:
        for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
            x = scale * torch.randn(len(labels), dim, generator=gen)
            kwargs = dict(distance=make())
            value, grad = run(losses.NPairsLoss(**kwargs), x, labels)
            terms = per_row(losses.NPairsLoss, kwargs, x, labels)
            add_case(w, k, x, labels, code, value, grad, terms, {})
            print("case %d: NPairsLoss(), %s, %s: %.17g" % (k, desc, lname, value))
            k += 1
    w.add("cases", k)
    w.save()


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(20250614)
    lifted(gen)
    nca(gen)
    npairs(gen)  # last: the cases above draw the same numbers as before it was added
