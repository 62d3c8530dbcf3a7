// Learned Mahalanobis distance d(x, y) = ||L (x - y)||, L a k x D matrix
// (k <= D gives a low-rank projection), or its square when `squared`.
//
// It is the Euclidean distance of the projected rows z = L x, so the engine
// runs the Euclidean kernel on Z = X L^T and applies the chain rule after:
//   dL/dX = dL/dZ L        dL/dL = (dL/dZ)^T X
// A loss called with a Mahalanobis metric returns dL/dL as the gradient block
// after dL/dX (grad[1], k x D), so a training loop updates L like any weight.
//
//   contrastive::Mahalanobis metric(L);               // L: k x D, any Eigen matrix
//   auto r = contrastive::batch_hard_triplet_loss(X, labels, metric, options);
//   L -= lr * r.grad[1];  metric = contrastive::Mahalanobis(L);
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <string>
#include <utility>
#include <vector>

namespace contrastive {

class Mahalanobis : public detail::MetricTag {
 public:
  static constexpr const char* name = "Mahalanobis";

  // L is kept in double and used in the embeddings' scalar type. Throws
  // std::invalid_argument for an empty L or a non-finite entry.
  template <class Derived>
  explicit Mahalanobis(const Eigen::MatrixBase<Derived>& L, bool squared = false)
      : L_(L.template cast<double>()), squared_(squared) {
    if (L_.rows() == 0 || L_.cols() == 0) {
      detail::fail("Mahalanobis", "argument 'L' is " + detail::shape_of(L_.rows(), L_.cols()) +
                                      "; it needs at least one row and one column (k x D)");
    }
    detail::require_finite_matrix<double>("Mahalanobis", "L", ConstRowRef<double>(L_));
  }

  const RowMatrix<double>& L() const { return L_; }
  bool squared() const { return squared_; }
  int parameter_blocks() const { return 1; }

  template <class Scalar>
  void check_rows(const char* function, const ConstRowRef<Scalar>& X) const {
    if (X.rows() > 0 && X.cols() != L_.cols()) {
      detail::fail(function, "argument 'metric' is a Mahalanobis metric whose L is " +
                                 detail::shape_of(L_.rows(), L_.cols()) + ", but the embeddings have " +
                                 std::to_string(X.cols()) + " columns; L needs one column per embedding dimension");
    }
  }

  template <class Scalar, class F>
  decltype(auto) with_rows(const ConstRowRef<Scalar>& X, F&& f) const {
    RowMatrix<Scalar> Z;
    if (X.rows() > 0) {
      Z.noalias() = X * L_.template cast<Scalar>().transpose();
    } else {
      Z.resize(0, L_.rows());
    }
    const ConstRowRef<Scalar> z(Z);
    if (squared_) return std::forward<F>(f)(detail::kind_constant<detail::MetricKind::SquaredEuclidean>{}, z);
    return std::forward<F>(f)(detail::kind_constant<detail::MetricKind::Euclidean>{}, z);
  }

  template <class Scalar>
  void rows_backward(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>&& dZ,
                     std::vector<RowMatrix<Scalar>>& grads) const {
    const RowMatrix<Scalar> L = L_.template cast<Scalar>();
    RowMatrix<Scalar> dX(X.rows(), X.cols());
    RowMatrix<Scalar> dL(L.rows(), L.cols());
    if (X.rows() > 0) {
      dX.noalias() = dZ * L;
      dL.noalias() = dZ.transpose() * X;
    } else {
      dL.setZero();
    }
    grads.push_back(std::move(dX));
    grads.push_back(std::move(dL));
  }

  // The shapes of the parameter gradients, for caller-owned outputs.
  std::pair<Index, Index> parameter_shape(int) const { return {L_.rows(), L_.cols()}; }

 private:
  RowMatrix<double> L_;
  bool squared_ = false;
};

}  // namespace contrastive
