// SphereFace (Liu et al. 2017, multiplicative angular margin; the
// large-margin softmax of Liu et al. 2016 without its |w| factor) with
// learnable class weights W (c x D, one row per class) and gradients for X and W.
//
// On unit rows x^ and unit class weights w^ (engine/class_blocks.hpp),
// cos_ic = x^_i . w^_c, integer margin m >= 1, theta = acos(clamp(cos, -1, 1)):
//   k = floor(theta / (pi / m)), held constant (no gradient through k),
//   psi = (-1)^k cos(m theta) - 2k, cos(m theta) as the polynomial in cos
//         sum_n (-1)^n C(m, 2n) cos^(m-2n) (1 - cos^2)^n, n = 0 .. m / 2
//   target logit  |x_i| s psi(cos_iy)     other logits  |x_i| s cos_ic
//   (|x_i| the raw row's norm, which gets its gradient too)
//   term_i = cross-entropy of row i's logits at its label, reduced by
//   options.reduction (default Mean over the rows).
// Every class is in every row's softmax, with or without samples in the batch.
//
// Reproduces pytorch-metric-learning 2.8.1 SphereFaceLoss(num_classes,
// embedding_size, margin=4, scale=1) with options {margin, scale}: PML's loss.W
// is D x c, so W = loss.W.T and dL/dW = loss.W.grad.T; PML truncates margin to
// an integer, here it is one (tests/test_class_losses.cpp against
// tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = one cross-entropy per row (times its
// sample weight). Options: margin an integer in [1, 64], scale > 0.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <cmath>
#include <cstddef>
#include <vector>

namespace contrastive {

struct SphereFaceOptions {
  int margin = 4;    // multiplicative angular margin m, in [1, 64]
  double scale = 1;  // > 0
  Reducer reduction = Reduction::Mean;  // over the rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

namespace detail {

// psi of the multiplicative angular margin.
template <class Scalar>
struct MultiplicativeMargin {
  int m;
  Scalar sector;                 // pi / m
  std::vector<Scalar> binomial;  // (-1)^n C(m, 2n), n = 0 .. m / 2

  explicit MultiplicativeMargin(int margin)
      : m(margin), sector(static_cast<Scalar>(3.14159265358979323846 / margin)) {
    for (int n = 0; 2 * n <= m; ++n) {
      double c = 1;  // C(m, 2n)
      for (int j = 0; j < 2 * n; ++j) c = c * (m - j) / (j + 1);
      binomial.push_back(static_cast<Scalar>(n % 2 == 0 ? c : -c));
    }
  }
  static Scalar power(Scalar x, int e) {
    Scalar r = 1;
    for (int j = 0; j < e; ++j) r *= x;
    return r;
  }
  Scalar k_of(Scalar c) const {
    return std::floor(std::acos(std::min(Scalar(1), std::max(Scalar(-1), c))) / sector);
  }
  static Scalar sign(Scalar k) { return std::fmod(k, Scalar(2)) == Scalar(0) ? Scalar(1) : Scalar(-1); }
  Scalar chebyshev(Scalar c) const {
    const Scalar s = Scalar(1) - c * c;
    Scalar t = 0;
    for (int n = 0; 2 * n <= m; ++n) t += binomial[static_cast<std::size_t>(n)] * power(c, m - 2 * n) * power(s, n);
    return t;
  }
  Scalar chebyshev_slope(Scalar c) const {
    const Scalar s = Scalar(1) - c * c;
    Scalar d = 0;
    for (int n = 0; 2 * n <= m; ++n) {
      const int e = m - 2 * n;
      Scalar term = 0;
      if (e > 0) term += static_cast<Scalar>(e) * power(c, e - 1) * power(s, n);
      if (n > 0) term -= static_cast<Scalar>(2 * n) * power(c, e + 1) * power(s, n - 1);
      d += binomial[static_cast<std::size_t>(n)] * term;
    }
    return d;
  }
  Scalar value(Scalar c) const {
    const Scalar k = k_of(c);
    return sign(k) * chebyshev(c) - Scalar(2) * k;
  }
  Scalar slope(Scalar c) const { return sign(k_of(c)) * chebyshev_slope(c); }
};

struct SphereFaceLoss {
  static constexpr const char* name = "sphereface_loss";
  using Options = SphereFaceOptions;

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Index classes = require_class_weights<Scalar>(name, X, W);
    require_class_labels(name, labels, classes);
    if (o.margin < 1 || o.margin > 64) {
      fail(name, "argument 'options.margin' is " + std::to_string(o.margin) +
                     "; the multiplicative margin must be an integer in [1, 64]");
    }
    require_positive_in<Scalar>(name, "options.scale", o.scale);
    SoftmaxFamily f;
    f.scale = o.scale;
    f.scale_by_norm = true;
    return softmax_family_eval<Scalar>(name, X, labels, W, classes, MultiplicativeMargin<Scalar>(o.margin), f,
                                       o.reduction, o.workspace_bytes, grads, terms);
  }
};

}  // namespace detail

// sphereface_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto sphereface_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                     const Tail&... tail) {
  return detail::class_weight_call<detail::SphereFaceLoss>(X, labels, W, tail...);
}

}  // namespace contrastive
