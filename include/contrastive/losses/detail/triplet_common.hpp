// Internals shared by the triplet losses: option checks, the per-triplet term
// (hinge or softplus) with its slope, and the per-anchor split of a distance
// row into positives and negatives, in buffers reused across anchors.
#pragma once

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

// Numerically stable softplus log(1 + e^x) and its derivative, the logistic sigmoid.
template <class Scalar>
TripletTerm<Scalar> softplus_term(Scalar x) {
  if (x > Scalar(0)) {
    const Scalar e = std::exp(-x);
    return {x + std::log1p(e), Scalar(1) / (Scalar(1) + e)};
  }
  const Scalar e = std::exp(x);
  return {std::log1p(e), e / (Scalar(1) + e)};
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
// anchor, in column order. The buffers keep their capacity across anchors.
template <class Scalar>
struct AnchorSides {
  std::vector<RankedDistance<Scalar>> positives;
  std::vector<RankedDistance<Scalar>> negatives;

  explicit AnchorSides(Index n) {
    positives.reserve(static_cast<std::size_t>(n));
    negatives.reserve(static_cast<std::size_t>(n));
  }

  template <class Row>
  void split(Index anchor, const Row& distances, const LabelVector& labels) {
    positives.clear();
    negatives.clear();
    const Label own = labels(anchor);
    const Index n = labels.size();
    for (Index j = 0; j < n; ++j) {
      if (labels(j) != own) {
        negatives.push_back({distances(j), j});
      } else if (j != anchor) {
        positives.push_back({distances(j), j});
      }
    }
  }
};

}  // namespace detail
}  // namespace contrastive
