// The three forms of every loss call, defined once. After its inputs
// (embeddings, labels, pairs, ...) a loss takes, in this order, all optional:
//
//   loss(inputs..., [metric], [options])                   -> LossResult<Scalar>
//   loss(inputs..., [metric], [options], value_only)       -> Scalar, no backward work
//   loss(inputs..., [metric], [options], grad_out...)      -> Scalar, gradients written
//                                                             into the caller's buffers
//
// `metric` is a metric value (Euclidean{}, Mahalanobis(L), AnyMetric, ...); left
// out, the loss's template argument (loss<Cosine>(...)) or its default is used.
// grad_out... are writable Eigen expressions (a Map over a framework's
// gradient tensor, a matrix, a block): one per embedding argument, optionally
// followed by one per parameter block of the metric (a Mahalanobis L). Their
// shapes are checked before any work, and nothing is written if the call throws.
//
// A loss supplies only its evaluation:
//   Scalar eval(const Metric&, const Options&, Gradients<Scalar>* grads, Vector<Scalar>* terms)
// which validates its inputs, returns the value and, when `grads` is not null,
// fills dL/d(each embedding argument) and then the metric's parameter gradients.
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reference_set.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

template <class Scalar>
using Gradients = std::vector<RowMatrix<Scalar>>;

// What a call form needs to know besides the evaluation: the function's name
// and the shape of each embedding argument (for caller-owned gradient outputs).
struct CallSpec {
  const char* function;
  std::vector<std::pair<Index, Index>> embedding_shapes;
  // Learnable parameters of the loss itself (margin_loss's beta), whose
  // gradients follow the metric's, and the names their outputs go by.
  std::vector<std::pair<Index, Index>> parameter_shapes = {};
  std::vector<const char*> parameter_names = {};
  // When set, the caller-owned-output form stores here how many gradient
  // blocks the caller asked for before it evaluates (a reference-set loss
  // skips dL/dR when only dL/dX is asked for).
  std::size_t* requested_blocks = nullptr;
  // Fewest gradient outputs accepted (0: one per embedding argument): a
  // reference-set loss takes dL/dX alone.
  std::size_t fewest_outputs = 0;
};

// A loss whose full result carries more than LossResult (MarginLossResult's
// beta_grad) specialises this to move those blocks out of `grad`.
template <class Result>
struct CompleteResult {
  static void apply(Result&) {}
};

template <class T>
struct is_reference_set : std::false_type {};
template <class DR>
struct is_reference_set<ReferenceSet<DR>> : std::true_type {};

template <class T>
struct is_gradient_output : std::is_base_of<Eigen::MatrixBase<std::decay_t<T>>, std::decay_t<T>> {};

template <class Scalar, class Options, class Eval, class Result>
class CallForms {
 public:
  CallForms(const CallSpec& spec, const Eval& eval) : spec_(spec), eval_(eval) {}

  // Stage 1: an optional metric value.
  template <class DefaultMetric, class First, class... Rest, std::enable_if_t<is_metric<First>::value, int> = 0>
  auto dispatch(const First& metric, const Rest&... rest) const {
    return with_metric(metric, rest...);
  }
  template <class DefaultMetric, class... Tail>
  auto dispatch(const Tail&... tail) const {
    check_metric<DefaultMetric>();
    static_assert(std::is_default_constructible<DefaultMetric>::value,
                  "contrastive: this metric has parameters (e.g. Mahalanobis): pass it as a value "
                  "after the inputs, loss(X, labels, metric, options), not as a template argument");
    return with_metric(DefaultMetric{}, tail...);
  }

 private:
  // Stage 2: optional options.
  template <class Metric, class... Rest>
  auto with_metric(const Metric& metric, const Options& options, const Rest&... rest) const {
    return form(metric, options, rest...);
  }
  template <class Metric, class... Rest>
  auto with_metric(const Metric& metric, const Rest&... rest) const {
    return form(metric, Options{}, rest...);
  }

  // Stage 3: the form.
  template <class Metric>
  Result form(const Metric& metric, const Options& options) const {
    Result result;
    result.value = eval_(metric, options, &result.grad, &result.terms);
    CompleteResult<Result>::apply(result);
    return result;
  }

  template <class Metric>
  Scalar form(const Metric& metric, const Options& options, ValueOnly) const {
    return eval_(metric, options, nullptr, nullptr);
  }

  template <class Metric, class... Outputs>
  Scalar form(const Metric& metric, const Options& options, const Outputs&... outputs) const {
    static_assert(sizeof...(Outputs) > 0, "");
    static_assert(!(is_reference_set<Outputs>::value || ...),
                  "contrastive: this loss has no reference-set form; docs/reference_sets.md lists the losses "
                  "that take reference_set(R, ref_labels) and those that never will (as PML's ref_not_supported)");
    static_assert((is_gradient_output<Outputs>::value && ...),
                  "contrastive: after the inputs a loss takes [metric], [options], then either "
                  "contrastive::value_only or writable Eigen gradient outputs; an argument here is "
                  "none of these (check the order: metric before options)");
    static_assert((std::is_same<typename Outputs::Scalar, Scalar>::value && ...),
                  "contrastive: a gradient output must have the embeddings' Scalar type");
    const std::size_t embeddings = spec_.embedding_shapes.size();
    const std::size_t metric_blocks = static_cast<std::size_t>(metric.parameter_blocks());
    const std::size_t loss_blocks = spec_.parameter_shapes.size();
    const std::size_t given = sizeof...(Outputs);
    const bool prefix = spec_.fewest_outputs > 0 && given >= spec_.fewest_outputs && given < embeddings;
    if (!prefix && given != embeddings && given != embeddings + metric_blocks &&
        given != embeddings + metric_blocks + loss_blocks) {
      std::string expected = std::to_string(embeddings) + " (one per embedding argument)";
      if (spec_.fewest_outputs > 0) expected += " or " + std::to_string(spec_.fewest_outputs) + " (dL/dX alone)";
      if (metric_blocks > 0) {
        expected += " or " + std::to_string(embeddings + metric_blocks) + " (also the metric's parameters)";
      }
      if (loss_blocks > 0) {
        expected += " or " + std::to_string(embeddings + metric_blocks + loss_blocks) + " (also the loss's parameters)";
      }
      fail(spec_.function, std::to_string(given) + " gradient outputs given, expected " + expected);
    }
    std::size_t k = 0;
    ((check_output(outputs, k, metric), ++k), ...);
    Gradients<Scalar> grads;
    if (spec_.requested_blocks) *spec_.requested_blocks = given;
    const Scalar value = eval_(metric, options, &grads, nullptr);
    // Embeddings, then the metric's parameters, then the loss's: fewer outputs take a prefix.
    k = 0;
    ((write_output(outputs, grads[k]), ++k), ...);
    return value;
  }

  template <class G, class Metric>
  void check_output(const Eigen::MatrixBase<G>& out, std::size_t k, const Metric& metric) const {
    const std::size_t embeddings = spec_.embedding_shapes.size();
    const std::size_t metric_blocks = static_cast<std::size_t>(metric.parameter_blocks());
    const std::pair<Index, Index> shape =
        k < embeddings                   ? spec_.embedding_shapes[k]
        : k < embeddings + metric_blocks ? metric.parameter_shape(static_cast<int>(k - embeddings))
                                         : spec_.parameter_shapes[k - embeddings - metric_blocks];
    // Outputs are named as in the reference: grad, grad2, grad3 for the
    // embedding arguments, then metric_grad (metric_grad2, ...), then the loss's own.
    std::string name;
    const char* belongs_to = "the embeddings";
    if (k < embeddings) {
      name = k == 0 ? std::string("grad") : "grad" + std::to_string(k + 1);
    } else if (k < embeddings + metric_blocks) {
      const std::size_t m = k - embeddings;
      name = m == 0 ? std::string("metric_grad") : "metric_grad" + std::to_string(m + 1);
      belongs_to = "the metric's parameter";
    } else {
      name = spec_.parameter_names[k - embeddings - metric_blocks];
      belongs_to = "the loss's parameter";
    }
    require_gradient_output(spec_.function, name.c_str(), out, shape.first, shape.second, belongs_to);
  }

  template <class G>
  static void write_output(const Eigen::MatrixBase<G>& out, const RowMatrix<Scalar>& grad) {
    write_gradient(out, grad);
  }

  const CallSpec& spec_;
  const Eval& eval_;
};

// Entry point for a loss's public function: `tail` is everything after its inputs.
template <class DefaultMetric, class Scalar, class Options, class Result = LossResult<Scalar>, class Eval,
          class... Tail>
auto call_forms(const CallSpec& spec, const Eval& eval, const Tail&... tail) {
  return CallForms<Scalar, Options, Eval, Result>(spec, eval).template dispatch<DefaultMetric>(tail...);
}

// The public function of a loss on (X, labels, tail...). Loss supplies
//   static constexpr const char* name;  using Options = ...;
//   template <class Scalar, class Metric>
//   static Scalar eval(const Metric&, const ConstRowRef<Scalar>& X, const LabelVector& labels,
//                      [extra,] const Options&, Gradients<Scalar>*, Vector<Scalar>* terms);
// labelled_loss_with passes one more input (the InfoNCE temperature) before the options.
template <class Loss, class DefaultMetric, class DX, class Eval, class... Tail>
auto labelled_call(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Eval& eval_on,
                   const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = to_labels(Loss::name, "labels", labels, x.rows());
  const auto eval = [&](const auto& metric, const Options& options, Gradients<Scalar>* grads,
                        Vector<Scalar>* terms) { return eval_on(metric, x, y, options, grads, terms); };
  return call_forms<DefaultMetric, Scalar, Options>(CallSpec{Loss::name, {{x.rows(), x.cols()}}}, eval, tail...);
}

// A loss that also runs against a reference set writes its eval once, on a
// PairSource (core/reference_set.hpp), and says so:
//   static constexpr bool pair_source = true;
//   template <class Scalar, class Metric>
//   static Scalar eval(const Metric&, const PairSource<Scalar>&, const Options&, Gradients<Scalar>*, Vector<Scalar>*);
template <class Loss, class = void>
struct takes_pair_source : std::false_type {};
template <class Loss>
struct takes_pair_source<Loss, std::void_t<decltype(Loss::pair_source)>>
    : std::integral_constant<bool, Loss::pair_source> {};

template <class Loss, class DefaultMetric, class DX, class... Tail>
auto labelled_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  const auto eval_on = [](const auto& metric, const ConstRowRef<Scalar>& x, const LabelVector& y, const auto& o,
                          Gradients<Scalar>* g, Vector<Scalar>* t) {
    if constexpr (takes_pair_source<Loss>::value) {
      return Loss::template eval<Scalar>(metric, BatchSource<Scalar>{x, y}, o, g, t);
    } else {
      return Loss::template eval<Scalar>(metric, x, y, o, g, t);
    }
  };
  return labelled_call<Loss, DefaultMetric>(X, labels, eval_on, tail...);
}

// The public function of a loss on (X, labels, reference_set(R, ref_labels[, self_offset]), tail...):
// anchors from X, positives and negatives from R. Gradients: dL/dX, dL/dR, then
// the metric's parameters (summed over both sides). eval_on(metric, PairSource, options, grads, terms).
template <class Loss, class DefaultMetric, class DX, class DR, class Eval, class... Tail>
auto reference_call(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                    const Eval& eval_on, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  static_assert(takes_pair_source<Loss>::value, "contrastive: this loss has no reference-set form");
  static_assert(std::is_same<typename DR::Scalar, Scalar>::value,
                "contrastive: the reference set must have the embeddings' Scalar type");
  check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(reference.rows().derived());
  const LabelVector y = to_labels(Loss::name, "labels", labels, x.rows());
  const LabelVector ry = to_labels(Loss::name, "ref_labels", reference.labels(), r.rows(), "the reference set R");
  if (r.cols() != x.cols() && r.rows() > 0 && x.rows() > 0) {
    fail(Loss::name, "argument 'R' has " + std::to_string(r.cols()) + " columns, X has " +
                         std::to_string(x.cols()) + "; both need one column per embedding dimension");
  }
  const Index offset = reference.self_offset();
  if (offset == -2 || (offset >= 0 && (offset >= r.rows() || x.rows() > r.rows()))) {
    fail(Loss::name, "argument 'self_offset' = " + std::to_string(offset) + " must place the " +
                         std::to_string(x.rows()) + " queries among the " + std::to_string(r.rows()) +
                         " rows of R (query i is row (i + self_offset) mod M: 0 <= self_offset < M, N <= M)");
  }
  std::size_t requested = 0;  // 0: all blocks
  const auto eval = [&](const auto& metric, const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    const PairSource<Scalar> source{x, y, &r, &ry, offset < 0 ? Index(-1) : offset,
                                    requested != 1 && reference.has_gradient(), reference.workspace(),
                                    reference.rows_checked()};
    return eval_on(metric, source, options, grads, terms);
  };
  CallSpec spec{Loss::name, {{x.rows(), x.cols()}, {r.rows(), r.cols()}}};
  spec.requested_blocks = &requested;
  spec.fewest_outputs = 1;
  return call_forms<DefaultMetric, Scalar, Options>(spec, eval, tail...);
}

template <class Loss, class DefaultMetric, class DX, class DR, class... Tail>
auto reference_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                    const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  const auto eval_on = [](const auto& metric, const PairSource<Scalar>& s, const auto& o, Gradients<Scalar>* g,
                          Vector<Scalar>* t) { return Loss::template eval<Scalar>(metric, s, o, g, t); };
  return reference_call<Loss, DefaultMetric>(X, labels, reference, eval_on, tail...);
}

// With one more input before the options (the InfoNCE temperature), as labelled_loss_with.
template <class Loss, class DefaultMetric, class DX, class DR, class Extra, class... Tail>
auto reference_loss_with(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                         const Extra& extra, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  const auto eval_on = [&extra](const auto& metric, const PairSource<Scalar>& s, const auto& o, Gradients<Scalar>* g,
                                Vector<Scalar>* t) { return Loss::template eval<Scalar>(metric, s, extra, o, g, t); };
  return reference_call<Loss, DefaultMetric>(X, labels, reference, eval_on, tail...);
}

template <class Loss, class DefaultMetric, class DX, class Extra, class... Tail>
auto labelled_loss_with(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Extra& extra,
                        const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  const auto eval_on = [&extra](const auto& metric, const ConstRowRef<Scalar>& x, const LabelVector& y, const auto& o,
                                Gradients<Scalar>* g, Vector<Scalar>* t) {
    if constexpr (takes_pair_source<Loss>::value) {
      return Loss::template eval<Scalar>(metric, BatchSource<Scalar>{x, y}, extra, o, g, t);
    } else {
      return Loss::template eval<Scalar>(metric, x, y, extra, o, g, t);
    }
  };
  return labelled_call<Loss, DefaultMetric>(X, labels, eval_on, tail...);
}

// Mined tuples against a reference set: Triplets with anchors into X and
// positives and negatives into R, or Pairs with `first` into X and `second`
// into R (what the reference-set miners return). The loss's own mined form
// runs on the stacked rows [X; R] with the reference indices shifted by N, and
// its gradient is split back into dL/dX and dL/dR: one formula for both.
// Costs one copy of X and R beside the loss's O(tuples x D).
inline void require_reference_indices(const char* function, const char* argument, const std::vector<Index>& idx,
                                      Index rows, const char* of) {
  for (std::size_t k = 0; k < idx.size(); ++k) {
    if (idx[k] < 0 || idx[k] >= rows) {
      fail(function, std::string("argument '") + argument + "' has " + std::to_string(idx[k]) + " at entry " +
                         std::to_string(k) + ", out of range for " + of + " with " + std::to_string(rows) + " rows");
    }
  }
}

inline Triplets shifted_to_stack(const char* function, const Triplets& t, Index n, Index m) {
  if (t.positive.size() != t.anchor.size() || t.negative.size() != t.anchor.size()) return t;  // the loss reports it
  require_reference_indices(function, "triplets.anchor", t.anchor, n, "X");
  require_reference_indices(function, "triplets.positive", t.positive, m, "R");
  require_reference_indices(function, "triplets.negative", t.negative, m, "R");
  Triplets out = t;
  for (Index& p : out.positive) p += n;
  for (Index& q : out.negative) q += n;
  return out;
}

inline Pairs shifted_to_stack(const char* function, const Pairs& p, Index n, Index m) {
  if (p.second.size() != p.first.size()) return p;  // the loss reports it
  require_reference_indices(function, "pairs.first", p.first, n, "X");
  require_reference_indices(function, "pairs.second", p.second, m, "R");
  Pairs out = p;
  for (Index& j : out.second) j += n;
  return out;
}

template <class Loss, class DefaultMetric, class Tuples, class DX, class DR, class... Tail>
auto mined_reference_loss(const Eigen::MatrixBase<DX>& X, const Tuples& tuples, const ReferenceSet<DR>& reference,
                          const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  static_assert(std::is_same<typename DR::Scalar, Scalar>::value,
                "contrastive: the reference set must have the embeddings' Scalar type");
  check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const ConstRowRef<Scalar> r(reference.rows().derived());
  if (r.cols() != x.cols() && r.rows() > 0 && x.rows() > 0) {
    fail(Loss::name, "argument 'R' has " + std::to_string(r.cols()) + " columns, X has " +
                         std::to_string(x.cols()) + "; both need one column per embedding dimension");
  }
  const Index n = x.rows(), m = r.rows();
  const Tuples shifted = shifted_to_stack(Loss::name, tuples, n, m);
  RowMatrix<Scalar> stacked(n + m, x.rows() > 0 ? x.cols() : r.cols());
  stacked.topRows(n) = x;
  stacked.bottomRows(m) = r;
  const ConstRowRef<Scalar> z(stacked);
  const auto eval = [&](const auto& metric, const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    if (options.reduction.weighted()) {
      fail(Loss::name, "argument 'options.reduction' has sample weights; mined tuples against a reference set "
                       "take none");
    }
    if (!grads) return Loss::template eval<Scalar>(metric, z, shifted, options, nullptr, terms);
    Gradients<Scalar> g;
    const Scalar value = Loss::template eval<Scalar>(metric, z, shifted, options, &g, terms);
    grads->clear();
    grads->push_back(g[0].topRows(n));
    grads->push_back(reference.has_gradient() ? RowMatrix<Scalar>(g[0].bottomRows(m)) : RowMatrix<Scalar>());
    for (std::size_t k = 1; k < g.size(); ++k) grads->push_back(std::move(g[k]));
    return value;
  };
  CallSpec spec{Loss::name, {{x.rows(), x.cols()}, {r.rows(), r.cols()}}};
  spec.fewest_outputs = 1;
  return call_forms<DefaultMetric, Scalar, Options>(spec, eval, tail...);
}

// The public function of a loss on mined index pairs (X, pairs, tail...). Loss supplies
//   static constexpr const char* name;  using Options = ...;
//   template <class Scalar, class Metric>
//   static Scalar eval(const Metric&, const ConstRowRef<Scalar>& X, const Pairs&, const Options&,
//                      Gradients<Scalar>*, Vector<Scalar>* terms);
// and validates the pairs itself (validate_pairs, core/index_sets.hpp).
template <class Loss, class DefaultMetric, class DX, class... Tail>
auto pairs_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const auto eval = [&](const auto& metric, const Options& options, Gradients<Scalar>* grads,
                        Vector<Scalar>* terms) { return Loss::template eval<Scalar>(metric, x, pairs, options, grads, terms); };
  return call_forms<DefaultMetric, Scalar, Options>(CallSpec{Loss::name, {{x.rows(), x.cols()}}}, eval, tail...);
}

}  // namespace detail
}  // namespace contrastive
