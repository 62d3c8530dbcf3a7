// The semi-hard negative of each positive pair of one anchor (Schroff et al.
// 2015, FaceNet; TensorFlow Addons' triplet_semihard_loss):
//
//   n*(a, p) = the negative closest to a with d(a, n) > d(a, p) (strictly);
//              if there is none, the negative farthest from a.
//
// Ties in d(a, n) go to the lowest index; no margin is involved. One rule for
// batch_semihard_triplet_loss and mine_semihard.
//
// O(M log min(K, M - K)) for K positives among M candidates: sort the smaller
// side ascending. Positives sorted: each negative binary-searches the
// positives strictly below it and records itself in that bucket (keeping the
// smallest); a suffix minimum over the buckets gives every positive its
// closest larger negative. Negatives sorted: each positive binary-searches the
// first negative strictly above it.
#pragma once

#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/partition_point.hpp"
#include "contrastive/core/types.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

namespace contrastive {
namespace detail {

// Scratch reused across anchors: no allocation per anchor once grown.
template <class Scalar>
class SemihardSelection {
 public:
  explicit SemihardSelection(Index n = 0) {
    chosen_.reserve(static_cast<std::size_t>(n));
    bucket_.reserve(static_cast<std::size_t>(n) + 1);
  }

  // pos[0, np) and neg[0, nn) in increasing index order, np >= 1, nn >= 1.
  // Sorts the smaller side in place by ranked_less (the positives when
  // np <= nn); the result's entry t is the negative of pos[t] as pos stands
  // after the call.
  const std::vector<RankedDistance<Scalar>>& select(RankedDistance<Scalar>* pos, std::size_t np,
                                                    RankedDistance<Scalar>* neg, std::size_t nn) {
    const Scalar none = std::numeric_limits<Scalar>::infinity();  // an empty bucket
    // The fallback: the farthest negative, lowest index on ties (column order, strict >).
    RankedDistance<Scalar> farthest = neg[0];
    for (std::size_t k = 1; k < nn; ++k) {
      if (neg[k].distance > farthest.distance) farthest = neg[k];
    }
    chosen_.assign(np, farthest);
    if (np <= nn) {
      std::sort(pos, pos + np, ranked_less<Scalar>);
      // bucket[j]: the smallest negative above positives [0, j) and not above positive j.
      // Negatives arrive in column order, so a strict < keeps the lowest index on ties.
      bucket_.assign(np + 1, RankedDistance<Scalar>{none, -1});
      for (std::size_t k = 0; k < nn; ++k) {
        const Scalar v = neg[k].distance;
        const std::size_t j =
            partition_point_index(pos, np, [&](const RankedDistance<Scalar>& q) { return q.distance < v; });
        RankedDistance<Scalar>& b = bucket_[j];
        const bool better = v < b.distance;
        b.distance = better ? v : b.distance;
        b.index = better ? neg[k].index : b.index;
      }
      // Equal distances share a bucket, so the suffix minimum never meets a tie.
      RankedDistance<Scalar> best{none, -1};
      for (std::size_t t = np; t-- > 0;) {
        if (bucket_[t + 1].distance < best.distance) best = bucket_[t + 1];
        if (best.index >= 0) chosen_[t] = best;
      }
    } else {
      std::sort(neg, neg + nn, ranked_less<Scalar>);
      for (std::size_t t = 0; t < np; ++t) {
        const Scalar s = pos[t].distance;
        // The first negative strictly farther than the positive; ties sorted by index.
        const std::size_t j =
            partition_point_index(neg, nn, [&](const RankedDistance<Scalar>& q) { return !(q.distance > s); });
        if (j < nn) chosen_[t] = neg[j];
      }
    }
    return chosen_;
  }

 private:
  std::vector<RankedDistance<Scalar>> chosen_;  // per positive: its negative
  std::vector<RankedDistance<Scalar>> bucket_;  // per bucket: the smallest negative landing there
};

}  // namespace detail
}  // namespace contrastive
