// The framework of the distributed batch losses: one function per loss is
// a one-line declaration (losses.hpp); everything else is here.
//
//   distributed::loss(comm, X_local, labels_local, [extra,] [metric], [options], [value_only | grad_out...])
//
// Each rank passes its own rows; the result is the loss of the global batch
// (the ranks' rows concatenated in rank order): the same value on every rank,
// and on each rank dL/d(its rows), its slice of the single-process gradient.
// Sample weights (options.reduction = Mean(w)): one per local row.
//
// Three paths (docs/distributed.md):
//   own anchors  (a loss with a reference-set form whose reference semantics
//                 at R = the global batch are the batch loss): each rank
//                 computes its anchors' terms against the gathered batch,
//                 R = reference_set(global rows, global labels, its offset),
//                 with the reduction's divisor deferred (Reducer::deferred);
//                 the totals are all-reduced, dL/dR is reduce-scattered and
//                 added to dL/dX, both scaled by the global divisor.
//   own pairs    (a loss whose terms are independent pairs: batch_contrastive)
//                every unordered pair of the global batch once, on one rank,
//                balanced (own_pairs below): N^2 / (2P) pairs per rank.
//   whole loss   every rank computes the loss of the gathered batch and
//                keeps its rows of the gradient: exact, P times the work.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/reference_set.hpp"
#include "contrastive/distributed/agreement.hpp"
#include "contrastive/distributed/communicator.hpp"
#include "contrastive/distributed/global_batch.hpp"

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace distributed {

// Which path a call takes, for the user who wants to know (and the tests).
enum class Path { OwnAnchors, OwnPairs, WholeLoss };

namespace detail {

using contrastive::detail::BatchSource;
using contrastive::detail::DeferredTotals;
using contrastive::detail::Gradients;
using contrastive::detail::PairSource;
using contrastive::detail::takes_pair_source;

// Per loss: whether a call with these options takes the own-anchors path and
// the Sum divisor that turns the reference form's sum over the global batch
// into the batch form's. Specialised where a loss differs (losses.hpp).
template <class Loss>
struct GlobalLossTraits {
  template <class Options>
  static bool own_anchors(const Options&) {
    return takes_pair_source<Loss>::value;
  }
  static constexpr int sum_divisor = 1;
  // Terms of pairs, each pair's independent of the others (batch_contrastive):
  // the pairs of the global batch can be split among the ranks each once.
  static constexpr bool pair_terms = false;
};

template <class Loss, class = void>
struct has_pair_terms : std::false_type {};
template <class Loss>
struct has_pair_terms<Loss, std::void_t<decltype(GlobalLossTraits<Loss>::pair_terms)>>
    : std::integral_constant<bool, GlobalLossTraits<Loss>::pair_terms> {};

// The evaluation of Loss on a batch or a pair source, with or without one
// extra input before the options (supcon's temperature).
template <class Loss>
struct Evaluate {
  template <class Scalar, class Metric, class Options>
  Scalar batch(const Metric& m, const ConstRowRef<Scalar>& x, const LabelVector& y, const Options& o,
               Gradients<Scalar>* g, Vector<Scalar>* t) const {
    if constexpr (takes_pair_source<Loss>::value) {
      return Loss::template eval<Scalar>(m, BatchSource<Scalar>{x, y}, o, g, t);
    } else {
      return Loss::template eval<Scalar>(m, x, y, o, g, t);
    }
  }
  template <class Scalar, class Metric, class Options>
  Scalar reference(const Metric& m, const PairSource<Scalar>& s, const Options& o, Gradients<Scalar>* g,
                   Vector<Scalar>* t) const {
    return Loss::template eval<Scalar>(m, s, o, g, t);
  }
};

template <class Loss, class Extra>
struct EvaluateWith {
  const Extra& extra;
  template <class Scalar, class Metric, class Options>
  Scalar batch(const Metric& m, const ConstRowRef<Scalar>& x, const LabelVector& y, const Options& o,
               Gradients<Scalar>* g, Vector<Scalar>* t) const {
    if constexpr (takes_pair_source<Loss>::value) {
      return Loss::template eval<Scalar>(m, BatchSource<Scalar>{x, y}, extra, o, g, t);
    } else {
      return Loss::template eval<Scalar>(m, x, y, extra, o, g, t);
    }
  }
  template <class Scalar, class Metric, class Options>
  Scalar reference(const Metric& m, const PairSource<Scalar>& s, const Options& o, Gradients<Scalar>* g,
                   Vector<Scalar>* t) const {
    return Loss::template eval<Scalar>(m, s, extra, o, g, t);
  }
};

inline std::string message_of(const std::exception& e) {
  const std::string what = e.what();
  return what.empty() ? std::string("an exception without a message") : what;
}

// The divisor of the global reduction from the all-reduced totals.
inline double global_divisor(Reduction kind, double count, double positive, int sum_divisor) {
  switch (kind) {
    case Reduction::Sum: return static_cast<double>(sum_divisor);
    case Reduction::Mean: return count;
    case Reduction::MeanNonZero: return positive;
  }
  return 1.0;
}

// A rank's part of a deferred reduction: the sum of its terms, their count
// and how many are positive (MeanNonZero), to be all-reduced.
struct LocalTotals {
  double sum = 0, count = 0, positive = 0;
  void add(double call_sum, const DeferredTotals& totals) {
    sum += call_sum;
    if (!totals.entries.empty()) {
      count += static_cast<double>(totals.entries.back().count);
      positive += static_cast<double>(totals.entries.back().positive);
    }
  }
};

// The global reduction: value = global sum / divisor, and the factor every
// gradient block is scaled by (0 for an empty reduction, as detail::reduce).
template <class Scalar>
struct GlobalReduction {
  Scalar value, weight;
};

template <class Scalar>
GlobalReduction<Scalar> reduce_globally(const Communicator& comm, const LocalTotals& local, Reduction kind,
                                        int sum_divisor) {
  double t[3] = {local.sum, local.count, local.positive};
  comm.allreduce_sum(t, 3);
  const double divisor = global_divisor(kind, t[1], t[2], sum_divisor);
  const Scalar weight = divisor == 0.0 ? Scalar(0) : Scalar(1) / static_cast<Scalar>(divisor);
  return {static_cast<Scalar>(t[0]) * weight, weight};
}

template <class Loss, class Scalar, class Metric, class Options, class Evaluator>
Scalar own_anchors(const Communicator& comm, const GlobalBatch<Scalar>& batch, const Metric& metric,
                   const ConstRowRef<Scalar>& x, const LabelVector& y, const Options& options,
                   const Evaluator& evaluate, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const char* fn = Loss::name;
  DeferredTotals totals;
  Options local = options;
  local.reduction = options.reduction.deferred(&totals);
  const ConstRowRef<Scalar> r(batch.rows);
  Gradients<Scalar> g;
  Scalar local_sum = Scalar(0);
  std::string error;
  try {
    if (x.rows() == 0) {
      // No anchors here: no terms, and zero contributions to every gradient
      // block (the other ranks' collectives still count on this rank's).
      if (terms) terms->resize(0);
      g.emplace_back(0, batch.rows.cols());
      g.push_back(RowMatrix<Scalar>::Zero(batch.rows.rows(), batch.rows.cols()));
      for (int k = 0; k < metric.parameter_blocks(); ++k) {
        const std::pair<Index, Index> shape = metric.parameter_shape(k);
        g.push_back(RowMatrix<Scalar>::Zero(shape.first, shape.second));
      }
    } else {
      const PairSource<Scalar> source{x, y, &r, &batch.labels, batch.offset, grads != nullptr};
      local_sum = evaluate.template reference<Scalar>(metric, source, local, grads ? &g : nullptr, terms);
    }
    if (totals.entries.size() > 1) {
      for (const auto& e : totals.entries) {
        if (e.count != totals.entries[0].count || e.positive != totals.entries[0].positive) {
          throw std::logic_error("contrastive::distributed: internal: the loss reduced two tallies; "
                                 "it needs the whole-loss path");
        }
      }
    }
  } catch (const std::invalid_argument& e) {
    error = message_of(e);
  }
  agree(comm, fn, error);
  LocalTotals rank_totals;
  rank_totals.add(static_cast<double>(local_sum), totals);
  const GlobalReduction<Scalar> reduced =
      reduce_globally<Scalar>(comm, rank_totals, options.reduction.kind(), GlobalLossTraits<Loss>::sum_divisor);
  if (grads) {
    grads->clear();
    RowMatrix<Scalar> mine = std::move(g[0]);
    if (mine.rows() != x.rows() || mine.cols() != batch.rows.cols()) mine.setZero(x.rows(), batch.rows.cols());
    RowMatrix<Scalar> all = std::move(g[1]);
    if (all.rows() != batch.rows.rows() || all.cols() != batch.rows.cols()) {
      all.setZero(batch.rows.rows(), batch.rows.cols());
    }
    add_scattered(comm, batch, all, mine);
    grads->push_back(std::move(mine));
    for (std::size_t k = 2; k < g.size(); ++k) {
      comm.allreduce_sum(g[k].data(), g[k].size());
      grads->push_back(std::move(g[k]));
    }
    for (auto& block : *grads) block *= reduced.weight;
  }
  return reduced.value;
}

template <class Loss, class Scalar, class Metric, class Options, class Evaluator>
Scalar whole_loss(const Communicator& comm, const GlobalBatch<Scalar>& batch, const Metric& metric,
                  const Options& options, const Evaluator& evaluate, Gradients<Scalar>* grads,
                  Vector<Scalar>* terms) {
  Options global = options;
  if (options.reduction.weighted()) global.reduction = Reducer(options.reduction.kind(), batch.weights);
  const ConstRowRef<Scalar> r(batch.rows);
  Gradients<Scalar> g;
  Scalar value = Scalar(0);
  std::string error;
  try {
    value = evaluate.template batch<Scalar>(metric, r, batch.labels, global, grads ? &g : nullptr, terms);
  } catch (const std::invalid_argument& e) {
    error = message_of(e);
  }
  agree(comm, Loss::name, error);
  if (grads) {
    grads->clear();
    grads->push_back(g[0].middleRows(batch.offset, batch.local_rows));
    for (std::size_t k = 1; k < g.size(); ++k) grads->push_back(std::move(g[k]));
  }
  return value;
}

// The own-pairs path of a loss whose terms are independent pairs: every
// unordered pair of the global batch computed once, on one rank, the work
// balanced. Rank r computes: the pairs within its rows (the batch form, its
// symmetric tiles), and for every other rank s, half of the cross block:
// with r < s, all of r's rows against the first half of s's; with r > s,
// the second half of r's rows against all of s's. dL/d(reference rows) of
// those calls go into the global gradient buffer, reduce-scattered.
template <class Loss, class Scalar, class Metric, class Options, class Evaluator>
Scalar own_pairs(const Communicator& comm, const GlobalBatch<Scalar>& batch, const Metric& metric,
                 const ConstRowRef<Scalar>& x, const LabelVector& y, const Options& options,
                 const Evaluator& evaluate, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const Index cols = batch.rows.cols(), n_r = x.rows();
  const std::size_t p = batch.counts.size(), me = static_cast<std::size_t>(comm.rank());
  std::vector<Index> offsets(p, 0);
  for (std::size_t s = 1; s < p; ++s) offsets[s] = offsets[s - 1] + batch.counts[s - 1];
  // Reference rows of call A (all of mine against the first halves of the higher ranks').
  std::vector<Index> a_rows;
  for (std::size_t s = me + 1; s < p; ++s) {
    for (Index i = 0; i < batch.counts[s] / 2; ++i) a_rows.push_back(offsets[s] + i);
  }
  const Index half = n_r / 2;  // call B: my rows [half, n_r) against all rows of the lower ranks
  const Index lower = batch.offset;
  RowMatrix<Scalar> all = RowMatrix<Scalar>::Zero(grads ? batch.rows.rows() : 0, cols);
  RowMatrix<Scalar> mine = RowMatrix<Scalar>::Zero(grads ? n_r : 0, cols);
  std::vector<RowMatrix<Scalar>> metric_grads;
  LocalTotals rank_totals;
  const auto tally = [&](const DeferredTotals& totals, Scalar sum) { rank_totals.add(static_cast<double>(sum), totals); };
  const auto add_metric = [&](Gradients<Scalar>& g, std::size_t first) {
    for (std::size_t k = first; k < g.size(); ++k) {
      const std::size_t m = k - first;
      if (metric_grads.size() <= m) metric_grads.push_back(RowMatrix<Scalar>::Zero(g[k].rows(), g[k].cols()));
      metric_grads[m] += g[k];
    }
  };
  std::string error;
  try {
    if (n_r > 0) {  // the pairs within my rows, once each
      DeferredTotals totals;
      Options local = options;
      local.reduction = options.reduction.deferred(&totals);
      Gradients<Scalar> g;
      tally(totals, evaluate.template batch<Scalar>(metric, x, y, local, grads ? &g : nullptr, nullptr));
      if (grads) {
        mine += g[0];
        add_metric(g, 1);
      }
    }
    if (n_r > 0 && !a_rows.empty()) {
      RowMatrix<Scalar> R(static_cast<Index>(a_rows.size()), cols);
      LabelVector ry(R.rows());
      for (Index j = 0; j < R.rows(); ++j) {
        R.row(j) = batch.rows.row(a_rows[static_cast<std::size_t>(j)]);
        ry(j) = batch.labels(a_rows[static_cast<std::size_t>(j)]);
      }
      const ConstRowRef<Scalar> r(R);
      DeferredTotals totals;
      Options local = options;
      local.reduction = options.reduction.deferred(&totals);
      Gradients<Scalar> g;
      const PairSource<Scalar> source{x, y, &r, &ry, Index(-1), grads != nullptr};
      tally(totals, evaluate.template reference<Scalar>(metric, source, local, grads ? &g : nullptr, nullptr));
      if (grads) {
        mine += g[0];
        for (Index j = 0; j < R.rows(); ++j) all.row(a_rows[static_cast<std::size_t>(j)]) += g[1].row(j);
        add_metric(g, 2);
      }
    }
    if (n_r - half > 0 && lower > 0) {
      const ConstRowRef<Scalar> q(x.middleRows(half, n_r - half));
      const LabelVector qy = y.segment(half, n_r - half);
      const ConstRowRef<Scalar> r(batch.rows.topRows(lower));
      const LabelVector ry = batch.labels.head(lower);
      DeferredTotals totals;
      Options local = options;
      local.reduction = options.reduction.deferred(&totals);
      Gradients<Scalar> g;
      const PairSource<Scalar> source{q, qy, &r, &ry, Index(-1), grads != nullptr};
      tally(totals, evaluate.template reference<Scalar>(metric, source, local, grads ? &g : nullptr, nullptr));
      if (grads) {
        mine.middleRows(half, n_r - half) += g[0];
        all.topRows(lower) += g[1];
        add_metric(g, 2);
      }
    }
    if (grads) {
      // Ranks whose calls made no metric gradient still take part in the all-reduce.
      for (int k = static_cast<int>(metric_grads.size()); k < metric.parameter_blocks(); ++k) {
        const std::pair<Index, Index> shape = metric.parameter_shape(k);
        metric_grads.push_back(RowMatrix<Scalar>::Zero(shape.first, shape.second));
      }
    }
  } catch (const std::invalid_argument& e) {
    error = message_of(e);
  }
  agree(comm, Loss::name, error);
  if (terms) terms->resize(0);
  const GlobalReduction<Scalar> reduced = reduce_globally<Scalar>(comm, rank_totals, options.reduction.kind(), 1);
  if (grads) {
    grads->clear();
    add_scattered(comm, batch, all, mine);
    grads->push_back(std::move(mine));
    for (auto& m : metric_grads) {
      comm.allreduce_sum(m.data(), m.size());
      grads->push_back(std::move(m));
    }
    for (auto& block : *grads) block *= reduced.weight;
  }
  return reduced.value;
}

// Which path these options take (no communication).
template <class Loss, class Options>
Path path_of(const Options& options) {
  if constexpr (takes_pair_source<Loss>::value) {
    if (!GlobalLossTraits<Loss>::own_anchors(options)) return Path::WholeLoss;
    return has_pair_terms<Loss>::value ? Path::OwnPairs : Path::OwnAnchors;
  } else {
    (void)options;
    return Path::WholeLoss;
  }
}

// Runs a call form whose eval starts with agree_on_shapes (and sets
// `agreed` first). An invalid_argument thrown on this rank before that (a
// gradient output of the wrong shape) is told to the others, who are waiting
// in the agreement, and then every rank throws.
template <class Scalar, class Run>
auto guarded(const Communicator& comm, const char* fn, const ConstRowRef<Scalar>& x, const bool& agreed, Run&& run) {
  try {
    return run();
  } catch (const std::invalid_argument& e) {
    if (!agreed) agree_on_shapes(comm, fn, x.rows(), x.cols(), message_of(e));
    throw;
  }
}

template <class Loss, class DefaultMetric, class Result, class DX, class Evaluator, class... Tail>
auto global_call(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                 const Evaluator& evaluate, contrastive::detail::CallSpec spec_extra, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Options = typename Loss::Options;
  contrastive::detail::check_scalar<Scalar>();
  const char* fn = Loss::name;
  const ConstRowRef<Scalar> x(X.derived());
  std::string local_error;
  LabelVector y;
  try {
    y = contrastive::detail::to_labels(fn, "labels", labels, x.rows());
  } catch (const std::invalid_argument& e) {
    local_error = message_of(e);
  }
  bool agreed = false;  // set once this rank has entered the first collective
  const auto eval = [&](const auto& metric, const Options& options, Gradients<Scalar>* grads,
                        Vector<Scalar>* terms) -> Scalar {
    agreed = true;
    std::string error = local_error;
    if (error.empty()) {
      try {
        contrastive::detail::require_embeddings<Scalar>(fn, "X", x);
        metric.check_rows(fn, x);
      } catch (const std::invalid_argument& e) {
        error = message_of(e);
      }
    }
    const Vector<double>* weights = nullptr;
    if (options.reduction.weighted()) {
      weights = &options.reduction.sample_weights();
      if (error.empty() && weights->size() != x.rows()) {
        error = "options.reduction has " + std::to_string(weights->size()) + " sample weights but this rank has " +
                std::to_string(x.rows()) + " rows; give one weight per local row";
      }
    }
    const GlobalBatch<Scalar> batch = gather_batch<Scalar>(comm, fn, x, y, error, weights);
    // One rank: the batch form itself (the own-anchors path would pair every
    // two rows twice, where the batch form's symmetric tiles pair them once).
    const Path path = comm.size() > 1 ? path_of<Loss>(options) : Path::WholeLoss;
    if constexpr (takes_pair_source<Loss>::value) {
      if (path == Path::OwnAnchors) {
        return own_anchors<Loss, Scalar>(comm, batch, metric, x, y, options, evaluate, grads, terms);
      }
      if constexpr (has_pair_terms<Loss>::value) {
        if (path == Path::OwnPairs) {
          return own_pairs<Loss, Scalar>(comm, batch, metric, x, y, options, evaluate, grads, terms);
        }
      }
    }
    return whole_loss<Loss, Scalar>(comm, batch, metric, options, evaluate, grads, terms);
  };
  spec_extra.function = fn;
  spec_extra.embedding_shapes = {{x.rows(), x.cols()}};
  return guarded(comm, fn, x, agreed, [&] {
    return contrastive::detail::call_forms<DefaultMetric, Scalar, Options, Result>(spec_extra, eval, tail...);
  });
}

// The public function of a distributed loss on (comm, X, labels, tail...).
template <class Loss, class DefaultMetric, class DX, class... Tail>
auto global_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  return global_call<Loss, DefaultMetric, LossResult<Scalar>>(comm, X, labels, Evaluate<Loss>{},
                                                              contrastive::detail::CallSpec{Loss::name, {}}, tail...);
}

// With one more input before the options (the InfoNCE temperature).
template <class Loss, class DefaultMetric, class DX, class Extra, class... Tail>
auto global_loss_with(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                      const Extra& extra, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  return global_call<Loss, DefaultMetric, LossResult<Scalar>>(comm, X, labels, EvaluateWith<Loss, Extra>{extra},
                                                              contrastive::detail::CallSpec{Loss::name, {}}, tail...);
}

}  // namespace detail
}  // namespace distributed
}  // namespace contrastive
