// The engine's entry for a batch loss: the metric's transform of the rows (if
// any), the distance matrix walked as symmetric tiles (engine/tiles.hpp) or
// as row panels (engine/panels.hpp), whichever the loss is written for, and
// the chain rule back through the transform, whose parameter gradients (a
// Mahalanobis L) follow dL/dX in `grads`. On a PairSource with a reference set
// the rectangular tiles (engine/reference_tiles.hpp) run instead, and `grads`
// holds dL/dX, dL/dR (empty when not wanted), then the metric's parameters.
#pragma once

#include "contrastive/core/reference_set.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/engine/panels.hpp"
#include "contrastive/engine/reference_tiles.hpp"
#include "contrastive/engine/tiles.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <cstddef>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// share: this process's part of the symmetric tiles (engine/tile_share.hpp), or null.
template <class Scalar, class Metric, class Loss>
Scalar run_pairwise_loss(const char* function, const Metric& metric, const ConstRowRef<Scalar>& X,
                         std::size_t workspace_bytes, Loss&& loss, std::vector<RowMatrix<Scalar>>* grads,
                         const TileShare<Scalar>* share = nullptr) {
  using L = std::decay_t<Loss>;
  return metric.template with_rows<Scalar>(X, [&](auto kind, const ConstRowRef<Scalar>& Z) {
    constexpr MetricKind K = decltype(kind)::value;
    auto run = [&](RowMatrix<Scalar>* dZ) {
      if constexpr (uses_symmetric_tiles<L>::value) {
        return run_tiles<K, Scalar>(function, Z, workspace_bytes, loss, dZ, share);
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

template <class Loss, class = void>
struct runs_reference_tiles : std::false_type {};
template <class Loss>
struct runs_reference_tiles<Loss, std::void_t<decltype(Loss::reference_tiles)>>
    : std::integral_constant<bool, Loss::reference_tiles> {};

// The batch itself.
template <class Scalar, class Metric, class Loss>
Scalar run_pairwise_loss(const char* function, const Metric& metric, const BatchSource<Scalar>& source,
                         std::size_t workspace_bytes, Loss&& loss, std::vector<RowMatrix<Scalar>>* grads) {
  return run_pairwise_loss<Scalar>(function, metric, source.X, workspace_bytes, std::forward<Loss>(loss), grads,
                                   source.share);
}

// Queries against a reference set.
template <class Scalar, class Metric, class Loss>
Scalar run_pairwise_loss(const char* function, const Metric& metric, const PairSource<Scalar>& source,
                         std::size_t workspace_bytes, Loss&& loss, std::vector<RowMatrix<Scalar>>* grads) {
  using L = std::decay_t<Loss>;
  if constexpr (!runs_reference_tiles<L>::value) {
    fail(function, "this loss does not run against a reference set");
  } else {
  const ConstRowRef<Scalar>& R = *source.R;
  return metric.template with_rows<Scalar>(source.X, [&](auto kind, const ConstRowRef<Scalar>& Zq) {
    return metric.template with_rows<Scalar>(R, [&](auto kind_r, const ConstRowRef<Scalar>& Zr) -> Scalar {
      constexpr MetricKind K = decltype(kind)::value;
      if constexpr (K != decltype(kind_r)::value) {
        return Scalar(0);  // one metric gives both sides one kind
      } else {
        if (!grads) {
          return run_reference_tiles<K, Scalar>(function, Zq, Zr, source.self_offset, workspace_bytes, loss,
                                                nullptr, nullptr, source.workspace);
        }
        RowMatrix<Scalar> dZq, dZr;
        const bool with_r = source.reference_gradient;
        const Scalar value = run_reference_tiles<K, Scalar>(function, Zq, Zr, source.self_offset, workspace_bytes,
                                                            loss, &dZq, with_r ? &dZr : nullptr,
                                                            source.workspace);
        std::vector<RowMatrix<Scalar>> gq, gr;
        metric.template rows_backward<Scalar>(source.X, std::move(dZq), gq);
        if (with_r) metric.template rows_backward<Scalar>(R, std::move(dZr), gr);
        grads->clear();
        grads->push_back(std::move(gq[0]));
        grads->push_back(with_r ? std::move(gr[0]) : RowMatrix<Scalar>());
        for (std::size_t k = 1; k < gq.size(); ++k) {
          if (with_r) gq[k] += gr[k];
          grads->push_back(std::move(gq[k]));
        }
        return value;
      }
    });
  });
  }
}

}  // namespace detail
}  // namespace contrastive
