// ArcFace (Deng et al. 2019, additive angular margin) with learnable class
// weights W (c x D, one row per class) and gradients for X and W.
//
// On unit rows x^ and unit class weights w^ (engine/class_blocks.hpp),
// cos_ic = x^_i . w^_c, theta = acos(clamp(cos, -1, 1)), m = margin in radians:
//   target logit  s psi(cos_iy),  psi = cos(theta + m)          if theta <= pi - m
//                                     = cos(theta) - m sin(m)   otherwise
//                 (the fallback keeps the logit decreasing in theta)
//   other logits  s cos_ic
//   term_i = cross-entropy of row i's logits at its label, reduced by
//   options.reduction (default Mean over the rows).
// Every class is in every row's softmax, with or without samples in the batch.
// At |cos| = 1 the angle's derivative is unbounded; the target's d psi / d cos
// is taken as 0 there.
//
// Reproduces pytorch-metric-learning 2.8.1 ArcFaceLoss(num_classes,
// embedding_size, margin=28.6, scale=64) with options {margin, scale}: PML's
// loss.W is D x c, so W = loss.W.T and dL/dW = loss.W.grad.T
// (tests/test_class_losses.cpp against tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = one cross-entropy per row (times its
// sample weight). Options: margin (degrees, in [0, 180)), scale > 0.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <cmath>
#include <cstddef>

namespace contrastive {

struct ArcFaceOptions {
  double margin = 28.6;  // additive angular margin, degrees, in [0, 180)
  double scale = 64;     // > 0
  Reducer reduction = Reduction::Mean;  // over the rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

namespace detail {

inline void require_angle_margin(const char* function, double degrees) {
  if (!(std::isfinite(degrees) && degrees >= 0.0 && degrees < 180.0)) {
    fail(function, "argument 'options.margin' is " + std::to_string(degrees) +
                       " degrees; an angular margin must be in [0, 180)");
  }
}

// psi of the additive angular margin (shared with SubCenterArcFace).
template <class Scalar>
struct AngularMargin {
  Scalar m, cos_m, sin_m, limit, fallback;
  explicit AngularMargin(double degrees) {
    const double r = degrees * 3.14159265358979323846 / 180.0;
    m = static_cast<Scalar>(r);
    cos_m = std::cos(m);
    sin_m = std::sin(m);
    limit = static_cast<Scalar>(3.14159265358979323846 - r);
    fallback = m * sin_m;
  }
  static Scalar angle(Scalar c) { return std::acos(std::min(Scalar(1), std::max(Scalar(-1), c))); }
  Scalar value(Scalar c) const {
    const Scalar theta = angle(c);
    return theta <= limit ? std::cos(theta + m) : std::cos(theta) - fallback;
  }
  Scalar slope(Scalar c) const {
    const Scalar theta = angle(c);
    if (theta > limit) return Scalar(1);
    const Scalar s = std::sin(theta);
    return s > Scalar(0) ? std::sin(theta + m) / s : Scalar(0);
  }
};

struct ArcFaceLoss {
  static constexpr const char* name = "arcface_loss";
  using Options = ArcFaceOptions;

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Index classes = require_class_weights<Scalar>(name, X, W);
    require_class_labels(name, labels, classes);
    require_angle_margin(name, o.margin);
    require_positive_in<Scalar>(name, "options.scale", o.scale);
    SoftmaxFamily f;
    f.scale = o.scale;
    return softmax_family_eval<Scalar>(name, X, labels, W, classes, AngularMargin<Scalar>(o.margin), f, o.reduction,
                                       o.workspace_bytes, grads, terms);
  }
};

}  // namespace detail

// arcface_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto arcface_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                  const Tail&... tail) {
  return detail::class_weight_call<detail::ArcFaceLoss>(X, labels, W, tail...);
}

}  // namespace contrastive
