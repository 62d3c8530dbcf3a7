// Pair miner: the positive pairs that are too far and the negative pairs that
// are too close (pytorch-metric-learning's PairMarginMiner).
//
//   mine_pairs<Metric>(X, labels, pos_margin, neg_margin)
//   mine_pairs<Metric>(X, labels, R, ref_labels, pos_margin, neg_margin [, ReferenceOptions])
//
// Returns the ordered pairs (a, b), a != b, with
//   label(a) == label(b) and d(a,b) > pos_margin   (similar = 1), and
//   label(a) != label(b) and d(a,b) < neg_margin   (similar = 0),
// in row-major order of (a, b), both directions of a pair included as in PML.
// These are exactly the pairs with positive contrastive loss
// [d - pos_margin]+ and [neg_margin - d]+. Reproducing PML's
// PairMarginMiner(pos_margin, neg_margin): same margins, the same distance
// (its default LpDistance normalises embeddings: pass row-normalised X). With
// a reference set, first indexes X and second indexes R, with no
// self-exclusion (reference_set.hpp). Margins must be finite; any order is allowed.
//
// Multi-similarity miner (pytorch-metric-learning 2.8.1's MultiSimilarityMiner(epsilon)):
//
//   mine_multi_similarity<Metric>(X, labels, epsilon = 0.1)
//   mine_multi_similarity<Metric>(X, labels, R, ref_labels, epsilon [, ReferenceOptions])
//
// For anchor a with positives P(a) and negatives N(a), both non-empty, keeps
//   a positive p  if s_ap - epsilon < max_{n in N(a)} s_an   (similar = 1),
//   a negative n  if s_an + epsilon > min_{p in P(a)} s_ap   (similar = 0),
// s the similarity (Cosine, the default, as PML's CosineSimilarity; DotProduct);
// for a distance (Euclidean, SquaredEuclidean, Mahalanobis) PML's signs flip:
// d_ap + epsilon > min d_an and d_an - epsilon < max d_ap. Both are that last
// form in this library's distances (d = 1 - cos, -x.y). An anchor without a
// positive or without a negative mines nothing. Pairs come in row-major order
// of (a, b); PML lists each anchor's pairs by similarity instead (the same set).
// The result feeds multi_similarity_loss(X, pairs) (PML's indices_tuple), and any
// other loss taking Pairs. epsilon must be finite and >= 0.
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/mining/reference_set.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace contrastive {
namespace detail {

template <class Metric, class Scalar>
Pairs mine_pairs(const AnchorSource<Metric, Scalar>& source, Scalar pos_margin, Scalar neg_margin) {
  Pairs out;
  source.for_each([&](const AnchorCandidates<Scalar>& c) {
    // Merge the two index-ordered lists back into row order.
    std::size_t p = 0, n = 0;
    while (p < c.positives.size() || n < c.negatives.size()) {
      const bool take_positive =
          n == c.negatives.size() || (p < c.positives.size() && c.positives[p].index < c.negatives[n].index);
      if (take_positive) {
        const RankedDistance<Scalar>& q = c.positives[p++];
        if (q.distance > pos_margin) out.add(c.anchor, q.index, true);
      } else {
        const RankedDistance<Scalar>& q = c.negatives[n++];
        if (q.distance < neg_margin) out.add(c.anchor, q.index, false);
      }
    }
  });
  return out;
}

template <class Metric, class Scalar>
Pairs mine_multi_similarity(const AnchorSource<Metric, Scalar>& source, Scalar epsilon) {
  Pairs out;
  source.for_each([&](const AnchorCandidates<Scalar>& c) {
    if (c.positives.empty() || c.negatives.empty()) return;
    Scalar max_p = c.positives[0].distance, min_n = c.negatives[0].distance;
    for (const RankedDistance<Scalar>& q : c.positives) max_p = std::max(max_p, q.distance);
    for (const RankedDistance<Scalar>& q : c.negatives) min_n = std::min(min_n, q.distance);
    std::size_t p = 0, n = 0;
    while (p < c.positives.size() || n < c.negatives.size()) {
      const bool take_positive =
          n == c.negatives.size() || (p < c.positives.size() && c.positives[p].index < c.negatives[n].index);
      if (take_positive) {
        const RankedDistance<Scalar>& q = c.positives[p++];
        if (q.distance + epsilon > min_n) out.add(c.anchor, q.index, true);
      } else {
        const RankedDistance<Scalar>& q = c.negatives[n++];
        if (q.distance - epsilon < max_p) out.add(c.anchor, q.index, false);
      }
    }
  });
  return out;
}

inline void require_pair_miner_margins(const char* function, double pos_margin, double neg_margin) {
  require_finite_scalar(function, "pos_margin", pos_margin);
  require_finite_scalar(function, "neg_margin", neg_margin);
}

}  // namespace detail

template <class Metric = Euclidean, class DX>
Pairs mine_pairs(const Eigen::MatrixBase<DX>& X, const Labels& labels, double pos_margin,
                 double neg_margin) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "mine_pairs";
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_pair_miner_margins(fn, pos_margin, neg_margin);
  return detail::mine_pairs<Metric, Scalar>(
      detail::AnchorSource<Metric, Scalar>{x, l, nullptr, nullptr, ReferenceOptions{}},
      static_cast<Scalar>(pos_margin), static_cast<Scalar>(neg_margin));
}

template <class Metric = Euclidean, class DX, class DR>
Pairs mine_pairs(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DR>& R,
                 const Labels& ref_labels, double pos_margin, double neg_margin,
                 const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "mine_pairs";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  detail::require_pair_miner_margins(fn, pos_margin, neg_margin);
  return detail::mine_pairs<Metric, Scalar>(detail::AnchorSource<Metric, Scalar>{x, l, &r, &rl, reference},
                                            static_cast<Scalar>(pos_margin), static_cast<Scalar>(neg_margin));
}

// Multi-similarity pairs of the batch (PML MultiSimilarityMiner); Cosine by default, as PML.
template <class Metric = Cosine, class DX>
Pairs mine_multi_similarity(const Eigen::MatrixBase<DX>& X, const Labels& labels, double epsilon = 0.1) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "mine_multi_similarity";
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_non_negative(fn, "epsilon", epsilon);
  return detail::mine_multi_similarity<Metric, Scalar>(
      detail::AnchorSource<Metric, Scalar>{x, l, nullptr, nullptr, ReferenceOptions{}}, static_cast<Scalar>(epsilon));
}

// Against a reference set: first indexes X, second R (PML's ref_emb, no self-exclusion).
template <class Metric = Cosine, class DX, class DR>
Pairs mine_multi_similarity(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DR>& R,
                            const Labels& ref_labels, double epsilon = 0.1,
                            const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "mine_multi_similarity";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  detail::require_non_negative(fn, "epsilon", epsilon);
  return detail::mine_multi_similarity<Metric, Scalar>(detail::AnchorSource<Metric, Scalar>{x, l, &r, &rl, reference},
                                                       static_cast<Scalar>(epsilon));
}

}  // namespace contrastive
