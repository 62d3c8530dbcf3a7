// What every class-weight loss shares: its public call on (X, labels, W,
// [options], [value_only | dX_out [, dW_out]]), the checks of labels and W,
// and the evaluation of the cross-entropy family on the class-block engine
// (engine/class_blocks.hpp), so a loss is its margin function and options.
//
// W is c x D, one row per class (K rows per class with sub-centres, class c's
// at rows cK .. cK + K - 1). pytorch-metric-learning stores the softmax
// family's W (ArcFace, CosFace, SphereFace, LargeMargin, SubCenterArcFace,
// NormalizedSoftmax) as D x c: pass its transpose, and read dL/dW back
// transposed. Its proxies (ProxyNCA, ProxyAnchor) are already c x D.
//
// Results: grad[0] = dL/dX (N x D), grad[1] = dL/dW (shaped like W), terms.
// W is read through a row-major view: pass a row-major matrix or Map (any
// other layout is copied once, which for a million-class head is W again).
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/class_blocks.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <cmath>
#include <sstream>
#include <string>
#include <type_traits>

namespace contrastive {
namespace detail {

// Every label in [0, classes); the message names the first row outside.
inline void require_class_labels(const char* function, const LabelVector& labels, Index classes) {
  for (Index i = 0; i < labels.size(); ++i) {
    if (labels(i) < 0 || labels(i) >= classes) {
      std::ostringstream msg;
      msg << "argument 'labels' has " << labels(i) << " at row " << i << ", outside [0, " << classes
          << "): W has weights for " << classes << " classes";
      fail(function, msg.str());
    }
  }
}

// W: as many columns as X, finite, rows a multiple of sub_centers; returns the class count.
template <class Scalar>
Index require_class_weights(const char* function, const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& W,
                            Index sub_centers = 1) {
  if (W.cols() != X.cols() && (X.rows() > 0 || W.rows() > 0)) {
    fail(function, "argument 'W' is " + shape_of(W.rows(), W.cols()) + " but X has " + std::to_string(X.cols()) +
                       " columns; W is c x D, one row per class (pytorch-metric-learning's D x c W must be "
                       "transposed)");
  }
  require_embeddings<Scalar>(function, "W", W);
  if (W.rows() % sub_centers != 0) {
    fail(function, "argument 'W' has " + std::to_string(W.rows()) + " rows, not a multiple of options.sub_centers = " +
                       std::to_string(sub_centers) + " (K rows per class)");
  }
  return W.rows() / sub_centers;
}

// A scale option that must be > 0 and stay finite in Scalar.
template <class Scalar>
void require_positive_in(const char* function, const char* argument, double value) {
  require_positive(function, argument, value);
  if (!std::isfinite(static_cast<Scalar>(value))) {
    fail(function, std::string("argument '") + argument + "' overflows the embeddings' scalar type");
  }
}

// psi(cos) = cos - m (m = 0: the plain cosine softmax).
template <class Scalar>
struct CosineMargin {
  Scalar m;
  Scalar value(Scalar c) const { return c - m; }
  Scalar slope(Scalar) const { return Scalar(1); }
};

// The cross-entropy family on the class blocks: z_ic = a_i cos_ic, the target
// a_i psi(cos_iy), a_i = scale (times |x_i| when scale_by_norm), one term per
// row reduced by `reduction`.
struct SoftmaxFamily {
  double scale = 1;
  bool scale_by_norm = false;   // SphereFace's |x| factor
  bool drop_zero_target = false;  // ProxyNCA's dropped rows
  Index sub_centers = 1;
};

template <class Scalar, class Margin>
Scalar softmax_family_eval(const char* function, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                           const ConstRowRef<Scalar>& W, Index classes, const Margin& margin, const SoftmaxFamily& f,
                           const Reducer& reduction, std::size_t workspace_bytes, Gradients<Scalar>* grads,
                           Vector<Scalar>* terms) {
  Tally<Scalar> tally(function, "options.reduction", reduction, X.rows(), "the rows of X");
  ClassBlocks<Scalar> head(function, X, W, classes, f.sub_centers, workspace_bytes);
  SoftmaxHeadRows<Scalar> rows;
  const Scalar scale = static_cast<Scalar>(f.scale);
  Vector<Scalar> norms;
  if (f.scale_by_norm) {
    norms = X.rowwise().norm();
    rows.scale = scale * norms;
  } else {
    rows.scale = Vector<Scalar>::Constant(X.rows(), scale);
  }
  rows.drop_zero_target = f.drop_zero_target;
  Vector<Scalar> scale_grad;
  if (grads && f.scale_by_norm) rows.scale_grad = &scale_grad;
  if (!grads) return softmax_head<Scalar>(head, labels, margin, rows, tally, nullptr, nullptr, terms);
  RowMatrix<Scalar> dX, dW(W.rows(), W.cols());
  const Scalar value = softmax_head<Scalar>(head, labels, margin, rows, tally, &dX, &dW, terms);
  head.finish_rows(dX);
  if (f.scale_by_norm) {
    // a_i = scale |x_i|: dL/dx_i += dL/da_i scale x_i / |x_i| (0 at x_i = 0).
    for (Index i = 0; i < X.rows(); ++i) {
      if (norms(i) > Scalar(0)) dX.row(i) += (scale_grad(i) * scale / norms(i)) * X.row(i);
    }
  }
  grads->push_back(std::move(dX));
  grads->push_back(std::move(dW));
  return value;
}

// The public call of a class-weight loss. Loss supplies
//   static constexpr const char* name;  using Options = ...;
//   template <class Scalar>
//   static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
//                      const Options&, Gradients<Scalar>*, Vector<Scalar>* terms);
// Caller-owned outputs: dL/dX, then optionally dL/dW (named W_grad).
template <class Loss, class DX, class DW, class... Tail>
auto class_weight_call(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                       const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  check_same_scalar<DX, DW>();
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> w(W.derived());
  const LabelVector y = to_labels(Loss::name, "labels", labels, x.rows());
  const auto eval = [&](const auto& metric, const Options& o, Gradients<Scalar>* g, Vector<Scalar>* t) {
    static_assert(std::is_same<std::decay_t<decltype(metric)>, Cosine>::value,
                  "contrastive: class-weight losses score cosines of X against W and take no metric: "
                  "call loss(X, labels, W, [options], [value_only | dX_out [, dW_out]])");
    return Loss::template eval<Scalar>(x, y, w, o, g, t);
  };
  return call_forms<Cosine, Scalar, Options>(
      CallSpec{Loss::name, {{x.rows(), x.cols()}}, {{w.rows(), w.cols()}}, {"W_grad"}}, eval, tail...);
}

}  // namespace detail
}  // namespace contrastive
