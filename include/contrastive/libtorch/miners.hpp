// libtorch adapter, part 4: the miners (mining/) on tensors, returning int64
// index tensors as pytorch-metric-learning's miners do:
//   triplet miners -> (anchors, positives, negatives)
//   mine_pairs     -> (a1, p, a2, n): positive pairs (a1, p), negative pairs (a2, n)
//   mine_multi_similarity -> (a1, p, a2, n), as PML's MultiSimilarityMiner
// Each tuple goes straight into the index forms of triplet_margin_loss and
// contrastive_loss (losses.hpp). Mining takes no gradient: the embeddings are
// read as they are (a tensor requiring grad included) and nothing is recorded.
// With a reference set (X, labels, R, ref_labels, ...), anchors index X and
// the other indices index R, as in mining/reference_set.hpp.
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/libtorch/tensors.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/mining/mine_triplets.hpp"
#include "contrastive/mining/negative_kind.hpp"
#include "contrastive/mining/pair_miners.hpp"
#include "contrastive/mining/reference_set.hpp"
#include "contrastive/mining/selection_miners.hpp"

#include <torch/types.h>

namespace contrastive {
namespace libtorch {
namespace detail {

// mine(x, labels) on the views of X (and R), for X's dtype.
template <class Mine>
auto mine_batch(const char* function, const torch::Tensor& X, const torch::Tensor& labels, const Mine& mine) {
  require_embedding_tensor(function, "X", X);
  const LabelVector y = integer_vector(function, "labels", labels);
  const torch::Tensor x = X.detach();
  return with_scalar(x, [&](auto scalar) {
    const MatrixView<decltype(scalar)> view(x);
    return to_tensors(mine(view.map(), y));
  });
}

template <class Mine>
auto mine_reference(const char* function, const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& R,
                    const torch::Tensor& ref_labels, const Mine& mine) {
  require_embedding_tensor(function, "X", X);
  require_embedding_tensor(function, "R", R);
  require_same_dtype(function, "X", X, "R", R);
  const LabelVector y = integer_vector(function, "labels", labels);
  const LabelVector ry = integer_vector(function, "ref_labels", ref_labels);
  const torch::Tensor x = X.detach(), r = R.detach();
  return with_scalar(x, [&](auto scalar) {
    const MatrixView<decltype(scalar)> xv(x), rv(r);
    return to_tensors(mine(xv.map(), y, rv.map(), ry));
  });
}

}  // namespace detail

// mine_triplets<Metric>(X, labels, margin, kinds, [MineOptions]): the triplets of the requested kinds.
template <class Metric = Euclidean>
TripletIndices mine_triplets(const torch::Tensor& X, const torch::Tensor& labels, double margin, NegativeKinds kinds,
                             const MineOptions& options = MineOptions{}) {
  return detail::mine_batch("mine_triplets", X, labels, [&](const auto& x, const LabelVector& y) {
    return contrastive::mine_triplets<Metric>(x, y, margin, kinds, options);
  });
}

template <class Metric = Euclidean>
TripletIndices mine_triplets(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& R,
                             const torch::Tensor& ref_labels, double margin, NegativeKinds kinds,
                             const MineOptions& options = MineOptions{},
                             const ReferenceOptions& reference = ReferenceOptions{}) {
  return detail::mine_reference("mine_triplets", X, labels, R, ref_labels,
                                [&](const auto& x, const LabelVector& y, const auto& r, const LabelVector& ry) {
                                  return contrastive::mine_triplets<Metric>(x, y, r, ry, margin, kinds, options,
                                                                            reference);
                                });
}

// mine_batch_hard<Metric>(X, labels): per anchor the farthest positive and the closest negative.
template <class Metric = Euclidean>
TripletIndices mine_batch_hard(const torch::Tensor& X, const torch::Tensor& labels) {
  return detail::mine_batch("mine_batch_hard", X, labels, [](const auto& x, const LabelVector& y) {
    return contrastive::mine_batch_hard<Metric>(x, y);
  });
}

template <class Metric = Euclidean>
TripletIndices mine_batch_hard(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& R,
                               const torch::Tensor& ref_labels, const ReferenceOptions& reference = ReferenceOptions{}) {
  return detail::mine_reference("mine_batch_hard", X, labels, R, ref_labels,
                                [&](const auto& x, const LabelVector& y, const auto& r, const LabelVector& ry) {
                                  return contrastive::mine_batch_hard<Metric>(x, y, r, ry, reference);
                                });
}

// mine_semihard<Metric>(X, labels): per positive pair the closest negative farther than the positive.
template <class Metric = Euclidean>
TripletIndices mine_semihard(const torch::Tensor& X, const torch::Tensor& labels) {
  return detail::mine_batch("mine_semihard", X, labels, [](const auto& x, const LabelVector& y) {
    return contrastive::mine_semihard<Metric>(x, y);
  });
}

template <class Metric = Euclidean>
TripletIndices mine_semihard(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& R,
                             const torch::Tensor& ref_labels, const ReferenceOptions& reference = ReferenceOptions{}) {
  return detail::mine_reference("mine_semihard", X, labels, R, ref_labels,
                                [&](const auto& x, const LabelVector& y, const auto& r, const LabelVector& ry) {
                                  return contrastive::mine_semihard<Metric>(x, y, r, ry, reference);
                                });
}

// mine_easy_hard<Metric>(X, labels, [EasyHardOptions]): PML's BatchEasyHardMiner.
template <class Metric = Euclidean>
TripletIndices mine_easy_hard(const torch::Tensor& X, const torch::Tensor& labels,
                              const EasyHardOptions& options = EasyHardOptions{}) {
  return detail::mine_batch("mine_easy_hard", X, labels, [&](const auto& x, const LabelVector& y) {
    return contrastive::mine_easy_hard<Metric>(x, y, options);
  });
}

template <class Metric = Euclidean>
TripletIndices mine_easy_hard(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& R,
                              const torch::Tensor& ref_labels, const EasyHardOptions& options = EasyHardOptions{},
                              const ReferenceOptions& reference = ReferenceOptions{}) {
  return detail::mine_reference("mine_easy_hard", X, labels, R, ref_labels,
                                [&](const auto& x, const LabelVector& y, const auto& r, const LabelVector& ry) {
                                  return contrastive::mine_easy_hard<Metric>(x, y, r, ry, options, reference);
                                });
}

// mine_pairs<Metric>(X, labels, pos_margin, neg_margin): PML's PairMarginMiner,
// positive pairs farther than pos_margin, negative pairs closer than neg_margin.
template <class Metric = Euclidean>
PairIndices mine_pairs(const torch::Tensor& X, const torch::Tensor& labels, double pos_margin, double neg_margin) {
  return detail::mine_batch("mine_pairs", X, labels, [&](const auto& x, const LabelVector& y) {
    return contrastive::mine_pairs<Metric>(x, y, pos_margin, neg_margin);
  });
}

template <class Metric = Euclidean>
PairIndices mine_pairs(const torch::Tensor& X, const torch::Tensor& labels, const torch::Tensor& R,
                       const torch::Tensor& ref_labels, double pos_margin, double neg_margin,
                       const ReferenceOptions& reference = ReferenceOptions{}) {
  return detail::mine_reference("mine_pairs", X, labels, R, ref_labels,
                                [&](const auto& x, const LabelVector& y, const auto& r, const LabelVector& ry) {
                                  return contrastive::mine_pairs<Metric>(x, y, r, ry, pos_margin, neg_margin,
                                                                         reference);
                                });
}

// mine_multi_similarity<Metric>(X, labels, epsilon = 0.1): PML's MultiSimilarityMiner, (a1, p, a2, n).
template <class Metric = Cosine>
PairIndices mine_multi_similarity(const torch::Tensor& X, const torch::Tensor& labels, double epsilon = 0.1) {
  return detail::mine_batch("mine_multi_similarity", X, labels, [&](const auto& x, const LabelVector& y) {
    return contrastive::mine_multi_similarity<Metric>(x, y, epsilon);
  });
}

}  // namespace libtorch
}  // namespace contrastive
