// The plumbing every loss shares: the three public forms of a call (value and
// gradient, value only, gradient into caller-owned buffers), and the
// embeddings -> distances -> loss -> backward pipeline of DESIGN.md.
//
// A loss is written once as an "evaluation": a callable
//   Scalar eval(std::vector<RowMatrix<Scalar>>* grads, Vector<Scalar>* terms)
// that validates its inputs first, then returns the value and, when `grads` is
// not null, fills one gradient per embedding argument (terms likewise).
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <array>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

template <class Scalar>
using Gradients = std::vector<RowMatrix<Scalar>>;

template <class Scalar, class Eval>
LossResult<Scalar> evaluate_with_gradient(Eval&& eval) {
  LossResult<Scalar> result;
  result.value = eval(&result.grad, &result.terms);
  return result;
}

template <class Scalar, class Eval>
Scalar evaluate_value_only(Eval&& eval) {
  return eval(nullptr, nullptr);
}

// Gradients go into caller-owned buffers, one per embedding argument, whose
// shapes are checked first; they are written only after the evaluation succeeded.
template <class Scalar, class Eval, class... Outputs>
Scalar evaluate_into(const char* function, Eval&& eval,
                     const std::array<std::pair<Index, Index>, sizeof...(Outputs)>& shapes,
                     const Outputs&... outputs) {
  static const char* const names[] = {"grad", "grad2", "grad3"};
  static_assert(sizeof...(Outputs) >= 1 && sizeof...(Outputs) <= 3, "one to three gradient outputs");
  std::size_t k = 0;
  ((require_gradient_output(function, names[k], outputs, shapes[k].first, shapes[k].second), ++k), ...);
  Gradients<Scalar> grads;
  const Scalar value = eval(&grads, nullptr);
  k = 0;
  ((write_gradient(outputs, grads[k]), ++k), ...);
  return value;
}

// Loss on the symmetric pairwise distance matrix of X. `loss(D, dD)` returns
// the value and, when dD is not null, adds dL/dD into it (zero-initialised).
template <class Metric, class Scalar, class LossOnDistances>
Scalar pairwise_pipeline(const ConstRowRef<Scalar>& X, LossOnDistances&& loss, Gradients<Scalar>* grads) {
  const auto forward = Metric::template pairwise<Scalar>(X, X, true);
  if (!grads) return loss(forward.distances, static_cast<RowMatrix<Scalar>*>(nullptr));
  RowMatrix<Scalar> dD = RowMatrix<Scalar>::Zero(X.rows(), X.rows());
  const Scalar value = loss(forward.distances, &dD);
  grads->assign(1, RowMatrix<Scalar>());
  Metric::template pairwise_backward<Scalar>(forward, X, X, std::move(dD), (*grads)[0], nullptr);
  return value;
}

// Loss on row-wise distances between row i of A and row i of B.
template <class Metric, class Scalar, class LossOnDistances>
Scalar rowwise_pipeline(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B, LossOnDistances&& loss,
                        Gradients<Scalar>* grads) {
  const Vector<Scalar> d = Metric::template rowwise<Scalar>(A, B);
  if (!grads) return loss(d, static_cast<Vector<Scalar>*>(nullptr));
  Vector<Scalar> dd = Vector<Scalar>::Zero(d.size());
  const Scalar value = loss(d, &dd);
  grads->assign(2, RowMatrix<Scalar>());
  Metric::template rowwise_backward<Scalar>(A, B, d, dd, (*grads)[0], (*grads)[1]);
  return value;
}

}  // namespace detail
}  // namespace contrastive
