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

# The lifted structure, NCA and N-pair losses and BatchEasyHardMiner, on their own inputs (a separate
# generator: the cases above keep their inputs): 3 = P x K, 4 = random labels, 5 = skewed with singletons.
_GEN = torch.Generator().manual_seed(20261202)
X3 = torch.randn(15, 5, dtype=torch.float64, generator=_GEN) * 0.7
LABELS3 = torch.tensor([0, 1, 2, 3, 4] * 3)
X4 = torch.randn(14, 5, dtype=torch.float64, generator=_GEN) * 0.7
LABELS4 = torch.randint(0, 4, (14,), generator=_GEN)
X5 = torch.randn(14, 5, dtype=torch.float64, generator=_GEN) * 0.7
LABELS5 = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 4, 5])  # 3, 4, 5 are singletons

LP_SQ_RAW = ["LpDistance", {"normalize_embeddings": False, "power": 2}]
DOT_RAW = ["DotProductSimilarity", {"normalize_embeddings": False}]
ALL_DISTANCES = [None, LP, LP_RAW, LP_SQ, LP_SQ_RAW, COS, DOT, DOT_RAW]

NEW_LOSS_KWARGS = [
    ("LiftedStructureLoss", {}),
    ("LiftedStructureLoss", {"neg_margin": 0.6, "pos_margin": 0.2}),
    ("GeneralizedLiftedStructureLoss", {}),
    ("GeneralizedLiftedStructureLoss", {"neg_margin": 0.6, "pos_margin": 0.2}),
    ("NCALoss", {}),
    ("NCALoss", {"softmax_scale": 3.0}),
    ("NPairsLoss", {}),
]
LOSS_CASES += [
    (name, kwargs, dist, None, which)
    for name, kwargs in NEW_LOSS_KWARGS for dist in ALL_DISTANCES for which in (3, 4, 5)
]

# TripletMarginLoss(smooth_loss=True) with a margin: softplus(d_ap - d_an + margin), on all triplets
# and on a miner's (on the second generator's inputs, after the cases above).
LOSS_CASES += [
    ("TripletMarginLoss", {"margin": m, "smooth_loss": True}, dist, None, which)
    for m in (0.05, 0.4) for dist in (None, COS, LP_RAW) for which in (3, 5)
] + [
    ("TripletMarginLoss", {"margin": 0.2, "smooth_loss": True}, None,
     ("TripletMarginMiner", {"margin": 0.2, "type_of_triplets": "semihard"}, None), which) for which in (3, 4)
]

# TupletMarginLoss (CosineSimilarity only) and AngularLoss (LpDistance() only, as PML asserts), on the
# second generator's P x K, random-label and skewed-with-singletons batches (after the cases above).
LOSS_CASES += [
    ("TupletMarginLoss", kwargs, dist, None, which)
    for kwargs in ({}, {"margin": 10.0, "scale": 16}, {"margin": 2.5, "scale": 32})
    for dist in (None, COS) for which in (3, 4, 5)
] + [
    ("AngularLoss", kwargs, dist, None, which)
    for kwargs in ({}, {"alpha": 30}, {"alpha": 50}) for dist in (None, LP) for which in (3, 4, 5)
]

# VICRegLoss on two views (embeddings, ref_emb), from a third generator (the inputs above unchanged):
# 6 = a view and a noisy copy (every variance hinge active), 7 = unequal column scales (some hinges
# inactive), 8 = two independent views; "ref" None: PML's ref_emb = embeddings.
_GEN3 = torch.Generator().manual_seed(20261203)
V6 = torch.randn(15, 5, dtype=torch.float64, generator=_GEN3) * 0.7
V6B = V6 + 0.2 * torch.randn(15, 5, dtype=torch.float64, generator=_GEN3)
_SCALES = torch.tensor([0.3, 0.8, 1.5, 2.0, 0.5], dtype=torch.float64)
V7 = torch.randn(14, 5, dtype=torch.float64, generator=_GEN3) * _SCALES
V7B = V7 + 0.3 * torch.randn(14, 5, dtype=torch.float64, generator=_GEN3) * _SCALES
V8 = torch.randn(12, 4, dtype=torch.float64, generator=_GEN3)
V8B = torch.randn(12, 4, dtype=torch.float64, generator=_GEN3) * 1.3
VIEWS = {6: (V6, V6B), 7: (V7, V7B), 8: (V8, V8B)}
VICREG_CASES = [
    ("VICRegLoss", kwargs, which, True)
    for kwargs in ({}, {"invariance_lambda": 5.0, "variance_mu": 10.0, "covariance_v": 2.0, "eps": 1e-3})
    for which in (6, 7, 8)
] + [("VICRegLoss", {}, which, False) for which in (6, 7)]

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
MINER_CASES += [
    ("BatchEasyHardMiner", {"pos_strategy": ps, "neg_strategy": ns}, d, which)
    for ps, ns in (("easy", "semihard"), ("hard", "hard"), ("easy", "easy"), ("hard", "easy"),
                   ("easy", "hard"), ("semihard", "hard"), ("semihard", "easy"), ("hard", "semihard"))
    for d in (None, LP_RAW, COS, DOT_RAW) for which in (3, 4, 5)
] + [
    ("BatchEasyHardMiner", {"pos_strategy": "hard", "neg_strategy": "hard", "allowed_pos_range": [0.2, 0.9],
                            "allowed_neg_range": [0.5, 1.4]}, None, which) for which in (3, 4, 5)
] + [
    ("BatchEasyHardMiner", {"allowed_pos_range": [0.0, 0.8], "allowed_neg_range": [-0.5, 0.6]}, COS, which)
    for which in (3, 4, 5)
] + [
    ("BatchEasyHardMiner", {"pos_strategy": "semihard", "neg_strategy": "easy",
                            "allowed_neg_range": [-1.0, 0.5]}, DOT_RAW, which) for which in (3, 4, 5)
]


def inputs(which):
    return {1: (X, LABELS), 2: (X2, LABELS2), 3: (X3, LABELS3), 4: (X4, LABELS4), 5: (X5, LABELS5)}[which]


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
    for name, kwargs, which, two_views in VICREG_CASES:
        a0, b0 = VIEWS[which]
        a = a0.clone().requires_grad_()
        b = b0.clone().requires_grad_() if two_views else None
        value = getattr(losses, name)(**kwargs)(a, ref_emb=b)
        value.backward()
        out["losses"].append({"loss": name, "kwargs": kwargs, "distance": None, "X": a0.tolist(), "labels": None,
                              "indices_tuple": None, "ref_emb": b0.tolist() if two_views else None,
                              "value": float(value), "grad": a.grad.tolist(),
                              "ref_grad": b.grad.tolist() if two_views else None})
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
