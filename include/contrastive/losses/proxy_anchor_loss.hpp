// Proxy Anchor (Kim et al. 2020) with learnable proxies W (c x D, one row
// per class) and gradients for X and W.
//
// On unit rows x^ and unit proxies w^ (engine/class_blocks.hpp),
// cos_ic = x^_i . w^_c, margin m, alpha:
//   pos_c = log(1 + sum_{i: y_i = c} exp(-alpha (cos_ic - m)))   (0 if class c has no sample)
//   neg_c = log(1 + sum_{i: y_i != c} exp(alpha (cos_ic + m)))   (0 if every sample is of class c)
//   L = sum_c pos_c / (classes with a sample) + sum_c neg_c / c
// The positive part averages over the classes present in the batch, the
// negative part over all classes (every proxy is a negative of the samples of
// other classes, with or without samples of its own). Each proxy's terms are
// sums over its column only, so a block of classes is finished in one pass.
//
// Reproduces pytorch-metric-learning 2.8.1 ProxyAnchorLoss(num_classes,
// embedding_size, margin=0.1, alpha=32) with its default CosineSimilarity and
// DivisorReducer: W = loss.proxies (already c x D), options {margin, alpha}
// (tests/test_class_losses.cpp against tests/reference/data/pml_class_losses.txt).
//
// Result: grad = {dL/dX, dL/dW}; terms = pos_c + neg_c per class (c entries).
// Options: margin finite, alpha > 0.
#pragma once

#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/class_weight_loss.hpp"

#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace contrastive {

struct ProxyAnchorOptions {
  double margin = 0.1;  // finite
  double alpha = 32;    // > 0
  std::size_t workspace_bytes = default_workspace_bytes;  // the N x block-of-classes workspace
};

namespace detail {

struct ProxyAnchorLoss {
  static constexpr const char* name = "proxy_anchor_loss";
  using Options = ProxyAnchorOptions;

  template <class Scalar>
  static Scalar eval(const ConstRowRef<Scalar>& X, const LabelVector& labels, const ConstRowRef<Scalar>& W,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    using Array = typename ClassBlocks<Scalar>::RowArray;
    require_embeddings<Scalar>(name, "X", X);
    const Index classes = require_class_weights<Scalar>(name, X, W);
    require_class_labels(name, labels, classes);
    require_finite_scalar(name, "options.margin", o.margin);
    require_positive_in<Scalar>(name, "options.alpha", o.alpha);
    const Index n = X.rows();
    ClassBlocks<Scalar> head(name, X, W, classes, 1, o.workspace_bytes);
    std::vector<Index> count(static_cast<std::size_t>(classes), 0);
    Index present = 0;
    for (Index i = 0; i < n; ++i) {
      if (count[static_cast<std::size_t>(labels(i))]++ == 0) ++present;
    }
    const Scalar alpha = static_cast<Scalar>(o.alpha), m = static_cast<Scalar>(o.margin);
    const Scalar inf = std::numeric_limits<Scalar>::infinity();
    const Scalar pos_w = present > 0 ? Scalar(1) / static_cast<Scalar>(present) : Scalar(0);
    const Scalar neg_w = classes > 0 ? Scalar(1) / static_cast<Scalar>(classes) : Scalar(0);
    if (terms) terms->setZero(classes);
    RowMatrix<Scalar> dU, dW;
    if (grads) {
      dU.setZero(n, X.cols());
      dW.setZero(W.rows(), W.cols());
    }
    Scalar value = 0;
    typename ClassBlocks<Scalar>::Block S;
    using RowMap = Eigen::Map<Array>;
    std::vector<Scalar> vpos(static_cast<std::size_t>(n));
    for (Index b = 0; n > 0 && b < head.blocks(); ++b) {
      const Index c0 = head.first(b), nc = head.size(b);
      head.cosines(b, S, false);  // 1 / |w| folded into the first sweep
      const Array inv = head.column_scale(b);
      // Sweep 1, row by row: v = alpha (cos + m) in place, -inf at the row's own class (its
      // positive, alpha (m - cos), kept aside); the columns' maxima, from 0 (the "1 +").
      Array pos_max = Array::Zero(nc), neg_max = Array::Zero(nc);
      for (Index i = 0; i < n; ++i) {
        RowMap v(S.data() + i * nc, nc);
        v *= inv;
        const Index t = labels(i) - c0;
        const bool own = t >= 0 && t < nc;
        const Scalar p = own ? alpha * (m - v(t)) : Scalar(0);
        v = alpha * (v + m);
        if (own) {
          vpos[static_cast<std::size_t>(i)] = p;
          pos_max(t) = std::max(pos_max(t), p);
          v(t) = -inf;
        }
        neg_max = neg_max.max(v);
      }
      // Sweep 2: the exponentials and the columns' sums.
      Array neg_sum = (-neg_max).exp(), pos_sum = (-pos_max).exp();
      for (Index i = 0; i < n; ++i) {
        RowMap v(S.data() + i * nc, nc);
        v = (v - neg_max).exp();
        neg_sum += v;
        const Index t = labels(i) - c0;
        if (t >= 0 && t < nc) pos_sum(t) += std::exp(vpos[static_cast<std::size_t>(i)] - pos_max(t));
      }
      for (Index c = 0; c < nc; ++c) {
        const Index k = count[static_cast<std::size_t>(c0 + c)];
        const Scalar pos = k > 0 ? pos_max(c) + std::log(pos_sum(c)) : Scalar(0);
        const Scalar neg = k < n ? neg_max(c) + std::log(neg_sum(c)) : Scalar(0);
        value += pos * pos_w + neg * neg_w;
        if (terms) (*terms)(c0 + c) = pos + neg;
      }
      if (!grads) continue;
      // dneg_c / dcos_ic = alpha e_ic / sum; dpos_c / dcos_ic = -alpha e_ic / sum (e is 0 at the own
      // class); times 1 / |w| for the backward.
      const Array neg_g = (alpha * neg_w) * inv / neg_sum;
      for (Index i = 0; i < n; ++i) {
        RowMap g(S.data() + i * nc, nc);
        g *= neg_g;
        const Index t = labels(i) - c0;
        if (t >= 0 && t < nc) {
          g(t) = -alpha * pos_w * inv(t) * std::exp(vpos[static_cast<std::size_t>(i)] - pos_max(t)) / pos_sum(t);
        }
      }
      head.backward(b, S, dU, dW, true);
    }
    if (grads) {
      head.finish_rows(dU);
      grads->push_back(std::move(dU));
      grads->push_back(std::move(dW));
    }
    return value;
  }
};

}  // namespace detail

// proxy_anchor_loss(X, labels, W, [options], [value_only | dX_out [, dW_out]]): grad = {dX, dW}.
template <class DX, class DW, class... Tail>
auto proxy_anchor_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eigen::MatrixBase<DW>& W,
                       const Tail&... tail) {
  return detail::class_weight_call<detail::ProxyAnchorLoss>(X, labels, W, tail...);
}

}  // namespace contrastive
