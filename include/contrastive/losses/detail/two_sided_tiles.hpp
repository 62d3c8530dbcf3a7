// A per-anchor loss of two log-sum-exps on symmetric tiles: one over the
// anchor's positives (same label, j != i) at scale a, one over its negatives
// at scale b, in this library's distances d:
//   P_i = log sum_{p in P(i)} exp(a d_ip),   N_i = log sum_{n in N(i)} exp(-b d_in),
//   term_i = f(P_i, N_i)
// (multi_similarity_loss, generalized_lifted_structure_loss). The loss gives
// a Spec:
//   using Options = ...;
//   static double positive_scale(const Options&);   // a > 0
//   static double negative_scale(const Options&);   // b > 0
//   template <MetricKind Kind, class Scalar> static Term term(const Options&);
// where Term()(max_p, S_p, min_n, S_n) -> {term, positive_factor, negative_factor}
// reads the positives' largest distance and S_p = sum exp(a (d - max_p)), the
// negatives' smallest and S_n = sum exp(b (min_n - d)) (empty sums are 0), and
// returns the anchor's term and the factors with
//   dterm/dd_ip = positive_factor exp(a (d_ip - max_p)),
//   dterm/dd_in = negative_factor exp(b (min_n - d_in)).
//
// Pass 1: per anchor the online log-sum-exps (OnlineSoftmin over -d at scale
// a, whose shift is -max_p, and over d at scale b). finish(): the terms, tallied
// per row (the anchor's sample weight), and each anchor's two factors. Pass 2:
// the pair weight
//   W_ij = c_i(d_ij) + c_j(d_ij),  c_x(d) = w_x ([same] pf_x exp(a (d - max_x)) + [other] nf_x exp(b (min_x - d))).
// MeanNonZero: rows whose weighted term is not > 0 take no gradient.
#pragma once

#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/engine/tiles.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <cstdint>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

template <class Scalar, class Spec>
class TwoSidedLogSumExpTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool reference_tiles = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
  using Options = typename Spec::Options;

  // Anchors carry `labels`, the columns `column_labels` (the same on symmetric tiles).
  TwoSidedLogSumExpTiles(const LabelVector& labels, const LabelVector& column_labels, const Options& o,
                         Tally<Scalar> tally, Vector<Scalar>* terms)
      : o_(o), tally_(std::move(tally)), terms_(terms), n_(labels.size()),
        positives_(labels.size(), static_cast<Scalar>(Spec::positive_scale(o))),
        negatives_(labels.size(), static_cast<Scalar>(Spec::negative_scale(o))) {
    dense_label_ids(labels, column_labels, ids_, col_ids_);
    if (terms_) terms_->setZero(n_);
  }

  void tile(const DistanceTile<Scalar>& t) {
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> same{}, other{}, minus{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      masks(i, j0, m, same.data(), other.data());
      Eigen::Map<Row>(minus.data(), m) = -Eigen::Map<const Row>(d, m);
      OnlineSoftmin<Scalar>::add_row_split(positives_, negatives_, i, minus.data(), d, same.data(), other.data(), m,
                                           scratch);
      if (t.reference) continue;  // reference columns are no anchors
      positives_.add_columns(j0, minus.data(), same.data(), m, scratch);
      negatives_.add_columns(j0, d, other.data(), m, scratch);
    }
  }

  // Several processes sharing the tiles (engine/tile_share.hpp).
  void combine_rows(const TileShare<Scalar>& share) {
    positives_.combine(share);
    negatives_.combine(share);
  }

  template <MetricKind Kind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    const auto term = Spec::template term<Kind, Scalar>(o_);
    positive_factor_.setZero(n_);
    negative_factor_.setZero(n_);
    for (Index i = 0; i < n_; ++i) {
      const auto a = term(-positives_.shift()(i), positives_.sum()(i), negatives_.shift()(i), negatives_.sum()(i));
      const Scalar weighted = tally_.add(i, a.term);
      if (terms_) (*terms_)(i) = weighted;
      const Scalar w = tally_.gradient_weight(i, weighted);
      if (w == Scalar(0)) continue;  // left out: its factors stay 0
      positive_factor_(i) = w * a.positive_factor;
      negative_factor_(i) = w * a.negative_factor;
    }
    return tally_.finish();
  }

  // Each entry's exponential is its own side's only (a pair is a positive or
  // a negative): one per entry and anchor, its argument blended from the two
  // sides by the 0/1 masks. The blend is exact: both sides' arguments are
  // clamped to (-inf, 0] (an anchor's shift is +inf until it sees its side),
  // so the unused side is finite and its mask's 0 makes it a zero.
  // (Arithmetic inside a select would not vectorise: with trapping math, the
  // default, the compiler keeps it as a branch.)
  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> same{}, other{}, row_e{};
    const Scalar a = positives_.inv_t(), b = negatives_.inv_t();
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      masks(i, j0, m, same.data(), other.data());
      const Eigen::Map<const Row> dv(t.row(i) + c0, m), sv(same.data(), m), ov(other.data(), m);
      Eigen::Map<Row> g(W + (i - t.i0) * t.cols + c0, m);
      // Anchor i's side: exp(a (d - max_p)) = exp((-max_p - (-d)) a), or exp(b (min_n - d)).
      const Scalar sp = positives_.shift()(i), sn = negatives_.shift()(i);
      Eigen::Map<Row> er(row_e.data(), m);
      er = (sv * ((sp + dv) * a).min(Scalar(0)) + ov * ((sn - dv) * b).min(Scalar(0))).exp();
      const Scalar pf = positive_factor_(i), nf = negative_factor_(i);
      if (t.reference) {
        g = (sv * pf + ov * nf) * er;
        continue;
      }
      // Column j's side, for anchor j.
      const auto spj = positives_.shift().segment(j0, m), snj = negatives_.shift().segment(j0, m);
      const auto ec = (sv * ((spj + dv) * a).min(Scalar(0)) + ov * ((snj - dv) * b).min(Scalar(0))).exp();
      g = sv * (pf * er + positive_factor_.segment(j0, m) * ec) + ov * (nf * er + negative_factor_.segment(j0, m) * ec);
    }
  }

 private:
  void masks(Index i, Index j0, Index m, Scalar* same, Scalar* other) const {
    label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(1), Scalar(0), same);
    label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(0), Scalar(1), other);
  }

  const Options& o_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_, col_ids_;
  Index n_;
  OnlineSoftmin<Scalar> positives_, negatives_;
  Row positive_factor_, negative_factor_;
};

}  // namespace detail
}  // namespace contrastive
