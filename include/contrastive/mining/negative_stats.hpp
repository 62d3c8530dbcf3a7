// Counting hard / semi-hard / easy negatives over every valid triplet of a
// batch (or of anchors against a reference set), without enumerating them.
//
//   negative_stats<Metric>(X, labels, margin [, convention])
//   negative_stats<Metric>(X, labels, R, ref_labels, margin [, convention, ReferenceOptions])
//
// A valid triplet is (a, p, n) with label(p) == label(a), p != a, label(n) !=
// label(a) (reference form: p, n are reference rows; see reference_set.hpp).
// Each is classified by classify_negative (negative_kind.hpp) with margin >= 0
// and the TieConvention; TieConvention::PytorchMetricLearning gives exactly the
// counts of PML's TripletMarginMiner(margin, type_of_triplets="hard" /
// "semihard" / "easy") on the same distances (its "all" = hard + semi-hard).
//
// Besides the counts (total and per anchor) it summarises the distances of the
// ordered (anchor, positive) and (anchor, negative) pairs the triplets are
// built from: count, mean, min, max (all 0 when there is no such pair).
//
// Cost beyond the distance matrix: per anchor the K positives are sorted and
// each negative binary-searches its two thresholds among them:
// O(N^2 log K) for the batch, O(N M log K) against a reference set.
#pragma once

#include "contrastive/core/partition_point.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/mining/negative_kind.hpp"
#include "contrastive/mining/reference_set.hpp"

#include <algorithm>
#include <iterator>
#include <vector>

namespace contrastive {

// Summary of a set of pair distances.
template <class Scalar>
struct DistanceSummary {
  Index count = 0;
  Scalar mean = Scalar(0);
  Scalar min = Scalar(0);
  Scalar max = Scalar(0);
};

template <class Scalar>
struct NegativeStats {
  // Totals over all valid triplets.
  Index hard = 0;
  Index semihard = 0;
  Index easy = 0;
  // The same per anchor (one entry per row of X).
  std::vector<Index> hard_per_anchor;
  std::vector<Index> semihard_per_anchor;
  std::vector<Index> easy_per_anchor;
  // Distances of the ordered (anchor, positive) and (anchor, negative) pairs.
  DistanceSummary<Scalar> positive_pairs;
  DistanceSummary<Scalar> negative_pairs;

  Index triplets() const { return hard + semihard + easy; }
  Index triplets_of(Index anchor) const {
    const std::size_t a = static_cast<std::size_t>(anchor);
    return hard_per_anchor[a] + semihard_per_anchor[a] + easy_per_anchor[a];
  }
  Index count(NegativeKind kind) const {
    return kind == NegativeKind::Hard ? hard : kind == NegativeKind::SemiHard ? semihard : easy;
  }
  // Fractions of all valid triplets; 0 when there is none.
  double fraction(NegativeKind kind) const {
    return triplets() == 0 ? 0.0 : static_cast<double>(count(kind)) / static_cast<double>(triplets());
  }
  double hard_fraction() const { return fraction(NegativeKind::Hard); }
  double semihard_fraction() const { return fraction(NegativeKind::SemiHard); }
  double easy_fraction() const { return fraction(NegativeKind::Easy); }
};

namespace detail {

// Mean accumulated in double: a gallery has ~1e8 pairs, beyond float's 24 bits.
template <class Scalar>
class SummaryAccumulator {
 public:
  void add(Scalar d) {
    if (count_ == 0) {
      min_ = max_ = d;
    } else {
      min_ = std::min(min_, d);
      max_ = std::max(max_, d);
    }
    sum_ += static_cast<double>(d);
    ++count_;
  }
  DistanceSummary<Scalar> summary() const {
    DistanceSummary<Scalar> s;
    s.count = count_;
    if (count_ == 0) return s;
    s.mean = static_cast<Scalar>(sum_ / static_cast<double>(count_));
    s.min = min_;
    s.max = max_;
    return s;
  }

 private:
  Index count_ = 0;
  double sum_ = 0;
  Scalar min_ = Scalar(0);
  Scalar max_ = Scalar(0);
};

// Boundaries of the three classes among one anchor's positives sorted by
// ascending d(a,p), for one negative at d_an: easy [0, easy_end), semi-hard
// [easy_end, hard_begin), hard [hard_begin, K).
struct KindRanges {
  Index easy_end;
  Index hard_begin;
};

template <class Scalar, class Iter, class DistanceOf>
KindRanges kind_ranges(Iter first, Iter last, DistanceOf distance_of, Scalar d_an, Scalar margin,
                       TieConvention convention) {
  using Element = typename std::iterator_traits<Iter>::value_type;
  const Iter easy_end = partition_point_branchless(first, last, [&](const Element& p) {
    return is_easy<Scalar>(distance_of(p), d_an, margin, convention);
  });
  const Iter hard_begin = partition_point_branchless(easy_end, last, [&](const Element& p) {
    return !is_hard<Scalar>(distance_of(p), d_an, convention);
  });
  return {static_cast<Index>(easy_end - first), static_cast<Index>(hard_begin - first)};
}

template <class Metric, class Scalar>
NegativeStats<Scalar> negative_stats(const AnchorSource<Metric, Scalar>& source, Scalar margin,
                                     TieConvention convention) {
  NegativeStats<Scalar> stats;
  const std::size_t n = static_cast<std::size_t>(source.anchors());
  stats.hard_per_anchor.assign(n, 0);
  stats.semihard_per_anchor.assign(n, 0);
  stats.easy_per_anchor.assign(n, 0);
  SummaryAccumulator<Scalar> positive_pairs, negative_pairs;
  std::vector<Scalar> sorted_positives;
  source.for_each([&](const AnchorCandidates<Scalar>& c) {
    sorted_positives.clear();
    for (const RankedDistance<Scalar>& p : c.positives) {
      sorted_positives.push_back(p.distance);
      positive_pairs.add(p.distance);
    }
    std::sort(sorted_positives.begin(), sorted_positives.end());
    const Index k = static_cast<Index>(sorted_positives.size());
    Index hard = 0, semihard = 0, easy = 0;
    for (const RankedDistance<Scalar>& neg : c.negatives) {
      negative_pairs.add(neg.distance);
      if (k == 0) continue;
      const KindRanges r = kind_ranges<Scalar>(
          sorted_positives.begin(), sorted_positives.end(), [](Scalar d) { return d; }, neg.distance,
          margin, convention);
      easy += r.easy_end;
      semihard += r.hard_begin - r.easy_end;
      hard += k - r.hard_begin;
    }
    const std::size_t a = static_cast<std::size_t>(c.anchor);
    stats.hard_per_anchor[a] = hard;
    stats.semihard_per_anchor[a] = semihard;
    stats.easy_per_anchor[a] = easy;
    stats.hard += hard;
    stats.semihard += semihard;
    stats.easy += easy;
  });
  stats.positive_pairs = positive_pairs.summary();
  stats.negative_pairs = negative_pairs.summary();
  return stats;
}

}  // namespace detail

// Counts over all valid triplets of the batch X (N x D) with labels (length N).
template <class Metric = Euclidean, class DX>
NegativeStats<typename DX::Scalar> negative_stats(const Eigen::MatrixBase<DX>& X,
                                                  const Labels& labels, double margin,
                                                  TieConvention convention = TieConvention::Library) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "negative_stats";
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_margin(fn, margin);
  const detail::AnchorSource<Metric, Scalar> source{x, l, nullptr, nullptr, ReferenceOptions{}};
  return detail::negative_stats<Metric, Scalar>(source, static_cast<Scalar>(margin), convention);
}

// Counts over all triplets (anchor row of X, positive and negative rows of R).
template <class Metric = Euclidean, class DX, class DR>
NegativeStats<typename DX::Scalar> negative_stats(const Eigen::MatrixBase<DX>& X,
                                                  const Labels& labels,
                                                  const Eigen::MatrixBase<DR>& R,
                                                  const Labels& ref_labels, double margin,
                                                  TieConvention convention = TieConvention::Library,
                                                  const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "negative_stats";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  detail::require_margin(fn, margin);
  const detail::AnchorSource<Metric, Scalar> source{x, l, &r, &rl, reference};
  return detail::negative_stats<Metric, Scalar>(source, static_cast<Scalar>(margin), convention);
}

}  // namespace contrastive
