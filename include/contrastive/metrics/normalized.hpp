// Normalized<Metric>: a metric on the unit rows x / ||x|| of the embeddings,
// with the normalisation in the backward. This is pytorch-metric-learning's
// normalize_embeddings=True, the default of its LpDistance and
// DotProductSimilarity, as one argument:
//
//   batch_hard_triplet_loss(X, labels, normalized(Euclidean{}), options);   // PML TripletMarginLoss()
//   Normalized<Euclidean>                                                  // the same, as a type
//
// Backward: with u = x / ||x||, dL/dx = (dL/du - u (u . dL/du)) / ||x||. A zero
// row has no direction: it stays zero and gets gradient 0 (PML divides by
// max(||x||, 1e-12), so its zero rows get 1e12 times the gradient instead).
// The inner metric's parameters (a Mahalanobis L) act on the unit rows and
// keep their gradients. Normalized<Cosine> equals Cosine; Normalized<DotProduct>
// is cosine similarity (Cosine minus the constant 1).
// Cost: O(N * D) each way, one N x D copy of the unit rows per call.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <cmath>
#include <cstddef>
#include <utility>
#include <vector>

namespace contrastive {

template <class Inner>
class Normalized : public detail::MetricTag {
  static_assert(is_metric<Inner>::value, "contrastive: Normalized<M> needs a metric M (Euclidean, Cosine, ...)");

 public:
  static constexpr const char* name = "Normalized";

  Normalized() = default;
  explicit Normalized(Inner inner) : inner_(std::move(inner)) {}

  const Inner& inner() const { return inner_; }
  int parameter_blocks() const { return inner_.parameter_blocks(); }
  std::pair<Index, Index> parameter_shape(int k) const { return inner_.parameter_shape(k); }

  template <class Scalar>
  void check_rows(const char* function, const ConstRowRef<Scalar>& X) const {
    inner_.template check_rows<Scalar>(function, X);
  }

  template <class Scalar, class F>
  decltype(auto) with_rows(const ConstRowRef<Scalar>& X, F&& f) const {
    const RowMatrix<Scalar> U = unit_rows(X);
    return inner_.template with_rows<Scalar>(ConstRowRef<Scalar>(U), std::forward<F>(f));
  }

  template <class Scalar>
  void rows_backward(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>&& dZ,
                     std::vector<RowMatrix<Scalar>>& grads) const {
    const RowMatrix<Scalar> U = unit_rows(X);
    const std::size_t first = grads.size();
    inner_.template rows_backward<Scalar>(ConstRowRef<Scalar>(U), std::move(dZ), grads);
    RowMatrix<Scalar>& dX = grads[first];  // dL/dU, turned into dL/dX in place
    for (Index i = 0; i < X.rows(); ++i) {
      const Scalar norm = X.row(i).norm();
      if (norm == Scalar(0)) {
        dX.row(i).setZero();
        continue;
      }
      const Scalar along = U.row(i).dot(dX.row(i));
      dX.row(i) = (dX.row(i) - along * U.row(i)) / norm;
    }
  }

 private:
  template <class Scalar>
  static RowMatrix<Scalar> unit_rows(const ConstRowRef<Scalar>& X) {
    RowMatrix<Scalar> U = X;
    for (Index i = 0; i < U.rows(); ++i) {
      const Scalar norm = U.row(i).norm();
      if (norm > Scalar(0)) U.row(i) /= norm;
    }
    return U;
  }

  Inner inner_{};
};

template <class Metric>
Normalized<Metric> normalized(Metric metric) {
  return Normalized<Metric>(std::move(metric));
}

}  // namespace contrastive
