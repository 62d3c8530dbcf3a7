// The three forms of a call for the losses whose trailing arguments are plain
// scalars rather than [metric] [options] (cosine_embedding_loss and
// similarity_regression_loss take a margin and a Reduction); every other loss
// goes through core/call_forms.hpp.
//
// The evaluation is a callable
//   Scalar eval(std::vector<RowMatrix<Scalar>>* grads, Vector<Scalar>* terms)
// that validates its inputs first, then returns the value and, when `grads` is
// not null, fills one gradient per embedding argument (terms likewise).
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <array>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

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

}  // namespace detail
}  // namespace contrastive
