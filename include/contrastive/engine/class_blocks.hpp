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
// for W (written straight into dL/dW's rows). With K > 1 a block is walked in
// cache-sized chunks of classes, one product per sub-centre on W's rows
// cK + s, so the max over K and the routing of its gradient are elementwise.
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
void normalized_rows_backward(Eigen::MatrixBase<DU>& dU, const Eigen::MatrixBase<DR>& R, const Vector<Scalar>& inv,
                        Index first = 0) {
  for (Index i = 0; i < dU.rows(); ++i) {
    const Scalar s = inv(first + i);
    const Scalar along = dU.row(i).dot(R.row(i)) * s;  // du . u
    dU.row(i) = s * (dU.row(i) - (along * s) * R.row(i));
  }
}

// Classes per block, at (K + 2) N scalars per class (and N int32 with K > 1):
// that covers the block's cosines, logits or probabilities (N x B) and, with
// K > 1, the argmax of the sub-centres (N x B) and the raw sub-centre cosines
// of one chunk of at most B classes (N x K per class).
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
  using RowArray = Eigen::Array<Scalar, 1, Eigen::Dynamic>;

  // X: the raw embeddings; W: (classes * sub_centers) x D.
  ClassBlocks(const char* function, const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& W, Index classes,
              Index sub_centers, std::size_t workspace_bytes)
      : X_(X), W_(W), classes_(classes), k_(sub_centers),
        block_(classes_per_block(function, X.rows(), classes, sub_centers, sizeof(Scalar), workspace_bytes)),
        chunk_(sub_center_chunk(X.rows(), sub_centers)), x_inv_(inverse_row_norms<Scalar>(X)),
        w_inv_(inverse_row_norms<Scalar>(W)) {
    unit_ = X.array().colwise() * x_inv_.array();
    // arg_ holds sub-centre indices as Scalar: exact up to 2^digits.
    if (k_ > (Index(1) << std::numeric_limits<Scalar>::digits)) {
      fail(function, "options.sub_centers = " + std::to_string(k_) + " exceeds the " +
                         std::to_string(std::numeric_limits<Scalar>::digits) + "-bit mantissa of the scalar type");
    }
    if (k_ > 1) w_inv_k_ = Eigen::Map<const RowMatrix<Scalar>>(w_inv_.data(), classes_, k_).transpose();
  }

  Index rows() const { return X_.rows(); }
  Index classes() const { return classes_; }
  Index sub_centers() const { return k_; }
  Index block() const { return block_; }
  Index blocks() const { return classes_ == 0 ? 0 : (classes_ + block_ - 1) / block_; }
  bool single_block() const { return blocks() <= 1; }
  Index first(Index b) const { return b * block_; }
  Index size(Index b) const { return std::min(block_, classes_ - b * block_); }
  const RowMatrix<Scalar>& unit_rows() const { return unit_; }
  const Vector<Scalar>& inverse_norms() const { return x_inv_; }
  // 1 / |w| of block b's classes (K = 1).
  auto column_scale(Index b) const { return w_inv_.segment(first(b), size(b)).transpose().array(); }

  // The cosines of block b into S (N x size(b)). With K = 1 and scaled = false,
  // S holds X^ W_b^T, the columns still to be scaled by column_scale(b) (a
  // loss that walks the rows anyway folds it into its own pass); K > 1
  // always scales, as the max over sub-centres needs the cosines.
  void cosines(Index b, Block& S, bool scaled = true) {
    const Index c0 = first(b), nc = size(b);
    S.resize(rows(), nc);
    if (k_ == 1) {
      S.noalias() = unit_ * W_.middleRows(c0, nc).transpose();
      if (scaled) S.array().rowwise() *= column_scale(b);
      return;
    }
    if (with_arg_) arg_.resize(rows(), nc);
    // No rows: nothing to compare (and a block of an empty raw_ would offset a null pointer).
    if (rows() == 0) return;
    for (Index q0 = 0; q0 < nc; q0 += chunk_) sub_center_max(c0, q0, std::min(chunk_, nc - q0), S);
  }

  // Backward of block b: G = dL/dcos (N x size(b)), or, with scaled = true
  // and K = 1, dL/dcos times column_scale(b); adds to dU (dL/dX^) and writes
  // the block's rows of dW (dL/dW). G is consumed.
  //   G' = G diag(1/|w|):  dU += G' W_b;  M = G'^T X^;  dw_j = M_j - (M_j . w_j) w_j / |w_j|^2
  // (M_j = dL/dw^_j / |w_j|, projected off w_j).
  void backward(Index b, Block& G, RowMatrix<Scalar>& dU, RowMatrix<Scalar>& dW, bool scaled = false) {
    const Index c0 = first(b), nc = size(b);
    if (k_ > 1) {
      if (rows() == 0) {
        dW.middleRows(c0 * k_, nc * k_).setZero();
        return;
      }
      for (Index q0 = 0; q0 < nc; q0 += chunk_) sub_center_backward(c0, q0, std::min(chunk_, nc - q0), G, dU, dW);
      return;
    }
    if (!scaled) G.array().rowwise() *= column_scale(b);
    auto dWb = dW.middleRows(c0, nc);
    dWb.noalias() = G.transpose() * unit_;
    project_off_rows(dWb, c0);
    dU.noalias() += G * W_.middleRows(c0, nc);
  }

  // For a value-only call: no backward follows, so K > 1 keeps no argmax.
  void value_only() { with_arg_ = false; }

  // dL/dX from dL/dX^ (in place).
  void finish_rows(RowMatrix<Scalar>& dU) const { normalized_rows_backward<Scalar>(dU, X_, x_inv_); }

 private:
  using StridedRows = Eigen::Map<const RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;
  using StridedRowsOut = Eigen::Map<RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;

  // K > 1 works on chunks of classes whose N x (chunk K) raw cosines stay in
  // cache (about 2^17 scalars) while the max over K and its backward run on
  // them; a multiple of 16 classes, so the rows' loops have no scalar tails.
  static Index sub_center_chunk(Index rows, Index k) {
    constexpr Index scalars = Index(1) << 17;
    const Index m = scalars / std::max<Index>(1, rows * k);
    return m > 16 ? m - m % 16 : std::max<Index>(1, m);
  }

  // Sub-centre s of the classes c0 + q0 .. + m: rows (c0 + q0 + q) K + s of W,
  // one every K rows, read in place.
  StridedRows sub_center_rows(Index c, Index m, Index s) const {
    return StridedRows(W_.data() + (c * k_ + s) * W_.outerStride(), m, W_.cols(),
                       Eigen::OuterStride<>(k_ * W_.outerStride()));
  }

  // Columns q0 .. q0 + m of block c0's S: the max over K of the unit cosines.
  // raw_ holds sub-centre s's cosines of the chunk in columns s m .. s m + m,
  // so the max over K and its argmax are elementwise over contiguous rows.
  void sub_center_max(Index c0, Index q0, Index m, Block& S) {
    const Index c = c0 + q0;
    raw_.resize(rows(), k_ * m);
    for (Index s = 0; s < k_; ++s) {
      raw_.middleCols(s * m, m).noalias() = unit_ * sub_center_rows(c, m, s).transpose();
    }
    for (Index i = 0; i < rows(); ++i) {
      // The cosines scaled by 1 / |w| as they are compared (one pass over raw_).
      const auto cosine = [&](Index s) {
        return raw_.row(i).segment(s * m, m).array() * w_inv_k_.row(s).segment(c, m).array();
      };
      auto best = S.row(i).segment(q0, m).array();
      best = cosine(0);
      if (!with_arg_) {
        for (Index s = 1; s < k_; ++s) best = best.max(cosine(s));
        continue;
      }
      auto arg = arg_.row(i).segment(q0, m).array();
      arg.setZero();
      for (Index s = 1; s < k_; ++s) {
        const auto larger = cosine(s) > best;  // strictly: the first largest keeps the gradient
        arg = larger.select(static_cast<Scalar>(s), arg);
        best = larger.select(cosine(s), best);
      }
    }
  }

  // The backward of sub_center_max on G's columns q0 .. q0 + m: each row's
  // dL/dcos goes to its argmax sub-centre (times 1 / |w|), then per s
  // dU += G_s W_s and dW_s = G_s^T X^, written into W's strided rows.
  void sub_center_backward(Index c0, Index q0, Index m, const Block& G, RowMatrix<Scalar>& dU,
                           RowMatrix<Scalar>& dW) {
    const Index c = c0 + q0;
    raw_.resize(rows(), k_ * m);
    for (Index i = 0; i < rows(); ++i) {
      const auto g = G.row(i).segment(q0, m).array();
      const auto arg = arg_.row(i).segment(q0, m).array();
      for (Index s = 0; s < k_; ++s) {
        raw_.row(i).segment(s * m, m).array() =
            (arg == static_cast<Scalar>(s)).select(g * w_inv_k_.row(s).segment(c, m).array(), Scalar(0));
      }
    }
    for (Index s = 0; s < k_; ++s) {
      const auto Gs = raw_.middleCols(s * m, m);
      StridedRowsOut dWs(dW.data() + (c * k_ + s) * dW.outerStride(), m, dW.cols(),
                         Eigen::OuterStride<>(k_ * dW.outerStride()));
      dWs.noalias() = Gs.transpose() * unit_;
      dU.noalias() += Gs * sub_center_rows(c, m, s);
    }
    auto dWc = dW.middleRows(c * k_, m * k_);
    project_off_rows(dWc, c * k_);
  }

  // dw_j -= (dw_j . w_j) w_j / |w_j|^2 for rows r0 .. of W.
  template <class Rows>
  void project_off_rows(Rows& dWr, Index r0) const {
    for (Index j = 0; j < dWr.rows(); ++j) {
      const Scalar inv = w_inv_(r0 + j);
      dWr.row(j) -= (dWr.row(j).dot(W_.row(r0 + j)) * inv * inv) * W_.row(r0 + j);
    }
  }

  const ConstRowRef<Scalar>& X_;
  const ConstRowRef<Scalar>& W_;
  Index classes_, k_, block_, chunk_;
  Vector<Scalar> x_inv_, w_inv_;
  RowMatrix<Scalar> w_inv_k_;  // K > 1: w_inv_k_(s, c) = 1 / |w_(cK+s)|
  RowMatrix<Scalar> unit_;
  Block raw_;
  // K > 1: the argmax sub-centre s per row and class of the block, held as a
  // Scalar (exact below 2^24) so its selects vectorise with the cosines'.
  Block arg_;
  bool with_arg_ = true;
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
// value; with dU and dW (both or neither) it fills dL/dX^ (before
// finish_rows) and dL/dW. Each block is walked row by row, every step of a
// row (scaling, logits, max, exponentials, sums) while the row is in cache.
template <class Scalar, class Margin>
Scalar softmax_head(ClassBlocks<Scalar>& head, const LabelVector& labels, const Margin& margin,
                    const SoftmaxHeadRows<Scalar>& rows, Tally<Scalar>& tally, RowMatrix<Scalar>* dU,
                    RowMatrix<Scalar>* dW, Vector<Scalar>* terms) {
  using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
  using RowArray = typename ClassBlocks<Scalar>::RowArray;
  using RowMap = Eigen::Map<RowArray>;
  const Index n = head.rows();
  const bool unscaled = head.sub_centers() == 1;  // K = 1: the rows fold 1 / |w| in themselves
  const bool with_scale_grad = rows.scale_grad != nullptr;
  const Scalar inf = std::numeric_limits<Scalar>::infinity();
  Array shift = Array::Constant(n, -inf), sum = Array::Zero(n), zsum = Array::Zero(n);
  Array target_cos = Array::Zero(n), target_logit = Array::Zero(n);
  const Array a = rows.scale.array();
  typename ClassBlocks<Scalar>::Block S;
  RowArray tmp;
  if (!dU) head.value_only();

  // Row i of block b's cosines (x^ W_b^T, unscaled when K = 1) becomes its logits z.
  const auto logits = [&](Index b, RowMap z, Index i, bool record) {
    if (unscaled) z *= head.column_scale(b);
    const Index t = labels(i) - head.first(b);
    const bool has_target = t >= 0 && t < z.size();
    const Scalar c = has_target ? z(t) : Scalar(0);
    z *= a(i);
    if (!has_target) return;
    const Scalar zt = a(i) * margin.value(c);
    z(t) = zt;
    if (record) {
      target_cos(i) = c;
      target_logit(i) = zt;
    }
  };

  // Pass 1: the online log-sum-exp per row (and, for dL/da, of sum p z).
  for (Index b = 0; b < head.blocks(); ++b) {
    const Index nc = head.size(b);
    head.cosines(b, S, !unscaled);
    for (Index i = 0; i < n; ++i) {
      RowMap z(S.data() + i * nc, nc);
      logits(b, z, i, true);
      const Scalar next = std::max(shift(i), z.maxCoeff());
      const Scalar rescale = std::exp(shift(i) - next);  // 0 on the first block
      shift(i) = next;
      if (with_scale_grad) {
        tmp = (z - next).exp();
        zsum(i) = zsum(i) * rescale + (tmp * z).sum();
        z = tmp;
      } else {
        z = (z - next).exp();
      }
      sum(i) = sum(i) * rescale + z.sum();
    }
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

  // Pass 2: p = softmax(z) per block, then G = dL/dcos: f_i a_i p, the target
  // f_i a_i (p - 1) psi'(cos); times 1 / |w| (K = 1) for the backward.
  factor *= r.weight;
  const Array fa = factor * a;
  dU->setZero(n, head.unit_rows().cols());
  for (Index b = 0; b < head.blocks(); ++b) {
    const Index c0 = head.first(b), nc = head.size(b);
    if (!head.single_block()) head.cosines(b, S, !unscaled);
    for (Index i = 0; i < n; ++i) {
      RowMap g(S.data() + i * nc, nc);
      if (head.single_block()) {
        g *= std::exp(shift(i) - lse(i));  // exp(z - shift) -> p
      } else {
        logits(b, g, i, false);
        g = (g - lse(i)).exp();
      }
      const Index t = labels(i) - c0;
      if (t >= 0 && t < nc) g(t) = (g(t) - Scalar(1)) * margin.slope(target_cos(i));
      if (unscaled) {
        g *= fa(i) * head.column_scale(b);
      } else {
        g *= fa(i);
      }
    }
    head.backward(b, S, *dU, *dW, unscaled);
  }
  if (with_scale_grad) {
    // dL/da_i = f_i (sum_c p_ic u_ic - u_iy) with u = z / a_i (a_i = 0: no gradient is asked of it).
    rows.scale_grad->setZero(n);
    for (Index i = 0; i < n; ++i) {
      if (a(i) > Scalar(0)) (*rows.scale_grad)(i) = factor(i) * (zsum(i) / sum(i) - target_logit(i)) / a(i);
    }
  }
  return r.value;
}

}  // namespace detail
}  // namespace contrastive
