// The InfoNCE losses' per-anchor softmax over -d / t, accumulated tile by
// tile (the online log-sum-exp of FlashAttention): per anchor the smallest
// kept distance so far (the shift, so the largest exponential is exactly 1)
// and the sum of exp((shift - d) / t) over the kept entries. A smaller shift
// rescales the sum by exp((new - old) / t) <= 1, so nothing overflows.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/engine/tile_share.hpp"
#include "contrastive/engine/tiles.hpp"

#include <cmath>
#include <cstddef>
#include <limits>

namespace contrastive {
namespace detail {

template <class Scalar>
class OnlineSoftmin {
 public:
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  // Per-call scratch of one tile row, owned by the caller (one per thread).
  struct Scratch {
    TileRowBuffer<Scalar> cand{}, step{};
  };

  OnlineSoftmin(Index n, Scalar inv_t)
      : shift_(Row::Constant(n, std::numeric_limits<Scalar>::infinity())), sum_(Row::Zero(n)), inv_t_(inv_t) {}

  // Anchor i sees distances d[0..m) of which keep[c] (0/1) are in its softmax
  // (one tile row: m <= max_tile_side). Touches anchor i's state only.
  void add_row(Index i, const Scalar* d, const Scalar* keep, Index m, Scratch& scratch) {
    Scalar* cand = scratch.cand.data();
    for (Index c = 0; c < m; ++c) cand[c] = keep[c] > Scalar(0) ? d[c] : inf();
    const Scalar low = Eigen::Map<const Row>(cand, m).minCoeff();
    if (low < shift_(i)) {
      sum_(i) *= std::exp((low - shift_(i)) * inv_t_);
      shift_(i) = low;
    }
    const Eigen::Map<const Row> dv(d, m), kv(keep, m);
    sum_(i) += (kv * ((shift_(i) - dv) * inv_t_).min(Scalar(0)).exp()).sum();
  }

  // Anchors j0 .. j0 + m each see one distance d[c] (kept when keep[c] is 1).
  void add_columns(Index j0, const Scalar* d, const Scalar* keep, Index m, Scratch& scratch) {
    Scalar* cand = scratch.cand.data();
    Scalar* step = scratch.step.data();
    Scalar* old = shift_.data() + j0;
    for (Index c = 0; c < m; ++c) {
      cand[c] = keep[c] > Scalar(0) && d[c] < old[c] ? d[c] : old[c];
      // The rescaling exponent: 0 unless the shift moves (avoids inf - inf).
      step[c] = cand[c] < old[c] ? (cand[c] - old[c]) * inv_t_ : Scalar(0);
    }
    const Eigen::Map<const Row> dv(d, m), kv(keep, m), nv(cand, m), sv(step, m);
    sum_.segment(j0, m) = sum_.segment(j0, m) * sv.exp() + kv * ((nv - dv) * inv_t_).min(Scalar(0)).exp();
    shift_.segment(j0, m) = nv;
  }

  // exp((shift_a - d) / t) for anchor a (clamped at 1: masked entries may lie below the shift).
  template <class D>
  auto row_exp(Index a, const D& d) const {
    return ((shift_(a) - d) * inv_t_).min(Scalar(0)).exp();
  }
  template <class D>
  auto column_exp(Index j0, const D& d) const {
    return ((shift_.segment(j0, d.size()) - d) * inv_t_).min(Scalar(0)).exp();
  }

  // The parts' softmins of the same anchors as one (engine/tile_share.hpp):
  // the smallest shift, each part's sum rescaled to it, then summed.
  void combine(const TileShare<Scalar>& share) {
    const Row mine = shift_;
    share.min(shift_.data(), shift_.size());
    for (Index i = 0; i < shift_.size(); ++i) {
      // A part that saw nothing has sum 0 (and shift inf: exp(-inf) = 0).
      if (mine(i) != shift_(i)) sum_(i) *= std::exp((shift_(i) - mine(i)) * inv_t_);
    }
    share.sum(sum_.data(), sum_.size());
  }

  const Row& shift() const { return shift_; }
  const Row& sum() const { return sum_; }

 private:
  static constexpr Scalar inf() { return std::numeric_limits<Scalar>::infinity(); }

  Row shift_, sum_;
  Scalar inv_t_;
};

}  // namespace detail
}  // namespace contrastive
