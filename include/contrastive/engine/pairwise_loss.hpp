// The engine's entry for a batch loss: the metric's transform of the rows (if
// any), the distance matrix walked as symmetric tiles (engine/tiles.hpp) or
// as row panels (engine/panels.hpp), whichever the loss is written for, and
// the chain rule back through the transform, whose parameter gradients (a
// Mahalanobis L) follow dL/dX in `grads`.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/engine/panels.hpp"
#include "contrastive/engine/tiles.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <cstddef>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

template <class Scalar, class Metric, class Loss>
Scalar run_pairwise_loss(const char* function, const Metric& metric, const ConstRowRef<Scalar>& X,
                         std::size_t workspace_bytes, Loss&& loss, std::vector<RowMatrix<Scalar>>* grads) {
  using L = std::decay_t<Loss>;
  return metric.template with_rows<Scalar>(X, [&](auto kind, const ConstRowRef<Scalar>& Z) {
    constexpr MetricKind K = decltype(kind)::value;
    auto run = [&](RowMatrix<Scalar>* dZ) {
      if constexpr (uses_symmetric_tiles<L>::value) {
        return run_tiles<K, Scalar>(function, Z, workspace_bytes, loss, dZ);
      } else {
        return run_panels<K, Scalar>(function, Z, workspace_bytes, loss, dZ);
      }
    };
    if (!grads) return run(nullptr);
    RowMatrix<Scalar> dZ;
    const Scalar value = run(&dZ);
    grads->clear();
    metric.template rows_backward<Scalar>(X, std::move(dZ), *grads);
    return value;
  });
}

}  // namespace detail
}  // namespace contrastive
