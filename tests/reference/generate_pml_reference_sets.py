"""Reference values for the losses against a reference set and for the
cross-batch memory, from pytorch-metric-learning (PML) 2.8.1 itself, in
float64 with autograd. PML is not installed system-wide: point PYTHONPATH at
PML 2.8.1's src directory. Run from the repository root:

    PYTHONPATH=/path/to/pytorch-metric-learning-2.8.1/src \\
        /usr/bin/python3 tests/reference/generate_pml_reference_sets.py

Writes tests/reference/data/pml_reference_sets.txt and pml_cross_batch_memory.txt.

pml_reference_sets.txt, case k: case<k>_loss (the code in LOSSES), _X, _labels,
_R, _ref_labels, _value = loss(X, labels, ref_emb=R, ref_labels=ref_labels)
(PML pairs every row of X with every row of R: no self pairs are removed),
_gradX, _gradR (autograd).

pml_cross_batch_memory.txt, run r: run<r>_loss (code), _memory_size,
_warmup (steps before the memory is used: the plain batch loss, nothing
enqueued, as XBM's start iteration), _steps; step s: run<r>_step<s>_X,
_labels, _mask (1 = enqueue, all zeros = no mask: the whole batch enqueued and
its self pairs removed), _value, _grad (dL/dX; memory rows are detached).
"""
import os
import sys

import torch

try:
    import pytorch_metric_learning
    from pytorch_metric_learning import distances, losses, miners
except ImportError:
    sys.exit("PML not found: set PYTHONPATH to pytorch-metric-learning 2.8.1's src directory")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refdata import ReferenceWriter  # noqa: E402

if pytorch_metric_learning.__version__ != "2.8.1":
    sys.exit("expected PML 2.8.1, found " + pytorch_metric_learning.__version__)

torch.set_default_dtype(torch.float64)
torch.manual_seed(15)


def plain_lp(power=1):
    return distances.LpDistance(normalize_embeddings=False, p=2, power=power)


# code -> (constructor, uses a miner)
LOSSES = {
    0: lambda: losses.ContrastiveLoss(pos_margin=0.2, neg_margin=1.5, distance=plain_lp()),
    1: lambda: losses.MultiSimilarityLoss(alpha=2, beta=10, base=0.5),
    2: lambda: losses.SupConLoss(temperature=0.3),
    3: lambda: losses.CircleLoss(m=0.4, gamma=4),
    4: lambda: losses.NCALoss(softmax_scale=1, distance=plain_lp(power=2)),
    5: lambda: losses.GeneralizedLiftedStructureLoss(neg_margin=1.5, pos_margin=0.5, distance=plain_lp()),
    6: "batch_hard",  # TripletMarginLoss(margin=0.3, distance=plain_lp()) + BatchHardMiner(distance=plain_lp())
}


def call(code, X, y, R, ry):
    if code == 6:
        loss = losses.TripletMarginLoss(margin=0.3, distance=plain_lp())
        miner = miners.BatchHardMiner(distance=plain_lp())
        triplets = miner(X, y, R, ry)
        return loss(X, y, triplets, R, ry)
    return LOSSES[code]()(X, y, None, R, ry)


def reference_sets():
    out = ReferenceWriter(
        os.path.join("tests", "reference", "data", "pml_reference_sets.txt"),
        "pytorch-metric-learning 2.8.1 losses with ref_emb / ref_labels, float64, autograd;\n"
        "written by tests/reference/generate_pml_reference_sets.py.")
    k = 0
    for code in sorted(LOSSES):
        for n, m, classes in [(7, 13, 3), (5, 9, 2)]:
            X = torch.randn(n, 4, requires_grad=True)
            R = torch.randn(m, 4, requires_grad=True)
            y = torch.randint(0, classes, (n,))
            ry = torch.randint(0, classes, (m,))
            value = call(code, X, y, R, ry)
            gx, gr = torch.autograd.grad(value, [X, R], allow_unused=True)
            gx = torch.zeros_like(X) if gx is None else gx
            gr = torch.zeros_like(R) if gr is None else gr
            p = "case%d_" % k
            out.add(p + "loss", code)
            out.add(p + "X", X)
            out.add(p + "labels", y.double())
            out.add(p + "R", R)
            out.add(p + "ref_labels", ry.double())
            out.add(p + "value", value.item())
            out.add(p + "gradX", gx)
            out.add(p + "gradR", gr)
            k += 1
    out.add("cases", k)
    out.save()


def memory_runs():
    out = ReferenceWriter(
        os.path.join("tests", "reference", "data", "pml_cross_batch_memory.txt"),
        "pytorch-metric-learning 2.8.1 CrossBatchMemory over a few steps, float64, autograd;\n"
        "written by tests/reference/generate_pml_reference_sets.py. Warm-up steps (XBM's start\n"
        "iteration) are the plain batch loss with nothing enqueued.")
    runs = [
        # code, memory size, warm-up, batch size, masks per step (None = no mask)
        (0, 10, 0, 4, [None, None, None, [1, 0, 1, 0], None]),
        (1, 10, 0, 4, [None, [1, 1, 0, 0], None, None, None]),
        (2, 9, 2, 4, [None, None, None, None, [0, 1, 1, 1]]),
        (0, 6, 1, 3, [None, None, None, None]),
    ]
    for r, (code, size, warmup, batch, masks) in enumerate(runs):
        loss = LOSSES[code]()
        memory = losses.CrossBatchMemory(loss, embedding_size=4, memory_size=size)
        p = "run%d_" % r
        out.add(p + "loss", code)
        out.add(p + "memory_size", size)
        out.add(p + "warmup", warmup)
        out.add(p + "steps", len(masks))
        for s, mask in enumerate(masks):
            X = torch.randn(batch, 4, requires_grad=True)
            y = torch.randint(0, 3, (batch,))
            if s < warmup:
                value = loss(X, y)
            elif mask is None:
                value = memory(X, y)
            else:
                value = memory(X, y, enqueue_mask=torch.tensor(mask, dtype=torch.bool))
            (g,) = torch.autograd.grad(value, [X], allow_unused=True)
            g = torch.zeros_like(X) if g is None else g
            q = p + "step%d_" % s
            out.add(q + "X", X)
            out.add(q + "labels", y.double())
            out.add(q + "mask", [0.0] * batch if mask is None else [float(v) for v in mask])
            out.add(q + "value", value.item())
            out.add(q + "grad", g)
    out.add("runs", len(runs))
    out.save()


reference_sets()
memory_runs()
