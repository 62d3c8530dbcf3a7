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

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/infonce_softmax.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <array>
#include <cmath>
#include <cstddef>
#include <utility>

namespace contrastive {

struct SupConOptions {
  // MeanNonZero: over anchors with positive loss (PML). Mean: over anchors with a positive.
  Reduction reduction = Reduction::MeanNonZero;
  std::size_t workspace_bytes = default_workspace_bytes;  // pairwise workspace
};

namespace detail {

// SupCon on a distance matrix D (N x N, zero diagonal); writes dL/dD into dD
// (zero on entry) when it is not null. Terms: one per anchor.
struct SupConLoss {
  static constexpr const char* name = "supcon_loss";
  using Options = SupConOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     double temperature, const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Scalar inv_t = inverse_temperature<Scalar>(name, temperature);
    metric.check_rows(name, X);
    const Index n = X.rows();
    if (terms) terms->setZero(n);
    const LabelGroups groups(labels);
    // No positive pair or no negative anywhere: loss 0, zero gradient.
    const bool empty = !groups.any_positive || !groups.any_negative;
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> row_buffer(n);
    Scalar sum(0);
    Index anchors = 0, positive_terms = 0;
    auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
      if (empty) return;
      for (Index i = D.first; i < D.end(); ++i) {
        const Index size = groups.class_size(i);
        if (size == 1) continue;
        ++anchors;
        const MaskedExpRow<Scalar> e = masked_exp_row<Scalar>(D.row_vector(i), &i, 1, inv_t, row_buffer);
        // term = log sum_k exp(s_ik - max) - mean_p (s_ip - max); both parts are >= 0.
        const Index* same = groups.class_of(i);
        Scalar positive_logits(0);
        for (Index k = 0; k < size; ++k) {
          if (same[k] != i) positive_logits += e.shift - D(i, same[k]);
        }
        const Scalar term = std::log(e.sum) - positive_logits * inv_t / static_cast<Scalar>(size - 1);
        if (terms) (*terms)(i) = term;
        sum += term;
        if (term > Scalar(0)) ++positive_terms;
        if (!dD || (options.reduction == Reduction::MeanNonZero && !(term > Scalar(0)))) continue;
        // d term_i / d s_ik = softmax_ik - [k in P(i)] / |P(i)|; dL/dD = -(dL/ds) / t.
        Eigen::Map<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> g(dD->row(i), n);
        g = row_buffer * (-inv_t / e.sum);
        const Scalar positive_weight = inv_t / static_cast<Scalar>(size - 1);
        for (Index k = 0; k < size; ++k) {
          if (same[k] != i) g(same[k]) += positive_weight;
        }
      }
    };
    auto finish = [&] { return reduce<Scalar>(options.reduction, sum, anchors, positive_terms); };
    return run_pairwise_loss<Scalar>(name, metric, X, options.workspace_bytes,
                                     panel_loss<dense_gradient>(panel, finish), grads);
  }
};

}  // namespace detail

// supcon_loss(X, labels, temperature, [metric], [options], [value_only | grad_out...]).
// grad = {dX}; terms: one per anchor (0 for anchors without a positive).
template <class Metric = Cosine, class DX, class DL, class... Tail>
auto supcon_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<DL>& labels, double temperature,
                 const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Loss = detail::SupConLoss;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = detail::to_labels(Loss::name, "labels", labels, x.rows());
  const auto eval = [&](const auto& metric, const SupConOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, x, y, temperature, o, g, t); };
  return detail::call_forms<Metric, Scalar, SupConOptions>(detail::CallSpec{Loss::name, {{x.rows(), x.cols()}}},
                                                           eval, tail...);
}

}  // namespace contrastive
