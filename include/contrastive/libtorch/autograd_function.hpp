// libtorch adapter, part 2: one torch::autograd::Function for every loss.
//
// A loss on tensors is a call of the library on views of its tensor inputs
// (embeddings first, then learnable parameters: a Mahalanobis metric's L, then
// the loss's own, margin_loss's beta or a class-weight loss's W). The Function runs that call once in
// forward, computing the value and, when autograd will need them, the
// library's analytic gradients in the same pass (the library computes both
// from one walk of the distance matrix); backward returns each gradient times
// grad_output. Inputs that do not require a gradient get none.
//
// An adapter for a loss supplies only the call, a callable
//   template <class Scalar> LossResult<Scalar> or Scalar
//   call(const MatrixViews<Scalar>& inputs, library arguments...)
// written as a generic lambda around the library function, e.g.
//   [&](const auto& in, const auto&... tail) { return contrastive::supcon_loss<Metric>(in[0], y, t, tail...); }
// and `tail` (metric, options) is the caller's, with a learnable
// libtorch::Mahalanobis replaced by the library's Mahalanobis on the view of
// its L. The callable is called with a trailing contrastive::value_only when
// no gradient is needed.
//
// Second derivatives (backward with create_graph=true) are not implemented
// and throw; the first-order gradient is exact.
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/libtorch/tensors.hpp"
#include "contrastive/losses/margin_loss.hpp"
#include "contrastive/metrics/mahalanobis.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/types.h>

#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace libtorch {

// A Mahalanobis metric (metrics/mahalanobis.hpp) whose L (k x D, float32 or
// float64) is a tensor: with L.requires_grad() it receives dL/dL in autograd.
//   auto L = torch::eye(16, torch::requires_grad());
//   auto loss = contrastive::libtorch::batch_hard_triplet_loss(X, labels, contrastive::libtorch::Mahalanobis(L));
// The library's contrastive::Mahalanobis (an Eigen L) is accepted too, as a fixed metric.
class Mahalanobis {
 public:
  explicit Mahalanobis(torch::Tensor L, bool squared = false) : L_(std::move(L)), squared_(squared) {}
  const torch::Tensor& L() const { return L_; }
  bool squared() const { return squared_; }

 private:
  torch::Tensor L_;
  bool squared_;
};

namespace detail {

// The tensor inputs of one call, with the names errors use: the embeddings
// (checked N x D float tensors sharing one dtype), then learnable parameters.
class TensorInputs {
 public:
  TensorInputs(const char* function, std::initializer_list<std::pair<const char*, torch::Tensor>> embeddings)
      : function_(function) {
    for (const auto& e : embeddings) {
      require_embedding_tensor(function, e.first, e.second);
      if (!tensors_.empty()) require_same_dtype(function, names_[0], tensors_[0], e.first, e.second);
      tensors_.push_back(e.second);
      names_.push_back(e.first);
    }
    embeddings_ = tensors_.size();
  }

  // A learnable parameter: float32 / float64, at most `max_dims` dimensions.
  void add_parameter(const char* name, const torch::Tensor& t, std::int64_t max_dims) {
    require_cpu_tensor(function_, name, t);
    require_floating(function_, name, t);
    if (t.dim() > max_dims) {
      fail(function_, std::string("argument '") + name + "' must have at most " + std::to_string(max_dims) +
                          " dimensions, got " + std::to_string(t.dim()) + "-D " + sizes_of(t));
    }
    tensors_.push_back(t);
    names_.push_back(name);
  }

  const char* function() const { return function_; }
  const std::vector<torch::Tensor>& tensors() const { return tensors_; }
  std::size_t embeddings() const { return embeddings_; }
  std::size_t size() const { return tensors_.size(); }

 private:
  const char* function_;
  std::vector<torch::Tensor> tensors_;
  std::vector<const char*> names_;
  std::size_t embeddings_ = 0;
};

// Tail arguments (metric, options) as the library takes them. A learnable
// Mahalanobis adds its L to the inputs and becomes the library's Mahalanobis
// on the view of L; anything else passes through.
template <class T>
struct is_learnable_metric : std::is_same<std::decay_t<T>, libtorch::Mahalanobis> {};

template <class T>
void add_learnable(TensorInputs&, const T&) {}
inline void add_learnable(TensorInputs& inputs, const libtorch::Mahalanobis& m) {
  inputs.add_parameter("metric.L", m.L(), 2);
  if (m.L().dim() != 2) require_dims(inputs.function(), "metric.L", m.L(), 2, "k x D");
}

template <class Scalar, class T>
const T& to_library(const T& arg, const MatrixViews<Scalar>&, std::size_t&) {
  return arg;
}
template <class Scalar>
contrastive::Mahalanobis to_library(const libtorch::Mahalanobis& m, const MatrixViews<Scalar>& views,
                                    std::size_t& next) {
  return contrastive::Mahalanobis(views[next++], m.squared());
}

// How many gradient blocks the library returns for the metric in a tail.
template <class T, bool = is_metric<T>::value>
struct tail_metric_blocks {
  static std::size_t of(const T&) { return 0; }
};
template <class T>
struct tail_metric_blocks<T, true> {
  static std::size_t of(const T& metric) { return static_cast<std::size_t>(metric.parameter_blocks()); }
};

template <class Result>
struct LossBlocks {  // the loss's own parameter gradients beyond LossResult::grad
  template <class Scalar>
  static void append(Result&, std::vector<RowMatrix<Scalar>>&) {}
};
template <class Scalar>
struct LossBlocks<MarginLossResult<Scalar>> {
  static void append(MarginLossResult<Scalar>& r, std::vector<RowMatrix<Scalar>>& grads) {
    grads.push_back(RowMatrix<Scalar>(r.beta_grad));
  }
};

// A call bound to its tail: evaluates on the views of the inputs, and maps the
// library's gradient blocks (embeddings, metric parameters, the loss's own) to
// the tensor inputs (embeddings, learnable metric parameters, learnable loss
// parameters), dropping the blocks of fixed parameters.
template <class Call, class... Tail>
class BoundCall {
 public:
  BoundCall(const char* function, std::size_t embeddings, bool loss_parameter, const Call& call,
            const Tail&... tail)
      : function_(function), embeddings_(embeddings), loss_parameter_(loss_parameter), call_(call), tail_(tail...) {}

  const char* function() const { return function_; }

  // The value; with `grads`, one gradient per tensor input as well.
  template <class Scalar>
  Scalar evaluate(const MatrixViews<Scalar>& views, std::vector<RowMatrix<Scalar>>* grads) const {
    return std::apply(
        [&](const auto&... tail) {
          std::size_t next = embeddings_;
          (void)next;  // unused when the tail is empty
          return evaluate_with<Scalar>(views, grads, to_library<Scalar>(tail, views, next)...);
        },
        tail_);
  }

 private:
  template <class Scalar, class... LibraryTail>
  Scalar evaluate_with(const MatrixViews<Scalar>& views, std::vector<RowMatrix<Scalar>>* grads,
                       const LibraryTail&... tail) const {
    if (!grads) return call_(views, tail..., value_only);
    auto result = call_(views, tail...);
    std::vector<RowMatrix<Scalar>>& library = result.grad;
    LossBlocks<decltype(result)>::append(result, library);
    std::size_t metric = 0;
    bool learnable_metric = false;
    (void)std::initializer_list<int>{(metric += tail_metric_blocks<LibraryTail>::of(tail), 0)...};
    std::apply([&](const auto&... t) { learnable_metric = (is_learnable_metric<decltype(t)>::value || ...); }, tail_);
    grads->clear();
    for (std::size_t k = 0; k < library.size(); ++k) {
      const bool keep = k < embeddings_ || (k < embeddings_ + metric ? learnable_metric : loss_parameter_);
      if (keep) grads->push_back(std::move(library[k]));
    }
    return result.value;
  }

  const char* function_;
  std::size_t embeddings_;
  bool loss_parameter_;
  const Call& call_;
  std::tuple<const Tail&...> tail_;
};

template <class Bound>
struct LossFunction : torch::autograd::Function<LossFunction<Bound>> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const Bound* bound, bool need_grad,
                               at::TensorList inputs) {
    return with_scalar(inputs[0], [&](auto scalar) {
      using Scalar = decltype(scalar);
      const MatrixViews<Scalar> views(inputs);
      const auto options = torch::dtype(dtype_of<Scalar>());
      if (!need_grad) return torch::scalar_tensor(bound->template evaluate<Scalar>(views, nullptr), options);
      std::vector<RowMatrix<Scalar>> grads;
      const Scalar value = bound->template evaluate<Scalar>(views, &grads);
      if (grads.size() != inputs.size()) {
        fail(bound->function(), "internal error: " + std::to_string(grads.size()) + " gradients for " +
                                    std::to_string(inputs.size()) + " tensor inputs");
      }
      std::vector<torch::Tensor> saved;
      saved.reserve(inputs.size());
      for (std::size_t k = 0; k < inputs.size(); ++k) {
        const torch::Tensor& input = inputs[k];
        if (!input.requires_grad()) {
          saved.emplace_back();
          continue;
        }
        torch::Tensor g = to_tensor<Scalar>(std::move(grads[k])).view(input.sizes());
        saved.push_back(input.scalar_type() == g.scalar_type() ? g : g.to(input.scalar_type()));
      }
      ctx->save_for_backward(saved);
      ctx->saved_data["function"] = std::string(bound->function());
      return torch::scalar_tensor(value, options);
    });
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    if (torch::GradMode::is_enabled()) {
      fail(ctx->saved_data["function"].toStringRef().c_str(),
           "second derivatives are not implemented (backward or torch::autograd::grad with "
           "create_graph=true); the first-order gradient is exact");
    }
    const torch::autograd::variable_list grads = ctx->get_saved_variables();
    torch::autograd::variable_list out(2 + grads.size());  // bound, need_grad: no gradient
    // The usual loss.backward() seeds 1: the library's gradient is then the
    // answer as it is, handed on without a product (and a fresh N x D buffer).
    const torch::Tensor& scale = grad_outputs[0];
    const bool unit = scale.numel() == 1 && scale.item<double>() == 1.0;
    for (std::size_t k = 0; k < grads.size(); ++k) {
      if (grads[k].defined()) out[2 + k] = unit ? grads[k] : grads[k] * scale;
    }
    return out;
  }
};

// The Function on `inputs` as they are: with `loss_parameter`, the last input
// is the loss's own learnable parameter (a class-weight loss's W, added and
// checked by its adapter), which receives the library's last gradient block.
template <class Call, class... Tail>
torch::Tensor run_function(TensorInputs inputs, bool loss_parameter, const Call& call, const Tail&... tail) {
  using Bound = BoundCall<Call, Tail...>;
  const Bound bound(inputs.function(), inputs.embeddings(), loss_parameter, call, tail...);
  bool need_grad = false;
  if (torch::GradMode::is_enabled()) {
    for (const torch::Tensor& t : inputs.tensors()) need_grad = need_grad || t.requires_grad();
  }
  return LossFunction<Bound>::apply(&bound, need_grad, at::TensorList(inputs.tensors()));
}

// The public adapter of a loss: collects the learnable tensors of the tail
// (the metric's L), then the loss's own learnable parameter when given
// (`parameter`, named `parameter_name`), and runs the Function.
template <class Call, class... Tail>
torch::Tensor run_loss_with_parameter(TensorInputs inputs, const char* parameter_name,
                                      const torch::Tensor* parameter, const Call& call, const Tail&... tail) {
  (add_learnable(inputs, tail), ...);
  const bool has_parameter = parameter != nullptr;
  if (has_parameter) inputs.add_parameter(parameter_name, *parameter, 1);
  return run_function(std::move(inputs), has_parameter, call, tail...);
}

template <class Call, class... Tail>
torch::Tensor run_loss(TensorInputs inputs, const Call& call, const Tail&... tail) {
  return run_loss_with_parameter(std::move(inputs), nullptr, nullptr, call, tail...);
}

}  // namespace detail
}  // namespace libtorch
}  // namespace contrastive
