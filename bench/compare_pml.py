#!/usr/bin/python3
"""pytorch-metric-learning's own losses against the library, same process.

Each case builds one PML 2.8.1 loss object and the contrastive.torch class of
the same name with the same arguments (docs/python.md), feeds both the same
float32 batch and times forward + loss.backward() (process CPU time, median of
--reps runs after one warm-up) on one thread (torch.set_num_threads(1); the
library is single-threaded unless built with OpenMP). Before timing it checks
that both give the same value and gradient (float32: 1e-3 relative to the
gradient's largest entry), so a ratio never compares two different losses.

The batch: N rows of D standard-normal entries (PML normalises where its
default distance does), labels i // 4 (N/4 classes of 4); VICReg's two views
are two such matrices.

Usage (PML's source on PYTHONPATH, the module built as in docs/python.md):
  PYTHONPATH=<pml>/src:<build>/python /usr/bin/python3 bench/compare_pml.py \
      [--sizes 1024x128] [--reps 7] [--only name,name] [--out times.json]
Prints one line per case (PML ms, library ms, PML / library) and writes JSON
{"<case>/<N>/<D>": {"pml_ms": ..., "library_ms": ..., "ratio": ...}}.
"""
import argparse
import json
import statistics
import time

import torch

from pytorch_metric_learning import losses as pml_losses
from pytorch_metric_learning import miners as pml_miners

from contrastive.torch import losses as lib_losses
from contrastive.torch import miners as lib_miners


# name -> (constructor arguments, takes two views). Defaults are PML's except
# where a default would be degenerate on this batch (noted).
CASES = {
    "MultiSimilarityLoss": ({}, False),
    "CircleLoss": ({}, False),
    "LiftedStructureLoss": ({}, False),
    "GeneralizedLiftedStructureLoss": ({}, False),
    "NCALoss": ({}, False),
    "NPairsLoss": ({}, False),
    "TupletMarginLoss": ({}, False),
    "AngularLoss": ({}, False),
    # batch-all over every triplet, PML's smooth_loss: the soft-margin triplet loss
    "TripletMarginLoss_soft": ({"smooth_loss": True}, False),
    "TripletMarginLoss": ({"margin": 0.2}, False),
    "ContrastiveLoss": ({}, False),
    "MarginLoss": ({}, False),
    "SupConLoss": ({}, False),
    "NTXentLoss": ({}, False),
    "VICRegLoss": ({}, True),
}
MINER_CASES = {
    "MultiSimilarityMiner": {},
    "TripletMarginMiner_semihard": {"margin": 0.2, "type_of_triplets": "semihard"},
    "BatchHardMiner": {},
}


def class_name(case):
    return case.split("_")[0]


def make_batch(n, d):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n, d, generator=g, dtype=torch.float32)
    X2 = torch.randn(n, d, generator=g, dtype=torch.float32)
    labels = torch.arange(n) // 4
    return X, X2, labels


def loss_call(fn, two_views, X, X2, labels):
    """The loss and the leaf tensors whose gradients it produces."""
    x = X.clone().requires_grad_(True)
    if two_views:
        x2 = X2.clone().requires_grad_(True)
        return fn(x, ref_emb=x2), (x, x2)
    return fn(x, labels), (x,)


def run_loss(fn, two_views, X, X2, labels):
    loss, leaves = loss_call(fn, two_views, X, X2, labels)
    loss.backward()
    return float(loss.detach()), [leaf.grad for leaf in leaves]


def timed(step, reps):
    step()  # warm-up: first-call allocations, lazy initialisation
    times = []
    for _ in range(reps):
        start = time.process_time()
        step()
        times.append(time.process_time() - start)
    return 1e3 * statistics.median(times)


def check_same(case, pml, lib):
    (pv, pg), (lv, lg) = pml, lib
    scale = max(1.0, abs(pv))
    if abs(pv - lv) > 1e-4 * scale:
        raise SystemExit(f"{case}: values differ: PML {pv!r}, library {lv!r}")
    for a, b in zip(pg, lg):
        top = float(a.abs().max())
        if top > 0 and float((a - b).abs().max()) > 1e-3 * top:
            raise SystemExit(f"{case}: gradients differ by {float((a - b).abs().max())} (largest entry {top})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024x128")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--only", default="")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    only = set(filter(None, args.only.split(",")))
    results = {}
    for size in args.sizes.split(","):
        n, d = (int(v) for v in size.split("x"))
        X, X2, labels = make_batch(n, d)
        for case, (kwargs, two_views) in CASES.items():
            if only and case not in only:
                continue
            name = class_name(case)
            pml = getattr(pml_losses, name)(**kwargs)
            lib = getattr(lib_losses, name)(**kwargs)
            check_same(case, run_loss(pml, two_views, X, X2, labels), run_loss(lib, two_views, X, X2, labels))
            t_pml = timed(lambda: run_loss(pml, two_views, X, X2, labels), args.reps)
            t_lib = timed(lambda: run_loss(lib, two_views, X, X2, labels), args.reps)
            results[f"{case}/{n}/{d}"] = {"pml_ms": t_pml, "library_ms": t_lib, "ratio": t_pml / t_lib}
            print(f"{case:32s} N={n:5d} D={d:4d}  PML {t_pml:9.2f} ms  library {t_lib:8.2f} ms  "
                  f"PML/library {t_pml / t_lib:6.1f}", flush=True)
        for case, kwargs in MINER_CASES.items():
            if only and case not in only:
                continue
            name = class_name(case)
            pml = getattr(pml_miners, name)(**kwargs)
            lib = getattr(lib_miners, name)(**kwargs)
            mined_pml, mined_lib = pml(X, labels), lib(X, labels)
            if [len(t) for t in mined_pml] != [len(t) for t in mined_lib]:
                raise SystemExit(f"{case}: the miners disagree on the number of tuples")
            t_pml = timed(lambda: pml(X, labels), args.reps)
            t_lib = timed(lambda: lib(X, labels), args.reps)
            results[f"{case}/{n}/{d}"] = {"pml_ms": t_pml, "library_ms": t_lib, "ratio": t_pml / t_lib}
            print(f"{case:32s} N={n:5d} D={d:4d}  PML {t_pml:9.2f} ms  library {t_lib:8.2f} ms  "
                  f"PML/library {t_pml / t_lib:6.1f}", flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
