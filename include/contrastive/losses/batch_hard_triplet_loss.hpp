// Batch-hard triplet loss (Hermans, Beyer & Leibe 2017, "In Defense of the
// Triplet Loss"): per anchor, its hardest positive and hardest negative.
//
//   p*(a) = argmax_{p != a, y_p = y_a} d(a, p)      n*(a) = argmin_{y_n != y_a} d(a, n)
//   term_a = [d(a, p*) - d(a, n*) + margin]+      (options.soft: softplus(d(a,p*) - d(a,n*) + margin))
//   loss   = reduce over the anchors that have a positive and a negative:
//            Reduction::Mean (default), Sum or MeanNonZero.
//
// Ties pick the lowest index (the gradient flows to that one row only). Under
// Euclidean the choice is made on squared distances, so two candidates whose
// squared distances differ but whose float square roots are equal are not a
// tie: the farther (nearer) square wins. The value is the same either way.
// Anchors lacking a positive or a negative are skipped: term 0, not counted by
// Mean. Terms: one per anchor (length N); a skipped anchor's term is 0. Sample
// weights: one per row, the anchor's.
// options.swap is rejected (invalid_argument).
//
// Reproducing other libraries:
// - TensorFlow Addons tfa.losses.triplet_hard_loss(margin, soft, distance_metric):
//   Metric = Euclidean ("L2"), SquaredEuclidean ("squared-L2"); same margin and
//   soft, except that TFA's soft ignores its margin: give margin = 0 with soft; Reduction::Mean. Identical whenever every anchor of the batch has a
//   positive and a negative (e.g. a P x K batch with K >= 2, P >= 2). TFA
//   averages over all N anchors and, through its masked max/min, gives an
//   anchor without positives d_ap* = 0 (term [margin - d_an*]+) and an anchor
//   without negatives d_an* = max of its row (term [margin]+ or log 2), where
//   we skip both. No option reproduces that; drop such samples from the batch.
// - pytorch-metric-learning TripletMarginLoss + BatchHardMiner: margin = 0.05,
//   Reduction::MeanNonZero (AvgNonZeroReducer), smooth_loss = false; the miner
//   drops anchors without a positive or a negative, as we do. smooth_loss =
//   True with the same margin is soft = true (tests/test_batch_hard_triplet_loss.cpp
//   against tests/reference/data/pml_soft_triplet.txt, written by PML 2.8.1
//   itself, for Cosine, DotProduct, Euclidean, SquaredEuclidean). PML's default
//   LpDistance normalises the embeddings: pass unit rows.
// - PyTorch has no batch-hard loss.
//
// Cost: one symmetric Gram product forward (row panels beyond the workspace),
// one O(N^2) scan, and a sparse backward: two rows per anchor, O(N D).
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// Per anchor: the farthest positive and the closest negative seen so far, on
// the metric's order distances (squared for Euclidean: the same order, no
// square root per pair). Candidates reach an anchor tile by tile in round
// order, not column order, so a tie keeps the lower index explicitly.
template <class Scalar>
class BatchHardTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool order_distances = true;
  static constexpr bool sparse_gradient = true;
  static constexpr bool reference_tiles = true;

  // Anchors carry `labels`; the columns carry `column_labels` (the same
  // labels on symmetric tiles, the reference set's otherwise).
  BatchHardTiles(const LabelVector& labels, const LabelVector& column_labels, const TripletOptions& options,
                 Tally<Scalar> tally, Vector<Scalar>* terms)
      : options_(options), tally_(std::move(tally)), terms_(terms) {
    dense_label_ids(labels, column_labels, ids_, col_ids_);
    const std::size_t n = static_cast<std::size_t>(labels.size());
    pos_d_.assign(n, -std::numeric_limits<Scalar>::infinity());
    neg_d_.assign(n, std::numeric_limits<Scalar>::infinity());
    pos_j_.assign(n, -1);
    neg_j_.assign(n, -1);
  }

  void tile(const DistanceTile<Scalar>& t) {
    constexpr Scalar inf = std::numeric_limits<Scalar>::infinity();
    TileRowBuffer<Scalar> buffer{};
    Scalar* masked = buffer.data();
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i);
      const Index len = t.cols - c0;
      if (len <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      const std::int32_t* lab = col_ids_.data() + j0;
      const std::int32_t li = ids_[static_cast<std::size_t>(i)];
      const std::int32_t ii = static_cast<std::int32_t>(i);
      Scalar* pd = pos_d_.data() + j0;
      Scalar* nd = neg_d_.data() + j0;
      std::int32_t* pj = pos_j_.data() + j0;
      std::int32_t* nj = neg_j_.data() + j0;
      // The column anchors j see i: elementwise selects, vectorised. An index
      // of -1 (nothing yet) sits with an infinite distance no v can tie.
      // Reference columns are no anchors.
      for (Index c = 0; c < (t.reference ? 0 : len); ++c) {
        const bool same = lab[c] == li;
        const Scalar v = d[c];
        const bool tp = same & ((v > pd[c]) | ((v == pd[c]) & (ii < pj[c])));
        const bool other = !same;
        const bool tn = other & ((v < nd[c]) | ((v == nd[c]) & (ii < nj[c])));
        pd[c] = tp ? v : pd[c];
        pj[c] = tp ? ii : pj[c];
        nd[c] = tn ? v : nd[c];
        nj[c] = tn ? ii : nj[c];
      }
      // Row anchor i sees the segment: a vectorised max / min, then the index only on improvement.
      const std::size_t k = static_cast<std::size_t>(i);
      for (Index c = 0; c < len; ++c) masked[c] = lab[c] == li ? d[c] : -inf;
      const Scalar best_p = Eigen::Map<const Vector<Scalar>>(masked, len).maxCoeff();
      if (best_p >= pos_d_[k] && best_p > -inf) {
        Index c = 0;
        while (!(masked[c] == best_p)) ++c;
        const std::int32_t j = static_cast<std::int32_t>(j0 + c);
        if (best_p > pos_d_[k] || j < pos_j_[k]) {
          pos_d_[k] = best_p;
          pos_j_[k] = j;
        }
      }
      for (Index c = 0; c < len; ++c) masked[c] = lab[c] == li ? inf : d[c];
      const Scalar best_n = Eigen::Map<const Vector<Scalar>>(masked, len).minCoeff();
      if (best_n <= neg_d_[k] && best_n < inf) {
        Index c = 0;
        while (!(masked[c] == best_n)) ++c;
        const std::int32_t j = static_cast<std::int32_t>(j0 + c);
        if (best_n < neg_d_[k] || j < neg_j_[k]) {
          neg_d_[k] = best_n;
          neg_j_[k] = j;
        }
      }
    }
  }

  // Several processes sharing the tiles (engine/tile_share.hpp).
  void combine_rows(const TileShare<Scalar>& share) {
    combine_extremum(share, pos_d_, pos_j_, true);
    combine_extremum(share, neg_d_, neg_j_, false);
  }

  template <MetricKind Kind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>* sink) {
    const Index n = static_cast<Index>(ids_.size());
    const Scalar margin = static_cast<Scalar>(options_.margin);
    if (terms_) terms_->setZero(n);
    for (Index a = 0; a < n; ++a) {
      const std::size_t k = static_cast<std::size_t>(a);
      // Anchors lacking a positive or a negative are skipped.
      if (pos_j_[k] < 0 || neg_j_[k] < 0) continue;
      const Scalar d_ap = order_distance_to_distance<Kind>(pos_d_[k]);
      const Scalar d_an = order_distance_to_distance<Kind>(neg_d_[k]);
      const TripletTerm<Scalar> t = triplet_term<Scalar>(d_ap, d_an, margin, options_.soft);
      const Scalar weighted = tally_.add(a, t.value);
      if (terms_) (*terms_)(a) = weighted;
      if (sink) {
        const Scalar slope = t.slope * tally_.weight(a);
        sink->add(a, pos_j_[k], slope, d_ap);
        sink->add(a, neg_j_[k], -slope, d_an);
      }
    }
    return tally_.finish();
  }

 private:
  const TripletOptions& options_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_, col_ids_;
  std::vector<Scalar> pos_d_, neg_d_;
  std::vector<std::int32_t> pos_j_, neg_j_;
};

struct BatchHardTripletLoss {
  static constexpr const char* name = "batch_hard_triplet_loss";
  using Options = TripletOptions;
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source>
  static Scalar eval(const Metric& metric, const Source& s, const Options& options,
                     Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_pair_source<Scalar>(name, metric, s);
    require_triplet_options(name, options, true, false);
    Tally<Scalar> tally(name, "options.reduction", options.reduction, s.X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(
        name, metric, s, options.workspace_bytes,
        BatchHardTiles<Scalar>(s.labels, s.candidate_labels(), options, std::move(tally), terms), grads);
  }
};

}  // namespace detail

// batch_hard_triplet_loss(X, labels, [metric], [options], [value_only | grad_out...])
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_hard_triplet_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                             const Tail&... tail) {
  return detail::labelled_loss<detail::BatchHardTripletLoss, Metric>(X, labels, tail...);
}

// batch_hard_triplet_loss(X, labels, reference_set(R, ref_labels[, self_offset]), ...): anchors
// from X, hardest positive and negative among R's rows; gradients dL/dX, dL/dR.
template <class Metric = Euclidean, class DX, class DR, class... Tail>
auto batch_hard_triplet_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                             const Tail&... tail) {
  return detail::reference_loss<detail::BatchHardTripletLoss, Metric>(X, labels, reference, tail...);
}

}  // namespace contrastive
