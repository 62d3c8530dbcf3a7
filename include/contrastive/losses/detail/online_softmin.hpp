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
    TileRowBuffer<Scalar> cand{}, step{}, exps{};
  };

  OnlineSoftmin(Index n, Scalar inv_t)
      : shift_(Row::Constant(n, std::numeric_limits<Scalar>::infinity())), sum_(Row::Zero(n)), inv_t_(inv_t) {}

  // Anchor i sees distances d[0..m) of which keep[c] (0/1) are in its softmax
  // (one tile row: m <= max_tile_side). Touches anchor i's state only.
  void add_row(Index i, const Scalar* d, const Scalar* keep, Index m, Scratch& scratch) {
    Scalar* cand = scratch.cand.data();
    for (Index c = 0; c < m; ++c) cand[c] = keep[c] > Scalar(0) ? d[c] : inf();
    lower_shift(i, Eigen::Map<const Row>(cand, m).minCoeff());
    const Eigen::Map<const Row> dv(d, m), kv(keep, m);
    sum_(i) += (kv * ((shift_(i) - dv) * inv_t_).min(Scalar(0)).exp()).sum();
  }

  // Anchor i's row split between two softmins: entry c goes to `a` with
  // distance da[c] when in_a[c] is 1, else (in_b[c] = 1 - in_a[c]) to `b` with
  // db[c]. The same as a.add_row(i, da, in_a) then b.add_row(i, db, in_b), with
  // one exponential per entry instead of two.
  static void add_row_split(OnlineSoftmin& a, OnlineSoftmin& b, Index i, const Scalar* da, const Scalar* db,
                            const Scalar* in_a, const Scalar* in_b, Index m, Scratch& scratch) {
    Scalar* ca = scratch.cand.data();
    Scalar* cb = scratch.step.data();
    for (Index c = 0; c < m; ++c) {
      ca[c] = in_a[c] > Scalar(0) ? da[c] : inf();
      cb[c] = in_a[c] > Scalar(0) ? inf() : db[c];
    }
    a.lower_shift(i, Eigen::Map<const Row>(ca, m).minCoeff());
    b.lower_shift(i, Eigen::Map<const Row>(cb, m).minCoeff());
    // Each entry's argument blended from both sides by the masks: exact, as both
    // are clamped to (-inf, 0] (a shift is +inf until its softmin sees an entry).
    const Scalar sa = a.shift_(i), sb = b.shift_(i), ta = a.inv_t_, tb = b.inv_t_;
    const Eigen::Map<const Row> av(da, m), bv(db, m), ia(in_a, m), ib(in_b, m);
    Eigen::Map<Row> ev(scratch.exps.data(), m);
    ev = (ia * ((sa - av) * ta).min(Scalar(0)) + ib * ((sb - bv) * tb).min(Scalar(0))).exp();
    a.sum_(i) += (ia * ev).sum();
    b.sum_(i) += (ib * ev).sum();
  }

  // Anchors j0 .. j0 + m each see one distance d[c] (kept when keep[c] is 1).
  void add_columns(Index j0, const Scalar* d, const Scalar* keep, Index m, Scratch& scratch) {
    Scalar* cand = scratch.cand.data();
    Scalar* step = scratch.step.data();
    Scalar* old = shift_.data() + j0;
    // Three plain loops, each vectorised: a select whose arm is arithmetic
    // would stay a branch under trapping math (the default).
    for (Index c = 0; c < m; ++c) cand[c] = keep[c] > Scalar(0) && d[c] < old[c] ? d[c] : old[c];
    for (Index c = 0; c < m; ++c) step[c] = (cand[c] - old[c]) * inv_t_;
    // The rescaling exponent: 0 unless the shift moves (discards inf - inf).
    for (Index c = 0; c < m; ++c) step[c] = cand[c] < old[c] ? step[c] : Scalar(0);
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
  Scalar inv_t() const { return inv_t_; }

 private:
  static constexpr Scalar inf() { return std::numeric_limits<Scalar>::infinity(); }

  // A smaller shift for anchor i: its sum rescaled to it.
  void lower_shift(Index i, Scalar low) {
    if (low < shift_(i)) {
      sum_(i) *= std::exp((low - shift_(i)) * inv_t_);
      shift_(i) = low;
    }
  }

  Row shift_, sum_;
  Scalar inv_t_;
};

}  // namespace detail
}  // namespace contrastive
