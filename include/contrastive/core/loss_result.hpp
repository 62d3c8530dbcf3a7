// What a loss returns, and how a caller asks for the value alone or for the
// gradient in a buffer it owns.
#pragma once

#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <type_traits>
#include <vector>

namespace contrastive {

// Value plus gradient, in the spirit of Ceres's cost functions: grad[k] is
// dL/d(k-th embedding argument), shaped like that argument.
template <class Scalar>
struct LossResult {
  Scalar value = Scalar(0);
  std::vector<RowMatrix<Scalar>> grad;
  // The per-term losses before reduction (times their sample weights, see
  // reducer.hpp); each loss documents what a term is.
  Vector<Scalar> terms;
};

// Pass `contrastive::value_only` as the last argument to get the loss value
// without any backward work.
struct ValueOnly {};
constexpr ValueOnly value_only{};

namespace detail {

template <class G>
struct is_resizable : std::is_base_of<Eigen::PlainObjectBase<G>, G> {};

// A caller-owned gradient buffer must already have the input's shape, unless
// it is a plain matrix we may resize. Checked before any work is done.
template <class G>
void require_gradient_output(const char* function, const char* argument,
                             const Eigen::MatrixBase<G>& out, Index rows, Index cols,
                             const char* belongs_to = "the embeddings") {
  if (is_resizable<G>::value) return;
  if (out.rows() != rows || out.cols() != cols) {
    fail(function, std::string("gradient output '") + argument + "' is " +
                       shape_of(out.rows(), out.cols()) + " but must be " + shape_of(rows, cols) +
                       ", the shape of " + belongs_to + " it belongs to");
  }
}

// Eigen's idiom for writable expression arguments (Map, Block): take them by
// const reference and cast the constness away.
template <class G, class Scalar>
void write_gradient(const Eigen::MatrixBase<G>& out, const RowMatrix<Scalar>& grad) {
  static_assert(std::is_same<typename G::Scalar, Scalar>::value,
                "contrastive: the gradient output must have the embeddings' Scalar type");
  Eigen::MatrixBase<G>& target = const_cast<Eigen::MatrixBase<G>&>(out);
  target.derived() = grad;
}

}  // namespace detail
}  // namespace contrastive
