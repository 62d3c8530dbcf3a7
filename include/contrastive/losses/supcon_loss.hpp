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
//   grad = {dX}; terms: one per anchor (row of X).
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

#include "contrastive/core/evaluate.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/infonce_softmax.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/distance.hpp"

#include <array>
#include <cmath>
#include <utility>

namespace contrastive {

struct SupConOptions {
  // MeanNonZero: over anchors with positive loss (PML). Mean: over anchors with a positive.
  Reduction reduction = Reduction::MeanNonZero;
};

namespace detail {

// SupCon on a distance matrix D (N x N, zero diagonal); writes dL/dD into dD
// (zero on entry) when it is not null. Terms: one per anchor.
template <class Scalar>
Scalar supcon_on_distances(const RowMatrix<Scalar>& D, const LabelVector& labels, Scalar inv_t,
                           Reduction reduction, RowMatrix<Scalar>* dD, Vector<Scalar>* terms) {
  const Index n = D.rows();
  Vector<Scalar> term = Vector<Scalar>::Zero(n);
  const LabelGroups groups(labels);
  if (!groups.any_positive || !groups.any_negative) {
    if (terms) *terms = term;
    return Scalar(0);
  }
  Vector<Scalar> exp_sum = Vector<Scalar>::Zero(n);
  Eigen::Matrix<Scalar, 1, Eigen::Dynamic> row_buffer(n);
  Scalar sum(0);
  Index anchors = 0, positive_terms = 0;
  for (Index i = 0; i < n; ++i) {
    const Index size = groups.class_size(i);
    if (size == 1) continue;
    ++anchors;
    // Always reduced in the same aligned buffer, so the value-only call returns
    // exactly the same value; with a gradient to come, the row waits in dD.
    const MaskedExpRow<Scalar> e = masked_exp_row<Scalar>(D.row(i), &i, 1, inv_t, row_buffer);
    if (dD) dD->row(i) = row_buffer;
    exp_sum(i) = e.sum;
    // term = log sum_k exp(s_ik - max) - mean_p (s_ip - max); both parts are >= 0.
    const Index* same = groups.class_of(i);
    Scalar positive_logits(0);
    for (Index k = 0; k < size; ++k) {
      if (same[k] != i) positive_logits += e.shift - D(i, same[k]);
    }
    term(i) = std::log(e.sum) - positive_logits * inv_t / static_cast<Scalar>(size - 1);
    sum += term(i);
    if (term(i) > Scalar(0)) ++positive_terms;
  }
  const Reduced<Scalar> reduced = reduce<Scalar>(reduction, sum, anchors, positive_terms);
  if (terms) *terms = term;
  if (!dD) return reduced.value;

  // d term_i / d s_ik = softmax_ik - [k in P(i)] / |P(i)|; dL/dD = -(dL/ds) / t.
  const Scalar scale = reduced.weight * inv_t;
  for (Index i = 0; i < n; ++i) {
    const Index size = groups.class_size(i);
    if (size == 1) continue;
    if (reduction == Reduction::MeanNonZero && !(term(i) > Scalar(0))) {
      dD->row(i).setZero();
      continue;
    }
    dD->row(i) *= -scale / exp_sum(i);
    const Index* same = groups.class_of(i);
    const Scalar positive_weight = scale / static_cast<Scalar>(size - 1);
    for (Index k = 0; k < size; ++k) {
      if (same[k] != i) (*dD)(i, same[k]) += positive_weight;
    }
  }
  return reduced.value;
}

template <class Metric, class Scalar>
Scalar supcon_eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, double temperature,
                   const SupConOptions& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const char* fn = "supcon_loss";
  require_embeddings<Scalar>(fn, "X", X);
  const Scalar inv_t = inverse_temperature<Scalar>(fn, temperature);
  auto loss = [&](const RowMatrix<Scalar>& D, RowMatrix<Scalar>* dD) {
    return supcon_on_distances<Scalar>(D, labels, inv_t, options.reduction, dD, terms);
  };
  return pairwise_pipeline<Metric, Scalar>(X, loss, grads);
}

}  // namespace detail

// grad = {dX}; terms: one per anchor (0 for anchors without a positive).
template <class Metric = Cosine, class DX, class DL>
LossResult<typename DX::Scalar> supcon_loss(const Eigen::MatrixBase<DX>& X,
                                            const Eigen::DenseBase<DL>& labels, double temperature,
                                            const SupConOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::to_labels("supcon_loss", "labels", labels, x.rows());
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::supcon_eval<Metric, Scalar>(x, l, temperature, options, g, t);
  });
}

template <class Metric = Cosine, class DX, class DL>
typename DX::Scalar supcon_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<DL>& labels,
                                double temperature, const SupConOptions& options, ValueOnly) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::to_labels("supcon_loss", "labels", labels, x.rows());
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::supcon_eval<Metric, Scalar>(x, l, temperature, options, g, t);
  });
}

// Gradient written into a caller-owned buffer shaped like X.
template <class Metric = Cosine, class DX, class DL, class G>
typename DX::Scalar supcon_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<DL>& labels,
                                double temperature, const SupConOptions& options,
                                const Eigen::MatrixBase<G>& grad_out) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::to_labels("supcon_loss", "labels", labels, x.rows());
  return detail::evaluate_into<Scalar>(
      "supcon_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::supcon_eval<Metric, Scalar>(x, l, temperature, options, g, t);
      },
      {{{x.rows(), x.cols()}}}, grad_out);
}

}  // namespace contrastive
