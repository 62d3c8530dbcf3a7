#!/usr/bin/env python3
"""Reference values for the Python module (python/tests/test_pml_reference.py):
runs pytorch-metric-learning 2.8.1 itself (float64, autograd) and writes
tests/reference/data/python_pml.json: for each loss case the inputs (X,
labels, the distance and arguments, an indices_tuple from a PML miner where
used), PML's value, dL/dX and (MarginLoss with learn_beta) dL/dbeta; for each
miner case its inputs and PML's index tuple.

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src /usr/bin/python3 tests/reference/generate_python_pml.py
"""
import json
import os

import torch
import pytorch_metric_learning
from pytorch_metric_learning import distances, losses, miners

assert pytorch_metric_learning.__version__ == "2.8.1", pytorch_metric_learning.__version__

torch.manual_seed(20261201)
N, D = 16, 6
X = torch.randn(N, D, dtype=torch.float64)
LABELS = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 5])  # class 5 is a singleton
X2 = torch.randn(N, D, dtype=torch.float64) * 0.5
LABELS2 = torch.tensor([0, 1, 2, 3] * 4)


def distance(spec):
    return None if spec is None else getattr(distances, spec[0])(**spec[1])


def indices_from(miner_spec, x, y):
    if miner_spec is None:
        return None
    name, kwargs, dist = miner_spec
    if dist is not None:
        kwargs = dict(kwargs, distance=distance(dist))
    return getattr(miners, name)(**kwargs)(x, y)


LP = ["LpDistance", {}]
LP_RAW = ["LpDistance", {"normalize_embeddings": False}]
LP_SQ = ["LpDistance", {"power": 2}]
COS = ["CosineSimilarity", {}]
DOT = ["DotProductSimilarity", {}]

# (loss, kwargs, distance, miner for indices_tuple, which inputs)
LOSS_CASES = [
    ("TripletMarginLoss", {}, None, None, 1),
    ("TripletMarginLoss", {"margin": 0.2}, COS, None, 1),
    ("TripletMarginLoss", {"margin": 0.1}, LP_SQ, None, 2),
    ("TripletMarginLoss", {"margin": 0.3}, DOT, None, 1),
    ("TripletMarginLoss", {"margin": 0.5}, LP_RAW, None, 2),
    ("TripletMarginLoss", {"margin": 0.0, "smooth_loss": True}, None, None, 1),
    ("TripletMarginLoss", {}, None, ("TripletMarginMiner", {"margin": 0.2, "type_of_triplets": "semihard"}, None), 1),
    ("TripletMarginLoss", {"margin": 0.1}, None, ("PairMarginMiner", {}, None), 2),
    ("ContrastiveLoss", {}, None, None, 1),
    ("ContrastiveLoss", {"pos_margin": 0.5, "neg_margin": 1.2}, None, None, 2),
    ("ContrastiveLoss", {"pos_margin": 0.9, "neg_margin": 0.3}, COS, None, 1),
    ("ContrastiveLoss", {"pos_margin": 0.2, "neg_margin": 3.0}, LP_RAW, None, 2),
    ("ContrastiveLoss", {}, None, ("PairMarginMiner", {}, None), 1),
    ("ContrastiveLoss", {"pos_margin": 0.1, "neg_margin": 0.9}, None, ("BatchHardMiner", {}, None), 2),
    ("MarginLoss", {}, None, None, 1),
    ("MarginLoss", {"margin": 0.1, "beta": 1.0, "nu": 0.1, "learn_beta": True}, None, None, 2),
    ("MarginLoss", {"nu": 0.05, "learn_beta": True, "num_classes": 6}, None, None, 1),
    ("MarginLoss", {"beta": 2.0, "margin": 0.5}, LP_RAW, None, 2),
    ("NTXentLoss", {}, None, None, 1),
    ("NTXentLoss", {"temperature": 0.5}, None, None, 2),
    ("SupConLoss", {}, None, None, 1),
    ("SupConLoss", {"temperature": 0.5}, None, None, 2),
    ("MultiSimilarityLoss", {}, None, None, 1),
    ("MultiSimilarityLoss", {"alpha": 1.0, "beta": 20.0, "base": 0.3}, LP, None, 2),
    ("MultiSimilarityLoss", {}, None, ("MultiSimilarityMiner", {}, None), 1),
    ("CircleLoss", {}, None, None, 1),
    ("CircleLoss", {"m": 0.25, "gamma": 64}, None, None, 2),
    ("CircleLoss", {}, None, ("MultiSimilarityMiner", {"epsilon": 0.2}, None), 2),
]

MINER_CASES = [
    ("TripletMarginMiner", {"margin": 0.2, "type_of_triplets": t}, d, which)
    for t in ("all", "hard", "semihard", "easy") for d, which in ((None, 1), (COS, 2))
] + [
    ("BatchHardMiner", {}, None, 1),
    ("BatchHardMiner", {}, COS, 2),
    ("PairMarginMiner", {}, None, 1),
    ("PairMarginMiner", {"pos_margin": 0.6, "neg_margin": 0.2}, COS, 2),
    ("MultiSimilarityMiner", {}, None, 1),
    ("MultiSimilarityMiner", {"epsilon": 0.3}, LP, 2),
]


def inputs(which):
    return (X, LABELS) if which == 1 else (X2, LABELS2)


def tolist(t):
    return [int(v) for v in t.tolist()]


def main():
    out = {"pml_version": pytorch_metric_learning.__version__, "torch_version": torch.__version__,
           "losses": [], "miners": []}
    for name, kwargs, dist, miner, which in LOSS_CASES:
        x0, y = inputs(which)
        x = x0.clone().requires_grad_()
        loss_fn = getattr(losses, name)(**kwargs, **({"distance": distance(dist)} if dist else {}))
        if kwargs.get("learn_beta"):
            # PML's beta is a float32 Parameter whose per-class gradient it accumulates in float32;
            # a float64 Parameter (which PML supports: it casts beta to the embeddings' dtype)
            # gives the float64 reference.
            loss_fn.beta = torch.nn.Parameter(loss_fn.beta.detach().double())
        indices = indices_from(miner, x0, y)
        value = loss_fn(x, y, indices)
        value.backward()
        case = {"loss": name, "kwargs": kwargs, "distance": dist, "X": x0.tolist(), "labels": tolist(y),
                "indices_tuple": None if indices is None else [tolist(t) for t in indices],
                "value": float(value), "grad": x.grad.tolist()}
        if kwargs.get("learn_beta"):
            case["beta_grad"] = loss_fn.beta.grad.double().tolist()
        out["losses"].append(case)
    for name, kwargs, dist, which in MINER_CASES:
        x0, y = inputs(which)
        miner = getattr(miners, name)(**kwargs, **({"distance": distance(dist)} if dist else {}))
        result = miner(x0, y)
        out["miners"].append({"miner": name, "kwargs": kwargs, "distance": dist, "X": x0.tolist(),
                              "labels": tolist(y), "indices_tuple": [tolist(t) for t in result]})
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "python_pml.json")
    with open(path, "w") as f:  # one case per line
        head = {k: v for k, v in out.items() if k not in ("losses", "miners")}
        f.write(json.dumps(head)[:-1])
        for key in ("losses", "miners"):
            f.write(f',\n "{key}": [\n' + ",\n".join(json.dumps(c) for c in out[key]) + "]")
        f.write("}\n")
    print(f"wrote {path}: {len(out['losses'])} loss cases, {len(out['miners'])} miner cases")


if __name__ == "__main__":
    main()
