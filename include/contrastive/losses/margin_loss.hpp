// Margin loss of Wu, Manmatha, Smola & Kraehenbuehl 2017, "Sampling Matters in
// Deep Embedding Learning", with the gradient with respect to beta as well.
//
// Every row a is an anchor; for every other row b (ordered pairs (a, b), a != b)
//   positive pair (same label):       [d(a, b) - beta_a + alpha]+
//   negative pair (different labels): [beta_a - d(a, b) + alpha]+
// beta_a = options.beta, or options.class_beta(label of a): the ANCHOR's class
// picks beta. Each unordered pair appears twice, once per anchor; under Mean and
// MeanNonZero that changes nothing for a scalar beta, under Sum it doubles.
//
// options.triplet_weights = true weights every pair as pytorch-metric-learning's
// "all triplets" does: each (anchor, positive, negative) triplet contributes its
// positive and its negative term, so (a, p) counts once per negative of a and
// (a, n) once per positive of a (O(N^2) all the same: no triplet is formed).
//
// Regulariser on beta (options.nu, default 0, added only where there is at least
// one term): scalar beta: + nu * beta. Per-class betas: + nu * sum over "uses"
// of beta_a, times the reduction's weight (1/divisor); a use is a triplet
// (triplet_weights) or an ordered pair (otherwise).
//
// Reduction (default MeanNonZero): the weighted term sum divided by the weighted
// count of terms with positive loss (PML's divisor num_pos_pairs + num_neg_pairs).
// Mean divides by the weighted count of all terms; Sum divides by 1.
//
// Result: MarginLossResult<Scalar>: value, grad = {dX}, terms = the unweighted
// loss of every ordered pair (a, b), a != b, in row-major order (N(N-1) terms),
// beta_grad = dL/dbeta: length 1 for a scalar beta, else class_beta.size().
//
// Reproducing pytorch-metric-learning MarginLoss(margin=alpha, nu, beta,
// triplets_per_anchor="all", learn_beta, num_classes) with its default
// LpDistance(normalize_embeddings=True) and DivisorReducer:
//   margin_loss on row-normalised embeddings with {alpha, beta (or class_beta =
//   beta repeated num_classes times), nu = learn_beta ? nu : 0,
//   triplet_weights = true, MeanNonZero}. Proved by tests/test_margin_loss.cpp
//   against tests/reference/data/pair_margin_*.txt. (PML returns 0 when no
//   triplet exists; so do we.)
#pragma once

#include "contrastive/core/evaluate.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <string>
#include <type_traits>

namespace contrastive {

struct MarginOptions {
  double alpha = 0.2;           // margin around the boundary beta
  double beta = 1.2;            // the boundary, when class_beta is empty
  Eigen::VectorXd class_beta;   // optional: one boundary per class, indexed by label in [0, size)
  double nu = 0;                // regulariser weight on beta
  bool triplet_weights = false; // weight pairs as PML's triplets_per_anchor="all"
  Reduction reduction = Reduction::MeanNonZero;
};

template <class Scalar>
struct MarginLossResult : LossResult<Scalar> {
  Vector<Scalar> beta_grad;  // dL/dbeta, or dL/dclass_beta
};

namespace detail {

inline void validate_margin_options(const char* function, const MarginOptions& o,
                                    const LabelVector& labels) {
  require_non_negative(function, "options.alpha", o.alpha);
  require_finite_scalar(function, "options.beta", o.beta);
  require_non_negative(function, "options.nu", o.nu);
  if (o.class_beta.size() == 0) return;
  require_finite_vector<double>(function, "options.class_beta", o.class_beta);
  for (Index i = 0; i < labels.size(); ++i) {
    if (labels(i) < 0 || labels(i) >= o.class_beta.size()) {
      fail(function, "argument 'labels' has " + std::to_string(labels(i)) + " at row " +
                         std::to_string(i) + ", outside [0, " + std::to_string(o.class_beta.size()) +
                         ") required by 'options.class_beta' (one beta per class)");
    }
  }
}

inline Index margin_beta_count(const MarginOptions& o) {
  return o.class_beta.size() == 0 ? Index(1) : o.class_beta.size();
}

template <class Metric, class Scalar>
Scalar margin_eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const MarginOptions& o,
                   Gradients<Scalar>* grads, Vector<Scalar>* terms, Vector<Scalar>* beta_grad) {
  const bool per_class = o.class_beta.size() != 0;
  const Index n_beta = margin_beta_count(o);
  const Vector<Scalar> betas = per_class ? Vector<Scalar>(o.class_beta.template cast<Scalar>())
                                         : Vector<Scalar>::Constant(1, static_cast<Scalar>(o.beta));
  const Scalar alpha = static_cast<Scalar>(o.alpha);
  const Scalar nu = static_cast<Scalar>(o.nu);

  auto loss = [&](const RowMatrix<Scalar>& D, RowMatrix<Scalar>* dD) {
    const Index n = D.rows();
    // Per beta: weighted sum of the hinge slopes d term / d beta, and the uses for the regulariser.
    Vector<Scalar> beta_slope = Vector<Scalar>::Zero(n_beta);
    Vector<Scalar> uses = Vector<Scalar>::Zero(n_beta);
    if (terms) terms->resize(n * (n > 0 ? n - 1 : 0));
    Scalar sum = Scalar(0);
    Index count = 0;
    Index positive = 0;
    Index k = 0;
    for (Index a = 0; a < n; ++a) {
      Index n_pos = 0;
      for (Index b = 0; b < n; ++b) n_pos += (b != a && labels(b) == labels(a)) ? 1 : 0;
      const Index n_neg = n - 1 - n_pos;
      const Index c = per_class ? static_cast<Index>(labels(a)) : 0;
      const Scalar beta = betas(c);
      uses(c) += static_cast<Scalar>(o.triplet_weights ? n_pos * n_neg : n - 1);
      for (Index b = 0; b < n; ++b) {
        if (b == a) continue;
        const bool similar = labels(b) == labels(a);
        const Scalar h = similar ? D(a, b) - beta + alpha : beta - D(a, b) + alpha;
        const Scalar t = h > Scalar(0) ? h : Scalar(0);
        const Index w = o.triplet_weights ? (similar ? n_neg : n_pos) : 1;
        if (terms) (*terms)(k) = t;
        ++k;
        sum += static_cast<Scalar>(w) * t;
        count += w;
        if (t > Scalar(0)) {
          positive += w;
          const Scalar sign = similar ? Scalar(1) : Scalar(-1);
          if (dD) (*dD)(a, b) = sign * static_cast<Scalar>(w);
          beta_slope(c) -= sign * static_cast<Scalar>(w);
        }
      }
    }
    const Reduced<Scalar> r = reduce<Scalar>(o.reduction, sum, count, positive);
    Scalar value = r.value;
    if (dD) *dD *= r.weight;
    Vector<Scalar> gbeta = beta_slope * r.weight;
    if (count > 0 && nu != Scalar(0)) {
      if (per_class) {
        value += nu * r.weight * uses.dot(betas);
        gbeta += nu * r.weight * uses;
      } else {
        value += nu * betas(0);
        gbeta(0) += nu;
      }
    }
    if (beta_grad) *beta_grad = gbeta;
    return value;
  };
  return pairwise_pipeline<Metric, Scalar>(X, loss, grads);
}

}  // namespace detail

template <class Metric = Euclidean, class DX, class L>
MarginLossResult<typename DX::Scalar> margin_loss(const Eigen::MatrixBase<DX>& X,
                                                  const Eigen::DenseBase<L>& labels,
                                                  const MarginOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "margin_loss";
  const ConstRowRef<Scalar> x(X.derived());
  detail::require_embeddings<Scalar>(fn, "X", x);
  const LabelVector y = detail::to_labels(fn, "labels", labels, x.rows());
  detail::validate_margin_options(fn, options, y);
  MarginLossResult<Scalar> result;
  result.value = detail::margin_eval<Metric, Scalar>(x, y, options, &result.grad, &result.terms,
                                                     &result.beta_grad);
  return result;
}

template <class Metric = Euclidean, class DX, class L>
typename DX::Scalar margin_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<L>& labels,
                                const MarginOptions& options, ValueOnly) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "margin_loss";
  const ConstRowRef<Scalar> x(X.derived());
  detail::require_embeddings<Scalar>(fn, "X", x);
  const LabelVector y = detail::to_labels(fn, "labels", labels, x.rows());
  detail::validate_margin_options(fn, options, y);
  return detail::margin_eval<Metric, Scalar>(x, y, options, nullptr, nullptr, nullptr);
}

// dL/dX into grad_out (caller-owned, shaped like X).
template <class Metric = Euclidean, class DX, class L, class G>
typename DX::Scalar margin_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<L>& labels,
                                const MarginOptions& options, const Eigen::MatrixBase<G>& grad_out) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "margin_loss";
  const ConstRowRef<Scalar> x(X.derived());
  detail::require_embeddings<Scalar>(fn, "X", x);
  const LabelVector y = detail::to_labels(fn, "labels", labels, x.rows());
  detail::validate_margin_options(fn, options, y);
  return detail::evaluate_into<Scalar>(
      fn,
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>*) {
        return detail::margin_eval<Metric, Scalar>(x, y, options, g, nullptr, nullptr);
      },
      {{{x.rows(), x.cols()}}}, grad_out);
}

// dL/dX into grad_out and dL/dbeta into beta_grad_out (a vector of length 1, or
// class_beta.size()). Both shapes are checked first; nothing is written on error.
template <class Metric = Euclidean, class DX, class L, class G, class GB>
typename DX::Scalar margin_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<L>& labels,
                                const MarginOptions& options, const Eigen::MatrixBase<G>& grad_out,
                                const Eigen::MatrixBase<GB>& beta_grad_out) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  static_assert(std::is_same<typename GB::Scalar, Scalar>::value,
                "contrastive: the beta gradient output must have the embeddings' Scalar type");
  const char* fn = "margin_loss";
  const ConstRowRef<Scalar> x(X.derived());
  detail::require_embeddings<Scalar>(fn, "X", x);
  const LabelVector y = detail::to_labels(fn, "labels", labels, x.rows());
  detail::validate_margin_options(fn, options, y);
  detail::require_gradient_output(fn, "grad", grad_out, x.rows(), x.cols());
  detail::require_gradient_output(fn, "beta_grad", beta_grad_out, detail::margin_beta_count(options), 1);
  Vector<Scalar> beta_grad;
  const Scalar value = detail::evaluate_into<Scalar>(
      fn,
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>*) {
        return detail::margin_eval<Metric, Scalar>(x, y, options, g, nullptr, &beta_grad);
      },
      {{{x.rows(), x.cols()}}}, grad_out);
  Eigen::MatrixBase<GB>& target = const_cast<Eigen::MatrixBase<GB>&>(beta_grad_out);
  target.derived() = beta_grad;
  return value;
}

}  // namespace contrastive
