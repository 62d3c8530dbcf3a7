// Normalised softmax (Zhai & Wu 2019, "Classification is a Strong Baseline
// for Deep Metric Learning") with learnable class weights W (c x D, one row
// per class) and gradients for X and W.
//
// On unit rows x^ and unit class weights w^ (engine/class_blocks.hpp):
//   logits z_ic = (x^_i . w^_c) / temperature,
//   term_i = cross-entropy of row i's logits at its label, reduced by
//   options.reduction (default Mean over the rows).
// Every class is in every row's softmax, with or without samples in the batch.
//
// Reproduces pytorch-metric-learning 2.8.1 NormalizedSoftmaxLoss(num_classes,
// embedding_size, temperature=0.05) with its default DotProductSimilarity
// (which normalises the embeddings) and options {temperature}: PML's loss.W is
// D x c, so W = loss.W.T and dL/dW = loss.W.grad.T
// (tests/test_class_losses.cpp against tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = one cross-entropy per row (times its
// sample weight). Options: temperature > 0.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <cstddef>

namespace contrastive {

struct NormalizedSoftmaxOptions {
  double temperature = 0.05;  // > 0
  Reducer reduction = Reduction::Mean;  // over the rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

namespace detail {

struct NormalizedSoftmaxLoss {
  static constexpr const char* name = "normalized_softmax_loss";
  using Options = NormalizedSoftmaxOptions;

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Index classes = require_class_weights<Scalar>(name, X, W);
    require_class_labels(name, labels, classes);
    require_positive_in<Scalar>(name, "options.temperature", o.temperature);
    require_positive_in<Scalar>(name, "1 / options.temperature", 1.0 / o.temperature);
    SoftmaxFamily f;
    f.scale = 1.0 / o.temperature;
    return softmax_family_eval<Scalar>(name, X, labels, W, classes, CosineMargin<Scalar>{Scalar(0)}, f, o.reduction,
                                       o.workspace_bytes, grads, terms);
  }
};

}  // namespace detail

// normalized_softmax_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto normalized_softmax_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                             const Tail&... tail) {
  return detail::class_weight_call<detail::NormalizedSoftmaxLoss>(X, labels, W, tail...);
}

}  // namespace contrastive
