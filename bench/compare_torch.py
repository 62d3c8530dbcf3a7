#!/usr/bin/python3
"""The losses of bench/bench_losses.cpp in PyTorch with autograd, for comparison.

Same semantics and options as the C++ benchmark (see the comment at the top of
bench_losses.cpp): unit-norm rows, labels i // 4, margin 0.2 for the batch
triplet losses, temperature 0.1, ntxent's two views = the two halves of X.
One thread (torch.set_num_threads(1)); times are process CPU time, medians. "fb" is forward + loss.backward(),
"value" is the forward under torch.no_grad().

Cases that need N^3 tensors (batch_all, batch_semihard) run only at N = 256:
at N = 1024 they take about a minute and several GB each, at N = 4096 hours.

Usage: /usr/bin/python3 bench/compare_torch.py [--out times.json] [--sizes 256x128,1024x128,4096x256]
Prints (and writes) JSON: {"<case>/<mode>/<scalar>/<N>/<D>": median milliseconds}.

--module (PYTHONPATH at a build's python/, docs/python.md) also times the
PML-semantics cases (supcon, ntxent, pml_contrastive, pml_multi_similarity)
through contrastive.torch in the same process, and prints each torch-ops /
module ratio; those times go to "module_ms", the torch-ops ones to "times_ms".
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torch.nn.functional as F

MARGIN = 0.2
TEMPERATURE = 0.1
CUBIC_MAX_N = 256  # batch_all / batch_semihard build N^3 tensors


def make_batch(n, d, dtype):
    g = torch.Generator().manual_seed(0)
    def unit(rows, cols):
        x = torch.randn(rows, cols, generator=g, dtype=torch.float64)
        return F.normalize(x, dim=1).to(dtype)
    i = torch.arange(n)
    return {
        "X": unit(n, d), "X2": unit(n, d), "X3": unit(n, d),
        "labels": i // 4,
        "similar": (i % 2 == 0).to(dtype),
        "sign": torch.where(i % 2 == 0, 1.0, -1.0).to(dtype),
        "score": ((i % 11).to(torch.float64) / 10.0).to(dtype),
        "dD": unit(n, n),
    }


def euclidean_matrix(X):
    return torch.cdist(X, X)


def masks(labels):
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool)
    return same & ~eye, ~same  # positive pairs (a != p), negative pairs


# Each case: f(batch, X) -> loss (a scalar tensor; the metric cases return D and
# are backpropagated with dD). X is the tensor that requires grad.
def metric_euclidean(b, X):
    return euclidean_matrix(X)


def metric_squared_euclidean(b, X):
    sq = (X * X).sum(1)
    return (sq[:, None] + sq[None, :] - 2 * X @ X.T).clamp_min(0)


def metric_cosine(b, X):
    Z = F.normalize(X, dim=1)
    return 1 - Z @ Z.T


def contrastive(b, X):
    d = F.pairwise_distance(X, b["X2"], eps=0)
    s = b["similar"]
    return (s * F.relu(d) + (1 - s) * F.relu(1 - d)).mean()


def triplet_margin(b, X):
    return F.triplet_margin_loss(X, b["X2"], b["X3"], margin=1.0)


def cosine_embedding(b, X):
    return F.cosine_embedding_loss(X, b["X2"], b["sign"], margin=0.0)


def similarity_regression(b, X):
    return F.mse_loss(F.cosine_similarity(X, b["X2"]), b["score"])


def batch_contrastive(b, X):
    D = euclidean_matrix(X)
    labels = b["labels"]
    upper = torch.ones_like(D, dtype=torch.bool).triu(1)
    same = labels[:, None] == labels[None, :]
    terms = torch.where(same, F.relu(D), F.relu(1 - D))[upper]
    return terms.mean()


def batch_all(b, X):
    D = euclidean_matrix(X)
    pos, neg = masks(b["labels"])
    valid = pos[:, :, None] & neg[:, None, :]
    t = F.relu(D[:, :, None] - D[:, None, :] + MARGIN)
    return (t * valid).sum() / valid.sum()


def batch_hard(b, X):
    D = euclidean_matrix(X)
    pos, neg = masks(b["labels"])
    d_ap = torch.where(pos, D, torch.zeros_like(D)).max(1).values
    d_an = torch.where(neg, D, torch.full_like(D, float("inf"))).min(1).values
    return F.relu(d_ap - d_an + MARGIN).mean()


def batch_semihard(b, X):
    # TensorFlow Addons triplet_semihard_loss, one triplet per positive pair.
    D = euclidean_matrix(X)
    pos, neg = masks(b["labels"])
    outside = neg[:, None, :] & (D[:, None, :] > D[:, :, None])  # [a, p, n]
    inf = torch.full_like(D[:, None, :].expand_as(outside), float("inf"))
    d_out = torch.where(outside, D[:, None, :].expand_as(outside), inf).min(2).values
    d_in = torch.where(neg, D, torch.full_like(D, -float("inf"))).max(1).values
    d_n = torch.where(outside.any(2), d_out, d_in[:, None].expand_as(d_out))
    terms = F.relu(D - d_n + MARGIN)[pos]
    return terms.mean()


def margin(b, X):
    # MarginOptions defaults: alpha 0.2, beta 1.2, every ordered pair, MeanNonZero.
    D = euclidean_matrix(X)
    pos, neg = masks(b["labels"])
    t = torch.where(pos, F.relu(D - 1.2 + 0.2), torch.zeros_like(D)) + \
        torch.where(neg, F.relu(1.2 - D + 0.2), torch.zeros_like(D))
    return t.sum() / (t > 0).sum().clamp_min(1)


def ntxent(b, X):
    n = X.shape[0] // 2
    Z = F.normalize(X, dim=1)
    sim = Z @ Z.T / TEMPERATURE
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, targets)


def supcon(b, X):
    # pytorch-metric-learning SupConLoss: cosine / t, AvgNonZeroReducer.
    Z = F.normalize(X, dim=1)
    s = Z @ Z.T / TEMPERATURE
    pos, _ = masks(b["labels"])
    eye = torch.eye(X.shape[0], dtype=torch.bool)
    log_prob = s - torch.logsumexp(s.masked_fill(eye, float("-inf")), dim=1, keepdim=True)
    terms = -(log_prob * pos).sum(1) / pos.sum(1).clamp_min(1)
    nonzero = terms > 0
    return terms[nonzero].sum() / nonzero.sum().clamp_min(1)


def pml_contrastive(b, X):
    # pytorch-metric-learning ContrastiveLoss(pos_margin=0, neg_margin=1), LpDistance (normalising):
    # every ordered pair, positive and negative terms each averaged over their terms > 0, added.
    D = euclidean_matrix(F.normalize(X, dim=1))
    pos, neg = masks(b["labels"])
    p = F.relu(D[pos])
    n = F.relu(1 - D[neg])
    return p.sum() / (p > 0).sum().clamp_min(1) + n.sum() / (n > 0).sum().clamp_min(1)


def pml_multi_similarity(b, X, alpha=2.0, beta=50.0, base=0.5):
    # pytorch-metric-learning MultiSimilarityLoss(2, 50, 0.5), CosineSimilarity, mean over the N rows.
    Z = F.normalize(X, dim=1)
    s = Z @ Z.T
    pos, neg = masks(b["labels"])
    zero = torch.zeros(X.shape[0], 1, dtype=X.dtype)
    ninf = torch.full_like(s, float("-inf"))
    pos_term = torch.logsumexp(torch.cat([zero, torch.where(pos, -alpha * (s - base), ninf)], 1), 1) / alpha
    neg_term = torch.logsumexp(torch.cat([zero, torch.where(neg, beta * (s - base), ninf)], 1), 1) / beta
    return (pos_term + neg_term).mean()


CASES = {
    "euclidean": metric_euclidean, "squared_euclidean": metric_squared_euclidean,
    "cosine": metric_cosine, "contrastive": contrastive, "triplet_margin": triplet_margin,
    "cosine_embedding": cosine_embedding, "similarity_regression": similarity_regression,
    "batch_contrastive": batch_contrastive, "batch_all": batch_all, "batch_hard": batch_hard,
    "batch_semihard": batch_semihard, "margin": margin, "ntxent": ntxent, "supcon": supcon,
    "pml_contrastive": pml_contrastive, "pml_multi_similarity": pml_multi_similarity,
}
# The same losses through contrastive.torch (--module), built on first use.
MODULE_CASES = {}


def module_cases():
    from contrastive.torch import losses
    sup, ntx = losses.SupConLoss(temperature=TEMPERATURE), losses.NTXentLoss(temperature=TEMPERATURE)
    con, ms = losses.ContrastiveLoss(), losses.MultiSimilarityLoss()

    def ntxent_module(b, X):
        n = X.shape[0] // 2  # SimCLR's two views = PML's labels [0..n-1, 0..n-1]
        return ntx(X, torch.cat([torch.arange(n), torch.arange(n)]))

    return {"supcon": lambda b, X: sup(X, b["labels"]), "ntxent": ntxent_module,
            "pml_contrastive": lambda b, X: con(X, b["labels"]),
            "pml_multi_similarity": lambda b, X: ms(X, b["labels"])}
CUBIC = {"batch_all", "batch_semihard"}
METRICS = {"euclidean", "squared_euclidean", "cosine"}


def run_once(name, b, value_only, cases=CASES):
    f = cases[name]
    if value_only:
        with torch.no_grad():
            out = f(b, b["X"])
        return float(out.reshape(-1)[0])
    X = b["X"].clone().requires_grad_(True)
    out = f(b, X)
    if name in METRICS:
        out.backward(b["dD"])
    else:
        out.backward()
    return float(X.grad[0, 0])


def median_ms(name, b, value_only, min_time=0.3, max_reps=15, cases=CASES):
    run_once(name, b, value_only, cases)  # warm-up
    # CPU time of the process (one thread): robust to other load on the machine,
    # like the C++ side's one-thread CPU times.
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_reps):
        t0 = time.process_time()
        run_once(name, b, value_only, cases)
        times.append((time.process_time() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--sizes", default="256x128,1024x128,4096x256")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--module", action="store_true", help="also time the contrastive.torch cases")
    args = ap.parse_args()
    torch.set_num_threads(1)
    results = {}
    module_results = {}
    if args.module:
        MODULE_CASES.update(module_cases())
    for size in args.sizes.split(","):
        n, d = (int(v) for v in size.split("x"))
        for dtype, scalar in ((torch.float32, "float"), (torch.float64, "double")):
            b = make_batch(n, d, dtype)
            for name in args.cases.split(","):
                for value_only in (False, True):
                    key = f"{name}/{'value' if value_only else 'fb'}/{scalar}/{n}/{d}"
                    if name in CUBIC and n > CUBIC_MAX_N:
                        results[key] = None  # skipped: N^3 tensors
                        continue
                    results[key] = median_ms(name, b, value_only)
                    print(f"{key}: {results[key]:.3f} ms", file=sys.stderr, flush=True)
                    if name in MODULE_CASES:
                        # check: the module computes the same loss
                        with torch.no_grad():
                            ours, theirs = MODULE_CASES[name](b, b["X"]), CASES[name](b, b["X"])
                        assert abs(float(ours) - float(theirs)) <= 1e-3 * abs(float(theirs)) + 1e-6, (key, ours, theirs)
                        module_results[key] = median_ms(name, b, value_only, cases=MODULE_CASES)
                        print(f"{key}: contrastive.torch {module_results[key]:.3f} ms, torch ops / module "
                              f"{results[key] / module_results[key]:.2f}x", file=sys.stderr, flush=True)
    meta = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    out = {"meta": meta, "times_ms": results}
    if args.module:
        out["module_ms"] = module_results
    text = json.dumps(out, indent=1)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
