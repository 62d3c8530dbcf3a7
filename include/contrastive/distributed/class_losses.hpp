// The class-weight losses over a communicator: each rank passes its rows,
// labels and the same W (c x D, replicated, as data-parallel training keeps
// it); every rank gets the global batch's loss, dL/d(its rows) and the global
// dL/dW.
//
//   LossResult<float> r = distributed::arcface_loss(comm, X_local, labels_local, W, options);
//   // r.grad[0]: dL/dX_local; r.grad[1]: dL/dW (c x D), the same on every rank
//
// The softmax family (ArcFace, CosFace, SphereFace, SubCenterArcFace,
// NormalizedSoftmax, ProxyNCA) has one term per row: each rank computes its
// own rows' terms (1/P of the work, no gather of X) with the reduction's
// divisor deferred, and one all-reduce gives the global divisor and dL/dW.
// ProxyAnchor's terms are per class, over every row: it gathers the batch
// and computes the whole loss on every rank.
#pragma once

#include "contrastive/distributed/global_loss.hpp"
#include "contrastive/losses/arcface_loss.hpp"
#include "contrastive/losses/cosface_loss.hpp"
#include "contrastive/losses/normalized_softmax_loss.hpp"
#include "contrastive/losses/proxy_anchor_loss.hpp"
#include "contrastive/losses/proxy_nca_loss.hpp"
#include "contrastive/losses/sphereface_loss.hpp"
#include "contrastive/losses/subcenter_arcface_loss.hpp"

#include <string>
#include <type_traits>
#include <utility>

namespace contrastive {
namespace distributed {
namespace detail {

template <class Loss>
struct ClassLossTraits {
  static constexpr bool per_row = true;
};
template <>
struct ClassLossTraits<contrastive::detail::ProxyAnchorLoss> {
  static constexpr bool per_row = false;
};

template <class Loss, class DX, class DW, class... Tail>
auto global_class_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                       const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  contrastive::detail::check_same_scalar<DX, DW>();
  const char* fn = Loss::name;
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> w(W.derived());
  std::string local_error;
  LabelVector y;
  try {
    y = contrastive::detail::to_labels(fn, "labels", labels, x.rows());
    contrastive::detail::require_embeddings<Scalar>(fn, "X", x);
  } catch (const std::invalid_argument& e) {
    local_error = message_of(e);
  }
  bool agreed = false;
  const auto eval = [&](const auto& metric, const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) -> Scalar {
    static_assert(std::is_same<std::decay_t<decltype(metric)>, Cosine>::value,
                  "contrastive: class-weight losses take no metric: loss(comm, X, labels, W, [options], [value_only | dX_out [, dW_out]])");
    agreed = true;
    if constexpr (ClassLossTraits<Loss>::per_row) {
      agree_on_shapes(comm, fn, x.rows(), x.cols(), local_error);
      DeferredTotals totals;
      Options local = o;
      local.reduction = o.reduction.deferred(&totals);
      Gradients<Scalar> g;
      Scalar local_sum = Scalar(0);
      std::string error;
      try {
        if (x.rows() == 0) {
          if (terms) terms->resize(0);
          g.emplace_back(0, w.cols());
          g.push_back(RowMatrix<Scalar>::Zero(w.rows(), w.cols()));
        } else {
          local_sum = Loss::template eval<Scalar>(x, y, w, local, grads ? &g : nullptr, terms);
        }
      } catch (const std::invalid_argument& e) {
        error = message_of(e);
      }
      agree(comm, fn, error);
      LocalTotals rank_totals;
      rank_totals.add(static_cast<double>(local_sum), totals);
      const GlobalReduction<Scalar> reduced = reduce_globally<Scalar>(comm, rank_totals, o.reduction.kind(), 1);
      if (grads) {
        comm.allreduce_sum(g[1].data(), g[1].size());
        for (auto& block : g) block *= reduced.weight;
        *grads = std::move(g);
      }
      return reduced.value;
    } else {
      const GlobalBatch<Scalar> batch = gather_batch<Scalar>(comm, fn, x, y, local_error);
      const ConstRowRef<Scalar> r(batch.rows);
      Gradients<Scalar> g;
      Scalar value = Scalar(0);
      std::string error;
      try {
        value = Loss::template eval<Scalar>(r, batch.labels, w, o, grads ? &g : nullptr, terms);
      } catch (const std::invalid_argument& e) {
        error = message_of(e);
      }
      agree(comm, fn, error);
      if (grads) {
        g[0] = RowMatrix<Scalar>(g[0].middleRows(batch.offset, batch.local_rows));
        *grads = std::move(g);
      }
      return value;
    }
  };
  return guarded(comm, fn, x, agreed, [&] {
    return contrastive::detail::call_forms<Cosine, Scalar, Options>(
        contrastive::detail::CallSpec{fn, {{x.rows(), x.cols()}}, {{w.rows(), w.cols()}}, {"W_grad"}}, eval, tail...);
  });
}

}  // namespace detail

// Own rows (1/P of the work), dL/dW all-reduced.
template <class DX, class DW, class... Tail>
auto arcface_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                  const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::ArcFaceLoss>(comm, X, labels, W, tail...);
}
template <class DX, class DW, class... Tail>
auto cosface_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                  const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::CosFaceLoss>(comm, X, labels, W, tail...);
}
template <class DX, class DW, class... Tail>
auto sphereface_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                     const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::SphereFaceLoss>(comm, X, labels, W, tail...);
}
template <class DX, class DW, class... Tail>
auto subcenter_arcface_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                            const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::SubCenterArcFaceLoss>(comm, X, labels, W, tail...);
}
template <class DX, class DW, class... Tail>
auto normalized_softmax_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                             const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::NormalizedSoftmaxLoss>(comm, X, labels, W, tail...);
}
template <class DX, class DW, class... Tail>
auto proxy_nca_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                    const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::ProxyNCALoss>(comm, X, labels, W, tail...);
}
// Whole loss on every rank.
template <class DX, class DW, class... Tail>
auto proxy_anchor_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                       const Eigen::MatrixBase<DW>& W, const Tail&... tail) {
  return detail::global_class_loss<contrastive::detail::ProxyAnchorLoss>(comm, X, labels, W, tail...);
}

}  // namespace distributed
}  // namespace contrastive
