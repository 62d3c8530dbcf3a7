// Neighbourhood components analysis loss (Goldberger et al. 2004), with
// pytorch-metric-learning 2.8.1's NCALoss semantics.
//
// PML takes a softmax over each row of its matrix with the row's own entry
// at -inf: the similarity s under an inverted distance (CosineSimilarity,
// DotProductSimilarity), -d otherwise (LpDistance). In this library's
// distances that is a softmax over -scale * d for every metric (Cosine:
// s = 1 - d, a constant shift no softmax sees; DotProduct: s = -d):
//   q_ij = exp(-scale d_ij) / sum_{k != i} exp(-scale d_ik),   p_i = sum_{j != i, y_j = y_i} q_ij
//   term_i = -log p_i = log sum_{k != i} exp(-scale d_ik) - log sum_{same j} exp(-scale d_ij)
// A row with p_i = 0 is dropped (PML keeps exp != 0): every singleton, and a
// row whose same-class mass underflows (here: exp(-term_i) == 0 in the
// embeddings' scalar type, PML's underflow of each softmax entry up to where
// the two differ in the last of ~745 nats). Gradient:
//   dterm_i/dd_ij = scale ( [y_j = y_i] q_ij / p_i - q_ij ).
// Reduction (options.reduction): Mean (default) over the kept rows (PML's
// MeanReducer on the losses of the rows it keeps), Sum, MeanNonZero (over
// kept rows with term > 0). Sample weights: one per row. terms: one per row of
// X, 0 for a dropped row. N <= 1 or no row kept: loss 0, zero gradient.
// On symmetric tiles, two passes: per row the online log-sum-exps of
// -scale d over all other rows and over its own class, then the pair weights.
//
//   nca_loss<Metric = SquaredEuclidean>(X, labels, [metric], [options], [value_only | grad_out])
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_nca_loss.cpp against
// tests/reference/data/pml_nca.txt, written by PML itself):
//   NCALoss(softmax_scale=s, distance=LpDistance(normalize_embeddings=False, power=2))  SquaredEuclidean, {s}
//   ... distance=LpDistance(normalize_embeddings=False)                                Euclidean, {s}
//   ... distance=CosineSimilarity()                                                    Cosine, {s}
//   ... distance=DotProductSimilarity(normalize_embeddings=False)                      DotProduct, {s}
//   NCALoss(softmax_scale=s)  (PML's default LpDistance(power=2), normalising)         Cosine, {2 s}
// The last holds because |u - v|^2 = 2 (1 - cos) on unit rows: the gradient is
// then with respect to the raw rows, through the normalisation, as PML's.
// normalized(SquaredEuclidean{}) is the same loss at scale s, also through the
// normalisation.
//
// Bad input: softmax_scale <= 0 or non-finite: std::invalid_argument naming
// options.softmax_scale.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/metrics/squared_euclidean.hpp"

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace contrastive {

struct NCAOptions {
  double softmax_scale = 1;  // > 0: the softmax's scale on -distance
  Reducer reduction = Reduction::Mean;  // Mean over the kept rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the pairwise workspace
};

namespace detail {

template <class Scalar>
class NCATiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool reference_tiles = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  // Anchors carry `labels`, the columns `column_labels` (the same on symmetric tiles).
  NCATiles(const LabelVector& labels, const LabelVector& column_labels, const NCAOptions& o, Tally<Scalar> tally,
           Vector<Scalar>* terms)
      : scale_(static_cast<Scalar>(o.softmax_scale)), tally_(std::move(tally)), terms_(terms), n_(labels.size()),
        all_(labels.size(), scale_), same_(labels.size(), scale_) {
    dense_label_ids(labels, column_labels, ids_, col_ids_);
    if (terms_) terms_->setZero(n_);
  }

  void tile(const DistanceTile<Scalar>& t) {
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> same{}, ones{};
    ones.fill(Scalar(1));
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(1), Scalar(0), same.data());
      all_.add_row(i, d, ones.data(), m, scratch);
      if (!t.reference) all_.add_columns(j0, d, ones.data(), m, scratch);  // reference columns are no anchors
      // Most tile rows hold none of the row's class: the same-class softmin
      // would add exactly nothing there, at two exponentials per entry.
      if (!any_kept(same.data(), m)) continue;
      same_.add_row(i, d, same.data(), m, scratch);
      if (t.reference) continue;
      same_.add_columns(j0, d, same.data(), m, scratch);
    }
  }

  // Several processes sharing the tiles (engine/tile_share.hpp).
  void combine_rows(const TileShare<Scalar>& share) {
    all_.combine(share);
    same_.combine(share);
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    all_factor_.setZero(n_);
    same_factor_.setZero(n_);
    for (Index i = 0; i < n_; ++i) {
      const Scalar Sp = same_.sum()(i), Sa = all_.sum()(i);
      if (!(Sp > Scalar(0))) continue;  // no same-class row: dropped
      const Scalar term = scale_ * (same_.shift()(i) - all_.shift()(i)) + std::log(Sa) - std::log(Sp);
      if (!(std::exp(-term) > Scalar(0))) continue;  // p_i underflows: dropped, as PML
      const Scalar weighted = tally_.add(i, term);
      if (terms_) (*terms_)(i) = weighted;
      const Scalar w = tally_.gradient_weight(i, weighted) * scale_;
      if (w == Scalar(0)) continue;  // left out: its factors stay 0
      all_factor_(i) = -w / Sa;
      same_factor_(i) = w / Sp;
    }
    return tally_.finish();
  }

  // W_ij = c_i(d) + c_j(d), c_x(d) = -w_x s q_xj + [same] w_x s q_xj / p_x.
  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> same{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(1), Scalar(0), same.data());
      const Eigen::Map<const Row> dv(t.row(i) + c0, m), sv(same.data(), m);
      Eigen::Map<Row> g(W + (i - t.i0) * t.cols + c0, m);
      if (t.reference) {
        g = all_factor_(i) * all_.row_exp(i, dv);
        if (any_kept(same.data(), m)) g += sv * (same_factor_(i) * same_.row_exp(i, dv));
        continue;
      }
      g = all_factor_(i) * all_.row_exp(i, dv) + all_factor_.segment(j0, m) * all_.column_exp(j0, dv);
      if (!any_kept(same.data(), m)) continue;
      g += sv * (same_factor_(i) * same_.row_exp(i, dv) + same_factor_.segment(j0, m) * same_.column_exp(j0, dv));
    }
  }

 private:
  static bool any_kept(const Scalar* mask, Index m) {
    return Eigen::Map<const Row>(mask, m).maxCoeff() > Scalar(0);
  }

  Scalar scale_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_, col_ids_;
  Index n_;
  OnlineSoftmin<Scalar> all_, same_;
  Row all_factor_, same_factor_;
};

struct NCALoss {
  static constexpr const char* name = "nca_loss";
  using Options = NCAOptions;
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source>
  static Scalar eval(const Metric& metric, const Source& s, const Options& o, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    require_pair_source<Scalar>(name, metric, s);
    require_positive(name, "options.softmax_scale", o.softmax_scale);
    if (!std::isfinite(static_cast<Scalar>(o.softmax_scale))) {
      fail(name, "argument 'options.softmax_scale' overflows the embeddings' scalar type");
    }
    Tally<Scalar> tally(name, "options.reduction", o.reduction, s.X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(name, metric, s, o.workspace_bytes,
                                     NCATiles<Scalar>(s.labels, s.candidate_labels(), o, std::move(tally), terms), grads);
  }
};

}  // namespace detail

// nca_loss(X, labels, [metric], [options], [value_only | grad_out...]): grad = {dX}; terms: one per row.
template <class Metric = SquaredEuclidean, class DX, class... Tail>
auto nca_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::NCALoss, Metric>(X, labels, tail...);
}

// nca_loss(X, labels, reference_set(R, ref_labels[, self_offset]), ...): grad = {dX, dR}.
template <class Metric = SquaredEuclidean, class DX, class DR, class... Tail>
auto nca_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
              const Tail&... tail) {
  return detail::reference_loss<detail::NCALoss, Metric>(X, labels, reference, tail...);
}

}  // namespace contrastive
