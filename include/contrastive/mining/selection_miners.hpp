// Selection miners: one triplet per anchor or per positive pair.
//
//   mine_batch_hard<Metric>(X, labels)
//     Per anchor with a positive and a negative: the farthest positive and the
//     closest negative (Hermans et al. 2017; PML BatchHardMiner).
//   mine_semihard<Metric>(X, labels)
//     Per positive pair (a, p): the closest negative with d(a,n) > d(a,p); if
//     there is none, the farthest negative (TensorFlow Addons'
//     triplet_semihard_loss selection; like TFA, no margin is involved).
//     Anchors without a negative give nothing.
//   mine_easy_hard<Metric>(X, labels, EasyHardOptions)
//     pytorch-metric-learning's BatchEasyHardMiner(pos_strategy, neg_strategy,
//     allowed_pos_range, allowed_neg_range) for the strategies easy, semihard,
//     hard (not "all"), one triplet per anchor:
//       positive  Easy: closest; Hard: farthest;
//                 SemiHard: farthest with d(a,p) < d(a,n) of the chosen negative
//       negative  Hard: closest; Easy: farthest;
//                 SemiHard: closest with d(a,n) > d(a,p) of the chosen positive
//     (a semi-hard side is chosen after the other side, as PML does; with both
//     semi-hard, the negative is chosen first as a hard one). A candidate
//     outside its allowed range [min, max] is never chosen; an anchor left
//     without a positive or a negative gives nothing. PML's default is
//     positive Easy, negative SemiHard (Xuan et al. 2020).
//
// Each also takes a reference set (X, labels, R, ref_labels, ..., ReferenceOptions):
// then anchor indexes X and positive / negative index R (reference_set.hpp).
// Ties between equal distances go to the lowest index, as torch.min / torch.max.
// Output order: by anchor, then (mine_semihard) by positive index.
// Cost beyond the distances: O(N M) for batch-hard and easy-hard; O(N M log K)
// for semi-hard (detail/semihard_selection.hpp, batch_semihard_triplet_loss's
// selection: one side sorted, the smaller of the K positives and the M - K negatives).
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/mining/detail/semihard_selection.hpp"
#include "contrastive/mining/negative_stats.hpp"
#include "contrastive/mining/reference_set.hpp"

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {

enum class MiningStrategy { Easy, SemiHard, Hard };

struct EasyHardOptions {
  MiningStrategy positive = MiningStrategy::Easy;
  MiningStrategy negative = MiningStrategy::SemiHard;
  // PML's allowed_pos_range / allowed_neg_range (inclusive); infinite = no limit.
  double positive_min = -std::numeric_limits<double>::infinity();
  double positive_max = std::numeric_limits<double>::infinity();
  double negative_min = -std::numeric_limits<double>::infinity();
  double negative_max = std::numeric_limits<double>::infinity();
};

namespace detail {

// The candidate with the smallest (want_max: largest) distance among those
// inside [lo, hi] that pass `keep`; ties to the lowest index. Returns -1 if none.
template <class Scalar, class Keep>
Index select_one(const CandidateSpan<Scalar>& candidates, bool want_max, Scalar lo, Scalar hi,
                 Keep&& keep, Scalar* distance) {
  Index best = -1;
  Scalar best_d = Scalar(0);
  for (const RankedDistance<Scalar>& c : candidates) {  // increasing index: strict comparisons keep the first
    if (c.distance < lo || c.distance > hi || !keep(c.distance)) continue;
    if (best < 0 || (want_max ? c.distance > best_d : c.distance < best_d)) {
      best = c.index;
      best_d = c.distance;
    }
  }
  if (distance) *distance = best_d;
  return best;
}

template <class Metric, class Scalar>
Triplets mine_easy_hard(const AnchorSource<Metric, Scalar>& source, const EasyHardOptions& o) {
  Triplets out;
  const Scalar p_lo = static_cast<Scalar>(o.positive_min), p_hi = static_cast<Scalar>(o.positive_max);
  const Scalar n_lo = static_cast<Scalar>(o.negative_min), n_hi = static_cast<Scalar>(o.negative_max);
  auto any = [](Scalar) { return true; };
  source.for_each([&](const AnchorCandidates<Scalar>& c) {
    Scalar d_ap = Scalar(0), d_an = Scalar(0);
    Index p = -1, n = -1;
    // A positive is "hard" when far, a negative when close.
    const bool pos_max = o.positive != MiningStrategy::Easy;
    const bool neg_max = o.negative == MiningStrategy::Easy;
    if (o.positive == MiningStrategy::SemiHard) {
      n = select_one<Scalar>(c.negatives, neg_max, n_lo, n_hi, any, &d_an);
      if (n < 0) return;
      p = select_one<Scalar>(c.positives, true, p_lo, p_hi, [&](Scalar d) { return d < d_an; }, &d_ap);
    } else if (o.negative == MiningStrategy::SemiHard) {
      p = select_one<Scalar>(c.positives, pos_max, p_lo, p_hi, any, &d_ap);
      if (p < 0) return;
      n = select_one<Scalar>(c.negatives, false, n_lo, n_hi, [&](Scalar d) { return d > d_ap; }, &d_an);
    } else {
      p = select_one<Scalar>(c.positives, pos_max, p_lo, p_hi, any, &d_ap);
      n = select_one<Scalar>(c.negatives, neg_max, n_lo, n_hi, any, &d_an);
    }
    if (p >= 0 && n >= 0) out.add(c.anchor, p, n);
  });
  return out;
}

template <class Metric, class Scalar>
Triplets mine_semihard(const AnchorSource<Metric, Scalar>& source) {
  Triplets out;
  // Copies: the selection sorts one side in place, the candidates are read-only.
  std::vector<RankedDistance<Scalar>> positives, negatives;
  SemihardSelection<Scalar> semihard;
  std::vector<std::pair<Index, Index>> pn;
  source.for_each([&](const AnchorCandidates<Scalar>& c) {
    if (c.positives.empty() || c.negatives.empty()) return;
    positives.assign(c.positives.begin(), c.positives.end());
    negatives.assign(c.negatives.begin(), c.negatives.end());
    const std::vector<RankedDistance<Scalar>>& chosen =
        semihard.select(positives.data(), positives.size(), negatives.data(), negatives.size());
    pn.clear();
    for (std::size_t t = 0; t < positives.size(); ++t) pn.emplace_back(positives[t].index, chosen[t].index);
    std::sort(pn.begin(), pn.end());  // by positive index
    for (const auto& t : pn) out.add(c.anchor, t.first, t.second);
  });
  return out;
}

template <class Metric, class Scalar>
Triplets mine_batch_hard(const AnchorSource<Metric, Scalar>& source) {
  EasyHardOptions o;
  o.positive = MiningStrategy::Hard;
  o.negative = MiningStrategy::Hard;
  return detail::mine_easy_hard<Metric, Scalar>(source, o);  // qualified: no ADL onto the public overloads
}

inline void require_easy_hard_options(const char* function, const EasyHardOptions& o) {
  const double bounds[] = {o.positive_min, o.positive_max, o.negative_min, o.negative_max};
  const char* names[] = {"EasyHardOptions::positive_min", "EasyHardOptions::positive_max",
                         "EasyHardOptions::negative_min", "EasyHardOptions::negative_max"};
  for (int i = 0; i < 4; ++i) {
    if (bounds[i] != bounds[i]) fail(function, std::string(names[i]) + " is NaN");
  }
  if (o.positive_min > o.positive_max) fail(function, "EasyHardOptions: positive_min > positive_max");
  if (o.negative_min > o.negative_max) fail(function, "EasyHardOptions: negative_min > negative_max");
}

}  // namespace detail

// Farthest positive and closest negative per anchor of the batch.
template <class Metric = Euclidean, class DX>
Triplets mine_batch_hard(const Eigen::MatrixBase<DX>& X, const Labels& labels) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>("mine_batch_hard", x, labels);
  return detail::mine_batch_hard<Metric, Scalar>(
      detail::AnchorSource<Metric, Scalar>{x, l, nullptr, nullptr, ReferenceOptions{}});
}

template <class Metric = Euclidean, class DX, class DR>
Triplets mine_batch_hard(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                         const Eigen::MatrixBase<DR>& R, const Labels& ref_labels,
                         const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "mine_batch_hard";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  return detail::mine_batch_hard<Metric, Scalar>(detail::AnchorSource<Metric, Scalar>{x, l, &r, &rl, reference});
}

// TensorFlow Addons' semi-hard negative per positive pair of the batch.
template <class Metric = Euclidean, class DX>
Triplets mine_semihard(const Eigen::MatrixBase<DX>& X, const Labels& labels) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>("mine_semihard", x, labels);
  return detail::mine_semihard<Metric, Scalar>(
      detail::AnchorSource<Metric, Scalar>{x, l, nullptr, nullptr, ReferenceOptions{}});
}

template <class Metric = Euclidean, class DX, class DR>
Triplets mine_semihard(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                       const Eigen::MatrixBase<DR>& R, const Labels& ref_labels,
                       const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "mine_semihard";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  return detail::mine_semihard<Metric, Scalar>(detail::AnchorSource<Metric, Scalar>{x, l, &r, &rl, reference});
}

// pytorch-metric-learning's BatchEasyHardMiner on the batch.
template <class Metric = Euclidean, class DX>
Triplets mine_easy_hard(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                        const EasyHardOptions& options = EasyHardOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "mine_easy_hard";
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_easy_hard_options(fn, options);
  return detail::mine_easy_hard<Metric, Scalar>(
      detail::AnchorSource<Metric, Scalar>{x, l, nullptr, nullptr, ReferenceOptions{}}, options);
}

template <class Metric = Euclidean, class DX, class DR>
Triplets mine_easy_hard(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                        const Eigen::MatrixBase<DR>& R, const Labels& ref_labels,
                        const EasyHardOptions& options = EasyHardOptions{},
                        const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "mine_easy_hard";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  detail::require_easy_hard_options(fn, options);
  return detail::mine_easy_hard<Metric, Scalar>(detail::AnchorSource<Metric, Scalar>{x, l, &r, &rl, reference},
                                                options);
}

}  // namespace contrastive
