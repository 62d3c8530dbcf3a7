// What makes a type a metric: the engine asks a metric for the rows its Gram
// kernel runs on (the embeddings themselves, or a transform of them such as
// Mahalanobis's X L^T), under which kernel kind, and for the chain rule from
// the gradient on those rows back to dL/dX and to the metric's own parameters.
//
//   template <class Scalar, class F>
//   auto with_rows(const ConstRowRef<Scalar>& X, F&& f) const;
//       calls f(kind, Z): kind a std::integral_constant<MetricKind, K>, Z the rows
//   template <class Scalar>
//   void rows_backward(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>&& dZ,
//                      std::vector<RowMatrix<Scalar>>& grads) const;
//       appends dL/dX, then one gradient per parameter block
//   int parameter_blocks() const;
//
// Every metric derives from detail::MetricTag, which is how a call tells a
// metric argument from an options argument.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

struct MetricTag {};

template <MetricKind K>
using kind_constant = std::integral_constant<MetricKind, K>;

}  // namespace detail

template <class T>
struct is_metric : std::is_base_of<detail::MetricTag, std::decay_t<T>> {};

namespace detail {

template <class M>
constexpr void check_metric() {
  static_assert(is_metric<M>::value,
                "contrastive: this type is not a metric; use Euclidean, SquaredEuclidean, Cosine, "
                "DotProduct, Mahalanobis or AnyMetric (metrics/*.hpp)");
}

// The metrics whose rows are the embeddings themselves and have no parameters.
template <MetricKind Kind>
struct PlainRowsMetric : MetricTag {
  template <class Scalar, class F>
  decltype(auto) with_rows(const ConstRowRef<Scalar>& X, F&& f) const {
    return std::forward<F>(f)(kind_constant<Kind>{}, X);
  }

  template <class Scalar>
  void rows_backward(const ConstRowRef<Scalar>&, RowMatrix<Scalar>&& dZ,
                     std::vector<RowMatrix<Scalar>>& grads) const {
    grads.push_back(std::move(dZ));
  }

  int parameter_blocks() const { return 0; }
  std::pair<Index, Index> parameter_shape(int) const { return {0, 0}; }
  template <class Scalar>
  void check_rows(const char*, const ConstRowRef<Scalar>&) const {}
};

}  // namespace detail
}  // namespace contrastive
