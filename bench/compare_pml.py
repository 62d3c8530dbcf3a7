#!/usr/bin/python3
"""pytorch-metric-learning's own losses against the library, same process.

Each case builds one PML 2.8.1 loss object and the contrastive.torch class of
the same name with the same arguments (docs/python.md), feeds both the same
float32 batch and times forward + loss.backward() (process CPU time, median of
--reps runs after one warm-up) on one thread (torch.set_num_threads(1); the
library is single-threaded unless built with OpenMP). Before timing it checks
that both give the same value and gradient on the batch in float64 (1e-8
relative to the value and to the gradient's largest entry), so a ratio never
compares two different losses.

The batch: N rows of D standard-normal entries (PML normalises where its
default distance does), labels i // 4 (N/4 classes of 4); VICReg's two views
are two such matrices.

Debian's python3-torch runs its matrix products on the reference BLAS
(libblas.so.3), about 15x slower than OpenBLAS on a 1024 x 128 Gram product
here: put OpenBLAS first (LD_LIBRARY_PATH=<dir of Debian's
libopenblas0-pthread libblas.so.3>, OPENBLAS_NUM_THREADS=1, as
bench/run_benchmarks.py does for compare_torch.py), or PML is flattered into
looking slow. The script prints torch's time for that product first.

Usage (PML's source on PYTHONPATH, the module built as in docs/python.md):
  PYTHONPATH=<pml>/src:<build>/python /usr/bin/python3 bench/compare_pml.py \
      [--sizes 1024x128] [--reps 7] [--only name,name] [--out times.json]
Prints one line per case (PML ms, library ms, PML / library) and writes JSON
{"<case>/<N>/<D>": {"pml_ms": ..., "library_ms": ..., "ratio": ...}}.

Some PML losses build N x N x N tensors (LiftedStructureLoss needs more than
20 GB at N = 1024). The process's address space is capped (--memory-gib,
default 12), so such an allocation fails inside torch instead of calling the
OOM killer; the case is then reported as "PML out of memory" with the
library's time alone.
"""
import argparse
import json
import resource
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
    if abs(pv - lv) > 1e-8 * max(1.0, abs(pv)):
        raise SystemExit(f"{case}: values differ: PML {pv!r}, library {lv!r}")
    for a, b in zip(pg, lg):
        top = float(a.abs().max())
        if top > 0 and float((a - b).abs().max()) > 1e-8 * top:
            raise SystemExit(f"{case}: gradients differ by {float((a - b).abs().max())} (largest entry {top})")


def record(results, case, n, d, t_pml, t_lib, pml_note=""):
    ratio = None if t_pml is None else t_pml / t_lib
    results[f"{case}/{n}/{d}"] = {"pml_ms": t_pml, "library_ms": t_lib, "ratio": ratio}
    pml = pml_note if t_pml is None else f"PML {t_pml:9.2f} ms"
    tail = "" if ratio is None else f"  PML/library {ratio:6.1f}"
    print(f"{case:32s} N={n:5d} D={d:4d}  {pml}  library {t_lib:8.2f} ms{tail}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024x128")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--only", default="")
    parser.add_argument("--memory-gib", type=float, default=12.0)
    parser.add_argument("--out")
    args = parser.parse_args()
    cap = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    torch.set_num_threads(1)
    only = set(filter(None, args.only.split(",")))
    results = {}
    G = torch.randn(1024, 128)
    gram_ms = timed(lambda: G @ G.T, 20)
    results["torch_gram_1024x128_ms"] = gram_ms
    print(f"torch: {gram_ms:.2f} ms for a 1024 x 128 float Gram product (reference BLAS: ~60, OpenBLAS: ~4)")
    for size in args.sizes.split(","):
        n, d = (int(v) for v in size.split("x"))
        X, X2, labels = make_batch(n, d)
        for case, (kwargs, two_views) in CASES.items():
            if only and case not in only:
                continue
            name = class_name(case)
            pml = getattr(pml_losses, name)(**kwargs)
            lib = getattr(lib_losses, name)(**kwargs)
            X64, X2_64 = X.double(), X2.double()
            lib_result = run_loss(lib, two_views, X64, X2_64, labels)
            try:
                check_same(case, run_loss(pml, two_views, X64, X2_64, labels), lib_result)
            except RuntimeError as error:  # torch's allocator under the address-space cap
                if "memory" not in str(error):
                    raise
                t_lib = timed(lambda: run_loss(lib, two_views, X, X2, labels), args.reps)
                record(results, case, n, d, None, t_lib, f"PML out of memory ({args.memory_gib:g} GiB)")
                continue
            t_pml = timed(lambda: run_loss(pml, two_views, X, X2, labels), args.reps)
            t_lib = timed(lambda: run_loss(lib, two_views, X, X2, labels), args.reps)
            record(results, case, n, d, t_pml, t_lib)
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
            record(results, case, n, d, t_pml, t_lib)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
