// The Gram-kernel metrics (Euclidean, SquaredEuclidean, Cosine, DotProduct):
// stateless values for the engine (metric_traits.hpp), and the static members
// the public distance functions call through the template-parameter form.
#pragma once

#include "contrastive/metrics/metric_traits.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

namespace contrastive {
namespace detail {

template <MetricKind Kind>
struct GramMetric : PlainRowsMetric<Kind> {
  static constexpr MetricKind kind = Kind;
  // The public distance functions return a similarity's own value (x . y for
  // DotProduct); the kernel and the losses work on its negation.
  static constexpr int public_sign = Kind == MetricKind::DotProduct ? -1 : 1;

  // Distances between every row of X and every row of Y (Y is X when symmetric).
  template <class Scalar>
  static PairwiseForward<Scalar> pairwise(const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& Y,
                                          bool symmetric) {
    return pairwise_forward<Kind, Scalar>(X, Y, symmetric);
  }

  // dL/dX (and dL/dY when dY is given and the forward was not symmetric) from dL/dD.
  template <class Scalar>
  static void pairwise_backward(const PairwiseForward<Scalar>& forward, const ConstRowRef<Scalar>& X,
                                const ConstRowRef<Scalar>& Y, const RowMatrix<Scalar>& dD,
                                RowMatrix<Scalar>& dX, RowMatrix<Scalar>* dY) {
    detail::pairwise_backward<Kind, Scalar>(forward, X, Y, dD, dX, dY);
  }

  // The same, consuming dD (its storage becomes the backward's weight matrix: no N x N copy).
  template <class Scalar>
  static void pairwise_backward(const PairwiseForward<Scalar>& forward, const ConstRowRef<Scalar>& X,
                                const ConstRowRef<Scalar>& Y, RowMatrix<Scalar>&& dD,
                                RowMatrix<Scalar>& dX, RowMatrix<Scalar>* dY) {
    detail::pairwise_backward_in_place<Kind, Scalar>(forward, X, Y, dD, dX, dY);
  }

  // Distance between row i of A and row i of B, for every i.
  template <class Scalar>
  static Vector<Scalar> rowwise(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B) {
    return rowwise_forward<Kind, Scalar>(A, B);
  }

  template <class Scalar>
  static void rowwise_backward(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B,
                               const Vector<Scalar>& d, const Vector<Scalar>& dd,
                               RowMatrix<Scalar>& dA, RowMatrix<Scalar>& dB) {
    detail::rowwise_backward<Kind, Scalar>(A, B, d, dd, dA, dB);
  }
};

}  // namespace detail
}  // namespace contrastive
