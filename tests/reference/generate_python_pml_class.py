#!/usr/bin/env python3
"""Reference values for the Python module's class-weight losses
(python/tests/test_pml_class_reference.py): runs pytorch-metric-learning 2.8.1
itself (float64, autograd) with its weight parameter (W, D x c, or proxies,
c x D) set to given values, and writes tests/reference/data/python_pml_class.json:
for each case the loss, its constructor arguments, X, labels, the weight in
PML's layout, PML's value, dL/dX and dL/dweight (PML's layout); and
SubCenterArcFaceLoss.get_outliers cases (outliers, dominant_centers).

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src /usr/bin/python3 tests/reference/generate_python_pml_class.py
"""
import json
import os

import torch
import pytorch_metric_learning
from pytorch_metric_learning import losses

assert pytorch_metric_learning.__version__ == "2.8.1", pytorch_metric_learning.__version__

torch.manual_seed(20261202)
N, D, C = 12, 5, 6
X = torch.randn(N, D, dtype=torch.float64)
PK = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])  # P x K; classes 4 and 5 without samples
RANDOM = torch.randint(0, C, (N,))

# (loss, kwargs beyond num_classes / embedding_size, labels)
CASES = []
for labels in ("pk", "random"):
    CASES += [
        ("ArcFaceLoss", {}, labels),
        ("ArcFaceLoss", {"margin": 10.0, "scale": 4}, labels),
        ("CosFaceLoss", {}, labels),
        ("CosFaceLoss", {"margin": 0.2, "scale": 3}, labels),
        ("SphereFaceLoss", {}, labels),
        ("SphereFaceLoss", {"margin": 3, "scale": 2}, labels),
        ("SubCenterArcFaceLoss", {}, labels),
        ("SubCenterArcFaceLoss", {"margin": 15.0, "scale": 4, "sub_centers": 2}, labels),
        ("NormalizedSoftmaxLoss", {}, labels),
        ("NormalizedSoftmaxLoss", {"temperature": 0.5}, labels),
        ("ProxyNCALoss", {}, labels),
        ("ProxyNCALoss", {"softmax_scale": 3}, labels),
        ("ProxyAnchorLoss", {}, labels),
        ("ProxyAnchorLoss", {"margin": 0.2, "alpha": 4}, labels),
    ]


def make(name, kwargs):
    return getattr(losses, name)(num_classes=C, embedding_size=D, **kwargs)


def weight_name(name):
    return "proxies" if name.startswith("Proxy") else "W"


def lists(t):
    return t.detach().tolist()


out = {"pml_version": pytorch_metric_learning.__version__, "losses": [], "outliers": []}
for name, kwargs, which in CASES:
    loss_fn = make(name, kwargs)
    weight = getattr(loss_fn, weight_name(name))
    w0 = torch.randn(weight.shape, dtype=torch.float64)
    with torch.no_grad():
        weight.data = w0.clone()
    x = X.clone().requires_grad_(True)
    y = PK if which == "pk" else RANDOM
    value = loss_fn(x, y)
    value.backward()
    out["losses"].append({"loss": name, "kwargs": kwargs, "X": lists(X), "labels": y.tolist(),
                          "weight_name": weight_name(name), "weight": lists(w0), "value": value.item(),
                          "grad": lists(x.grad), "weight_grad": lists(weight.grad)})

for threshold in (75, 40):
    loss_fn = make("SubCenterArcFaceLoss", {})
    w0 = torch.randn(loss_fn.W.shape, dtype=torch.float64)
    with torch.no_grad():
        loss_fn.W.data = w0.clone()
    outliers, dominant = loss_fn.get_outliers(X, RANDOM, threshold=threshold)
    present = sorted(set(RANDOM.tolist()))
    out["outliers"].append({"threshold": threshold, "X": lists(X), "labels": RANDOM.tolist(), "W": lists(w0),
                            "outliers": outliers.tolist(), "present": present,
                            "dominant_centers": lists(dominant[:, present])})

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "python_pml_class.json")
with open(path, "w") as f:
    json.dump(out, f)
print(f"{len(out['losses'])} loss cases, {len(out['outliers'])} outlier cases -> {path}")
