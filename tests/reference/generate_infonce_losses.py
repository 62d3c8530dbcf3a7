"""Reference values for the InfoNCE family (ntxent_loss, supcon_loss), from
PyTorch 1.13 in float64 with autograd. Run from the repository root:

    python3 tests/reference/generate_infonce_losses.py

Writes tests/reference/data/infonce_{ntxent_views,ntxent_pml,supcon}.txt.

- SimCLR NT-Xent: PyTorch's built-in F.cross_entropy over the masked
  similarity matrix, the usual SimCLR code.
- pytorch-metric-learning NTXentLoss and SupConLoss (not installed here):
  written out in torch line by line from PML's source (GenericPairLoss with
  CosineSimilarity, get_all_pairs_indices, MeanReducer / AvgNonZeroReducer).
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refdata import ReferenceWriter  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
torch.set_default_dtype(torch.float64)


def cosine_matrix(x):
    # PML's CosineSimilarity: normalise the rows, then the inner products.
    u = F.normalize(x, p=2, dim=1)
    return u @ u.t()


def all_pairs_masks(labels):
    # PML's get_all_pairs_indices as masks: positives share a label (no diagonal).
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    eye = torch.eye(len(labels), dtype=torch.bool)
    return same & ~eye, ~same


def simclr_ntxent(view1, view2, t):
    """SimCLR NT-Xent: per-row cross entropy of the masked similarity matrix."""
    n = view1.shape[0]
    z = F.normalize(torch.cat([view1, view2]), dim=1)
    sim = (z @ z.t()) / t
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    terms = F.cross_entropy(sim, targets, reduction="none")
    return terms.mean(), terms


def pml_ntxent(x, labels, t):
    """pytorch-metric-learning NTXentLoss._compute_loss with MeanReducer."""
    pos_mask, neg_mask = all_pairs_masks(labels)
    mat = cosine_matrix(x)
    a1, p = torch.where(pos_mask)
    a2, n = torch.where(neg_mask)
    if len(a1) == 0 or len(a2) == 0:
        return x.sum() * 0, torch.zeros(len(a1))
    pos_pairs = mat[a1, p].unsqueeze(1) / t
    neg_pairs = mat[a2, n] / t
    n_per_p = (a2.unsqueeze(0) == a1.unsqueeze(1)).to(x.dtype)
    neg_pairs = neg_pairs * n_per_p
    neg_pairs = neg_pairs.masked_fill(n_per_p == 0, float("-inf"))
    max_val = torch.max(pos_pairs, torch.max(neg_pairs, dim=1, keepdim=True)[0]).detach()
    numerator = torch.exp(pos_pairs - max_val).squeeze(1)
    denominator = torch.sum(torch.exp(neg_pairs - max_val), dim=1) + numerator
    losses = -torch.log((numerator / denominator) + torch.finfo(x.dtype).tiny)
    return losses.mean(), losses


def pml_supcon(x, labels, t, mean_over_positive_anchors=False):
    """pytorch-metric-learning SupConLoss._compute_loss with AvgNonZeroReducer
    (or, when asked, the mean over anchors that have a positive)."""
    pos_mask, neg_mask = all_pairs_masks(labels)
    pos_mask = pos_mask.to(x.dtype)
    neg_mask = neg_mask.to(x.dtype)
    if not (pos_mask.bool().any() and neg_mask.bool().any()):
        return x.sum() * 0, torch.zeros(len(labels))
    mat = cosine_matrix(x) / t
    mat_max, _ = mat.max(dim=1, keepdim=True)
    mat = mat - mat_max.detach()
    keep = (pos_mask + neg_mask).bool()
    denominator = torch.logsumexp(mat.masked_fill(~keep, float("-inf")), dim=1, keepdim=True)
    denominator = denominator.masked_fill(~torch.any(keep, dim=1, keepdim=True), 0)
    log_prob = mat - denominator
    mean_log_prob_pos = (pos_mask * log_prob).sum(dim=1) / (pos_mask.sum(dim=1) + torch.finfo(x.dtype).tiny)
    losses = -mean_log_prob_pos
    if mean_over_positive_anchors:
        chosen = pos_mask.sum(dim=1) > 0
    else:
        chosen = losses > 0  # AvgNonZeroReducer
    if chosen.sum() == 0:
        return losses.sum() * 0, losses
    return losses[chosen].mean(), losses


def views_cases():
    g = torch.Generator().manual_seed(2024)
    w = ReferenceWriter(os.path.join(DATA, "infonce_ntxent_views.txt"),
                        "SimCLR NT-Xent (F.cross_entropy over the masked cosine / t matrix), float64 autograd.\n"
                        "Per case: view1, view2, temperature, loss, grad_view1, grad_view2, terms (2N rows).")
    specs = [(6, 4, 0.5), (8, 8, 0.07), (5, 3, 0.2)]
    for c, (n, d, t) in enumerate(specs):
        v1 = torch.randn(n, d, generator=g)
        v2 = v1 + 0.5 * torch.randn(n, d, generator=g)  # correlated views, as augmentations are
        v1.requires_grad_(True)
        v2.requires_grad_(True)
        loss, terms = simclr_ntxent(v1, v2, t)
        loss.backward()
        p = "case%d_" % c
        w.add(p + "view1", v1)
        w.add(p + "view2", v2)
        w.add(p + "temperature", t)
        w.add(p + "loss", loss.item())
        w.add(p + "grad_view1", v1.grad)
        w.add(p + "grad_view2", v2.grad)
        w.add(p + "terms", terms)
    w.add("cases", len(specs))
    w.save()


def labelled_cases(path, description, fn, specs, extra=None):
    g = torch.Generator().manual_seed(77)
    w = ReferenceWriter(path, description)
    for c, spec in enumerate(specs):
        labels, d, t = spec[0], spec[1], spec[2]
        labels = torch.tensor(labels)
        x = torch.randn(len(labels), d, generator=g, requires_grad=True)
        args = spec[3:] if len(spec) > 3 else ()
        loss, terms = fn(x, labels, t, *args)
        if loss.requires_grad:
            loss.backward()
            grad = x.grad
        else:
            grad = torch.zeros_like(x)
        p = "case%d_" % c
        w.add(p + "X", x)
        w.add(p + "labels", labels)
        w.add(p + "temperature", t)
        if extra:
            extra(w, p, spec)
        w.add(p + "loss", loss.item())
        w.add(p + "grad", grad)
        w.add(p + "terms", terms)
    w.add("cases", len(specs))
    w.save()


def main():
    views_cases()
    labelled_cases(
        os.path.join(DATA, "infonce_ntxent_pml.txt"),
        "pytorch-metric-learning NTXentLoss (CosineSimilarity, MeanReducer) written out in torch,\n"
        "float64 autograd. Terms: one per ordered positive pair, anchor-major.",
        pml_ntxent,
        [
            ([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4], 6, 0.07),   # several positives per anchor, a singleton
            ([0, 1, 2, 3, 0, 1, 2, 3], 5, 0.5),                # SimCLR layout [0..N-1, 0..N-1]
            ([5, 5, 7, 7, 7, 9, 1, 1, 1, 1], 8, 0.2),
        ])
    labelled_cases(
        os.path.join(DATA, "infonce_supcon.txt"),
        "pytorch-metric-learning SupConLoss (CosineSimilarity, AvgNonZeroReducer) written out in torch,\n"
        "float64 autograd; mean_over_positive_anchors = 1: the mean over anchors with a positive.\n"
        "Terms: one per anchor.",
        pml_supcon,
        [
            ([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3], 6, 0.07, False),
            ([0, 0, 1, 1, 1, 2, 3, 3, 4, 4], 5, 0.5, False),     # anchors 5 (label 2) without positives
            ([0, 0, 1, 1, 1, 2, 3, 3, 4, 4], 5, 0.5, True),
            ([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3], 8, 0.1, False),
        ],
        extra=lambda w, p, spec: w.add(p + "mean_over_positive_anchors", 1 if spec[3] else 0))


if __name__ == "__main__":
    main()
