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
//   shared tiles (a loss whose symmetric tiles combine their row state,
//                 engine/tile_share.hpp): every rank holds the gathered batch
//                 and computes 1/P of its tiles; the per-anchor state is
//                 all-reduced after pass 1, every rank finishes every anchor,
//                 and the dense dL/dZ is all-reduced.
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
#include "contrastive/distributed/tile_share.hpp"

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace distributed {

// Which path a call takes, for the user who wants to know (and the tests).
enum class Path { SharedTiles, OwnPairs, WholeLoss };

namespace detail {

using contrastive::detail::BatchSource;
using contrastive::detail::DeferredTotals;
using contrastive::detail::Gradients;
using contrastive::detail::PairSource;
using contrastive::detail::TileShare;
using contrastive::detail::takes_pair_source;

// A loss whose batch form runs on symmetric tiles that combine their row
// state (combine_rows): the shared-tiles path. Specialised per loss (losses.hpp).
template <class Loss>
struct SharedTiles : std::false_type {};

// A loss whose terms are pairs, each independent of the others
// (batch_contrastive): with these options the pairs of the global batch can
// be split among the ranks, each computed once (the own-pairs path).
// Specialised per loss (losses.hpp).
template <class Loss>
struct OwnPairs {
  template <class Options>
  static bool applies(const Options&) {
    return false;
  }
};

// The evaluation of Loss on a batch or a pair source, with or without one
// extra input before the options (supcon's temperature).
template <class Loss>
struct Evaluate {
  template <class Scalar, class Metric, class Options>
  Scalar batch(const Metric& m, const ConstRowRef<Scalar>& x, const LabelVector& y, const Options& o,
               Gradients<Scalar>* g, Vector<Scalar>* t, const TileShare<Scalar>* share = nullptr) const {
    if constexpr (takes_pair_source<Loss>::value) {
      return Loss::template eval<Scalar>(m, BatchSource<Scalar>{x, y, share}, o, g, t);
    } else {
      (void)share;
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
               Gradients<Scalar>* g, Vector<Scalar>* t, const TileShare<Scalar>* share = nullptr) const {
    if constexpr (takes_pair_source<Loss>::value) {
      return Loss::template eval<Scalar>(m, BatchSource<Scalar>{x, y, share}, extra, o, g, t);
    } else {
      (void)share;
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

// The loss of the gathered batch on every rank; with `shared`, each rank
// computes its share of the symmetric tiles (the shared-tiles path), and the
// value is rank 0's (the all-reduced sums could differ in the last bit).
template <class Loss, class Scalar, class Metric, class Options, class Evaluator>
Scalar whole_loss(const Communicator& comm, const GlobalBatch<Scalar>& batch, const Metric& metric,
                  const Options& options, const Evaluator& evaluate, Gradients<Scalar>* grads,
                  Vector<Scalar>* terms, bool shared = false) {
  Options global = options;
  if (options.reduction.weighted()) global.reduction = Reducer(options.reduction.kind(), batch.weights);
  const ConstRowRef<Scalar> r(batch.rows);
  Gradients<Scalar> g;
  Scalar value = Scalar(0);
  std::string error;
  const CommunicatorTileShare<Scalar> share(comm);
  try {
    value = evaluate.template batch<Scalar>(metric, r, batch.labels, global, grads ? &g : nullptr, terms,
                                            shared ? &share : nullptr);
  } catch (const std::invalid_argument& e) {
    error = message_of(e);
  }
  agree(comm, Loss::name, error);
  if (shared) comm.broadcast(&value, 1, 0);
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
    if (SharedTiles<Loss>::value) return Path::SharedTiles;
    return OwnPairs<Loss>::applies(options) ? Path::OwnPairs : Path::WholeLoss;
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
    // One rank: the batch form itself, no collectives.
    const Path path = comm.size() > 1 ? path_of<Loss>(options) : Path::WholeLoss;
    if constexpr (takes_pair_source<Loss>::value) {
      if (path == Path::OwnPairs) {
        return own_pairs<Loss, Scalar>(comm, batch, metric, x, y, options, evaluate, grads, terms);
      }
    }
    return whole_loss<Loss, Scalar>(comm, batch, metric, options, evaluate, grads, terms, path == Path::SharedTiles);
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
