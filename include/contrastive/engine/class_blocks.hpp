// The class-weight head: embeddings X (N x D) against a class-weight matrix W
// (one row per class, or K rows per class for sub-centres), walked in blocks
// of classes under a workspace budget, so no N x c matrix exists unless it
// fits options.workspace_bytes.
//
// Every class-weight loss scores unit rows against unit class weights:
//   x^_i = x_i / |x_i|,   w^_j = w_j / |w_j|   (a zero row stays 0, with gradient 0;
//   pytorch-metric-learning divides by max(|x|, 1e-12), which differs only there)
//   cos_ij = x^_i . w^_j   (K > 1: cos_ic = max_s cos_i,(cK+s), the first
//                           largest sub-centre taking the gradient)
// The unit weights are never stored: a block's cosines are X^ W_b^T with its
// columns scaled by 1 / |w| (O(c) extra memory, however large c).
//
// ClassBlocks gives a loss those cosines block by block and takes back
// dL/dcos for the block: dX^ += G diag(1/|w|) W_b and dW_b = chain(G^T X^),
// the normalisations' backward applied once at the end for X and per block
// for W (written straight into dL/dW's rows).
//
// softmax_head runs the cross-entropy family on it: logits
//   z_ic = a_i cos_ic (c != y_i),   z_iy = a_i psi(cos_iy)
// (a_i a per-row scale, psi the loss's margin function on the target), an
// online log-sum-exp per row across blocks (pass 1), then, for gradients, a
// second pass forming p = softmax(z) block by block: dL/dcos_ic = f_i a_i p_ic,
// and for the target f_i a_i (p_iy - 1) psi'(cos_iy), f_i the reduction's
// factor. While the whole N x c head fits the budget it is one block and pass
// 2 reuses it; otherwise pass 2 recomputes each block (one more product).
#pragma once

#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace contrastive {
namespace detail {

// 1 / |row| for every row of M, 0 for a zero row (which has no direction: its
// unit row is 0, its cosines 0, its gradient 0).
template <class Scalar>
Vector<Scalar> inverse_row_norms(const ConstRowRef<Scalar>& M) {
  Vector<Scalar> inv(M.rows());
  for (Index i = 0; i < M.rows(); ++i) {
    const Scalar norm = M.row(i).norm();
    inv(i) = norm > Scalar(0) ? Scalar(1) / norm : Scalar(0);
  }
  return inv;
}

// In place: rows dU of dL/d(unit row) become dL/d(row), for rows R of the
// matrix that was normalised with inverse norms inv (from row `first` on):
// dr = inv (du - (du . u) u) with u = inv r; 0 for a zero row.
template <class Scalar, class DU, class DR>
void unit_rows_backward(Eigen::MatrixBase<DU>& dU, const Eigen::MatrixBase<DR>& R, const Vector<Scalar>& inv,
                        Index first = 0) {
  for (Index i = 0; i < dU.rows(); ++i) {
    const Scalar s = inv(first + i);
    const Scalar along = dU.row(i).dot(R.row(i)) * s;  // du . u
    dU.row(i) = s * (dU.row(i) - (along * s) * R.row(i));
  }
}

// Classes per block: the cosines of N rows against B classes (K sub-centres
// each: N x BK raw cosines, reused for their gradient), the block's logits or
// probabilities (N x B), and the argmax of the sub-centres (K > 1).
inline Index classes_per_block(const char* function, Index rows, Index classes, Index sub_centers,
                               std::size_t scalar_bytes, std::size_t workspace_bytes) {
  if (classes == 0 || rows == 0) return std::max<Index>(classes, 1);
  const std::size_t per_class = static_cast<std::size_t>(rows) *
      (static_cast<std::size_t>(sub_centers + 2) * scalar_bytes + (sub_centers > 1 ? sizeof(std::int32_t) : 0));
  const std::size_t fit = workspace_bytes / per_class;
  if (fit == 0) {
    fail(function, "options.workspace_bytes = " + std::to_string(workspace_bytes) +
                       " is below one class's workspace (" + std::to_string(per_class) + " bytes for " +
                       std::to_string(rows) + " rows); raise it");
  }
  return static_cast<Index>(std::min<std::size_t>(fit, static_cast<std::size_t>(classes)));
}

// The blocked cosines and their backward (see the header comment).
template <class Scalar>
class ClassBlocks {
 public:
  using Block = RowMatrix<Scalar>;

  // X: the raw embeddings; W: (classes * sub_centers) x D.
  ClassBlocks(const char* function, const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& W, Index classes,
              Index sub_centers, std::size_t workspace_bytes)
      : X_(X), W_(W), classes_(classes), k_(sub_centers),
        block_(classes_per_block(function, X.rows(), classes, sub_centers, sizeof(Scalar), workspace_bytes)),
        x_inv_(inverse_row_norms<Scalar>(X)), w_inv_(inverse_row_norms<Scalar>(W)) {
    unit_ = X.array().colwise() * x_inv_.array();
  }

  Index rows() const { return X_.rows(); }
  Index classes() const { return classes_; }
  Index block() const { return block_; }
  Index blocks() const { return classes_ == 0 ? 0 : (classes_ + block_ - 1) / block_; }
  bool single_block() const { return blocks() <= 1; }
  Index first(Index b) const { return b * block_; }
  Index size(Index b) const { return std::min(block_, classes_ - b * block_); }
  const RowMatrix<Scalar>& unit_rows() const { return unit_; }
  const Vector<Scalar>& inverse_norms() const { return x_inv_; }

  // The cosines of block b into S (N x size(b)).
  void cosines(Index b, Block& S) {
    const Index c0 = first(b), nc = size(b);
    const Index r0 = c0 * k_, nr = nc * k_;
    raw_.resize(rows(), nr);
    raw_.noalias() = unit_ * W_.middleRows(r0, nr).transpose();
    raw_.array().rowwise() *= w_inv_.segment(r0, nr).transpose().array();
    if (k_ == 1) {
      S.swap(raw_);
      return;
    }
    S.resize(rows(), nc);
    arg_.resize(static_cast<std::size_t>(rows() * nc));
    for (Index i = 0; i < rows(); ++i) {
      const Scalar* r = raw_.data() + i * nr;
      for (Index c = 0; c < nc; ++c) {
        Index best = 0;
        for (Index s = 1; s < k_; ++s) {
          if (r[c * k_ + s] > r[c * k_ + best]) best = s;
        }
        S(i, c) = r[c * k_ + best];
        arg_[static_cast<std::size_t>(i * nc + c)] = static_cast<std::int32_t>(best);
      }
    }
  }
  // After cosines(b, S) with K = 1, S holds the block; give the buffer back for reuse.
  void give_back(Block& S) {
    if (k_ == 1) S.swap(raw_);
  }

  // Sub-centre of class c0 + c chosen for row i by the last cosines() call.
  Index chosen(Index i, Index c, Index nc) const {
    return k_ == 1 ? 0 : static_cast<Index>(arg_[static_cast<std::size_t>(i * nc + c)]);
  }

  // Backward of block b: G = dL/dcos (N x size(b)); adds to dU (dL/dX^) and
  // writes the block's rows of dW (dL/dW). G is consumed.
  void backward(Index b, Block& G, RowMatrix<Scalar>& dU, RowMatrix<Scalar>& dW) {
    const Index c0 = first(b), nc = size(b);
    const Index r0 = c0 * k_, nr = nc * k_;
    Block* g = &G;
    if (k_ > 1) {
      raw_.setZero(rows(), nr);
      for (Index i = 0; i < rows(); ++i) {
        for (Index c = 0; c < nc; ++c) raw_(i, c * k_ + chosen(i, c, nc)) = G(i, c);
      }
      g = &raw_;
    }
    auto dWb = dW.middleRows(r0, nr);
    dWb.noalias() = g->transpose() * unit_;
    unit_rows_backward<Scalar>(dWb, W_.middleRows(r0, nr), w_inv_, r0);
    g->array().rowwise() *= w_inv_.segment(r0, nr).transpose().array();
    dU.noalias() += *g * W_.middleRows(r0, nr);
  }

  // dL/dX from dL/dX^ (in place).
  void finish_rows(RowMatrix<Scalar>& dU) const { unit_rows_backward<Scalar>(dU, X_, x_inv_); }

 private:
  const ConstRowRef<Scalar>& X_;
  const ConstRowRef<Scalar>& W_;
  Index classes_, k_, block_;
  Vector<Scalar> x_inv_, w_inv_;
  RowMatrix<Scalar> unit_;
  Block raw_;
  std::vector<std::int32_t> arg_;
};

// What softmax_head needs of a loss: the target's margin function on a
// cosine and its derivative, and whether rows whose target probability
// underflows to 0 are dropped (ProxyNCA).
//   struct Margin { Scalar value(Scalar cos) const; Scalar slope(Scalar cos) const; };
template <class Scalar>
struct SoftmaxHeadRows {
  Vector<Scalar> scale;   // a_i
  bool drop_zero_target = false;
  // When not null: receives dL/da_i (for a scale that depends on X).
  Vector<Scalar>* scale_grad = nullptr;
};

// Cross-entropy over the class logits described above; returns the reduced
// value; grads (when not null) gets {dL/dX^ (before finish_rows), dL/dW}.
template <class Scalar, class Margin>
Scalar softmax_head(ClassBlocks<Scalar>& head, const LabelVector& labels, const Margin& margin,
                    const SoftmaxHeadRows<Scalar>& rows, Tally<Scalar>& tally, RowMatrix<Scalar>* dU,
                    RowMatrix<Scalar>* dW, Vector<Scalar>* terms) {
  using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
  const Index n = head.rows();
  const Scalar inf = std::numeric_limits<Scalar>::infinity();
  Array shift = Array::Constant(n, -inf), sum = Array::Zero(n);
  Array target_cos = Array::Zero(n), target_logit = Array::Zero(n);
  typename ClassBlocks<Scalar>::Block S, E;
  const Array& a = rows.scale.array();

  // z = a_i cos, the target entries replaced by a_i psi(cos); records the targets.
  const auto logits = [&](Index b, const typename ClassBlocks<Scalar>::Block& cos,
                          typename ClassBlocks<Scalar>::Block& Z, bool record) {
    const Index c0 = head.first(b), nc = head.size(b);
    Z = cos.array().colwise() * a;
    for (Index i = 0; i < n; ++i) {
      const Index t = labels(i) - c0;
      if (t < 0 || t >= nc) continue;
      const Scalar z = a(i) * margin.value(cos(i, t));
      Z(i, t) = z;
      if (record) {
        target_cos(i) = cos(i, t);
        target_logit(i) = z;
      }
    }
  };

  // Pass 1: the online log-sum-exp per row.
  for (Index b = 0; b < head.blocks(); ++b) {
    head.cosines(b, S);
    logits(b, S, E, true);
    const Array block_max = E.rowwise().maxCoeff().array();
    const Array next = shift.max(block_max);
    E.array().colwise() -= next;
    E.array() = E.array().exp();
    // A shift that moves rescales the sum (exp(-inf) = 0 on the first block).
    sum = sum * (shift - next).exp() + E.rowwise().sum().array();
    shift = next;
    if (!head.single_block()) head.give_back(S);
  }

  // The terms and their reduction factors.
  Array factor = Array::Zero(n);
  if (terms) terms->setZero(n);
  const Array lse = shift + sum.log();
  for (Index i = 0; i < n; ++i) {
    const Scalar term = lse(i) - target_logit(i);
    if (rows.drop_zero_target && !(std::exp(-term) > Scalar(0))) continue;
    const Scalar weighted = tally.add(i, term);
    if (terms) (*terms)(i) = weighted;
    factor(i) = tally.gradient_weight(i, weighted);
  }
  const Reduced<Scalar> r = tally.finish();
  if (!dU) return r.value;

  // Pass 2: p = softmax(z) per block, dL/dcos, the backward.
  factor *= r.weight;
  const Array fa = factor * a;
  dU->setZero(n, head.unit_rows().cols());
  Array pu = Array::Zero(n);  // sum over classes of p_ic u_ic (u: the unscaled logit)
  for (Index b = 0; b < head.blocks(); ++b) {
    const Index c0 = head.first(b), nc = head.size(b);
    if (head.single_block()) {
      E.array().colwise() *= (shift - lse).exp();  // exp(z - shift) -> p
    } else {
      head.cosines(b, S);
      logits(b, S, E, false);
      E.array().colwise() -= lse;
      E.array() = E.array().exp();
    }
    if (rows.scale_grad) pu += (E.array() * S.array()).rowwise().sum();
    // E becomes G = f_i a_i p, the target entries f_i a_i (p - 1) psi'(cos).
    for (Index i = 0; i < n; ++i) {
      const Index t = labels(i) - c0;
      if (t < 0 || t >= nc) continue;
      const Scalar p = E(i, t);
      if (rows.scale_grad) pu(i) += p * (margin.value(target_cos(i)) - target_cos(i));
      E(i, t) = (p - Scalar(1)) * margin.slope(target_cos(i));
    }
    E.array().colwise() *= fa;
    head.give_back(S);
    head.backward(b, E, *dU, *dW);
  }
  if (rows.scale_grad) {
    // dL/da_i = f_i (sum_c p_ic u_ic - u_iy), u_iy = psi(cos_iy).
    rows.scale_grad->resize(n);
    for (Index i = 0; i < n; ++i) {
      (*rows.scale_grad)(i) = factor(i) * (pu(i) - margin.value(target_cos(i)));
    }
  }
  return r.value;
}

}  // namespace detail
}  // namespace contrastive
