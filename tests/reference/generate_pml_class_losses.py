"""Reference values for the class-weight losses (arcface_loss, cosface_loss,
sphereface_loss, normalized_softmax_loss, proxy_nca_loss, proxy_anchor_loss,
subcenter_arcface_loss and subcenter_arcface_outliers) from
pytorch-metric-learning (PML) 2.8.1 itself, in float64 with autograd. PML is
not installed system-wide: point PYTHONPATH at PML 2.8.1's src directory (the
unpacked sdist or a checkout of tag v2.8.1). Run from the repository root:

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src \\
        /usr/bin/python3 tests/reference/generate_pml_class_losses.py

Needs torch (Debian's python3-torch, 1.13), numpy, scipy and tqdm (PML imports
them). Writes tests/reference/data/pml_class_losses.txt.

Every case k holds: case<k>_loss (the code in LOSSES below), case<k>_X (raw
embeddings), case<k>_labels, case<k>_W (c x D, one row per class, or
sub_centers rows per class: PML's D x c loss.W transposed, its c x D proxies
as they are), the parameters (margin, scale, sub_centers: 0 where unused),
case<k>_value, case<k>_grad (dL/dX), case<k>_W_grad (dL/dW, shaped like W)
and case<k>_terms: PML's DoNothingReducer losses, one per row for the
cross-entropy losses (ProxyNCALoss: 0 for the rows it drops), one per class
(pos + neg) for ProxyAnchorLoss. SubCenterArcFace cases also hold
case<k>_outliers (get_outliers(threshold=75)'s indices, in its order) and
case<k>_dominant (the dominant sub-centre of each class, -1 for a class with
no sample).
"""
import os
import sys

import torch

try:
    import pytorch_metric_learning
    from pytorch_metric_learning import losses, reducers
except ImportError:
    sys.exit("generate_pml_class_losses.py needs PYTHONPATH pointing at pytorch-metric-learning 2.8.1's src")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refdata import ReferenceWriter  # noqa: E402

if pytorch_metric_learning.__version__ != "2.8.1":
    sys.exit("expected pytorch-metric-learning 2.8.1, found " + pytorch_metric_learning.__version__)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
torch.set_default_dtype(torch.float64)
CLASSES = 7

# code, class, where W lives, its orientation in PML ("dc": D x c), parameter sets (PML defaults first).
LOSSES = [
    (0, losses.ArcFaceLoss, "W", "dc", [dict(), dict(margin=20.0, scale=2.0)]),
    (1, losses.CosFaceLoss, "W", "dc", [dict(), dict(margin=0.2, scale=2.0)]),
    (2, losses.SphereFaceLoss, "W", "dc", [dict(), dict(margin=3, scale=0.5), dict(margin=1, scale=1.0)]),
    (3, losses.NormalizedSoftmaxLoss, "W", "dc", [dict(), dict(temperature=0.5)]),
    (4, losses.ProxyNCALoss, "proxies", "cd", [dict(), dict(softmax_scale=3.0)]),
    (5, losses.ProxyAnchorLoss, "proxies", "cd", [dict(), dict(margin=0.3, alpha=2.0)]),
    (6, losses.SubCenterArcFaceLoss, "W", "dc", [dict(), dict(margin=20.0, scale=2.0, sub_centers=2)]),
]


# PML's constructor defaults, written out (the objects keep ArcFace's margin in radians).
DEFAULTS = {0: dict(margin=28.6, scale=64.0), 1: dict(margin=0.35, scale=64.0), 2: dict(margin=4, scale=1.0),
            3: dict(temperature=0.05), 4: dict(softmax_scale=1.0), 5: dict(margin=0.1, alpha=32.0),
            6: dict(margin=28.6, scale=64.0)}


def layouts(gen):
    """(name, labels) over CLASSES classes: P x K, random labels, skewed with singletons, all one class.
    Classes without a sample occur in every layout."""
    pk = torch.arange(4).repeat_interleave(3)
    pk = pk[torch.randperm(len(pk), generator=gen)]
    rand = torch.randint(0, CLASSES, (14,), generator=gen)
    skewed = torch.tensor([0, 0, 0, 0, 0, 1, 1, 2, 3, 6])
    skewed = skewed[torch.randperm(len(skewed), generator=gen)]
    one = torch.full((8,), 2, dtype=torch.long)
    return [("pk 4x3", pk), ("random", rand), ("skewed with singletons", skewed), ("one class", one)]


def make_loss(cls, params, dim):
    kwargs = dict(num_classes=CLASSES, embedding_size=dim, **params)
    return cls(**kwargs)


def main():
    gen = torch.Generator().manual_seed(20261201)
    w = ReferenceWriter(os.path.join(DATA, "pml_class_losses.txt"), """
pytorch-metric-learning 2.8.1 ArcFaceLoss, CosFaceLoss, SphereFaceLoss, NormalizedSoftmaxLoss,
ProxyNCALoss, ProxyAnchorLoss and SubCenterArcFaceLoss (their default reducers), float64, autograd;
written by tests/reference/generate_pml_class_losses.py. W is c x D (PML's D x c W transposed).
case<k>_loss: 0 ArcFace, 1 CosFace, 2 SphereFace, 3 NormalizedSoftmax, 4 ProxyNCA, 5 ProxyAnchor,
6 SubCenterArcFace. terms: per row (ProxyAnchor: per class, pos + neg).
""")
    k = 0
    for code, cls, attr, orient, param_sets in LOSSES:
        for dim, (lname, labels) in zip((5, 4, 6, 5), layouts(gen)):
            for params in param_sets:
                loss = make_loss(cls, params, dim)
                weights = getattr(loss, attr)
                with torch.no_grad():
                    weights.copy_(torch.randn(weights.shape, generator=gen))
                x = 1.5 * torch.randn(len(labels), dim, generator=gen)
                # One row nearly opposite its class weight: ArcFace's fallback branch, SphereFace's k = m - 1.
                wt = weights.detach().t() if orient == "dc" else weights.detach()
                kper = params.get("sub_centers", 3) if code == 6 else 1
                x[0] = -wt[int(labels[0]) * kper] + 0.05 * torch.randn(dim, generator=gen)
                xr = x.clone().requires_grad_(True)
                value = loss(xr, labels)
                value.backward()
                grad = xr.grad
                wgrad = weights.grad
                if orient == "dc":
                    wgrad = wgrad.t()
                terms = per_term(cls, params, dim, weights.detach(), x, labels, code)
                w.add("case%d_loss" % k, code)
                w.add("case%d_X" % k, x)
                w.add("case%d_labels" % k, labels.to(torch.float64))
                w.add("case%d_W" % k, wt)
                defaults = DEFAULTS[code]
                w.add("case%d_margin" % k, float(params.get("margin", defaults.get("margin", 0.0))))
                scale_name = {3: "temperature", 4: "softmax_scale", 5: "alpha"}.get(code, "scale")
                w.add("case%d_scale" % k, float(params.get(scale_name, defaults[scale_name])))
                w.add("case%d_sub_centers" % k, kper if code == 6 else 0)
                w.add("case%d_value" % k, value.item())
                w.add("case%d_grad" % k, grad)
                w.add("case%d_W_grad" % k, wgrad)
                w.add("case%d_terms" % k, terms)
                if code == 6:
                    outliers, dominant_centers = loss.get_outliers(x, labels, threshold=75)
                    w.add("case%d_outliers" % k, outliers.to(torch.float64).reshape(-1, 1) if outliers.numel()
                          else torch.zeros(0, 1))
                    dominant = []
                    for c in range(CLASSES):
                        if not (labels == c).any():
                            dominant.append(-1)
                            continue
                        sub = loss.W.detach()[:, c * kper:(c + 1) * kper]
                        match = [s for s in range(kper) if torch.equal(sub[:, s], dominant_centers[:, c])]
                        dominant.append(match[0])
                    w.add("case%d_dominant" % k, dominant)
                print("case %d: %s(%s), %s: %.17g" % (k, cls.__name__, params, lname, value.item()))
                k += 1
    w.add("cases", k)
    w.save()


def per_term(cls, params, dim, weights, x, labels, code):
    loss = cls(num_classes=CLASSES, embedding_size=dim, reducer=reducers.DoNothingReducer(), **params) \
        if code != 6 else cls(num_classes=CLASSES, embedding_size=dim, **params)
    attr = "proxies" if code in (4, 5) else "W"
    with torch.no_grad():
        getattr(loss, attr).copy_(weights)
    if code == 6:
        # SubCenterArcFaceLoss does not pass its kwargs on: swap the reducer in afterwards.
        loss.reducer = reducers.DoNothingReducer()
    out = loss(x, labels)
    if code == 5:
        return (out["pos_loss"]["losses"] + out["neg_loss"]["losses"]).detach()
    terms = torch.zeros(len(labels))
    row = out["loss"]["losses"]
    if torch.is_tensor(row) and row.numel() > 0:
        terms.index_add_(0, out["loss"]["indices"], row.detach().reshape(-1))
    return terms


if __name__ == "__main__":
    main()
