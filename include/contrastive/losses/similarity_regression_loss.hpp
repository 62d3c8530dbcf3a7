// Similarity regression: squared error between each pair's similarity and a
// target score, for row i of X1 and row i of X2:
//   term_i = (s(x1_i, x2_i) - target_i)^2,  reduced with `reduction` (default Mean).
// The similarity comes from the Metric's distance d:
//   Cosine:                       s = 1 - d = cos(x1, x2)      (in [-1, 1])
//   Euclidean, SquaredEuclidean:  s = 1 / (1 + d)               (in (0, 1], 1 at d = 0)
//   (any other metric: 1 / (1 + d) as well)
// grad = {dX1, dX2}; terms: one squared error per row.
// `reduction` may carry sample weights, one per row (core/reducer.hpp).
//
// Reproducing sentence-transformers CosineSimilarityLoss (MSELoss of
// torch.cosine_similarity(u, v) against the score, the default identity
// transformation): similarity_regression_loss<Cosine>(U, V, scores). Proved by
// tests/test_similarity_regression_loss.cpp against
// tests/reference/data/pair_cosine_similarity.txt. torch.cosine_similarity clamps
// the norms at eps = 1e-8; rows with norm below that differ (zero rows: we use
// cos = 0 and gradient 0, like every Cosine in this library).
#pragma once

#include "contrastive/core/evaluate.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <sstream>
#include <string>
#include <type_traits>

namespace contrastive {
namespace detail {

// s(d) and ds/dd for a metric.
template <class Metric>
struct SimilarityOfDistance {
  template <class Scalar>
  static Scalar similarity(Scalar d, Scalar& slope) {
    const Scalar inv = Scalar(1) / (Scalar(1) + d);
    slope = -inv * inv;
    return inv;
  }
};

template <>
struct SimilarityOfDistance<Cosine> {
  template <class Scalar>
  static Scalar similarity(Scalar d, Scalar& slope) {
    slope = Scalar(-1);
    return Scalar(1) - d;
  }
};

template <class T>
Vector<double> to_scores(const char* function, const Eigen::DenseBase<T>& target, Index rows) {
  static_assert(std::is_arithmetic<typename T::Scalar>::value,
                "contrastive: target must be a numeric vector of scores");
  if (target.rows() != 1 && target.cols() != 1 && target.size() != 0) {
    fail(function, "argument 'target' must be a vector, got " + shape_of(target.rows(), target.cols()));
  }
  require_length(function, "target", target.size(), rows, "X1");
  Vector<double> out(target.size());
  for (Index i = 0; i < target.size(); ++i) out(i) = static_cast<double>(target.derived().coeff(i));
  require_finite_vector<double>(function, "target", out);
  return out;
}

template <class Metric, class Scalar>
Scalar similarity_regression_eval(const ConstRowRef<Scalar>& X1, const ConstRowRef<Scalar>& X2,
                                  const Vector<double>& target, const Reducer& reduction,
                                  Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const Tally<Scalar> tally("similarity_regression_loss", "reduction", reduction, X1.rows(), "the rows of X1");
  const auto term = [&](Index i, Scalar d, Scalar& slope) {
    Scalar ds;
    const Scalar r = SimilarityOfDistance<Metric>::similarity(d, ds) - static_cast<Scalar>(target(i));
    slope = Scalar(2) * r * ds;
    return r * r;
  };
  auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
    return reduce_row_terms<Scalar>(d, tally, term, dd, terms);
  };
  return rowwise_pipeline<Scalar>(Metric{}, X1, X2, loss, grads);
}

template <class D1, class D2, class T>
struct SimilarityRegressionInputs {
  using Scalar = typename D1::Scalar;
  ConstRowRef<Scalar> x1, x2;
  Vector<double> target;

  SimilarityRegressionInputs(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                             const Eigen::DenseBase<T>& t)
      : x1(X1.derived()), x2(X2.derived()) {
    check_same_scalar<D1, D2>();
    const char* fn = "similarity_regression_loss";
    require_embeddings<Scalar>(fn, "X1", x1);
    require_embeddings<Scalar>(fn, "X2", x2);
    require_same_shape(fn, "X1", x1, "X2", x2);
    target = to_scores(fn, t, x1.rows());
  }
};

}  // namespace detail

template <class Metric = Euclidean, class D1, class D2, class T>
LossResult<typename D1::Scalar> similarity_regression_loss(const Eigen::MatrixBase<D1>& X1,
                                                           const Eigen::MatrixBase<D2>& X2,
                                                           const Eigen::DenseBase<T>& target,
                                                           const Reducer& reduction = Reduction::Mean) {
  using Scalar = typename D1::Scalar;
  const detail::SimilarityRegressionInputs<D1, D2, T> in(X1, X2, target);
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::similarity_regression_eval<Metric, Scalar>(in.x1, in.x2, in.target, reduction, g, t);
  });
}

template <class Metric = Euclidean, class D1, class D2, class T>
typename D1::Scalar similarity_regression_loss(const Eigen::MatrixBase<D1>& X1,
                                               const Eigen::MatrixBase<D2>& X2,
                                               const Eigen::DenseBase<T>& target, const Reducer& reduction,
                                               ValueOnly) {
  using Scalar = typename D1::Scalar;
  const detail::SimilarityRegressionInputs<D1, D2, T> in(X1, X2, target);
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::similarity_regression_eval<Metric, Scalar>(in.x1, in.x2, in.target, reduction, g, t);
  });
}

template <class Metric = Euclidean, class D1, class D2, class T>
typename D1::Scalar similarity_regression_loss(const Eigen::MatrixBase<D1>& X1,
                                               const Eigen::MatrixBase<D2>& X2,
                                               const Eigen::DenseBase<T>& target, ValueOnly) {
  return similarity_regression_loss<Metric>(X1, X2, target, Reduction::Mean, value_only);
}

// dL/dX1 into grad1_out and dL/dX2 into grad2_out (caller-owned, shaped like X1, X2).
template <class Metric = Euclidean, class D1, class D2, class T, class G1, class G2>
typename D1::Scalar similarity_regression_loss(const Eigen::MatrixBase<D1>& X1,
                                               const Eigen::MatrixBase<D2>& X2,
                                               const Eigen::DenseBase<T>& target, const Reducer& reduction,
                                               const Eigen::MatrixBase<G1>& grad1_out,
                                               const Eigen::MatrixBase<G2>& grad2_out) {
  using Scalar = typename D1::Scalar;
  const detail::SimilarityRegressionInputs<D1, D2, T> in(X1, X2, target);
  return detail::evaluate_into<Scalar>(
      "similarity_regression_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::similarity_regression_eval<Metric, Scalar>(in.x1, in.x2, in.target, reduction, g, t);
      },
      {{{in.x1.rows(), in.x1.cols()}, {in.x2.rows(), in.x2.cols()}}}, grad1_out, grad2_out);
}

template <class Metric = Euclidean, class D1, class D2, class T, class G1, class G2>
typename D1::Scalar similarity_regression_loss(const Eigen::MatrixBase<D1>& X1,
                                               const Eigen::MatrixBase<D2>& X2,
                                               const Eigen::DenseBase<T>& target,
                                               const Eigen::MatrixBase<G1>& grad1_out,
                                               const Eigen::MatrixBase<G2>& grad2_out) {
  return similarity_regression_loss<Metric>(X1, X2, target, Reduction::Mean, grad1_out, grad2_out);
}

}  // namespace contrastive
