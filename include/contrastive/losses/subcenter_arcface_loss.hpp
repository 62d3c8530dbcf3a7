// Sub-centre ArcFace (Deng et al. 2020) with K learnable sub-centres per
// class, gradients for X and W, and the outlier detection that finds samples
// far from their class's dominant sub-centre.
//
// W is (c K) x D: class c's sub-centres are rows cK .. cK + K - 1. On unit
// rows and unit sub-centres (engine/class_blocks.hpp) a row's cosine to a
// class is its largest cosine to the class's sub-centres,
//   cos_ic = max_s x^_i . w^_{cK+s}   (the first largest takes the gradient),
// for every class; then ArcFace (losses/arcface_loss.hpp) on those cosines:
// target s psi(cos_iy) with the additive angular margin and its fallback,
// other logits s cos_ic, cross-entropy per row, options.reduction (default
// Mean over the rows).
//
// subcenter_arcface_outliers(X, labels, W, [options], threshold = 75):
// for each class with samples, every sample votes for its nearest sub-centre
// (largest cosine, the first on ties); the sub-centre with most votes (the
// first on ties) is the class's dominant one; samples whose cosine to it is
// below cos(threshold degrees) are outliers, listed class by class in
// increasing class order, rows in increasing order within a class.
//
// Reproduces pytorch-metric-learning 2.8.1 SubCenterArcFaceLoss(num_classes,
// embedding_size, margin=28.6, scale=64, sub_centers=3) with options {margin,
// scale, sub_centers}: PML's loss.W is D x (c K), so W = loss.W.T and
// dL/dW = loss.W.grad.T; and its get_outliers(X, labels, threshold): the
// outlier indices, and the dominant sub-centre of each class (PML returns its
// column of W; here its index s, the row c K + s of W)
// (tests/test_class_losses.cpp against tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = one cross-entropy per row.
// Options: margin (degrees, in [0, 180)), scale > 0, sub_centers >= 1.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/arcface_loss.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <vector>

namespace contrastive {

struct SubCenterArcFaceOptions {
  double margin = 28.6;  // additive angular margin, degrees, in [0, 180)
  double scale = 64;     // > 0
  int sub_centers = 3;   // K >= 1 rows of W per class
  Reducer reduction = Reduction::Mean;  // over the rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

template <class Scalar>
struct SubCenterOutliers {
  std::vector<Index> outliers;     // rows, class by class (increasing), rows increasing within a class
  std::vector<Index> dominant;     // per class: its dominant sub-centre s in [0, K), -1 without samples
  Vector<Scalar> dominant_cosine;  // per row: its cosine to its class's dominant sub-centre
};

namespace detail {

struct SubCenterArcFaceLoss {
  static constexpr const char* name = "subcenter_arcface_loss";
  using Options = SubCenterArcFaceOptions;

  template <class Scalar>
  static Index validate(const char* function, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                        const ConstRowRef<Scalar>& W, const Options& o) {
    require_embeddings<Scalar>(function, "X", X);
    if (o.sub_centers < 1) {
      fail(function, "argument 'options.sub_centers' is " + std::to_string(o.sub_centers) + "; it must be >= 1");
    }
    const Index classes = require_class_weights<Scalar>(function, X, W, o.sub_centers);
    require_class_labels(function, labels, classes);
    require_angle_margin(function, o.margin);
    require_positive_in<Scalar>(function, "options.scale", o.scale);
    return classes;
  }

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    const Index classes = validate<Scalar>(name, X, labels, W, o);
    SoftmaxFamily f;
    f.scale = o.scale;
    f.sub_centers = o.sub_centers;
    return softmax_family_eval<Scalar>(name, X, labels, W, classes, AngularMargin<Scalar>(o.margin), f, o.reduction,
                                       o.workspace_bytes, grads, terms);
  }
};

}  // namespace detail

// subcenter_arcface_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto subcenter_arcface_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                            const Tail&... tail) {
  return detail::class_weight_call<detail::SubCenterArcFaceLoss>(X, labels, W, tail...);
}

// The outliers of each class against its dominant sub-centre (see the header comment). O(N K D).
template <class DX, class DW>
SubCenterOutliers<typename DX::Scalar> subcenter_arcface_outliers(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                                                                  const Eigen::MatrixBase<DW>& W,
                                                                  const SubCenterArcFaceOptions& options = {},
                                                                  double threshold = 75) {
  using Scalar = typename DX::Scalar;
  const char* function = "subcenter_arcface_outliers";
  detail::check_same_scalar<DX, DW>();
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> w(W.derived());
  const LabelVector y = detail::to_labels(function, "labels", labels, x.rows());
  const Index classes = detail::SubCenterArcFaceLoss::validate<Scalar>(function, x, y, w, options);
  if (!(std::isfinite(threshold) && threshold >= 0 && threshold <= 180)) {
    detail::fail(function, "argument 'threshold' is " + std::to_string(threshold) +
                               " degrees; it must be in [0, 180]");
  }
  const Index n = x.rows(), k = options.sub_centers;
  const Scalar limit = static_cast<Scalar>(std::cos(threshold * 3.14159265358979323846 / 180.0));
  const Vector<Scalar> x_inv = detail::inverse_row_norms<Scalar>(x), w_inv = detail::inverse_row_norms<Scalar>(w);
  SubCenterOutliers<Scalar> out;
  out.dominant.assign(static_cast<std::size_t>(classes), -1);
  out.dominant_cosine.setZero(n);
  // Rows grouped by class, increasing within a class.
  std::vector<Index> order(static_cast<std::size_t>(n));
  std::iota(order.begin(), order.end(), Index(0));
  std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) { return y(a) < y(b); });
  RowMatrix<Scalar> cos;
  for (std::size_t start = 0; start < order.size();) {
    const Label c = y(order[start]);
    std::size_t end = start;
    while (end < order.size() && y(order[end]) == c) ++end;
    const Index m = static_cast<Index>(end - start);
    cos.resize(m, k);
    std::vector<Index> votes(static_cast<std::size_t>(k), 0);
    for (Index r = 0; r < m; ++r) {
      const Index i = order[start + static_cast<std::size_t>(r)];
      Index best = 0;
      for (Index s = 0; s < k; ++s) {
        cos(r, s) = (x.row(i) * x_inv(i)).dot(w.row(c * k + s) * w_inv(c * k + s));
        if (cos(r, s) > cos(r, best)) best = s;
      }
      ++votes[static_cast<std::size_t>(best)];
    }
    const Index dom = static_cast<Index>(std::max_element(votes.begin(), votes.end()) - votes.begin());
    out.dominant[static_cast<std::size_t>(c)] = dom;
    for (Index r = 0; r < m; ++r) {
      const Index i = order[start + static_cast<std::size_t>(r)];
      out.dominant_cosine(i) = cos(r, dom);
      if (cos(r, dom) < limit) out.outliers.push_back(i);
    }
    start = end;
  }
  return out;
}

}  // namespace contrastive
