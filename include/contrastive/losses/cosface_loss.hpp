// CosFace (Wang et al. 2018, large margin cosine loss) with learnable class
// weights W (c x D, one row per class) and gradients for X and W.
//
// On unit rows x^ and unit class weights w^ (engine/class_blocks.hpp),
// cos_ic = x^_i . w^_c:
//   target logit  s (cos_iy - m)      other logits  s cos_ic
//   term_i = cross-entropy of row i's logits at its label, reduced by
//   options.reduction (default Mean over the rows).
// Every class is in every row's softmax, with or without samples in the batch.
//
// Reproduces pytorch-metric-learning 2.8.1 CosFaceLoss(num_classes,
// embedding_size, margin=0.35, scale=64) with options {margin, scale}: PML's
// loss.W is D x c, so W = loss.W.T and dL/dW = loss.W.grad.T
// (tests/test_class_losses.cpp against tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = one cross-entropy per row (times its
// sample weight). Options: margin in cosine units, in [0, 2]; scale > 0.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <cmath>
#include <cstddef>

namespace contrastive {

struct CosFaceOptions {
  double margin = 0.35;  // additive cosine margin, in [0, 2]
  double scale = 64;     // > 0
  Reducer reduction = Reduction::Mean;  // over the rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

namespace detail {

struct CosFaceLoss {
  static constexpr const char* name = "cosface_loss";
  using Options = CosFaceOptions;

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Index classes = require_class_weights<Scalar>(name, X, W);
    require_class_labels(name, labels, classes);
    if (!(std::isfinite(o.margin) && o.margin >= 0.0 && o.margin <= 2.0)) {
      fail(name, "argument 'options.margin' is " + std::to_string(o.margin) +
                     "; a cosine margin must be in [0, 2]");
    }
    require_positive_in<Scalar>(name, "options.scale", o.scale);
    SoftmaxFamily f;
    f.scale = o.scale;
    return softmax_family_eval<Scalar>(name, X, labels, W, classes, CosineMargin<Scalar>{static_cast<Scalar>(o.margin)},
                                       f, o.reduction, o.workspace_bytes, grads, terms);
  }
};

}  // namespace detail

// cosface_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto cosface_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                  const Tail&... tail) {
  return detail::class_weight_call<detail::CosFaceLoss>(X, labels, W, tail...);
}

}  // namespace contrastive
