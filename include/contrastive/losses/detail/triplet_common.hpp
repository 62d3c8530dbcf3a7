// Internals shared by the triplet losses: option checks and the per-triplet
// term (hinge or softplus) with its slope. The per-anchor split of a distance
// row into positives and negatives is AnchorSides (core/label_groups.hpp).
#pragma once

#include "contrastive/core/label_groups.hpp"
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

// The label-set triplet losses' tile path (batch-all's hinge, semi-hard) runs
// while the positives per anchor average at most this (sum over classes of
// n_c (n_c - 1), over N): up to it the O(N^2 K) compares on tiles beat the
// row panels' sort, and the per-pair state stays within a few times 32 values
// per row.
constexpr Index tile_positives_per_anchor = 32;

// Whether a batch with these classes takes the tile path.
inline bool few_positives_per_anchor(const LabelGroups& groups) {
  const Index n = static_cast<Index>(groups.ids.size());
  Index pairs = 0;
  for (Index i = 0; i < n; ++i) pairs += groups.class_size(i) - 1;
  return pairs <= tile_positives_per_anchor * n;
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
// exactly 0 is inactive and gets no gradient. soft: softplus(d_ap - d_an +
// margin) (pytorch-metric-learning's smooth_loss; margin 0 is Hermans et al.'s
// soft margin).
template <class Scalar>
TripletTerm<Scalar> triplet_term(Scalar d_ap, Scalar d_an, Scalar margin, bool soft) {
  const Scalar h = d_ap - d_an + margin;
  if (soft) return softplus_term<Scalar>(h);
  if (h > Scalar(0)) return {h, Scalar(1)};
  return {Scalar(0), Scalar(0)};
}

}  // namespace detail
}  // namespace contrastive
