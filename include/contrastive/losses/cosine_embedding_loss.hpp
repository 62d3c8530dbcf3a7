// Cosine embedding loss, torch.nn.CosineEmbeddingLoss semantics: for row i of
// X1 and row i of X2 with target y_i in {+1, -1},
//   y_i = +1:  1 - cos(x1_i, x2_i)
//   y_i = -1:  max(0, cos(x1_i, x2_i) - margin)
// reduced with `reduction` (default Mean, PyTorch's 'mean' over all N rows;
// Sum is PyTorch's 'sum'; the terms are PyTorch's reduction='none' output).
// margin in [-1, 1] (PyTorch's default 0). grad = {dX1, dX2}; terms: one per row.
// `reduction` may carry sample weights, one per row (core/reducer.hpp).
//
// Reproducing PyTorch: cosine_embedding_loss(X1, X2, y, margin[, Sum]) equals
// torch.nn.functional.cosine_embedding_loss(x1, x2, y, margin, reduction='mean'/'sum')
// (proved by tests/test_cosine_embedding_loss.cpp against
// tests/reference/data/pair_cosine_embedding.txt). One documented difference:
// PyTorch computes cos = x1.x2 / sqrt((|x1|^2 + 1e-12)(|x2|^2 + 1e-12)). We use
// the exact cosine (scale-invariant), so the results differ when a row's squared
// norm is not large beside 1e-12 (rows of norm below ~1e-4), and for zero rows
// we follow the library convention cos = 0 with gradient 0, where PyTorch's
// gradient is about 1e6 times the other row.
#pragma once

#include "contrastive/core/evaluate.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/distance.hpp"

#include <sstream>
#include <string>
#include <type_traits>

namespace contrastive {
namespace detail {

// Targets of any arithmetic vector type, each exactly +1 or -1.
template <class T>
Vector<double> to_cosine_targets(const char* function, const Eigen::DenseBase<T>& target, Index rows) {
  static_assert(std::is_arithmetic<typename T::Scalar>::value,
                "contrastive: target must be a numeric vector of +1 / -1");
  if (target.rows() != 1 && target.cols() != 1 && target.size() != 0) {
    fail(function, "argument 'target' must be a vector, got " + shape_of(target.rows(), target.cols()));
  }
  require_length(function, "target", target.size(), rows, "X1");
  Vector<double> out(target.size());
  for (Index i = 0; i < target.size(); ++i) {
    const double v = static_cast<double>(target.derived().coeff(i));
    if (v != 1.0 && v != -1.0) {
      std::ostringstream msg;
      msg << "argument 'target' has " << v << " at index " << i << "; every entry must be +1 or -1";
      fail(function, msg.str());
    }
    out(i) = v;
  }
  return out;
}

inline void validate_cosine_margin(const char* function, double margin) {
  require_finite_scalar(function, "margin", margin);
  if (margin < -1.0 || margin > 1.0) {
    fail(function, "argument 'margin' must be in [-1, 1], got " + std::to_string(margin));
  }
}

// On the Cosine metric's row-wise distance d = 1 - cos.
template <class Scalar>
Scalar cosine_embedding_eval(const ConstRowRef<Scalar>& X1, const ConstRowRef<Scalar>& X2,
                             const Vector<double>& target, double margin, const Reducer& reduction,
                             Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const Tally<Scalar> tally("cosine_embedding_loss", "reduction", reduction, X1.rows(), "the rows of X1");
  const Scalar m = static_cast<Scalar>(margin);
  const auto term = [&](Index i, Scalar d, Scalar& slope) {
    if (target(i) > 0) {
      slope = Scalar(1);
      return d;  // 1 - cos
    }
    const Scalar h = Scalar(1) - d - m;  // cos - margin
    slope = h > Scalar(0) ? Scalar(-1) : Scalar(0);
    return h > Scalar(0) ? h : Scalar(0);
  };
  auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
    return reduce_row_terms<Scalar>(d, tally, term, dd, terms);
  };
  return rowwise_pipeline<Scalar>(Cosine{}, X1, X2, loss, grads);
}

template <class D1, class D2, class T>
struct CosineEmbeddingInputs {
  using Scalar = typename D1::Scalar;
  ConstRowRef<Scalar> x1, x2;
  Vector<double> target;

  CosineEmbeddingInputs(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                        const Eigen::DenseBase<T>& t, double margin)
      : x1(X1.derived()), x2(X2.derived()) {
    check_same_scalar<D1, D2>();
    const char* fn = "cosine_embedding_loss";
    require_embeddings<Scalar>(fn, "X1", x1);
    require_embeddings<Scalar>(fn, "X2", x2);
    require_same_shape(fn, "X1", x1, "X2", x2);
    target = to_cosine_targets(fn, t, x1.rows());
    validate_cosine_margin(fn, margin);
  }
};

}  // namespace detail

template <class D1, class D2, class T>
LossResult<typename D1::Scalar> cosine_embedding_loss(const Eigen::MatrixBase<D1>& X1,
                                                      const Eigen::MatrixBase<D2>& X2,
                                                      const Eigen::DenseBase<T>& target,
                                                      double margin = 0.0,
                                                      const Reducer& reduction = Reduction::Mean) {
  using Scalar = typename D1::Scalar;
  const detail::CosineEmbeddingInputs<D1, D2, T> in(X1, X2, target, margin);
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::cosine_embedding_eval<Scalar>(in.x1, in.x2, in.target, margin, reduction, g, t);
  });
}

template <class D1, class D2, class T>
typename D1::Scalar cosine_embedding_loss(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                                          const Eigen::DenseBase<T>& target, double margin,
                                          const Reducer& reduction, ValueOnly) {
  using Scalar = typename D1::Scalar;
  const detail::CosineEmbeddingInputs<D1, D2, T> in(X1, X2, target, margin);
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::cosine_embedding_eval<Scalar>(in.x1, in.x2, in.target, margin, reduction, g, t);
  });
}

template <class D1, class D2, class T>
typename D1::Scalar cosine_embedding_loss(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                                          const Eigen::DenseBase<T>& target, double margin, ValueOnly) {
  return cosine_embedding_loss(X1, X2, target, margin, Reduction::Mean, value_only);
}

// dL/dX1 into grad1_out and dL/dX2 into grad2_out (caller-owned, shaped like X1, X2).
template <class D1, class D2, class T, class G1, class G2>
typename D1::Scalar cosine_embedding_loss(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                                          const Eigen::DenseBase<T>& target, double margin,
                                          const Reducer& reduction, const Eigen::MatrixBase<G1>& grad1_out,
                                          const Eigen::MatrixBase<G2>& grad2_out) {
  using Scalar = typename D1::Scalar;
  const detail::CosineEmbeddingInputs<D1, D2, T> in(X1, X2, target, margin);
  return detail::evaluate_into<Scalar>(
      "cosine_embedding_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::cosine_embedding_eval<Scalar>(in.x1, in.x2, in.target, margin, reduction, g, t);
      },
      {{{in.x1.rows(), in.x1.cols()}, {in.x2.rows(), in.x2.cols()}}}, grad1_out, grad2_out);
}

template <class D1, class D2, class T, class G1, class G2>
typename D1::Scalar cosine_embedding_loss(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                                          const Eigen::DenseBase<T>& target, double margin,
                                          const Eigen::MatrixBase<G1>& grad1_out,
                                          const Eigen::MatrixBase<G2>& grad2_out) {
  return cosine_embedding_loss(X1, X2, target, margin, Reduction::Mean, grad1_out, grad2_out);
}

}  // namespace contrastive
