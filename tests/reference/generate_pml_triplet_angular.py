"""Reference values for tuplet_margin_loss, angular_loss and the soft-margin
(smooth_loss) batch triplet losses from pytorch-metric-learning (PML) 2.8.1
itself, in float64 with autograd. PML is not installed system-wide: point
PYTHONPATH at PML 2.8.1's src directory (the unpacked sdist or a checkout of
tag v2.8.1). Run from the repository root:

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src \\
        /usr/bin/python3 tests/reference/generate_pml_triplet_angular.py

Needs torch, numpy and tqdm (PML imports it). Writes
tests/reference/data/pml_tuplet_margin.txt, pml_angular.txt, pml_soft_triplet.txt and
pml_vicreg.txt (VICRegLoss on two views: case<k>_X, case<k>_Y, _value, _grad, _grad2, _terms =
its four reduced sub-losses).

Every case k holds: case<k>_X (raw embeddings), case<k>_labels, case<k>_value,
case<k>_grad (dL/dX, through PML's own normalisation where it normalises),
case<k>_terms (PML's per-pair / per-triplet losses from DoNothingReducer,
summed per anchor, the library's terms; zeros when PML returns zero losses)
and the parameters.
"""
import os
import sys

import torch

try:
    import pytorch_metric_learning
    from pytorch_metric_learning import distances, losses, miners, reducers
except ImportError:
    sys.exit("generate_pml_triplet_angular.py needs PYTHONPATH pointing at pytorch-metric-learning 2.8.1's src")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refdata import ReferenceWriter  # noqa: E402

if pytorch_metric_learning.__version__ != "2.8.1":
    sys.exit("expected pytorch-metric-learning 2.8.1, found " + pytorch_metric_learning.__version__)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
torch.set_default_dtype(torch.float64)

# Distance codes the C++ tests map to metrics: 0 Cosine, 1 DotProduct, 2 Euclidean, 3 SquaredEuclidean.
DISTANCES = [
    (0, "CosineSimilarity()", lambda: distances.CosineSimilarity(), 1.0),
    (1, "DotProductSimilarity(normalize_embeddings=False)",
     lambda: distances.DotProductSimilarity(normalize_embeddings=False), 0.4),
    (2, "LpDistance(normalize_embeddings=False)", lambda: distances.LpDistance(normalize_embeddings=False), 0.3),
    (3, "LpDistance(normalize_embeddings=False, power=2)",
     lambda: distances.LpDistance(normalize_embeddings=False, power=2), 0.3),
]


def layouts(gen):
    """(name, labels): P x K, random labels, skewed with singletons, all one class."""
    pk = torch.arange(4).repeat_interleave(3)
    pk = pk[torch.randperm(len(pk), generator=gen)]
    rand = torch.randint(0, 4, (14,), generator=gen)
    skewed = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 3, 4])
    skewed = skewed[torch.randperm(len(skewed), generator=gen)]
    one = torch.zeros(7, dtype=torch.long)
    return [("pk 4x3", pk), ("random", rand), ("skewed with singletons", skewed), ("one class", one)]


def run(loss_fn, x, labels, indices_tuple=None):
    xr = x.clone().requires_grad_(True)
    value = loss_fn(xr, labels, indices_tuple)
    value.backward()
    grad = xr.grad if xr.grad is not None else torch.zeros_like(x)
    return value.item(), grad


def per_anchor(loss_cls, kwargs, x, labels, indices_tuple=None):
    """PML's unreduced losses summed onto their anchors (the first index tensor)."""
    out = loss_cls(reducer=reducers.DoNothingReducer(), **kwargs)(x, labels, indices_tuple)
    terms = torch.zeros(len(labels))
    info = out["loss"]
    if torch.is_tensor(info["losses"]) and info["losses"].numel() > 0 and info["indices"] is not None:
        terms.index_add_(0, info["indices"][0], info["losses"].detach().reshape(-1))
    return terms


def add_case(w, k, x, labels, value, grad, terms, params):
    w.add("case%d_X" % k, x)
    w.add("case%d_labels" % k, labels.to(torch.float64))
    for name, v in params.items():
        w.add("case%d_%s" % (k, name), v)
    w.add("case%d_value" % k, value)
    w.add("case%d_grad" % k, grad)
    w.add("case%d_terms" % k, terms)


def tuplet(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_tuplet_margin.txt"), """
pytorch-metric-learning 2.8.1 TupletMarginLoss (CosineSimilarity, MeanReducer over ordered positive
pairs), float64, autograd; written by tests/reference/generate_pml_triplet_angular.py.
""")
    k = 0
    for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
        x = torch.randn(len(labels), dim, generator=gen)
        for margin, scale in ((5.73, 64.0), (10.0, 16.0)):
            kwargs = dict(margin=margin, scale=scale)
            value, grad = run(losses.TupletMarginLoss(**kwargs), x, labels)
            terms = per_anchor(losses.TupletMarginLoss, kwargs, x, labels)
            add_case(w, k, x, labels, value, grad, terms, dict(margin=margin, scale=scale))
            print("case %d: TupletMarginLoss(%g, %g), %s: %.17g" % (k, margin, scale, lname, value))
            k += 1
    w.add("cases", k)
    w.save()


def angular(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_angular.txt"), """
pytorch-metric-learning 2.8.1 AngularLoss (its LpDistance(p=2, power=1, normalize_embeddings=True),
MeanReducer over ordered positive pairs), float64, autograd; rows of unequal norms, since anchors and
positives are normalised and negatives are not; written by tests/reference/generate_pml_triplet_angular.py.
""")
    k = 0
    for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
        norms = 0.5 + torch.rand(len(labels), 1, generator=gen)
        x = norms * torch.nn.functional.normalize(torch.randn(len(labels), dim, generator=gen), dim=1)
        for alpha in (40.0, 25.0):
            kwargs = dict(alpha=alpha)
            value, grad = run(losses.AngularLoss(**kwargs), x, labels)
            terms = per_anchor(losses.AngularLoss, kwargs, x, labels)
            add_case(w, k, x, labels, value, grad, terms, dict(alpha=alpha))
            print("case %d: AngularLoss(%g), %s: %.17g" % (k, alpha, lname, value))
            k += 1
    w.add("cases", k)
    w.save()


def soft_triplet(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_soft_triplet.txt"), """
pytorch-metric-learning 2.8.1 TripletMarginLoss(margin, smooth_loss=True) (AvgNonZeroReducer) on
all triplets (case<k>_hard = 0: batch_all_triplet_loss) and on BatchHardMiner(distance) (case<k>_hard = 1:
batch_hard_triplet_loss), float64, autograd; written by tests/reference/generate_pml_triplet_angular.py.
""")
    k = 0
    for code, desc, make, scale in DISTANCES:
        for dim, (lname, labels) in zip((6, 4, 8, 5), layouts(gen)):
            x = scale * torch.randn(len(labels), dim, generator=gen)
            for hard in (0, 1):
                for margin in ((0.0, 0.3) if hard else (0.0, 0.05)):
                    kwargs = dict(margin=margin, smooth_loss=True, distance=make())
                    mined = miners.BatchHardMiner(distance=make())(x, labels) if hard else None
                    value, grad = run(losses.TripletMarginLoss(**kwargs), x, labels, mined)
                    terms = per_anchor(losses.TripletMarginLoss, kwargs, x, labels, mined)
                    add_case(w, k, x, labels, value, grad, terms,
                             dict(distance=code, margin=margin, hard=hard))
                    print("case %d: TripletMarginLoss(%g, smooth_loss=True)%s, %s, %s: %.17g"
                          % (k, margin, " + BatchHardMiner" if hard else "", desc, lname, value))
                    k += 1
    w.add("cases", k)
    w.save()


def vicreg(gen):
    w = ReferenceWriter(os.path.join(DATA, "pml_vicreg.txt"), """
pytorch-metric-learning 2.8.1 VICRegLoss(invariance_lambda, variance_mu, covariance_v, eps)(X, ref_emb=Y)
(MeanReducer per sub-loss, summed), float64, autograd; case<k>_terms = the four reduced sub-losses
(invariance, variance of X, variance of Y, covariance); written by tests/reference/generate_pml_triplet_angular.py.
""")
    k = 0
    for n, d in ((8, 5), (16, 6), (2, 3), (5, 7)):
        # Columns of unequal spread: some standard deviations below 1 (hinge active), some above.
        spread = torch.linspace(0.3, 1.8, d)
        x = spread * torch.randn(n, d, generator=gen)
        y = x + 0.3 * spread * torch.randn(n, d, generator=gen)
        for lam, mu, nu, eps in ((25.0, 25.0, 1.0, 1e-4), (1.0, 3.0, 0.5, 1e-2)):
            loss = losses.VICRegLoss(invariance_lambda=lam, variance_mu=mu, covariance_v=nu, eps=eps)
            xr = x.clone().requires_grad_(True)
            yr = y.clone().requires_grad_(True)
            value = loss(xr, ref_emb=yr)
            value.backward()
            parts = losses.VICRegLoss(invariance_lambda=lam, variance_mu=mu, covariance_v=nu, eps=eps,
                                      reducer=reducers.DoNothingReducer())(x, ref_emb=y)
            terms = [parts["invariance_loss"]["losses"].mean().item(), parts["variance_loss1"]["losses"].mean().item(),
                     parts["variance_loss2"]["losses"].mean().item(), parts["covariance_loss"]["losses"].item()]
            w.add("case%d_X" % k, x)
            w.add("case%d_Y" % k, y)
            for name, v in (("lambda", lam), ("mu", mu), ("nu", nu), ("eps", eps)):
                w.add("case%d_%s" % (k, name), v)
            w.add("case%d_value" % k, value.item())
            w.add("case%d_grad" % k, xr.grad)
            w.add("case%d_grad2" % k, yr.grad)
            w.add("case%d_terms" % k, terms)
            print("case %d: VICRegLoss(%g, %g, %g, %g), N %d, D %d: %.17g" % (k, lam, mu, nu, eps, n, d, value.item()))
            k += 1
    w.add("cases", k)
    w.save()


if __name__ == "__main__":
    gen = torch.Generator().manual_seed(20250614)
    tuplet(gen)
    angular(gen)
    soft_triplet(gen)
    vicreg(gen)
