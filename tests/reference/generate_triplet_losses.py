"""Reference values for the triplet losses, from PyTorch 1.13 autograd in float64.

    python3 tests/reference/generate_triplet_losses.py

writes tests/reference/data/triplet_{margin,batch_all,batch_hard,semihard}.txt.
PyTorch's own losses are used where they exist (TripletMarginLoss with eps=0,
TripletMarginWithDistanceLoss); pytorch-metric-learning and TensorFlow Addons
semantics are written out in torch from their documented code (those packages
are not installed): TFA's masked maximum / minimum and mean over all anchors
(triplet_hard_loss) or over positive pairs (triplet_semihard_loss); PML's
TripletMarginLoss with AvgNonZeroReducer, alone (all triplets) and behind
BatchHardMiner.
"""
import os

import torch
import torch.nn.functional as F

from refdata import ReferenceWriter

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def writer(name, description):
    return ReferenceWriter(os.path.join(DATA, name), description)


def pdist(X, kind):
    """Exact pairwise distances with a zero diagonal whose gradient is 0 (no sqrt(0))."""
    n = X.shape[0]
    eye = torch.eye(n)
    sq = ((X[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    if kind == "squared":
        return sq * (1 - eye)
    if kind == "cosine":
        U = X / X.norm(dim=1, keepdim=True)
        return (1 - U @ U.T) * (1 - eye)
    return torch.sqrt(sq + eye) * (1 - eye)


def grad_of(loss, X):
    (g,) = torch.autograd.grad(loss, X)
    return g


# ---------------------------------------------------------------- explicit triplets
def margin_cases():
    w = writer("triplet_margin.txt", """
torch.nn.TripletMarginLoss (p=2, eps=0) and TripletMarginWithDistanceLoss on explicit
triplets; the mined-index case follows PML TripletMarginLoss (AvgNonZeroReducer).
Cases: mean (margin 1), sum_swap (margin 0.7, swap, sum), cosine (1 - cosine_similarity,
margin 0.3, mean), sqeuclid (squared distance, margin 2, sum), pml_index (margin 0.05,
mean over non-zero terms, unit rows X, triplets a/p/n).
""")
    g = torch.Generator().manual_seed(11)

    def explicit(prefix, loss_fn, T=10, D=6):
        A = torch.randn(T, D, generator=g).requires_grad_()
        P = torch.randn(T, D, generator=g).requires_grad_()
        N = torch.randn(T, D, generator=g).requires_grad_()
        loss = loss_fn(A, P, N)
        gA, gP, gN = torch.autograd.grad(loss, (A, P, N))
        for name, v in (("A", A), ("P", P), ("N", N), ("loss", loss.item()), ("gA", gA), ("gP", gP), ("gN", gN)):
            w.add(prefix + "_" + name, v)

    explicit("mean", torch.nn.TripletMarginLoss(margin=1.0, p=2, eps=0.0))
    explicit("sum_swap", torch.nn.TripletMarginLoss(margin=0.7, p=2, eps=0.0, swap=True, reduction="sum"))
    explicit("cosine", torch.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda x, y: 1 - F.cosine_similarity(x, y), margin=0.3))
    explicit("sqeuclid", torch.nn.TripletMarginWithDistanceLoss(
        distance_function=lambda x, y: ((x - y) ** 2).sum(-1), margin=2.0, reduction="sum"))

    # PML: mined index triplets into one batch, AvgNonZeroReducer, margin 0.05.
    X0 = torch.randn(12, 5, generator=g)
    X = (X0 / X0.norm(dim=1, keepdim=True)).requires_grad_()
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    trip = [(a, p, n) for a in range(12) for p in range(12) for n in range(12)
            if a != p and labels[a] == labels[p] and labels[n] != labels[a]]
    sel = torch.randperm(len(trip), generator=g)[:40]
    trip = [trip[i] for i in sel.tolist()]
    a = torch.tensor([t[0] for t in trip])
    p = torch.tensor([t[1] for t in trip])
    n = torch.tensor([t[2] for t in trip])
    Dm = pdist(X, "euclidean")
    losses = F.relu(Dm[a, p] - Dm[a, n] + 0.05)
    nonzero = (losses > 0).sum()
    assert 0 < nonzero < len(trip)
    loss = losses.sum() / nonzero
    w.add("pml_index_X", X)
    w.add("pml_index_a", a)
    w.add("pml_index_p", p)
    w.add("pml_index_n", n)
    w.add("pml_index_loss", loss.item())
    w.add("pml_index_grad", grad_of(loss, X))
    w.save()


# ---------------------------------------------------------------- batch all (PML)
def all_triplet_hinges(Dm, labels, margin):
    n = Dm.shape[0]
    same = labels[:, None] == labels[None, :]
    valid = (same & ~torch.eye(n, dtype=torch.bool))[:, :, None] & (~same)[:, None, :]
    h = F.relu(Dm[:, :, None] - Dm[:, None, :] + margin)
    return h[valid]


def batch_all_cases():
    w = writer("triplet_batch_all.txt", """
All valid triplets. pml: PML TripletMarginLoss(margin=0.05) without a miner (AvgNonZeroReducer)
on unit rows, 4 classes x 4. mean: margin 1, Euclidean, mean over all valid triplets, random labels.
""")
    g = torch.Generator().manual_seed(22)
    X0 = torch.randn(16, 4, generator=g)
    X = (X0 / X0.norm(dim=1, keepdim=True)).requires_grad_()
    labels = torch.arange(16) // 4
    h = all_triplet_hinges(pdist(X, "euclidean"), labels, 0.05)
    assert 0 < (h > 0).sum() < h.numel()
    loss = h.sum() / (h > 0).sum()
    w.add("pml_X", X); w.add("pml_labels", labels); w.add("pml_loss", loss.item()); w.add("pml_grad", grad_of(loss, X))

    X = torch.randn(15, 5, generator=g).requires_grad_()
    labels = torch.randint(0, 4, (15,), generator=g)
    h = all_triplet_hinges(pdist(X, "euclidean"), labels, 1.0)
    loss = h.mean()
    w.add("mean_X", X); w.add("mean_labels", labels); w.add("mean_loss", loss.item()); w.add("mean_grad", grad_of(loss, X))
    w.save()


# ---------------------------------------------------------------- TFA helpers
def masked_maximum(data, mask):
    axis_minimums = data.min(dim=1, keepdim=True).values
    return ((data - axis_minimums) * mask).max(dim=1, keepdim=True).values + axis_minimums


def masked_minimum(data, mask):
    axis_maximums = data.max(dim=1, keepdim=True).values
    return ((data - axis_maximums) * mask).min(dim=1, keepdim=True).values + axis_maximums


def tfa_triplet_hard(X, labels, margin, soft, kind):
    pd = pdist(X, kind)
    adjacency = labels[:, None] == labels[None, :]
    adjacency_not = (~adjacency).double()
    hard_negatives = masked_minimum(pd, adjacency_not)
    mask_positives = adjacency.double() - torch.eye(X.shape[0])
    hard_positives = masked_maximum(pd, mask_positives)
    if soft:
        loss = torch.log1p(torch.exp(hard_positives - hard_negatives))
    else:
        loss = torch.clamp(hard_positives - hard_negatives + margin, min=0.0)
    return loss.mean()


def tfa_triplet_semihard(X, labels, margin, kind):
    pd = pdist(X, kind)
    n = X.shape[0]
    labels = labels.reshape(n, 1)
    adjacency = labels == labels.T
    adjacency_not = ~adjacency
    pd_tile = pd.repeat(n, 1)
    mask = adjacency_not.repeat(n, 1) & (pd_tile > pd.T.reshape(-1, 1))
    mask_final = (mask.double().sum(1, keepdim=True) > 0.0).reshape(n, n).T
    adjacency_not = adjacency_not.double()
    maskf = mask.double()
    negatives_outside = masked_minimum(pd_tile, maskf).reshape(n, n).T
    negatives_inside = masked_maximum(pd, adjacency_not).repeat(1, n)
    semi_hard_negatives = torch.where(mask_final, negatives_outside, negatives_inside)
    loss_mat = margin + pd - semi_hard_negatives
    mask_positives = adjacency.double() - torch.eye(n)
    num_positives = mask_positives.sum()
    return torch.clamp(loss_mat * mask_positives, min=0.0).sum() / num_positives, mask_final


def batch_hard_cases():
    w = writer("triplet_batch_hard.txt", """
Batch-hard. tfa_*: TFA triplet_hard_loss written in torch (masked max/min, mean over all anchors)
on P x K batches where every anchor has a positive and a negative: tfa_l2 (margin 1),
tfa_soft (soft), tfa_sq (squared-L2, margin 0.5). pml: PML TripletMarginLoss(margin=0.05) +
BatchHardMiner, AvgNonZeroReducer, unit rows, with a singleton class (anchor dropped by the miner).
""")
    g = torch.Generator().manual_seed(33)
    for prefix, margin, soft, kind in (("tfa_l2", 1.0, False, "euclidean"), ("tfa_soft", 1.0, True, "euclidean"),
                                       ("tfa_sq", 0.5, False, "squared")):
        X = torch.randn(12, 6, generator=g).requires_grad_()
        labels = torch.arange(12) // 3
        loss = tfa_triplet_hard(X, labels, margin, soft, kind)
        w.add(prefix + "_X", X); w.add(prefix + "_labels", labels); w.add(prefix + "_margin", margin)
        w.add(prefix + "_loss", loss.item()); w.add(prefix + "_grad", grad_of(loss, X))

    labels = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 3, 4])  # class 4 has no positive
    centers = torch.randn(5, 4, generator=g)
    X0 = 2.0 * centers[labels] + 2.0 * torch.randn(13, 4, generator=g)  # clustered: some anchors satisfied
    X = (X0 / X0.norm(dim=1, keepdim=True)).requires_grad_()
    pd = pdist(X, "euclidean")
    same = labels[:, None] == labels[None, :]
    pos_mask = same & ~torch.eye(13, dtype=torch.bool)
    anchors = [a for a in range(13) if pos_mask[a].any() and (~same[a]).any()]
    terms = []
    for a in anchors:
        dp = pd[a][pos_mask[a]].max()
        dn = pd[a][~same[a]].min()
        terms.append(F.relu(dp - dn + 0.05))
    terms = torch.stack(terms)

    assert 0 < (terms > 0).sum() < len(anchors)
    loss = terms.sum() / (terms > 0).sum()
    w.add("pml_X", X); w.add("pml_labels", labels); w.add("pml_loss", loss.item()); w.add("pml_grad", grad_of(loss, X))
    w.save()


def semihard_cases():
    w = writer("triplet_semihard.txt", """
Semi-hard, TFA triplet_semihard_loss written in torch (negatives_outside / negatives_inside,
mean over positive pairs). l2: margin 1, Euclidean, 3 classes x 4 with one far-away member so
that some positive pairs have no farther negative. sq: squared-L2, margin 0.5, random labels.
""")
    g = torch.Generator().manual_seed(44)
    X = torch.randn(12, 5, generator=g)
    X[2] *= 6.0  # far from its class: pairs (a, 2) have no negative beyond d(a, 2)
    X.requires_grad_()
    labels = torch.arange(12) // 4
    loss, mask_final = tfa_triplet_semihard(X, labels, 1.0, "euclidean")
    pos = (labels[:, None] == labels[None, :]) & ~torch.eye(12, dtype=torch.bool)
    assert (~mask_final[pos]).any() and mask_final[pos].any()
    w.add("l2_X", X); w.add("l2_labels", labels); w.add("l2_margin", 1.0)
    w.add("l2_loss", loss.item()); w.add("l2_grad", grad_of(loss, X))

    X = torch.randn(14, 4, generator=g).requires_grad_()
    labels = torch.randint(0, 3, (14,), generator=g)
    loss, _ = tfa_triplet_semihard(X, labels, 0.5, "squared")
    w.add("sq_X", X); w.add("sq_labels", labels); w.add("sq_margin", 0.5)
    w.add("sq_loss", loss.item()); w.add("sq_grad", grad_of(loss, X))
    w.save()


if __name__ == "__main__":
    margin_cases()
    batch_all_cases()
    batch_hard_cases()
    semihard_cases()
