// Internals shared by the triplet losses: option checks, the per-triplet term
// (hinge or softplus) with its slope, and the per-anchor split of a distance
// row into positives and negatives, in buffers reused across anchors.
#pragma once

#include "contrastive/core/partition_point.hpp"
#include "contrastive/core/softplus.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/losses/triplet_options.hpp"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

inline void require_triplet_options(const char* function, const TripletOptions& options,
                                    bool soft_supported, bool swap_supported) {
  require_non_negative(function, "options.margin", options.margin);
  if (options.soft && !soft_supported) {
    fail(function, std::string("option 'soft' is not supported: the softplus term does not "
                               "decompose over the triplets of an anchor; use the hinge (soft = false)"));
  }
  if (options.swap && !swap_supported) {
    fail(function, std::string("option 'swap' is not supported: the distance swap applies to "
                               "explicit triplets (triplet_margin_loss) only"));
  }
}

// A triplet's loss and its derivative with respect to x = d_ap - d_an.
template <class Scalar>
struct TripletTerm {
  Scalar value;
  Scalar slope;
};

template <class Scalar>
TripletTerm<Scalar> softplus_term(Scalar x) {
  const SoftplusValue<Scalar> s = softplus_with_slope(x);
  return {s.value, s.slope};
}

// The hinge is written (d_ap - d_an) + margin everywhere, so the sorted-side
// searches classify exactly the triplets a direct loop would: a hinge of
// exactly 0 is inactive and gets no gradient.
template <class Scalar>
TripletTerm<Scalar> triplet_term(Scalar d_ap, Scalar d_an, Scalar margin, bool soft) {
  if (soft) return softplus_term<Scalar>(d_ap - d_an);
  const Scalar h = d_ap - d_an + margin;
  if (h > Scalar(0)) return {h, Scalar(1)};
  return {Scalar(0), Scalar(0)};
}

// One entry of a distance row: the distance and the column it came from.
template <class Scalar>
struct RankedDistance {
  Scalar distance;
  Index index;
};

// Ascending distance, then ascending index: ties resolve to the lowest index.
template <class Scalar>
bool ranked_less(const RankedDistance<Scalar>& x, const RankedDistance<Scalar>& y) {
  return x.distance < y.distance || (x.distance == y.distance && x.index < y.index);
}

// Positives (same label, not the anchor) and negatives (other label) of one
// anchor, in column order, as [begin, end) ranges over buffers sized once.
template <class Scalar>
struct AnchorSides {
  std::vector<RankedDistance<Scalar>> positive_buffer;
  std::vector<RankedDistance<Scalar>> negative_buffer;
  std::size_t num_positives = 0;
  std::size_t num_negatives = 0;

  explicit AnchorSides(Index n)
      : positive_buffer(static_cast<std::size_t>(n)), negative_buffer(static_cast<std::size_t>(n)) {}

  RankedDistance<Scalar>* positives() { return positive_buffer.data(); }
  RankedDistance<Scalar>* negatives() { return negative_buffer.data(); }

  // Every entry is written to both buffers and only the matching count
  // advances: no branch on the labels.
  template <class Row>
  void split(Index anchor, const Row& distances, const LabelVector& labels) {
    const Label own = labels(anchor);
    const Index n = labels.size();
    RankedDistance<Scalar>* pos = positive_buffer.data();
    RankedDistance<Scalar>* neg = negative_buffer.data();
    std::size_t np = 0, nn = 0;
    for (Index j = 0; j < n; ++j) {
      const RankedDistance<Scalar> entry{distances(j), j};
      const bool same = labels(j) == own;
      pos[np] = entry;
      neg[nn] = entry;
      np += static_cast<std::size_t>(same & (j != anchor));
      nn += static_cast<std::size_t>(!same);
    }
    num_positives = np;
    num_negatives = nn;
  }
};

}  // namespace detail
}  // namespace contrastive
