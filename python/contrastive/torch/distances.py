"""PML's distances as metric names of the library (metrics/any_metric.hpp).

LpDistance(normalize_embeddings=True, p=2, power=1)   -> normalized_euclidean
    power=2                                            -> normalized_squared_euclidean
    normalize_embeddings=False                         -> euclidean / squared_euclidean
CosineSimilarity()                                     -> cosine
DotProductSimilarity(normalize_embeddings=True)        -> normalized_dot_product
    normalize_embeddings=False                         -> dot_product

Calling a distance returns its matrix (torch ops, as PML) for inspection;
the losses and miners use only its metric name.
"""
import torch


class BaseDistance(torch.nn.Module):
    def __init__(self, normalize_embeddings=True, p=2, power=1, is_inverted=False):
        super().__init__()
        self.normalize_embeddings = normalize_embeddings
        self.p = p
        self.power = power
        self.is_inverted = is_inverted

    def maybe_normalize(self, x):
        return torch.nn.functional.normalize(x, p=2, dim=1) if self.normalize_embeddings else x

    def forward(self, query_emb, ref_emb=None):
        q = self.maybe_normalize(query_emb)
        r = q if ref_emb is None else self.maybe_normalize(ref_emb)
        mat = self.compute_mat(q, r)
        return mat**self.power if self.power != 1 else mat


class LpDistance(BaseDistance):
    def __init__(self, normalize_embeddings=True, p=2, power=1):
        super().__init__(normalize_embeddings=normalize_embeddings, p=p, power=power, is_inverted=False)

    def compute_mat(self, q, r):
        return torch.cdist(q, r, p=self.p)


class DotProductSimilarity(BaseDistance):
    def __init__(self, normalize_embeddings=True, power=1):
        super().__init__(normalize_embeddings=normalize_embeddings, power=power, is_inverted=True)

    def compute_mat(self, q, r):
        return q @ r.t()


class CosineSimilarity(DotProductSimilarity):
    def __init__(self, power=1):
        super().__init__(normalize_embeddings=True, power=power)


def metric_name(distance, owner):
    """The library metric of a distance: ours, or PML's (by class name and attributes)."""
    kind = type(distance).__name__
    if kind not in ("LpDistance", "CosineSimilarity", "DotProductSimilarity"):
        raise ValueError(f"{owner}: argument 'distance' is a {kind}; supported: LpDistance, "
                         "CosineSimilarity, DotProductSimilarity")
    power = getattr(distance, "power", 1)
    normalize = bool(getattr(distance, "normalize_embeddings", True))
    prefix = "normalized_" if normalize else ""
    if kind == "LpDistance":
        if getattr(distance, "p", 2) != 2:
            raise ValueError(f"{owner}: argument 'distance': LpDistance(p={distance.p}) is not supported, only p=2")
        if power == 1:
            return prefix + "euclidean"
        if power == 2:
            return prefix + "squared_euclidean"
        raise ValueError(f"{owner}: argument 'distance': LpDistance(power={power}) is not supported, only 1 or 2")
    if power != 1:
        raise ValueError(f"{owner}: argument 'distance': {kind}(power={power}) is not supported, only power=1")
    if kind == "CosineSimilarity":
        return "cosine"
    return prefix + "dot_product"


def is_inverted(metric):
    """Similarities (PML's is_inverted): the library measures them as d = 1 - cos or d = -x.y."""
    return metric.endswith("cosine") or metric.endswith("dot_product")


def to_library_margin(metric, margin):
    """A PML margin on a similarity s as the library's margin on its distance d."""
    if metric.endswith("cosine"):
        return 1.0 - margin  # d = 1 - s
    if metric.endswith("dot_product"):
        return -margin  # d = -s
    return margin
