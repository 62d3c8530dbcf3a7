// ProxyNCA (Movshovitz-Attias et al. 2017) with learnable proxies W (c x D,
// one row per class) and gradients for X and W.
//
// On unit rows x^ and unit proxies w^ (engine/class_blocks.hpp):
//   p_ic = softmax_c(-s |x^_i - w^_c|^2),   term_i = -log p_{i, y_i}
// over every proxy, with or without samples in the batch. On unit rows
// |x^ - w^|^2 = 2 - 2 cos, so the softmax is that of 2 s cos (the constant
// cancels). Rows whose own-proxy probability underflows to 0 are dropped (no
// term, no gradient, not counted), as pytorch-metric-learning drops rows with
// zero same-class mass. Reduction: options.reduction (default Mean over the
// kept rows). A zero proxy is at squared distance 2 from every row (PML: 1 + |x^|^2).
//
// Reproduces pytorch-metric-learning 2.8.1 ProxyNCALoss(num_classes,
// embedding_size, softmax_scale=1) with its default LpDistance(power=2) (which
// normalises): W = loss.proxies (already c x D), options {softmax_scale}
// (tests/test_class_losses.cpp against tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = one per row (0 for a dropped row).
// Options: softmax_scale > 0.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <cstddef>

namespace contrastive {

struct ProxyNCAOptions {
  double softmax_scale = 1;  // > 0: the softmax's scale on -squared distance
  Reducer reduction = Reduction::Mean;  // over the kept rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

namespace detail {

struct ProxyNCALoss {
  static constexpr const char* name = "proxy_nca_loss";
  using Options = ProxyNCAOptions;

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Index classes = require_class_weights<Scalar>(name, X, W);
    require_class_labels(name, labels, classes);
    require_positive_in<Scalar>(name, "options.softmax_scale", o.softmax_scale);
    require_positive_in<Scalar>(name, "2 * options.softmax_scale", 2.0 * o.softmax_scale);
    SoftmaxFamily f;
    f.scale = 2.0 * o.softmax_scale;
    f.drop_zero_target = true;
    return softmax_family_eval<Scalar>(name, X, labels, W, classes, CosineMargin<Scalar>{Scalar(0)}, f, o.reduction,
                                       o.workspace_bytes, grads, terms);
  }
};

}  // namespace detail

// proxy_nca_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto proxy_nca_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                    const Tail&... tail) {
  return detail::class_weight_call<detail::ProxyNCALoss>(X, labels, W, tail...);
}

}  // namespace contrastive
