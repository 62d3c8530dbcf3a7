// Every anchor's positive pairs (a row of its label other than itself),
// numbered anchor by anchor and, within an anchor, in the positives' index
// order: flat per-pair state for the tile losses that keep one value per
// ordered positive pair (ntxent_loss's positive distances, the semi-hard
// triplet's negative), O(sum over classes of n_c (n_c - 1)) entries.
#pragma once

#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/types.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

class PositivePairs {
 public:
  explicit PositivePairs(LabelGroups groups) : groups_(std::move(groups)) {
    const Index n = static_cast<Index>(groups_.ids.size());
    rank_.resize(static_cast<std::size_t>(n));
    offset_.assign(static_cast<std::size_t>(n) + 1, 0);
    for (Index i = 0; i < n; ++i) {
      const Index* cls = groups_.class_of(i);
      for (Index k = 0; k < groups_.class_size(i); ++k) {
        if (cls[k] == i) rank_[static_cast<std::size_t>(i)] = k;
      }
      offset_[static_cast<std::size_t>(i) + 1] = offset_[static_cast<std::size_t>(i)] + groups_.class_size(i) - 1;
    }
  }

  const LabelGroups& groups() const { return groups_; }
  // All pairs; anchor a's are [first(a), first(a) + count(a)).
  std::size_t size() const { return static_cast<std::size_t>(offset_.back()); }
  Index first(Index a) const { return offset_[static_cast<std::size_t>(a)]; }
  Index count(Index a) const { return offset_[static_cast<std::size_t>(a) + 1] - offset_[static_cast<std::size_t>(a)]; }

  // Where anchor a's positive p sits.
  std::size_t slot(Index a, Index p) const {
    const Index rp = rank_[static_cast<std::size_t>(p)], ra = rank_[static_cast<std::size_t>(a)];
    return static_cast<std::size_t>(offset_[static_cast<std::size_t>(a)] + rp - (rp > ra ? 1 : 0));
  }

  // Tile row i, distances d[0, m) to columns [j0, j0 + m): each positive
  // pair's distance into per_pair, at both anchors' slots.
  template <class Scalar>
  void record(Index i, Index j0, Index m, const Scalar* d, std::vector<Scalar>& per_pair) const {
    for_positives(i, j0, m, [&](Index p) {
      per_pair[slot(i, p)] = d[p - j0];
      per_pair[slot(p, i)] = d[p - j0];
    });
  }

  // f(p) for the positives p of i among columns [j0, j0 + m), in index order.
  template <class F>
  void for_positives(Index i, Index j0, Index m, F&& f) const {
    const Index* cls = groups_.class_of(i);
    const Index* end = cls + groups_.class_size(i);
    for (const Index* p = std::lower_bound(cls, end, j0); p != end && *p < j0 + m; ++p) {
      if (*p != i) f(*p);
    }
  }

 private:
  LabelGroups groups_;
  std::vector<Index> rank_, offset_;  // per row: its place in its class; per anchor: its first pair
};

}  // namespace detail
}  // namespace contrastive
