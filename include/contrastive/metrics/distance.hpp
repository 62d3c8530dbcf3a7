// Public distance functions: pairwise (N x M, or the symmetric N x N), row-wise
// (paired), and their backward (vector-Jacobian products). For DotProduct,
// a similarity, they return x . y (and take dL/ds), with the diagonal |x|^2.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <type_traits>
#include <utility>

namespace contrastive {

// dL/dX and dL/dY of a function of two embedding sets.
template <class Scalar>
struct PairGradient {
  RowMatrix<Scalar> dX;
  RowMatrix<Scalar> dY;
};

// All distances between rows of X: N x N, exactly symmetric, exact zero diagonal.
template <class Metric = Euclidean, class DX>
RowMatrix<typename DX::Scalar> pairwise_distance(const Eigen::MatrixBase<DX>& X) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  detail::require_embeddings<Scalar>("pairwise_distance", "X", x);
  if constexpr (Metric::public_sign < 0) return -Metric::template pairwise<Scalar>(x, x, true).distances;
  return Metric::template pairwise<Scalar>(x, x, true).distances;
}

// Distances between every row of X (N x D) and every row of Y (M x D): N x M.
template <class Metric = Euclidean, class DX, class DY>
RowMatrix<typename DX::Scalar> pairwise_distance(const Eigen::MatrixBase<DX>& X,
                                                 const Eigen::MatrixBase<DY>& Y) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DY>();
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> y(Y.derived());
  detail::require_embeddings<Scalar>("pairwise_distance", "X", x);
  detail::require_embeddings<Scalar>("pairwise_distance", "Y", y);
  detail::require_same_cols("pairwise_distance", "X", x, "Y", y);
  // An empty side may have any column count: nothing to multiply (Eigen asserts on the
  // mismatched product; found by tests/fuzz/fuzz_metrics).
  if (x.rows() == 0 || y.rows() == 0) return RowMatrix<Scalar>(x.rows(), y.rows());
  if constexpr (Metric::public_sign < 0) return -Metric::template pairwise<Scalar>(x, y, false).distances;
  return Metric::template pairwise<Scalar>(x, y, false).distances;
}

// Distance between row i of A and row i of B, for each i: length N.
template <class Metric = Euclidean, class DA, class DB>
Vector<typename DA::Scalar> rowwise_distance(const Eigen::MatrixBase<DA>& A,
                                             const Eigen::MatrixBase<DB>& B) {
  using Scalar = typename DA::Scalar;
  detail::check_same_scalar<DA, DB>();
  const ConstRowRef<Scalar> a(A.derived());
  const ConstRowRef<Scalar> b(B.derived());
  detail::require_embeddings<Scalar>("rowwise_distance", "A", a);
  detail::require_embeddings<Scalar>("rowwise_distance", "B", b);
  detail::require_same_shape("rowwise_distance", "A", a, "B", b);
  if constexpr (Metric::public_sign < 0) return -Metric::template rowwise<Scalar>(a, b);
  return Metric::template rowwise<Scalar>(a, b);
}

// dL/dX of L(pairwise_distance(X)) given dL/dD (N x N, not assumed symmetric).
template <class Metric = Euclidean, class DX, class DG>
RowMatrix<typename DX::Scalar> pairwise_distance_backward(const Eigen::MatrixBase<DX>& X,
                                                          const Eigen::MatrixBase<DG>& dLdD) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DG>();
  const char* fn = "pairwise_distance_backward";
  const ConstRowRef<Scalar> x(X.derived());
  const RowMatrix<Scalar> dD = static_cast<Scalar>(Metric::public_sign) * dLdD.template cast<Scalar>();
  detail::require_embeddings<Scalar>(fn, "X", x);
  if (dD.rows() != x.rows() || dD.cols() != x.rows()) {
    detail::fail(fn, "argument 'dLdD' is " + detail::shape_of(dD.rows(), dD.cols()) + " but X has " +
                         std::to_string(x.rows()) + " rows; dLdD must be " +
                         detail::shape_of(x.rows(), x.rows()));
  }
  detail::require_finite_matrix<Scalar>(fn, "dLdD", ConstRowRef<Scalar>(dD));
  const auto forward = Metric::template pairwise<Scalar>(x, x, true);
  RowMatrix<Scalar> dX;
  Metric::template pairwise_backward<Scalar>(forward, x, x, dD, dX, nullptr);
  if constexpr (Metric::kind == detail::MetricKind::DotProduct) {
    // A similarity's diagonal is no constant: d(x_i . x_i)/dx_i = 2 x_i (dD holds -dL/ds).
    for (Index i = 0; i < x.rows(); ++i) dX.row(i) -= Scalar(2) * dD(i, i) * x.row(i);
  }
  return dX;
}

// dL/dX and dL/dY of L(pairwise_distance(X, Y)) given dL/dD (N x M).
template <class Metric = Euclidean, class DX, class DY, class DG>
PairGradient<typename DX::Scalar> pairwise_distance_backward(const Eigen::MatrixBase<DX>& X,
                                                             const Eigen::MatrixBase<DY>& Y,
                                                             const Eigen::MatrixBase<DG>& dLdD) {
  using Scalar = typename DX::Scalar;
  detail::check_same_scalar<DX, DY>();
  detail::check_same_scalar<DX, DG>();
  const char* fn = "pairwise_distance_backward";
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> y(Y.derived());
  const RowMatrix<Scalar> dD = static_cast<Scalar>(Metric::public_sign) * dLdD.template cast<Scalar>();
  detail::require_embeddings<Scalar>(fn, "X", x);
  detail::require_embeddings<Scalar>(fn, "Y", y);
  detail::require_same_cols(fn, "X", x, "Y", y);
  if (dD.rows() != x.rows() || dD.cols() != y.rows()) {
    detail::fail(fn, "argument 'dLdD' is " + detail::shape_of(dD.rows(), dD.cols()) +
                         " but must be " + detail::shape_of(x.rows(), y.rows()) +
                         " (rows of X x rows of Y)");
  }
  detail::require_finite_matrix<Scalar>(fn, "dLdD", ConstRowRef<Scalar>(dD));
  PairGradient<Scalar> g;
  if (x.rows() == 0 || y.rows() == 0) {  // no distances: zero gradients of any column count
    g.dX = RowMatrix<Scalar>::Zero(x.rows(), x.cols());
    g.dY = RowMatrix<Scalar>::Zero(y.rows(), y.cols());
    return g;
  }
  const auto forward = Metric::template pairwise<Scalar>(x, y, false);
  Metric::template pairwise_backward<Scalar>(forward, x, y, dD, g.dX, &g.dY);
  return g;
}

// dL/dA and dL/dB of L(rowwise_distance(A, B)) given dL/dd (length N).
template <class Metric = Euclidean, class DA, class DB, class DG>
PairGradient<typename DA::Scalar> rowwise_distance_backward(const Eigen::MatrixBase<DA>& A,
                                                            const Eigen::MatrixBase<DB>& B,
                                                            const Eigen::MatrixBase<DG>& dLdd) {
  using Scalar = typename DA::Scalar;
  detail::check_same_scalar<DA, DB>();
  detail::check_same_scalar<DA, DG>();
  const char* fn = "rowwise_distance_backward";
  const ConstRowRef<Scalar> a(A.derived());
  const ConstRowRef<Scalar> b(B.derived());
  detail::require_embeddings<Scalar>(fn, "A", a);
  detail::require_embeddings<Scalar>(fn, "B", b);
  detail::require_same_shape(fn, "A", a, "B", b);
  if (dLdd.rows() != 1 && dLdd.cols() != 1 && dLdd.size() != 0) {
    detail::fail(fn, "argument 'dLdd' must be a vector, got " +
                         detail::shape_of(dLdd.rows(), dLdd.cols()));
  }
  detail::require_length(fn, "dLdd", dLdd.size(), a.rows(), "A");
  Vector<Scalar> dd(dLdd.size());
  for (Index i = 0; i < dd.size(); ++i) dd(i) = static_cast<Scalar>(Metric::public_sign) * dLdd.derived().coeff(i);
  detail::require_finite_vector<Scalar>(fn, "dLdd", dd);
  const Vector<Scalar> d = Metric::template rowwise<Scalar>(a, b);
  PairGradient<Scalar> g;
  Metric::template rowwise_backward<Scalar>(a, b, d, dd, g.dX, g.dY);
  return g;
}

}  // namespace contrastive
