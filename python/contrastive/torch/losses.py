"""pytorch-metric-learning's losses, computed by the contrastive library.

Same class names, arguments and defaults as PML 2.8.1 (docs/python.md):
forward(embeddings, labels=None, indices_tuple=None). The default reducer is
each loss's PML default; `reducer`, `embedding_regularizer`, `ref_emb` and
`ref_labels` are not supported and raise ValueError when given (except
VICRegLoss's `ref_emb`, its second view, as in PML).
"""
import functools
import math

import torch

from .. import _contrastive as _lib
from . import distances as _distances
from ._autograd import embeddings_array, integer_array, run


def _reject(owner, **given):
    for name, value in given.items():
        if value is not None:
            raise ValueError(f"{owner}: argument '{name}' is not supported by contrastive.torch")


def _pairs_from(owner, indices_tuple):
    """PML's convert_to_pairs: (a, p, n) -> (a, p, a, n); (a1, p, a2, n) as given."""
    if len(indices_tuple) == 3:
        a, p, n = indices_tuple
        return a, p, a, n
    if len(indices_tuple) == 4:
        return tuple(indices_tuple)
    raise ValueError(f"{owner}: argument 'indices_tuple' must have 3 (a, p, n) or 4 (a1, p, a2, n) entries")


def _triplets_from(owner, indices_tuple):
    """PML's convert_to_triplets for a given tuple: pairs sharing an anchor make triplets."""
    if len(indices_tuple) == 3:
        return tuple(indices_tuple)
    if len(indices_tuple) == 4:
        a1, p, a2, n = (torch.as_tensor(t) for t in indices_tuple)
        p_idx, n_idx = torch.where(a1.unsqueeze(1) == a2)
        return a1[p_idx], p[p_idx], n[n_idx]
    raise ValueError(f"{owner}: argument 'indices_tuple' must have 3 (a, p, n) or 4 (a1, p, a2, n) entries")


class _Loss(torch.nn.Module):
    default_distance = _distances.LpDistance

    def __init__(self, distance=None, reducer=None, embedding_regularizer=None, **kwargs):
        super().__init__()
        name = type(self).__name__
        _reject(name, reducer=reducer, embedding_regularizer=embedding_regularizer)
        for key in kwargs:
            raise ValueError(f"{name}: argument '{key}' is not supported by contrastive.torch")
        self.distance = self.default_distance() if distance is None else distance
        self.metric = _distances.metric_name(self.distance, name)

    def forward(self, embeddings, labels=None, indices_tuple=None, ref_emb=None, ref_labels=None):
        name = type(self).__name__
        _reject(name, ref_emb=ref_emb, ref_labels=ref_labels)
        if labels is None and indices_tuple is None:
            raise ValueError(f"{name}: labels or indices_tuple is required")
        x = embeddings_array(name, embeddings)
        return self._loss(embeddings, x, labels, indices_tuple)

    def _labels(self, labels):
        if labels is None:
            raise ValueError(f"{type(self).__name__}: argument 'labels' is required without indices_tuple")
        return integer_array(type(self).__name__, "labels", labels)

    def _no_indices(self, indices_tuple):
        if indices_tuple is not None:
            raise ValueError(f"{type(self).__name__}: argument 'indices_tuple' is not supported by contrastive.torch "
                             "for this loss; pass labels")


def _two(result):
    value, grad = result
    return value, grad, None


class TripletMarginLoss(_Loss):
    """PML TripletMarginLoss: [d_ap - d_an + margin]+ over all triplets (or the given ones), AvgNonZeroReducer;
    smooth_loss=True: softplus(d_ap - d_an + margin)."""

    def __init__(self, margin=0.05, swap=False, smooth_loss=False, triplets_per_anchor="all", **kwargs):
        super().__init__(**kwargs)
        if swap:
            raise ValueError("TripletMarginLoss: argument 'swap' must be False: swap=True is not supported "
                             "by contrastive.torch")
        if triplets_per_anchor != "all":
            raise ValueError("TripletMarginLoss: argument 'triplets_per_anchor' must be \"all\" (PML samples "
                             "the others at random)")
        self.margin = margin
        self.swap = swap
        self.smooth_loss = smooth_loss
        self.triplets_per_anchor = triplets_per_anchor

    def _loss(self, embeddings, x, labels, indices_tuple):
        if indices_tuple is None:
            y = self._labels(labels)
            return run(lambda g: _two(_lib.batch_all_triplet_loss(x, y, self.metric, self.margin, self.smooth_loss,
                                                                  g)), embeddings)
        a, p, n = _triplets_from("TripletMarginLoss", indices_tuple)
        a, p, n = (integer_array("TripletMarginLoss", "indices_tuple", t) for t in (a, p, n))
        return run(lambda g: _two(_lib.triplet_margin_loss(x, a, p, n, self.metric, self.margin,
                                                           self.smooth_loss, g)), embeddings)


class ContrastiveLoss(_Loss):
    """PML ContrastiveLoss: [d - pos_margin]+ over positive pairs plus [neg_margin - d]+ over negative
    pairs, each averaged over its non-zero terms. On a similarity, PML's [pos_margin - s]+ and
    [s - neg_margin]+."""

    def __init__(self, pos_margin=0, neg_margin=1, **kwargs):
        super().__init__(**kwargs)
        self.pos_margin = pos_margin
        self.neg_margin = neg_margin
        pm = _distances.to_library_margin(self.metric, pos_margin)
        nm = _distances.to_library_margin(self.metric, neg_margin)
        if pm < 0 or nm < 0 or pm > nm:
            raise ValueError(
                f"ContrastiveLoss: arguments 'pos_margin' ({pos_margin}) and 'neg_margin' ({neg_margin}) with "
                f"{type(self.distance).__name__} are the library's distance margins {pm} and {nm}, which must be "
                "0 <= pos <= neg (for CosineSimilarity: pos_margin >= neg_margin, both <= 1)")
        self._margins = (pm, nm)

    def _loss(self, embeddings, x, labels, indices_tuple):
        pm, nm = self._margins
        if indices_tuple is None:
            y = self._labels(labels)
            return run(lambda g: _two(_lib.batch_contrastive_loss(x, y, self.metric, pm, nm, g)), embeddings)
        a1, p, a2, n = (integer_array("ContrastiveLoss", "indices_tuple", t)
                        for t in _pairs_from("ContrastiveLoss", indices_tuple))
        return run(lambda g: _two(_lib.contrastive_loss(x, a1, p, a2, n, self.metric, pm, nm, g)), embeddings)


class MarginLoss(_Loss):
    """PML MarginLoss (triplets_per_anchor="all", DivisorReducer); with learn_beta, self.beta is a
    torch.nn.Parameter that receives dL/dbeta (one per class with num_classes)."""

    def __init__(self, margin=0.2, nu=0, beta=1.2, triplets_per_anchor="all", learn_beta=False,
                 num_classes=None, **kwargs):
        super().__init__(**kwargs)
        if triplets_per_anchor != "all":
            raise ValueError("MarginLoss: argument 'triplets_per_anchor' must be \"all\"")
        if _distances.is_inverted(self.metric):
            raise ValueError("MarginLoss: argument 'distance' must be an LpDistance in contrastive.torch "
                             f"(got {type(self.distance).__name__})")
        self.margin = margin
        self.nu = nu
        self.learn_beta = learn_beta
        self.triplets_per_anchor = triplets_per_anchor
        b = torch.tensor([float(beta)]) if num_classes is None else torch.ones(num_classes) * beta
        self.beta = torch.nn.Parameter(b) if learn_beta else b

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        beta = self.beta.detach().cpu().double().numpy().reshape(-1)
        per_class = beta.shape[0] > 1
        nu = float(self.nu) if self.learn_beta else 0.0  # PML's regulariser exists only with learn_beta
        parameter = self.beta if self.learn_beta else None
        return run(lambda g: _lib.margin_loss(x, y, self.metric, self.margin, beta, per_class, nu, g),
                   embeddings, parameter)


class NTXentLoss(_Loss):
    """PML NTXentLoss on labels: one term per ordered positive pair, MeanReducer."""
    default_distance = _distances.CosineSimilarity

    def __init__(self, temperature=0.07, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.ntxent_loss(x, y, self.temperature, self.metric, g)), embeddings)


class SupConLoss(_Loss):
    """PML SupConLoss, AvgNonZeroReducer."""
    default_distance = _distances.CosineSimilarity

    def __init__(self, temperature=0.1, **kwargs):
        super().__init__(**kwargs)
        self.temperature = temperature

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.supcon_loss(x, y, self.temperature, self.metric, g)), embeddings)


class MultiSimilarityLoss(_Loss):
    """PML MultiSimilarityLoss, MeanReducer over all rows; labels or indices_tuple."""
    default_distance = _distances.CosineSimilarity

    def __init__(self, alpha=2, beta=50, base=0.5, **kwargs):
        super().__init__(**kwargs)
        self.alpha, self.beta, self.base = alpha, beta, base

    def _loss(self, embeddings, x, labels, indices_tuple):
        args = (self.metric, self.alpha, self.beta, self.base)
        if indices_tuple is None:
            y = self._labels(labels)
            return run(lambda g: _two(_lib.multi_similarity_loss(x, y, *args, g)), embeddings)
        a1, p, a2, n = (integer_array("MultiSimilarityLoss", "indices_tuple", t)
                        for t in _pairs_from("MultiSimilarityLoss", indices_tuple))
        return run(lambda g: _two(_lib.multi_similarity_loss_pairs(x, a1, p, a2, n, *args, g)), embeddings)


class CircleLoss(_Loss):
    """PML CircleLoss (CosineSimilarity only), AvgNonZeroReducer; labels or indices_tuple."""
    default_distance = _distances.CosineSimilarity

    def __init__(self, m=0.4, gamma=80, **kwargs):
        super().__init__(**kwargs)
        if self.metric != "cosine":
            raise ValueError("CircleLoss: argument 'distance' must be CosineSimilarity (as PML asserts)")
        self.m, self.gamma = m, gamma

    def _loss(self, embeddings, x, labels, indices_tuple):
        if indices_tuple is None:
            y = self._labels(labels)
            return run(lambda g: _two(_lib.circle_loss(x, y, self.m, self.gamma, g)), embeddings)
        a1, p, a2, n = (integer_array("CircleLoss", "indices_tuple", t)
                        for t in _pairs_from("CircleLoss", indices_tuple))
        return run(lambda g: _two(_lib.circle_loss_pairs(x, a1, p, a2, n, self.m, self.gamma, g)), embeddings)


class LiftedStructureLoss(_Loss):
    """PML LiftedStructureLoss, MeanReducer over the ordered positive pairs; labels only. The margins
    are PML's, in its distance's units (similarities for CosineSimilarity / DotProductSimilarity)."""

    def __init__(self, neg_margin=1, pos_margin=0, **kwargs):
        super().__init__(**kwargs)
        self.neg_margin, self.pos_margin = neg_margin, pos_margin

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.lifted_structure_loss(x, y, self.metric, self.neg_margin,
                                                             self.pos_margin, g)), embeddings)


class GeneralizedLiftedStructureLoss(_Loss):
    """PML GeneralizedLiftedStructureLoss, MeanReducer over all rows; labels only. Margins as
    LiftedStructureLoss."""

    def __init__(self, neg_margin=1, pos_margin=0, **kwargs):
        super().__init__(**kwargs)
        self.neg_margin, self.pos_margin = neg_margin, pos_margin

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.generalized_lifted_structure_loss(x, y, self.metric, self.neg_margin,
                                                                         self.pos_margin, g)), embeddings)


class NCALoss(_Loss):
    """PML NCALoss (default distance LpDistance(power=2)), MeanReducer over the rows with a
    same-class neighbour; labels only (PML's miner weights are not supported)."""

    default_distance = functools.partial(_distances.LpDistance, power=2)

    def __init__(self, softmax_scale=1, **kwargs):
        super().__init__(**kwargs)
        self.softmax_scale = softmax_scale

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.nca_loss(x, y, self.metric, self.softmax_scale, g)), embeddings)


class NPairsLoss(_Loss):
    """PML NPairsLoss (default distance DotProductSimilarity()): one pair per class with two or more
    rows (its two lowest row indices), MeanReducer; labels only."""
    default_distance = _distances.DotProductSimilarity

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.npairs_loss(x, y, self.metric, g)), embeddings)


def _open_degrees(owner, name, value):
    """An angle in degrees strictly inside (0, 90), as the library requires (PML checks none)."""
    if not (0 < value < 90):
        raise ValueError(f"{owner}: argument '{name}' ({value}) must be in (0, 90) degrees in contrastive.torch")


class TupletMarginLoss(_Loss):
    """PML TupletMarginLoss (CosineSimilarity only, as PML asserts; margin in degrees), MeanReducer over
    the ordered positive pairs; labels only (PML's mined pairs are not supported)."""
    default_distance = _distances.CosineSimilarity

    def __init__(self, margin=5.73, scale=64, **kwargs):
        super().__init__(**kwargs)
        if type(self.distance).__name__ != "CosineSimilarity" or self.metric != "cosine":
            raise ValueError("TupletMarginLoss: argument 'distance' must be CosineSimilarity (as PML asserts), "
                             f"got {type(self.distance).__name__}")
        _open_degrees("TupletMarginLoss", "margin", margin)
        if not scale > 0:
            raise ValueError(f"TupletMarginLoss: argument 'scale' ({scale}) must be > 0")
        self.margin, self.scale = margin, scale

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        return run(lambda g: _two(_lib.tuplet_margin_loss(x, y, self.margin, self.scale, g)), embeddings)


class AngularLoss(_Loss):
    """PML AngularLoss (LpDistance(p=2, power=1, normalize_embeddings=True) only, as PML asserts; alpha in
    degrees): anchors and positives normalised, negatives raw, MeanReducer over the ordered positive pairs;
    labels only (PML's mined pairs are not supported)."""

    def __init__(self, alpha=40, **kwargs):
        super().__init__(**kwargs)
        if type(self.distance).__name__ != "LpDistance" or self.metric != "normalized_euclidean":
            raise ValueError("AngularLoss: argument 'distance' must be LpDistance(p=2, power=1, "
                             f"normalize_embeddings=True) (as PML asserts), got {type(self.distance).__name__}")
        _open_degrees("AngularLoss", "alpha", alpha)
        self.alpha = alpha

    def _loss(self, embeddings, x, labels, indices_tuple):
        self._no_indices(indices_tuple)
        y = self._labels(labels)
        # The library's Euclidean: it normalises the anchors and positives itself, the negatives stay raw.
        return run(lambda g: _two(_lib.angular_loss(x, y, self.alpha, g)), embeddings)


class VICRegLoss(torch.nn.Module):
    """PML VICRegLoss: forward(embeddings, ref_emb=...) on two views, row i of one paired with row i of
    the other; ref_emb None is PML's ref_emb = embeddings. No labels, indices_tuple or ref_labels (PML
    refuses them too), no distance or regulariser (as PML), no reducer (contrastive.torch)."""

    def __init__(self, invariance_lambda=25, variance_mu=25, covariance_v=1, eps=1e-4, **kwargs):
        super().__init__()
        for key in kwargs:
            if key in ("distance", "embedding_regularizer", "reducer"):
                raise ValueError(f"VICRegLoss: argument '{key}' is not supported (PML's VICRegLoss refuses "
                                 "a distance and a regulariser; contrastive.torch has no reducers)")
            raise ValueError(f"VICRegLoss: argument '{key}' is not supported by contrastive.torch")
        for name, value in (("invariance_lambda", invariance_lambda), ("variance_mu", variance_mu),
                            ("covariance_v", covariance_v)):
            if not value >= 0:
                raise ValueError(f"VICRegLoss: argument '{name}' ({value}) must be >= 0")
        if not eps > 0:
            raise ValueError(f"VICRegLoss: argument 'eps' ({eps}) must be > 0")
        self.invariance_lambda, self.variance_mu = invariance_lambda, variance_mu
        self.covariance_v, self.eps = covariance_v, eps

    def forward(self, embeddings, labels=None, indices_tuple=None, ref_emb=None, ref_labels=None):
        _reject("VICRegLoss", labels=labels, indices_tuple=indices_tuple, ref_labels=ref_labels)
        x = embeddings_array("VICRegLoss", embeddings)
        args = (self.invariance_lambda, self.variance_mu, self.covariance_v, self.eps)
        if ref_emb is None:  # PML's ref_emb = embeddings: both views are X, dL/dX the sum of the two
            def call(g):
                value, ga, gb = _lib.vicreg_loss(x, x, *args, g)
                return value, None if ga is None else ga + gb, None
            return run(call, embeddings)
        r = embeddings_array("VICRegLoss", ref_emb)
        if ref_emb.dtype != embeddings.dtype or ref_emb.shape != embeddings.shape:
            raise ValueError(f"VICRegLoss: argument 'ref_emb' must have the embeddings' shape and dtype, got "
                             f"{tuple(ref_emb.shape)} {ref_emb.dtype} for {tuple(embeddings.shape)} {embeddings.dtype}")
        # ref_emb is the autograd Function's second input (its "parameter" slot): it gets dL/dref_emb.
        return run(lambda g: _lib.vicreg_loss(x, r, *args, g), embeddings, ref_emb)


class _ClassWeightLoss(torch.nn.Module):
    """PML's class-weight losses: the module owns its weight parameter under PML's name and shape
    (`W`, D x c, for the softmax family; `proxies`, c x D, for the proxy losses), initialised by
    weight_init_func (PML's default when None); forward(embeddings, labels) returns the loss with
    gradients to the embeddings and to the weight. The library takes W as c x D (docs/class_losses.md)."""

    default_distance = _distances.CosineSimilarity
    weight_name = "W"  # D x c; "proxies": c x D

    def __init__(self, num_classes, embedding_size, distance=None, reducer=None, embedding_regularizer=None,
                 weight_regularizer=None, weight_reg_weight=1, weight_init_func=None, _rows_per_class=1, **kwargs):
        super().__init__()
        name = type(self).__name__
        _reject(name, reducer=reducer, embedding_regularizer=embedding_regularizer,
                weight_regularizer=weight_regularizer)
        for key in kwargs:
            raise ValueError(f"{name}: argument '{key}' is not supported by contrastive.torch")
        default = self.default_distance()
        if distance is not None and _distances.metric_name(distance, name) != _distances.metric_name(default, name):
            raise ValueError(f"{name}: argument 'distance' must be PML's default {type(default).__name__}(); "
                             f"got {type(distance).__name__}, which contrastive.torch does not support here")
        self.distance = default if distance is None else distance
        self.num_classes = num_classes
        self.weight_reg_weight = weight_reg_weight
        self.weight_init_func = self.default_weight_init_func() if weight_init_func is None else weight_init_func
        rows = num_classes * _rows_per_class
        shape = (embedding_size, rows) if self.weight_name == "W" else (rows, embedding_size)
        weight = torch.nn.Parameter(torch.Tensor(*shape))
        self.weight_init_func(weight)
        setattr(self, self.weight_name, weight)

    @staticmethod
    def default_weight_init_func():
        return torch.nn.init.normal_

    def forward(self, embeddings, labels=None, indices_tuple=None, ref_emb=None, ref_labels=None):
        name = type(self).__name__
        _reject(name, indices_tuple=indices_tuple, ref_emb=ref_emb, ref_labels=ref_labels)
        if labels is None:
            raise ValueError(f"{name}: argument 'labels' is required")
        x = embeddings_array(name, embeddings)
        y = integer_array(name, "labels", labels)
        weight = getattr(self, self.weight_name)
        size = weight.shape[0] if self.weight_name == "W" else weight.shape[1]
        if x.shape[1] != size:
            raise ValueError(f"{name}: argument 'embeddings' has {x.shape[1]} columns but {self.weight_name} is "
                             f"{tuple(weight.shape)}: embedding_size {size}")
        w = self._library_weight()
        transposed = self.weight_name == "W"

        def call(need_grad):
            value, gx, gw = self._call(x, y, w, need_grad)
            return value, gx, None if gw is None else (gw.T if transposed else gw)
        return run(call, embeddings, weight)

    def _library_weight(self):
        """The weight as the library takes it: c x D (PML's D x c W transposed), a numpy view."""
        weight = getattr(self, self.weight_name).detach().cpu()
        return (weight.t() if self.weight_name == "W" else weight).numpy()


class ArcFaceLoss(_ClassWeightLoss):
    """PML ArcFaceLoss (margin in degrees; self.margin holds radians, as PML's), MeanReducer."""

    def __init__(self, num_classes, embedding_size, margin=28.6, scale=64, **kwargs):
        super().__init__(num_classes, embedding_size, **kwargs)
        self.margin_degrees = float(margin)
        self.margin = math.radians(margin)
        self.scale = scale

    def _call(self, x, y, w, need_grad):
        return _lib.arcface_loss(x, y, w, self.margin_degrees, self.scale, need_grad)


class CosFaceLoss(_ClassWeightLoss):
    """PML CosFaceLoss (additive cosine margin), MeanReducer."""

    def __init__(self, num_classes, embedding_size, margin=0.35, scale=64, **kwargs):
        super().__init__(num_classes, embedding_size, **kwargs)
        self.margin, self.scale = margin, scale

    def _call(self, x, y, w, need_grad):
        return _lib.cosface_loss(x, y, w, self.margin, self.scale, need_grad)


class SphereFaceLoss(_ClassWeightLoss):
    """PML SphereFaceLoss (integer multiplicative margin, int(margin) as PML), MeanReducer."""

    def __init__(self, num_classes, embedding_size, margin=4, scale=1, **kwargs):
        super().__init__(num_classes, embedding_size, **kwargs)
        self.margin, self.scale = int(margin), scale

    def _call(self, x, y, w, need_grad):
        return _lib.sphereface_loss(x, y, w, self.margin, self.scale, need_grad)


class SubCenterArcFaceLoss(_ClassWeightLoss):
    """PML SubCenterArcFaceLoss: W is D x (num_classes * sub_centers), class c's sub-centres in
    columns cK .. cK + K - 1; get_outliers as PML's."""

    def __init__(self, num_classes, embedding_size, margin=28.6, scale=64, sub_centers=3, **kwargs):
        if not (isinstance(sub_centers, int) and sub_centers >= 1):
            raise ValueError(f"SubCenterArcFaceLoss: argument 'sub_centers' ({sub_centers}) must be an integer >= 1")
        super().__init__(num_classes, embedding_size, _rows_per_class=sub_centers, **kwargs)
        self.sub_centers = sub_centers
        self.margin_degrees = float(margin)
        self.margin = math.radians(margin)
        self.scale = scale

    def _call(self, x, y, w, need_grad):
        return _lib.subcenter_arcface_loss(x, y, w, self.margin_degrees, self.scale, self.sub_centers, need_grad)

    def get_outliers(self, embeddings, labels, threshold=75, return_dominant_centers=True):
        """PML's (outliers, dominant_centers): outliers the int64 rows, class by class, whose cosine to
        their class's dominant sub-centre is below cos(threshold degrees); dominant_centers D x c, column
        c the dominant sub-centre of class c (zeros for a class without samples, which PML leaves
        uninitialised), in the embeddings' dtype. PML returns the pair whatever return_dominant_centers."""
        name = "SubCenterArcFaceLoss.get_outliers"
        x = embeddings_array(name, embeddings)
        y = integer_array(name, "labels", labels)
        outliers, dominant, _ = _lib.subcenter_arcface_outliers(
            x, y, self._library_weight(), self.margin_degrees, self.scale, self.sub_centers, float(threshold))
        with torch.no_grad():
            W = self.W.detach().to(device=embeddings.device, dtype=embeddings.dtype)
            centers = torch.zeros(W.shape[0], self.num_classes, dtype=embeddings.dtype, device=embeddings.device)
            for c, s in enumerate(dominant.tolist()):
                if s >= 0:
                    centers[:, c] = W[:, c * self.sub_centers + s]
        return torch.from_numpy(outliers).to(embeddings.device), centers


class NormalizedSoftmaxLoss(_ClassWeightLoss):
    """PML NormalizedSoftmaxLoss (default distance DotProductSimilarity(), unit rows and columns), MeanReducer."""

    default_distance = _distances.DotProductSimilarity

    def __init__(self, num_classes, embedding_size, temperature=0.05, **kwargs):
        super().__init__(num_classes, embedding_size, **kwargs)
        self.temperature = temperature

    def _call(self, x, y, w, need_grad):
        return _lib.normalized_softmax_loss(x, y, w, self.temperature, need_grad)


class ProxyNCALoss(_ClassWeightLoss):
    """PML ProxyNCALoss (default distance LpDistance(power=2), normalised): self.proxies is c x D."""

    default_distance = functools.partial(_distances.LpDistance, power=2)
    weight_name = "proxies"

    def __init__(self, num_classes, embedding_size, softmax_scale=1, **kwargs):
        super().__init__(num_classes, embedding_size, **kwargs)
        self.softmax_scale = softmax_scale
        self.proxy_labels = torch.arange(num_classes)

    def _call(self, x, y, w, need_grad):
        return _lib.proxy_nca_loss(x, y, w, self.softmax_scale, need_grad)


class ProxyAnchorLoss(_ClassWeightLoss):
    """PML ProxyAnchorLoss (DivisorReducer): self.proxies is c x D, initialised by
    kaiming_normal_(mode="fan_out") as PML's."""

    weight_name = "proxies"

    def __init__(self, num_classes, embedding_size, margin=0.1, alpha=32, **kwargs):
        super().__init__(num_classes, embedding_size, **kwargs)
        self.margin, self.alpha = margin, alpha

    @staticmethod
    def default_weight_init_func():
        return functools.partial(torch.nn.init.kaiming_normal_, mode="fan_out")

    def _call(self, x, y, w, need_grad):
        return _lib.proxy_anchor_loss(x, y, w, self.margin, self.alpha, need_grad)


__all__ = ["TripletMarginLoss", "ContrastiveLoss", "MarginLoss", "NTXentLoss", "SupConLoss",
           "MultiSimilarityLoss", "CircleLoss", "LiftedStructureLoss", "GeneralizedLiftedStructureLoss",
           "NCALoss", "NPairsLoss", "TupletMarginLoss", "AngularLoss", "VICRegLoss", "ArcFaceLoss",
           "CosFaceLoss", "SphereFaceLoss", "SubCenterArcFaceLoss", "NormalizedSoftmaxLoss", "ProxyNCALoss",
           "ProxyAnchorLoss"]
