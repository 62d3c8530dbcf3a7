// Supervised contrastive loss (Khosla et al. 2020, "L_out"), with
// pytorch-metric-learning's SupConLoss semantics.
//
// Similarities s_ij = cos(x_i, x_j) / temperature (under another Metric,
// s_ij = -d(x_i, x_j) / temperature; for Cosine the two differ by the constant
// 1 / temperature, which the loss cannot see). For anchor i with positives
// P(i) = { p != i : label p == label i }:
//   term_i = -(1 / |P(i)|) sum_{p in P(i)} [ s_ip - log sum_{k != i} exp(s_ik) ]
//   term_i = 0 when P(i) is empty (the anchor contributes nothing)
//   loss   = Reduction::MeanNonZero (default; PML's AvgNonZeroReducer: mean over
//            anchors with term > 0), Reduction::Mean (mean over the anchors that
//            have a positive), or Sum.
//   grad = {dX}; terms: one per anchor (row of X). Sample weights: one per row,
//   the anchor's (core/reducer.hpp).
//
// Empty sets: a batch without any positive pair, or without any negative pair
// (a single class), has loss 0 and zero gradient, as in PML (which returns
// zero losses unless both pair sets are non-empty). N = 0 gives loss 0.
// Zero vectors have cosine similarity 0 with everything and gradient 0.
//
// Reproducing other libraries:
// - pytorch-metric-learning SupConLoss(temperature) with its default
//   CosineSimilarity and AvgNonZeroReducer: Metric = Cosine,
//   Reduction::MeanNonZero (the defaults).
// - Khosla et al.'s reference code (SupContrast, SupConLoss with
//   base_temperature = temperature, contrast_mode='all', features
//   [bsz, n_views, D] flattened view-major into X with labels repeated per
//   view): its mean runs over every anchor, anchors without a positive
//   counting 0 (recent versions; older ones give NaN for them). That is
//   Reduction::Sum divided by N; with every anchor having a positive it equals
//   Reduction::Mean. A base_temperature b != t scales the loss by t / b.
// - TensorFlow Addons has no SupCon loss.
//
// Stability: each anchor's log-sum-exp is shifted by its largest logit over
// k != i (its smallest distance), so the largest exponential is exactly 1;
// temperature 0.01 on unit vectors in float is finite. Cost: one Gram product
// forward, one product backward (the Cosine metric's), O(N^2) vectorised exp.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/infonce_softmax.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>
#include <utility>

namespace contrastive {

struct SupConOptions {
  // MeanNonZero: over anchors with positive loss (PML). Mean: over anchors with a positive.
  Reducer reduction = Reduction::MeanNonZero;
  std::size_t workspace_bytes = default_workspace_bytes;  // pairwise workspace
};

namespace detail {

// SupCon on a distance matrix D (N x N, zero diagonal); writes dL/dD into dD
// (zero on entry) when it is not null. Terms: one per anchor.
// On symmetric tiles. Pass 1: per anchor, the online softmin over every other
// row and the sum of its positives' distances. finish(): the terms. Pass 2
// (the MeanNonZero filter is known only then): the pair weight
//   W_ij = c_i(d_ij) + c_j(d_ij),  c_a(d) = t^-1 ([same] / |P(a)| - exp((shift_a - d) / t) / S_a)
// for counted anchors a, 0 for the others.
template <class Scalar>
class SupConTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool reference_tiles = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  // column_labels: the reference set's labels, or `labels` itself (the same
  // object) on the batch's symmetric tiles.
  SupConTiles(const LabelVector& labels, const LabelVector& column_labels, Scalar inv_t, const SupConOptions&,
              Tally<Scalar> tally, Vector<Scalar>* terms)
      : tally_(std::move(tally)), terms_(terms), groups_(labels), n_(labels.size()), inv_t_(inv_t),
        softmin_(labels.size(), inv_t), positive_d_(Row::Zero(labels.size())),
        reference_(&labels != &column_labels) {
    dense_label_ids(labels, column_labels, ids_, col_ids_);
    // No positive pair or no negative anywhere: loss 0, zero gradient. Against
    // a reference set the pairs are counted on the tiles instead.
    empty_ = !reference_ && (!groups_.any_positive || !groups_.any_negative);
    if (reference_) {
      positives_.setZero(n_);
      negatives_.setZero(n_);
    }
    if (terms_) terms_->setZero(n_);
    ones_.fill(Scalar(1));
  }

  void tile(const DistanceTile<Scalar>& t) {
    if (empty_) return;
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> same{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      Scalar* S = same_mask(i, j0, m, same.data());
      const Scalar* keep = ones_.data();  // every other row is in the softmax
      softmin_.add_row(i, d, keep, m, scratch);
      const Eigen::Map<const Row> dv(d, m), sv(S, m);
      positive_d_(i) += (dv * sv).sum();
      if (t.reference) {  // reference columns are no anchors
        const Scalar count = sv.sum();
        positives_(i) += count;
        negatives_(i) += static_cast<Scalar>(m) - count;
        continue;
      }
      softmin_.add_columns(j0, d, keep, m, scratch);
      positive_d_.segment(j0, m) += dv * sv;
    }
  }

  // Several processes sharing the symmetric tiles (engine/tile_share.hpp).
  void combine_rows(const TileShare<Scalar>& share) {
    softmin_.combine(share);
    share.sum(positive_d_.data(), n_);
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    row_a_.setZero(n_);
    row_b_.setZero(n_);
    // No query, or no query with a positive and a negative: loss 0 (maxCoeff needs a query).
    if (reference_) empty_ = n_ == 0 || !(positives_.maxCoeff() > Scalar(0)) || !(negatives_.maxCoeff() > Scalar(0));
    if (empty_) return tally_.finish();
    for (Index i = 0; i < n_; ++i) {
      const Scalar p = reference_ ? positives_(i) : static_cast<Scalar>(groups_.class_size(i) - 1);
      if (p == Scalar(0)) continue;
      // term = log sum_k exp(s_ik - max) - mean_p (s_ip - max); both parts are >= 0.
      const Scalar term = tally_.add(
          i, std::log(softmin_.sum()(i)) - (softmin_.shift()(i) - positive_d_(i) / p) * inv_t_);
      if (terms_) (*terms_)(i) = term;
      const Scalar w = tally_.gradient_weight(i, term);
      if (w == Scalar(0)) continue;
      row_a_(i) = -w * inv_t_ / softmin_.sum()(i);
      row_b_(i) = w * inv_t_ / p;
    }
    return tally_.finish();
  }

  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    if (empty_) return;
    TileRowBuffer<Scalar> same{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Eigen::Map<const Row> dv(t.row(i) + c0, m);
      const Eigen::Map<const Row> sv(same_mask(i, j0, m, same.data()), m);
      Eigen::Map<Row> g(W + (i - t.i0) * t.cols + c0, m);
      if (t.reference) {
        g = row_a_(i) * softmin_.row_exp(i, dv) + row_b_(i) * sv;
        continue;
      }
      g = row_a_(i) * softmin_.row_exp(i, dv) + row_b_(i) * sv +
          row_a_.segment(j0, m) * softmin_.column_exp(j0, dv) + row_b_.segment(j0, m) * sv;
    }
  }

 private:
  Scalar* same_mask(Index i, Index j0, Index m, Scalar* out) const {
    label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(1), Scalar(0), out);
    return out;
  }

  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  LabelGroups groups_;
  std::vector<std::int32_t> ids_, col_ids_;
  Index n_;
  Scalar inv_t_;
  bool empty_ = false;
  OnlineSoftmin<Scalar> softmin_;
  Row positive_d_, row_a_, row_b_;
  bool reference_;
  Row positives_, negatives_;  // reference tiles: each query's pairs, counted
  TileRowBuffer<Scalar> ones_;
};

struct SupConLoss : TemperatureLoss<SupConLoss, SupConTiles> {
  static constexpr const char* name = "supcon_loss";
  using Options = SupConOptions;
};

}  // namespace detail

// supcon_loss(X, labels, temperature, [metric], [options], [value_only | grad_out...]).
// grad = {dX}; terms: one per anchor (0 for anchors without a positive).
template <class Metric = Cosine, class DX, class... Tail>
auto supcon_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, double temperature,
                 const Tail&... tail) {
  return detail::labelled_loss_with<detail::SupConLoss, Metric>(X, labels, temperature, tail...);
}

// supcon_loss(X, labels, reference_set(R, ref_labels[, self_offset]), temperature, ...): anchors from X,
// the softmax over R's rows; grad = {dX, dR}.
template <class Metric = Cosine, class DX, class DR, class... Tail>
auto supcon_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                 double temperature, const Tail&... tail) {
  return detail::reference_loss_with<detail::SupConLoss, Metric>(X, labels, reference, temperature, tail...);
}

}  // namespace contrastive
