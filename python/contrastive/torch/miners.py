"""pytorch-metric-learning's miners, computed by the contrastive library.

forward(embeddings, labels) returns PML's index tuples as int64 tensors on
the embeddings' device: (anchors, positives, negatives) for the triplet
miners, (a1, p, a2, n) for the pair miners. The same sets as PML (the order
may differ: row-major here). ref_emb / ref_labels are not supported.
"""
import torch

from .. import _contrastive as _lib
from . import distances as _distances
from ._autograd import embeddings_array, integer_array


class _Miner(torch.nn.Module):
    default_distance = _distances.LpDistance

    def __init__(self, distance=None, **kwargs):
        super().__init__()
        name = type(self).__name__
        for key in kwargs:
            raise ValueError(f"{name}: argument '{key}' is not supported by contrastive.torch")
        self.distance = self.default_distance() if distance is None else distance
        self.metric = _distances.metric_name(self.distance, name)

    def forward(self, embeddings, labels, ref_emb=None, ref_labels=None):
        name = type(self).__name__
        if ref_emb is not None or ref_labels is not None:
            raise ValueError(f"{name}: arguments 'ref_emb' / 'ref_labels' are not supported by contrastive.torch")
        x = embeddings_array(name, embeddings)
        y = integer_array(name, "labels", labels)
        return tuple(torch.from_numpy(t).to(embeddings.device) for t in self._mine(x, y))


class TripletMarginMiner(_Miner):
    def __init__(self, margin=0.2, type_of_triplets="all", **kwargs):
        super().__init__(**kwargs)
        if type_of_triplets not in ("all", "hard", "semihard", "easy"):
            raise ValueError("TripletMarginMiner: argument 'type_of_triplets' must be all, hard, semihard or easy")
        self.margin, self.type_of_triplets = margin, type_of_triplets

    def _mine(self, x, y):
        return _lib.mine_triplets(x, y, self.metric, self.margin, self.type_of_triplets)


class BatchHardMiner(_Miner):
    def _mine(self, x, y):
        return _lib.mine_batch_hard(x, y, self.metric)


class PairMarginMiner(_Miner):
    """Positive pairs farther than pos_margin, negative pairs closer than neg_margin (on a
    similarity: positive pairs below pos_margin, negative pairs above neg_margin)."""

    def __init__(self, pos_margin=0.2, neg_margin=0.8, **kwargs):
        super().__init__(**kwargs)
        self.pos_margin, self.neg_margin = pos_margin, neg_margin

    def _mine(self, x, y):
        pm = _distances.to_library_margin(self.metric, self.pos_margin)
        nm = _distances.to_library_margin(self.metric, self.neg_margin)
        return _lib.mine_pairs(x, y, self.metric, pm, nm)


class MultiSimilarityMiner(_Miner):
    default_distance = _distances.CosineSimilarity

    def __init__(self, epsilon=0.1, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def _mine(self, x, y):
        return _lib.mine_multi_similarity(x, y, self.metric, self.epsilon)


class BatchEasyHardMiner(_Miner):
    """PML BatchEasyHardMiner for the strategies easy, semihard, hard (not "all"): one triplet per
    anchor, returned as PML does, (a, p, a, n). allowed_pos_range / allowed_neg_range: (min, max),
    inclusive, in the distance's units (similarities for CosineSimilarity / DotProductSimilarity)."""

    def __init__(self, pos_strategy="easy", neg_strategy="semihard", allowed_pos_range=None,
                 allowed_neg_range=None, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("pos_strategy", pos_strategy), ("neg_strategy", neg_strategy)):
            if value == "all":
                raise ValueError(f"BatchEasyHardMiner: argument '{name}' = \"all\" is not supported by "
                                 "contrastive.torch (only easy, semihard, hard)")
            if value not in ("easy", "semihard", "hard"):
                raise ValueError(f"BatchEasyHardMiner: argument '{name}' must be easy, semihard or hard")
        if pos_strategy == neg_strategy == "semihard":
            raise ValueError("BatchEasyHardMiner: arguments 'pos_strategy' and 'neg_strategy' cannot both be "
                             "\"semihard\" (as PML)")
        self.pos_strategy, self.neg_strategy = pos_strategy, neg_strategy
        self.allowed_pos_range, self.allowed_neg_range = allowed_pos_range, allowed_neg_range
        self._ranges = (self._library_range("allowed_pos_range", allowed_pos_range)
                        + self._library_range("allowed_neg_range", allowed_neg_range))

    def _library_range(self, name, value):
        if value is None:
            return (-float("inf"), float("inf"))
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"BatchEasyHardMiner: argument '{name}' must be None or (min, max)") from None
        if not lo <= hi:
            raise ValueError(f"BatchEasyHardMiner: argument '{name}' must have min <= max, got ({lo}, {hi})")
        a, b = _distances.to_library_margin(self.metric, lo), _distances.to_library_margin(self.metric, hi)
        return (min(a, b), max(a, b))  # a similarity's range reverses as the library's distance

    def _mine(self, x, y):
        a, p, n = _lib.mine_easy_hard(x, y, self.metric, self.pos_strategy, self.neg_strategy, *self._ranges)
        return a, p, a.copy(), n


__all__ = ["TripletMarginMiner", "BatchHardMiner", "PairMarginMiner", "MultiSimilarityMiner",
           "BatchEasyHardMiner"]
