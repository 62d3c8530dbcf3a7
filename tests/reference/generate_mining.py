"""Reference data for the miners (tests/test_mine_triplets.cpp, test_negative_stats.cpp,
test_miners.cpp, test_reference_set_mining.cpp), in float64 with PyTorch 1.13.

pytorch-metric-learning (PML) and TensorFlow Addons (TFA) are not installed:
their miners are written out below in torch from their documented behaviour
(PML 1.x TripletMarginMiner, BatchHardMiner, BatchEasyHardMiner, PairMarginMiner;
TFA triplet_semihard_loss's negative selection). Lattice embeddings (small
integer coordinates) make exact distance ties, so the tie conventions are
exercised: with them our float and double distances equal these bit for bit.

Run: python3 tests/reference/generate_mining.py   (writes tests/reference/data/mining_*.txt)
"""
import os

import torch

from refdata import ReferenceWriter

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


# ---- distances ---------------------------------------------------------------
def exact_squared(x, r):
    # Exact for integer coordinates (no Gram-trick rounding).
    return ((x.unsqueeze(1) - r.unsqueeze(0)) ** 2).sum(-1)


def euclidean(x, r):
    return exact_squared(x, r).sqrt()


def cosine_distance(x, r):
    # PML CosineSimilarity is inverted; 1 - sim turns it into our Cosine distance,
    # and sim(a,p) - sim(a,n) = d(a,n) - d(a,p) keeps PML's triplet margin.
    xn = torch.nn.functional.normalize(x, dim=1)
    rn = torch.nn.functional.normalize(r, dim=1)
    return 1 - xn @ rn.T


# ---- PML lmu.get_all_triplets_indices / get_all_pairs_indices ---------------
def matches_and_diffs(labels, ref_labels=None):
    same = ref_labels is None
    if same:
        ref_labels = labels
    matches = (labels.unsqueeze(1) == ref_labels.unsqueeze(0)).byte()
    diffs = matches ^ 1
    if same:
        matches.fill_diagonal_(0)
    return matches, diffs


def all_triplets(labels, ref_labels=None):
    matches, diffs = matches_and_diffs(labels, ref_labels)
    return torch.where(matches.unsqueeze(2) * diffs.unsqueeze(1))


def all_pairs(labels, ref_labels=None):
    matches, diffs = matches_and_diffs(labels, ref_labels)
    a1, p = torch.where(matches)
    a2, n = torch.where(diffs)
    return a1, p, a2, n


# ---- PML TripletMarginMiner.mine (non-inverted distance) --------------------
def triplet_margin_miner(mat, labels, ref_labels, margin, type_of_triplets):
    a, p, n = all_triplets(labels, ref_labels)
    ap = mat[a, p]
    an = mat[a, n]
    triplet_margin = an - ap
    if type_of_triplets == "easy":
        keep = triplet_margin > margin
    else:
        keep = triplet_margin <= margin
        if type_of_triplets == "hard":
            keep &= triplet_margin <= 0
        elif type_of_triplets == "semihard":
            keep &= triplet_margin > 0
    return torch.stack([a[keep], p[keep], n[keep]], dim=1)


# ---- PML BatchEasyHardMiner (non-inverted distance) -------------------------
def x_per_row(xtype, mat, anchor_idx, other_idx, val_range=None, thresholds=None):
    inf = float("inf") if xtype == "min" else -float("inf")
    mask = torch.ones_like(mat) * inf
    mask[anchor_idx, other_idx] = 1
    if thresholds is not None:
        cond = mat <= thresholds.unsqueeze(1) if xtype == "min" else mat >= thresholds.unsqueeze(1)
        mask[cond] = inf
    if val_range is not None:
        mask[(mat > val_range[1]) | (mat < val_range[0])] = inf
    non_inf_rows = torch.any(mask != inf, dim=1)
    mat = mat.clone()
    mat[mask == inf] = inf
    fn = torch.min if xtype == "min" else torch.max
    values, indices = fn(mat, dim=1)
    return values, indices, non_inf_rows


def easy_hard_miner(mat, labels, ref_labels, pos_strategy, neg_strategy, pos_range=None, neg_range=None):
    a1, p, a2, n = all_pairs(labels, ref_labels)

    def positives(thresholds=None):
        xtype = "max" if pos_strategy in ("hard", "semihard") else "min"
        return x_per_row(xtype, mat, a1, p, pos_range, thresholds)

    def negatives(thresholds=None):
        xtype = "min" if neg_strategy in ("hard", "semihard") else "max"
        return x_per_row(xtype, mat, a2, n, neg_range, thresholds)

    if pos_strategy == "semihard":
        nd, ni, nk = negatives()
        pd, pi, pk = positives(nd)
    elif neg_strategy == "semihard":
        pd, pi, pk = positives()
        nd, ni, nk = negatives(pd)
    else:
        pd, pi, pk = positives()
        nd, ni, nk = negatives()
    keep = torch.where(pk & nk)[0]
    return torch.stack([keep, pi[keep], ni[keep]], dim=1)


# ---- TFA triplet_semihard_loss negative selection ---------------------------
def tfa_semihard(mat, labels, ref_labels=None):
    matches, diffs = matches_and_diffs(labels, ref_labels)
    out = []
    for a in range(mat.shape[0]):
        negs = torch.where(diffs[a] == 1)[0]
        if len(negs) == 0:
            continue
        for p in torch.where(matches[a] == 1)[0]:
            farther = negs[mat[a, negs] > mat[a, p]]
            if len(farther) > 0:
                n = farther[torch.argmin(mat[a, farther])]
            else:
                n = negs[torch.argmax(mat[a, negs])]
            out.append([a, int(p), int(n)])
    return torch.tensor(out, dtype=torch.int64).reshape(-1, 3)


# ---- PML PairMarginMiner ----------------------------------------------------
def pair_margin_miner(mat, labels, ref_labels, pos_margin, neg_margin):
    a1, p, a2, n = all_pairs(labels, ref_labels)
    pos = mat[a1, p] > pos_margin
    neg = mat[a2, n] < neg_margin
    return torch.stack([a1[pos], p[pos]], dim=1), torch.stack([a2[neg], n[neg]], dim=1)


def add_triplet_margin_cases(w, mat, labels, ref_labels, margin):
    for t in ("hard", "semihard", "easy", "all"):
        trip = triplet_margin_miner(mat, labels, ref_labels, margin, t)
        w.add("pml_" + t, trip.double())
        w.add("pml_" + t + "_count", trip.shape[0])


def lattice(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-2, 3, (n, d), generator=g).double()


def labels_of(n, classes, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, classes, (n,), generator=g)


def main():
    os.makedirs(DATA, exist_ok=True)

    # 1-2. Batch, lattice embeddings: exact ties at d(a,n) = d(a,p) and d(a,p) + margin.
    x = lattice(16, 3, 1)
    y = labels_of(16, 4, 2)
    for name, mat, margin in (("euclidean", euclidean(x, x), 1.0), ("squared", exact_squared(x, x), 2.0)):
        w = ReferenceWriter(os.path.join(DATA, "mining_lattice_%s.txt" % name),
                            "PML TripletMarginMiner on lattice embeddings, %s distance\n"
                            "pml_<type>: mined (anchor, positive, negative) rows; generate_mining.py" % name)
        w.add("X", x)
        w.add("labels", y)
        w.add("margin", margin)
        add_triplet_margin_cases(w, mat, y, None, margin)
        w.save()

    # 3. Batch, continuous data, PML CosineSimilarity.
    g = torch.Generator().manual_seed(3)
    x = torch.randn(14, 5, generator=g)
    y = labels_of(14, 3, 4)
    w = ReferenceWriter(os.path.join(DATA, "mining_cosine.txt"),
                        "PML TripletMarginMiner with CosineSimilarity (our Cosine distance); generate_mining.py")
    w.add("X", x)
    w.add("labels", y)
    w.add("margin", 0.2)
    add_triplet_margin_cases(w, cosine_distance(x, x), y, None, 0.2)
    w.save()

    # 4. Reference set (PML ref_emb): lattice anchors against a lattice memory bank.
    x = lattice(10, 3, 5)
    y = labels_of(10, 3, 6)
    r = torch.cat([x[:4], lattice(12, 3, 7)])  # shares rows with X: zero distances to same-label rows
    ry = torch.cat([y[:4], labels_of(12, 3, 8)])
    w = ReferenceWriter(os.path.join(DATA, "mining_reference.txt"),
                        "PML TripletMarginMiner with ref_emb (no self-exclusion), Euclidean; generate_mining.py")
    w.add("X", x)
    w.add("labels", y)
    w.add("R", r)
    w.add("ref_labels", ry)
    w.add("margin", 1.0)
    add_triplet_margin_cases(w, euclidean(x, r), y, ry, 1.0)
    w.save()

    # 5. Selection and pair miners, continuous data (no distance ties), Euclidean.
    g = torch.Generator().manual_seed(9)
    x = torch.randn(16, 4, generator=g)
    y = labels_of(16, 4, 10)
    mat = euclidean(x, x)
    w = ReferenceWriter(os.path.join(DATA, "mining_selection.txt"),
                        "PML BatchEasyHardMiner (pos_neg strategies), BatchHardMiner, PairMarginMiner,\n"
                        "TFA semi-hard selection; Euclidean; generate_mining.py")
    w.add("X", x)
    w.add("labels", y)
    for ps in ("easy", "semihard", "hard"):
        for ns in ("easy", "semihard", "hard"):
            w.add("easy_hard_%s_%s" % (ps, ns), easy_hard_miner(mat, y, None, ps, ns).double())
    w.add("easy_hard_ranges", easy_hard_miner(mat, y, None, "easy", "semihard", (0.5, 2.5), (1.0, 3.0)).double())
    w.add("batch_hard", easy_hard_miner(mat, y, None, "hard", "hard").double())
    w.add("tfa_semihard", tfa_semihard(mat, y).double())
    pos, neg = pair_margin_miner(mat, y, None, 1.5, 2.0)
    w.add("pairs_pos_margin", 1.5)
    w.add("pairs_neg_margin", 2.0)
    w.add("pairs_positive", pos.double())
    w.add("pairs_negative", neg.double())
    w.save()


if __name__ == "__main__":
    main()
