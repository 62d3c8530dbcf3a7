// Mining the triplets whose negative is of the requested kinds.
//
//   mine_triplets<Metric>(X, labels, margin, kinds [, MineOptions])
//   mine_triplets<Metric>(X, labels, R, ref_labels, margin, kinds [, MineOptions, ReferenceOptions])
//
// Returns every valid triplet (a, p, n) (see negative_stats.hpp) whose negative
// is of a kind in `kinds` (e.g. NegativeKind::Hard | NegativeKind::SemiHard),
// classified as classify_negative(d(a,p), d(a,n), margin, options.convention).
// Order: by anchor, then by positive index, then by negative index.
//
// The full set is O(N^3): uncapped mining (max_per_anchor = 0) is for small
// batches. With max_per_anchor = K, an anchor with more than K matching
// triplets keeps K of them drawn uniformly without replacement, from a
// generator seeded by (seed, anchor): the same seed gives the same triplets on
// every platform, whatever the block size. Work per anchor is O(M log K + K
// log M) for the sample, plus the output.
//
// Reproducing pytorch-metric-learning's TripletMarginMiner(margin, type_of_triplets):
// MineOptions::convention = TieConvention::PytorchMetricLearning and kinds
//   "hard" -> Hard, "semihard" -> SemiHard, "easy" -> Easy, "all" -> Hard | SemiHard;
// PML's default distance is LpDistance with normalize_embeddings=True: pass
// row-normalised X with Euclidean (or use Cosine for CosineSimilarity).
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/mining/detail/sampling.hpp"
#include "contrastive/mining/negative_kind.hpp"
#include "contrastive/mining/negative_stats.hpp"
#include "contrastive/mining/reference_set.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace contrastive {

struct MineOptions {
  TieConvention convention = TieConvention::Library;
  // Most triplets kept per anchor; 0 keeps all.
  Index max_per_anchor = 0;
  // Seed of the per-anchor sampling (used only when an anchor has more than max_per_anchor).
  std::uint64_t seed = 0;
};

namespace detail {

inline void require_mine_options(const char* function, NegativeKinds kinds, const MineOptions& options) {
  if (kinds.empty()) fail(function, "argument 'kinds' is empty; ask for at least one NegativeKind");
  if (options.max_per_anchor < 0) {
    fail(function, "MineOptions::max_per_anchor must be >= 0 (0 = no cap), got " +
                       std::to_string(options.max_per_anchor));
  }
}

// Positions (in sorted-positive order) of the requested kinds for one negative:
// at most two disjoint ranges, in ascending order.
struct SelectedRanges {
  Index begin[3];
  Index end[3];
  int count = 0;
  Index size = 0;

  void add(Index b, Index e) {
    if (e <= b) return;
    if (count > 0 && end[count - 1] == b) {
      end[count - 1] = e;  // adjacent kinds merge
    } else {
      begin[count] = b;
      end[count] = e;
      ++count;
    }
    size += e - b;
  }
  // The position of the offset-th selected positive.
  Index at(Index offset) const {
    for (int r = 0; r < count; ++r) {
      const Index len = end[r] - begin[r];
      if (offset < len) return begin[r] + offset;
      offset -= len;
    }
    return -1;
  }
};

inline SelectedRanges select_ranges(const KindRanges& r, Index k, NegativeKinds kinds) {
  SelectedRanges s;
  if (kinds.contains(NegativeKind::Easy)) s.add(0, r.easy_end);
  if (kinds.contains(NegativeKind::SemiHard)) s.add(r.easy_end, r.hard_begin);
  if (kinds.contains(NegativeKind::Hard)) s.add(r.hard_begin, k);
  return s;
}

// Appends one anchor's (positive, negative) pairs, sorted, as triplets.
inline void append_sorted(Index anchor, std::vector<std::pair<Index, Index>>& pn, Triplets& out) {
  std::sort(pn.begin(), pn.end());
  for (const auto& t : pn) out.add(anchor, t.first, t.second);
}

template <class Metric, class Scalar>
Triplets mine_triplets(const AnchorSource<Metric, Scalar>& source, Scalar margin, NegativeKinds kinds,
                       const MineOptions& options) {
  Triplets out;
  std::vector<RankedDistance<Scalar>> positives;  // sorted by distance
  std::vector<SelectedRanges> per_negative;
  std::vector<Index> prefix;                 // selected triplets before each negative
  std::vector<Index> ranks;
  std::vector<std::pair<Index, Index>> pn;
  source.for_each([&](const AnchorCandidates<Scalar>& c) {
    if (c.positives.empty() || c.negatives.empty()) return;
    positives.assign(c.positives.begin(), c.positives.end());
    std::sort(positives.begin(), positives.end(), ranked_less<Scalar>);
    const Index k = static_cast<Index>(positives.size());
    per_negative.clear();
    prefix.clear();
    Index total = 0;
    for (const RankedDistance<Scalar>& neg : c.negatives) {
      const KindRanges r = kind_ranges<Scalar>(
          positives.begin(), positives.end(), [](const RankedDistance<Scalar>& p) { return p.distance; },
          neg.distance, margin, options.convention);
      per_negative.push_back(select_ranges(r, k, kinds));
      prefix.push_back(total);
      total += per_negative.back().size;
    }
    pn.clear();
    if (options.max_per_anchor == 0 || total <= options.max_per_anchor) {
      for (std::size_t q = 0; q < per_negative.size(); ++q) {
        const SelectedRanges& s = per_negative[q];
        for (int r = 0; r < s.count; ++r) {
          for (Index j = s.begin[r]; j < s.end[r]; ++j) {
            pn.emplace_back(positives[static_cast<std::size_t>(j)].index, c.negatives[q].index);
          }
        }
      }
    } else {
      std::mt19937_64 gen = anchor_generator(options.seed, c.anchor);
      sample_distinct(gen, total, options.max_per_anchor, ranks);
      for (const Index rank : ranks) {
        // The negative whose block of ranks holds `rank`, then the positive within it.
        const auto q = static_cast<std::size_t>(std::upper_bound(prefix.begin(), prefix.end(), rank) -
                                                prefix.begin() - 1);
        const Index j = per_negative[q].at(rank - prefix[q]);
        pn.emplace_back(positives[static_cast<std::size_t>(j)].index, c.negatives[q].index);
      }
    }
    append_sorted(c.anchor, pn, out);
  });
  return out;
}

}  // namespace detail

// Triplets of the batch X (N x D, labels of length N) whose negative is of a kind in `kinds`.
template <class Metric = Euclidean, class DX>
Triplets mine_triplets(const Eigen::MatrixBase<DX>& X, const Labels& labels, double margin,
                       NegativeKinds kinds, const MineOptions& options = MineOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "mine_triplets";
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_margin(fn, margin);
  detail::require_mine_options(fn, kinds, options);
  const detail::AnchorSource<Metric, Scalar> source{x, l, nullptr, nullptr, ReferenceOptions{}};
  return detail::mine_triplets<Metric, Scalar>(source, static_cast<Scalar>(margin), kinds, options);
}

// Triplets (anchor row of X, positive and negative rows of R): anchor indexes
// X, positive and negative index R.
template <class Metric = Euclidean, class DX, class DR>
Triplets mine_triplets(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                       const Eigen::MatrixBase<DR>& R, const Labels& ref_labels, double margin,
                       NegativeKinds kinds, const MineOptions& options = MineOptions{},
                       const ReferenceOptions& reference = ReferenceOptions{}) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DR>();
  const char* fn = "mine_triplets";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(R.derived());
  const LabelVector l = detail::batch_labels<Scalar>(fn, x, labels);
  detail::require_reference<Scalar>(fn, x, r, reference);
  const LabelVector rl = detail::to_labels(fn, "ref_labels", ref_labels, r.rows(), "the reference matrix R");
  detail::require_margin(fn, margin);
  detail::require_mine_options(fn, kinds, options);
  const detail::AnchorSource<Metric, Scalar> source{x, l, &r, &rl, reference};
  return detail::mine_triplets<Metric, Scalar>(source, static_cast<Scalar>(margin), kinds, options);
}

}  // namespace contrastive
