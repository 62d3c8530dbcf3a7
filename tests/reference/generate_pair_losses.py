"""Reference values for the pair losses (contrastive, margin, cosine embedding,
similarity regression), written with PyTorch 1.13 in float64 with autograd.

Run from anywhere:  python3 tests/reference/generate_pair_losses.py
Writes tests/reference/data/pair_*.txt, read by tests/test_*_loss.cpp.

PyTorch's built-in losses are used where they exist (CosineEmbeddingLoss,
cosine_similarity + MSELoss as sentence-transformers' CosineSimilarityLoss).
pytorch-metric-learning (PML) and TensorFlow Addons (TFA) are not installed;
their semantics are written out in torch below from their documented behaviour.
PML normalises embeddings by default (LpDistance(normalize_embeddings=True)):
the embeddings written here are already unit rows, and the gradients are with
respect to those rows.
"""
import os

import torch
import torch.nn.functional as F

from refdata import ReferenceWriter

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
torch.manual_seed(20240613)
torch.set_default_dtype(torch.float64)


def leaf(t):
    return t.clone().detach().requires_grad_(True)


def grads_of(value, *tensors):
    return torch.autograd.grad(value, tensors)


def pair_distance(a, b):
    """Euclidean distance of row pairs, never evaluated at a zero difference."""
    return (a - b).norm(dim=1)


def write(name, description, arrays):
    w = ReferenceWriter(os.path.join(DATA, name), description)
    for k, v in arrays:
        w.add(k, v)
    w.save()


# ---- Hadsell et al. 2006 and TFA contrastive_loss on explicit pairs ----
def explicit_pairs(n, d, scale):
    x1 = torch.randn(n, d) * scale
    x2 = torch.randn(n, d) * scale
    y = torch.zeros(n)
    y[torch.randperm(n)[: n // 2]] = 1  # 1 = similar pair
    return x1, x2, y


def hadsell():
    x1, x2, y = explicit_pairs(12, 5, 0.6)
    m = 1.5
    arrays = [("X1", x1), ("X2", x2), ("similar", y), ("margin", m)]
    for name, reduce in (("sum", torch.sum), ("mean", torch.mean)):
        a, b = leaf(x1), leaf(x2)
        dist = pair_distance(a, b)
        # Hadsell's Y = 0 marks a similar pair: (1-Y) 1/2 D^2 + Y 1/2 max(0, m - D)^2.
        Y = 1 - y
        per_pair = (1 - Y) * 0.5 * dist ** 2 + Y * 0.5 * torch.clamp(m - dist, min=0) ** 2
        value = reduce(per_pair)
        ga, gb = grads_of(value, a, b)
        arrays += [("value_" + name, value), ("grad1_" + name, ga), ("grad2_" + name, gb)]
    arrays.append(("terms", per_pair))
    write("pair_contrastive_hadsell.txt",
          "Hadsell, Chopra & LeCun 2006 contrastive loss, explicit pairs, Euclidean distance.\n"
          "similar: 1 = similar pair (their Y = 0). terms: per-pair losses with the 1/2 factors.", arrays)


def tfa():
    x1, x2, y = explicit_pairs(14, 4, 0.5)
    m = 1.0
    a, b = leaf(x1), leaf(x2)
    dist = pair_distance(a, b)
    # tfa.losses.contrastive_loss(y_true, y_pred=d, margin): y d^2 + (1 - y) max(m - d, 0)^2,
    # then the Keras default reduction (mean over the batch).
    per_pair = y * dist ** 2 + (1 - y) * torch.clamp(m - dist, min=0) ** 2
    value = per_pair.mean()
    ga, gb = grads_of(value, a, b)
    write("pair_contrastive_tfa.txt",
          "TensorFlow Addons contrastive_loss on explicit pairs, mean reduction, Euclidean distance.",
          [("X1", x1), ("X2", x2), ("similar", y), ("margin", m), ("value", value), ("grad1", ga),
           ("grad2", gb)])


# ---- PML ContrastiveLoss on all pairs of a labelled batch ----
def ordered_pairs(labels):
    n = len(labels)
    a = torch.tensor([i for i in range(n) for j in range(n) if i != j])
    b = torch.tensor([j for i in range(n) for j in range(n) if i != j])
    return a, b


def avg_non_zero(losses):
    count = (losses > 0).sum()
    return losses.sum() / count if count > 0 else losses.sum() * 0


def pml_contrastive():
    labels = torch.tensor([0, 1, 2, 3] * 4)[torch.randperm(16)]
    x = F.normalize(torch.randn(16, 6), dim=1)
    arrays = [("X", x), ("labels", labels)]
    for case, (pos_margin, neg_margin) in enumerate(((0.0, 1.0), (0.5, 1.2))):
        xl = leaf(x)
        a, b = ordered_pairs(labels)
        same = labels[a] == labels[b]
        dist = pair_distance(xl[a], xl[b])
        pos = torch.relu(dist[same] - pos_margin)
        neg = torch.relu(neg_margin - dist[~same])
        value = avg_non_zero(pos) + avg_non_zero(neg)
        (g,) = grads_of(value, xl)
        arrays += [("pos_margin_%d" % case, pos_margin), ("neg_margin_%d" % case, neg_margin),
                   ("value_%d" % case, value), ("grad_%d" % case, g)]
    write("pair_contrastive_pml.txt",
          "pytorch-metric-learning ContrastiveLoss(pos_margin, neg_margin), default reducer\n"
          "(AvgNonZeroReducer per sub-loss, sub-losses added), on unit rows X (LpDistance\n"
          "normalize_embeddings=True applied already), all ordered pairs from labels.", arrays)


# ---- PML MarginLoss, triplets_per_anchor="all", learn_beta ----
def pml_margin_value(x, labels, margin, nu, beta, class_beta):
    n = len(labels)
    trip = [(i, j, k) for i in range(n) for j in range(n) for k in range(n)
            if j != i and labels[j] == labels[i] and labels[k] != labels[i]]
    ai = torch.tensor([t[0] for t in trip])
    pi = torch.tensor([t[1] for t in trip])
    ni = torch.tensor([t[2] for t in trip])
    b = beta if not class_beta else beta[labels[ai]]
    d_ap = pair_distance(x[ai], x[pi])
    d_an = pair_distance(x[ai], x[ni])
    pos = torch.relu(d_ap - b + margin)
    neg = torch.relu(b - d_an + margin)
    divisor = (pos > 0).sum() + (neg > 0).sum()
    # DivisorReducer: sum / divisor, 0 when the divisor is 0.
    value = (pos + neg).sum() / divisor if divisor > 0 else (pos + neg).sum() * 0
    if class_beta:  # "element" reduction with the same divisor
        value = value + ((b * nu).sum() / divisor if divisor > 0 else 0)
    else:  # "already_reduced"
        value = value + (beta * nu).sum()
    return value


def pml_margin():
    labels = torch.tensor([0, 1, 2, 3] * 4)[torch.randperm(16)]
    x = F.normalize(torch.randn(16, 6), dim=1)
    arrays = [("X", x), ("labels", labels), ("alpha", 0.2)]
    # Case 0: scalar beta 1.2, nu 0.1.  Case 1: per-class betas, nu 0.05.  Case 2: nu 0, beta 1.0.
    cases = ((torch.tensor([1.2]), 0.1, False), (torch.tensor([1.0, 1.1, 1.2, 1.3]), 0.05, True),
             (torch.tensor([1.0]), 0.0, False))
    for case, (beta, nu, class_beta) in enumerate(cases):
        xl, bl = leaf(x), leaf(beta)
        value = pml_margin_value(xl, labels, 0.2, nu, bl, class_beta)
        gx, gb = grads_of(value, xl, bl)
        arrays += [("beta_%d" % case, beta), ("nu_%d" % case, nu), ("value_%d" % case, value),
                   ("grad_%d" % case, gx), ("beta_grad_%d" % case, gb)]
    write("pair_margin_pml.txt",
          "pytorch-metric-learning MarginLoss(margin=alpha, nu, beta, triplets_per_anchor='all',\n"
          "learn_beta=True[, num_classes]) with DivisorReducer, on unit rows X. beta_k has one\n"
          "entry (scalar beta) or one per class.", arrays)


# ---- torch.nn.CosineEmbeddingLoss ----
def cosine_embedding():
    x1 = torch.randn(10, 4)
    x2 = torch.randn(10, 4)
    y = torch.where(torch.rand(10) < 0.5, torch.tensor(1.0), torch.tensor(-1.0))
    arrays = [("X1", x1), ("X2", x2), ("target", y)]
    for case, (margin, reduction) in enumerate(((0.0, "mean"), (0.3, "mean"), (-0.2, "sum"))):
        a, b = leaf(x1), leaf(x2)
        value = F.cosine_embedding_loss(a, b, y, margin=margin, reduction=reduction)
        ga, gb = grads_of(value, a, b)
        arrays += [("margin_%d" % case, margin), ("value_%d" % case, value), ("grad1_%d" % case, ga),
                   ("grad2_%d" % case, gb)]
        if case == 0:
            arrays.append(("terms_0", F.cosine_embedding_loss(x1, x2, y, margin=margin, reduction="none")))
    write("pair_cosine_embedding.txt",
          "torch.nn.functional.cosine_embedding_loss; case 2 uses reduction='sum'.", arrays)


# ---- sentence-transformers CosineSimilarityLoss ----
def cosine_similarity_loss():
    u = torch.randn(10, 6)
    v = torch.randn(10, 6)
    score = torch.rand(10) * 2 - 1
    a, b = leaf(u), leaf(v)
    # CosineSimilarityLoss: MSELoss()(cos_score_transformation(cosine_similarity(u, v)), labels),
    # identity transformation by default.
    value = torch.nn.MSELoss()(torch.cosine_similarity(a, b), score)
    ga, gb = grads_of(value, a, b)
    write("pair_cosine_similarity.txt",
          "sentence-transformers CosineSimilarityLoss: MSE(cosine_similarity(u, v), score).",
          [("U", u), ("V", v), ("score", score), ("value", value), ("grad1", ga), ("grad2", gb)])


if __name__ == "__main__":
    hadsell()
    tfa()
    pml_contrastive()
    pml_margin()
    cosine_embedding()
    cosine_similarity_loss()
