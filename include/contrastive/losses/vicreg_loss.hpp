// VICReg (Bardes, Ponce & LeCun 2022) on two views, with
// pytorch-metric-learning 2.8.1's VICRegLoss semantics.
//
// Z, Z' (N x D, row i of one view paired with row i of the other), lambda =
// invariance_lambda, mu = variance_mu, nu = covariance_v:
//   invariance  s(Z, Z') = (1 / (N D)) sum_i ||z_i - z'_i||^2              (PML: mean over rows of the
//                                                                         row means, MeanReducer)
//   variance    v(Z) = (1 / D) sum_d [1 - sqrt(Var_d(Z) + eps)]+ / 2       (Var unbiased, / (N - 1), as
//                                                                         torch's var; PML's "/ 2")
//   covariance  c(Z) = (1 / D) sum_{d != e} Cov(Z)_de^2,  Cov = Zc^T Zc / (N - 1), Zc = Z - column means
//   loss = lambda s(Z, Z') + mu (v(Z) + v(Z')) + nu (c(Z) + c(Z'))
// Gradient (exact; the hinge has zero slope where 1 - std <= 0, as torch's relu):
//   ds/dZ = 2 (Z - Z') / (N D),  dv/dz_id = -[1 - std_d > 0] (z_id - m_d) / (2 D (N - 1) std_d),
//   dc/dZ = 4 Zc Off(Cov) / (D (N - 1))   (Off: the off-diagonal part; the centring's own term vanishes)
//
// The metric: PML's VICRegLoss refuses a distance; the invariance is the mean
// squared Euclidean distance of the pairs, so the loss takes SquaredEuclidean
// (the default; Mahalanobis(L, squared) gives the loss on the rows L z, with
// dL/dL) and rejects any other metric (std::invalid_argument naming `metric`).
// No options.reduction and no sample weights: the variance and covariance are
// statistics of the whole batch, not per-sample terms; the reduction is PML's
// (MeanReducer over rows and over dimensions). terms: the four parts as PML
// returns them, weighted: {lambda s, mu v(Z), mu v(Z'), nu (c(Z) + c(Z'))}.
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_vicreg_loss.cpp against
// tests/reference/data/pml_vicreg.txt, written by PML itself):
//   VICRegLoss(invariance_lambda, variance_mu, covariance_v, eps)(Z, ref_emb=Z')
//       vicreg_loss(Z, Z', {invariance_lambda, variance_mu, covariance_v, eps}); grad = {dZ, dZ'}
//
// Memory: O(D^2) for the covariances, O(N D) for the centred views.
// Bad input: views of different shapes, fewer than 2 rows (the unbiased
// variance divides by N - 1; torch gives NaN), negative or non-finite weights,
// eps <= 0 or non-finite, non-finite views: std::invalid_argument naming the argument.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/losses/detail/option_checks.hpp"
#include "contrastive/metrics/squared_euclidean.hpp"

#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace contrastive {

struct VICRegOptions {
  double invariance_lambda = 25;  // >= 0
  double variance_mu = 25;        // >= 0
  double covariance_v = 1;        // >= 0
  double eps = 1e-4;              // > 0, inside the square root of the variance
};

namespace detail {

struct VICRegLoss {
  static constexpr const char* name = "vicreg_loss";

  // One view's variance and covariance parts, and (when dZ) their gradient, added to dZ.
  template <class Scalar>
  static void view_terms(const ConstRowRef<Scalar>& Z, const VICRegOptions& o, Scalar& variance, Scalar& covariance,
                         RowMatrix<Scalar>* dZ) {
    const Index n = Z.rows(), d = Z.cols();
    const RowMatrix<Scalar> Zc = Z.rowwise() - Z.colwise().mean();
    const Scalar n1 = static_cast<Scalar>(n - 1), dd = static_cast<Scalar>(d);
    const Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> C = (Zc.transpose() * Zc) / n1;
    const Scalar eps = static_cast<Scalar>(o.eps);
    variance = Scalar(0);
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> slope = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>::Zero(d);
    for (Index k = 0; k < d; ++k) {
      // torch's var: the centred sum of squares / (N - 1), here the covariance's diagonal.
      const Scalar sd = std::sqrt(C(k, k) + eps);
      const Scalar hinge = Scalar(1) - sd;
      if (hinge > Scalar(0)) {
        variance += hinge / Scalar(2);
        slope(k) = -Scalar(1) / (Scalar(2) * dd * n1 * sd);
      }
    }
    variance /= dd;
    Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic> off = C;
    off.diagonal().setZero();
    covariance = off.squaredNorm() / dd;
    if (!dZ) return;
    const Scalar mu = static_cast<Scalar>(o.variance_mu), nu = static_cast<Scalar>(o.covariance_v);
    // Both parts are functions of the centred rows; the centring's Jacobian
    // subtracts each column's mean gradient, which is 0 for both (columns of Zc sum to 0).
    RowMatrix<Scalar> g = mu * (Zc.array().rowwise() * slope.array()).matrix();
    g.noalias() += (Scalar(4) * nu / (dd * n1)) * (Zc * off);
    *dZ += g.rowwise() - g.colwise().mean();
  }

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B,
                     const VICRegOptions& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "Z", A);
    require_embeddings<Scalar>(name, "Z2", B);
    require_same_shape(name, "Z", A, "Z2", B);
    if (A.rows() < 2) {
      fail(name, "argument 'Z' has " + std::to_string(A.rows()) +
                     " rows; VICReg's unbiased variance needs at least 2");
    }
    require_non_negative(name, "options.invariance_lambda", o.invariance_lambda);
    require_non_negative(name, "options.variance_mu", o.variance_mu);
    require_non_negative(name, "options.covariance_v", o.covariance_v);
    require_positive(name, "options.eps", o.eps);
    require_metric_kind<MetricKind::SquaredEuclidean, Scalar>(
        name, metric, A,
        "SquaredEuclidean (pytorch-metric-learning's VICRegLoss takes no distance; its invariance is the "
        "mean squared Euclidean distance)");
    return metric.template with_rows<Scalar>(A, [&](auto, const ConstRowRef<Scalar>& ZA) {
      return metric.template with_rows<Scalar>(B, [&](auto, const ConstRowRef<Scalar>& ZB) {
        const Index n = ZA.rows(), d = ZA.cols();
        const Scalar lambda = static_cast<Scalar>(o.invariance_lambda);
        const Scalar mu = static_cast<Scalar>(o.variance_mu), nu = static_cast<Scalar>(o.covariance_v);
        const RowMatrix<Scalar> diff = ZA - ZB;
        const Scalar nd = static_cast<Scalar>(n) * static_cast<Scalar>(d);
        const Scalar invariance = diff.squaredNorm() / nd;
        RowMatrix<Scalar> dA, dB;
        if (grads) {
          dA = (Scalar(2) * lambda / nd) * diff;
          dB = -dA;
        }
        Scalar va, ca, vb, cb;
        view_terms<Scalar>(ZA, o, va, ca, grads ? &dA : nullptr);
        view_terms<Scalar>(ZB, o, vb, cb, grads ? &dB : nullptr);
        if (terms) {
          terms->resize(4);
          *terms << lambda * invariance, mu * va, mu * vb, nu * (ca + cb);
        }
        const Scalar value = lambda * invariance + mu * (va + vb) + nu * (ca + cb);
        if (grads) {
          std::vector<RowMatrix<Scalar>> ga, gb;
          metric.template rows_backward<Scalar>(A, std::move(dA), ga);
          metric.template rows_backward<Scalar>(B, std::move(dB), gb);
          grads->clear();
          grads->push_back(std::move(ga[0]));
          grads->push_back(std::move(gb[0]));
          ga[0] = RowMatrix<Scalar>();
          add_parameter_gradients(ga, gb);
          for (std::size_t k = 1; k < ga.size(); ++k) grads->push_back(std::move(ga[k]));
        }
        return value;
      });
    });
  }
};

}  // namespace detail

// vicreg_loss(Z, Z2, [SquaredEuclidean], [options], [value_only | grad_Z, grad_Z2, ...]):
// grad = {dZ, dZ2}; terms = {invariance, variance(Z), variance(Z2), covariance}, weighted.
template <class Metric = SquaredEuclidean, class D1, class D2, class... Tail>
auto vicreg_loss(const Eigen::MatrixBase<D1>& Z, const Eigen::MatrixBase<D2>& Z2, const Tail&... tail) {
  using Scalar = typename D1::Scalar;
  using Loss = detail::VICRegLoss;
  detail::check_same_scalar<D1, D2>();
  const ConstRowRef<Scalar> a(Z.derived()), b(Z2.derived());
  const auto eval = [&](const auto& metric, const VICRegOptions& o, detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return Loss::eval<Scalar>(metric, a, b, o, g, t);
  };
  return detail::call_forms<Metric, Scalar, VICRegOptions>(
      detail::CallSpec{Loss::name, {{a.rows(), a.cols()}, {b.rows(), b.cols()}}}, eval, tail...);
}

}  // namespace contrastive
