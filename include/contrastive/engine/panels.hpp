// The pairwise engine: a batch loss sees the distance matrix of its rows one
// panel of anchors at a time, under a workspace budget, and never as an
// N x N matrix unless that fits the budget.
//
//   embeddings --metric--> distance panels --loss--> value, dL/dD --metric backward--> dL/dX
//
// A loss is a "panel loss": an object with
//   static constexpr bool sparse_gradient;      // writes a few entries per row
//   void panel(const DistancePanel<S>& D, Sink* dD);  // dD null: value only
//   Reduced<S> finish();                        // the value, and the factor every
//                                               // entry written to a sink is scaled by
// The engine calls panel() once per block of anchors, in order, with the full
// rows of those anchors (every column, the anchor's own included, at distance
// exactly 0). The loss keeps its running sums and counts itself; finish()
// turns them into the value once all panels are seen. Because dL/dX is linear
// in dL/dD, the engine accumulates the unscaled gradient of each panel and
// scales it once at the end: a weight known only after the last panel (a mean
// over the non-zero terms, say) costs no second pass.
//
// Two ways through the matrix, chosen from the budget:
// - whole matrix (N x N distances, and their gradient when it is dense, fit in
//   the budget): one symmetric Gram product (half the flops of a general
//   one), one panel holding every row, and the symmetric backward, which
//   folds dL/dD + dL/dD^T and needs one product.
// - row panels otherwise: B anchors at a time (B from the budget), one
//   B x N x D product per panel forward, two backward (the panel's rows, and
//   every row as a column of the panel). Twice the flops of the whole-matrix
//   path, in O(B N) memory.
// Sparse gradients (batch-hard, semi-hard, mined tuples) skip the dense
// backward: the sink records (anchor, column, dL/dD) entries and the backward
// is a gather over those rows, O(entries x D).
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/metrics/metric_traits.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <algorithm>
#include <cstddef>
#include <exception>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// Distances of anchors [first, first + rows) to every row: row-major, rows x cols.
template <class Scalar>
struct DistancePanel {
  Index first = 0;
  Index rows = 0;
  Index cols = 0;
  const Scalar* data = nullptr;

  Index end() const { return first + rows; }
  // The distance row of anchor a (a global row index inside the panel).
  const Scalar* row(Index a) const { return data + (a - first) * cols; }
  Scalar operator()(Index a, Index j) const { return row(a)[j]; }
  Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>> row_vector(Index a) const {
    return Eigen::Map<const Eigen::Matrix<Scalar, 1, Eigen::Dynamic>>(row(a), cols);
  }
};

// dL/dD of one panel, dense: zero on entry, the loss adds to or writes its rows.
template <class Scalar>
struct DenseGradientSink {
  Index first = 0;
  Index cols = 0;
  Scalar* data = nullptr;

  Scalar* row(Index a) { return data + (a - first) * cols; }
  Scalar& operator()(Index a, Index j) { return row(a)[j]; }
  void add(Index a, Index j, Scalar g) { row(a)[j] += g; }
};

// dL/dD as a few entries: (anchor, column, value), with the distance they apply to.
template <class Scalar>
struct GradientEntry {
  Index i;
  Index j;
  Scalar g;
  Scalar d;
};

template <class Scalar>
struct SparseGradientSink {
  const DistancePanel<Scalar>* panel = nullptr;
  std::vector<GradientEntry<Scalar>> entries;

  void add(Index a, Index j, Scalar g) {
    if (g != Scalar(0)) entries.push_back(GradientEntry<Scalar>{a, j, g, (*panel)(a, j)});
  }
};

template <class Loss, class Scalar>
using SinkOf = std::conditional_t<Loss::sparse_gradient, SparseGradientSink<Scalar>, DenseGradientSink<Scalar>>;

// A panel loss from two lambdas: panel(D, sink) (sink a pointer, null for the
// value only) and finish() -> Reduced<Scalar>.
template <bool Sparse, class PanelFn, class FinishFn>
struct LambdaPanelLoss {
  static constexpr bool sparse_gradient = Sparse;
  PanelFn panel_fn;
  FinishFn finish_fn;

  template <class Scalar, class Sink>
  void panel(const DistancePanel<Scalar>& D, Sink* sink) {
    panel_fn(D, sink);
  }
  auto finish() { return finish_fn(); }
};

// Dense dL/dD (written row by row), or a few entries per row (sink->add(a, j, g)).
constexpr bool dense_gradient = false;
constexpr bool sparse_gradient = true;

template <bool Sparse, class PanelFn, class FinishFn>
LambdaPanelLoss<Sparse, PanelFn, FinishFn> panel_loss(PanelFn panel, FinishFn finish) {
  return {std::move(panel), std::move(finish)};
}

// A two-pass panel loss: panel(D) tallies, finish() fixes the weights, then
// gradient(D, sink) writes dL/dD (see run_panels).
template <bool Sparse, class PanelFn, class FinishFn, class GradientFn>
struct LambdaTwoPassLoss : LambdaPanelLoss<Sparse, PanelFn, FinishFn> {
  static constexpr bool two_pass = true;
  GradientFn gradient_fn;

  template <class Scalar, class Sink>
  void gradient(const DistancePanel<Scalar>& D, Sink* sink) {
    gradient_fn(D, sink);
  }
};

template <bool Sparse, class PanelFn, class FinishFn, class GradientFn>
LambdaTwoPassLoss<Sparse, PanelFn, FinishFn, GradientFn> two_pass_loss(PanelFn panel, FinishFn finish,
                                                                      GradientFn gradient) {
  return {{std::move(panel), std::move(finish)}, std::move(gradient)};
}

// An exception may not leave an OpenMP region (std::terminate): work inside
// one runs through capture(), and the first exception thrown (a bad_alloc,
// say) is rethrown by rethrow() once the region has ended.
class FirstException {
 public:
  template <class F>
  void capture(F&& f) noexcept {
    try {
      f();
    } catch (...) {
#ifdef _OPENMP
#pragma omp critical(contrastive_first_exception)
#endif
      if (!first_) first_ = std::current_exception();
    }
  }
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::exception_ptr first_;
};

// Threads for the anchors of panels: one scratch object per thread a loss
// may run its anchors on (OpenMP's threads, 1 without it or inside a parallel region).
inline std::size_t anchor_threads() { return static_cast<std::size_t>(std::max(1, pass_threads())); }

// body(a, scratch) for every anchor a of a panel, in parallel under OpenMP:
// thread t takes the t-th contiguous chunk of anchors, in order, with
// scratch[t] (scratch.size() threads at most). A loss whose body writes only
// anchor a's results, and which combines them in anchor order afterwards
// (the chunks in thread order are the anchors in order), gets the same result
// on any number of threads. An exception from the body reaches the caller
// after the region (FirstException).
template <class Scalar, class Scratch, class Body>
void for_each_anchor(const DistancePanel<Scalar>& D, std::vector<Scratch>& scratch, Body&& body) {
#ifdef _OPENMP
  const int threads = D.rows >= 32 ? static_cast<int>(scratch.size()) : 1;
  FirstException error;
#pragma omp parallel num_threads(threads)
  {
    Scratch& mine = scratch[static_cast<std::size_t>(omp_get_thread_num())];
#pragma omp for schedule(static)
    for (Index a = D.first; a < D.end(); ++a) error.capture([&] { body(a, mine); });
  }
  error.rethrow();
#else
  for (Index a = D.first; a < D.end(); ++a) body(a, scratch[0]);
#endif
}

// How the engine walks an N-row batch: the whole matrix, or panels of `panel_rows`.
struct PanelPlan {
  Index panel_rows = 0;
  bool whole_matrix = false;
};

// `buffers` N-wide rows per anchor live at once: the distances, and their
// gradient when it is dense.
template <class Scalar>
PanelPlan plan_panels(const char* function, std::size_t workspace_bytes, Index n, int buffers) {
  PanelPlan plan;
  if (n == 0) return {0, true};
  const std::size_t row_bytes = static_cast<std::size_t>(n) * sizeof(Scalar) * static_cast<std::size_t>(buffers);
  if (workspace_bytes < row_bytes) {
    fail(function, "options.workspace_bytes = " + std::to_string(workspace_bytes) +
                       " is below the smallest tile: one row of distances" +
                       std::string(buffers > 1 ? " and its gradient" : "") + " for N = " + std::to_string(n) +
                       " rows needs " + std::to_string(row_bytes) + " bytes");
  }
  const std::size_t fit = workspace_bytes / row_bytes;
  plan.whole_matrix = fit >= static_cast<std::size_t>(n);
  plan.panel_rows = plan.whole_matrix ? n : static_cast<Index>(fit);
  return plan;
}

// dX += the backward of a panel's distances from its dense dL/dD (consumed).
template <MetricKind Kind, class Scalar>
void panel_backward(const PairwiseForward<Scalar>& forward, const ConstRowRef<Scalar>& Z, Index first,
                    Index rows, RowMatrix<Scalar>& W, RowMatrix<Scalar>& dZ) {
  RowMatrix<Scalar> dI, dAll;
  const ConstRowRef<Scalar> ZI = Z.middleRows(first, rows);
  pairwise_backward_in_place<Kind, Scalar>(forward, ZI, Z, W, dI, &dAll);
  dZ.middleRows(first, rows) += dI;
  dZ += dAll;
}

// dZ from a few (i, j, dL/dD_ij) entries: each pair's gradient directly.
template <MetricKind Kind, class Scalar>
void sparse_backward(const std::vector<GradientEntry<Scalar>>& entries, const ConstRowRef<Scalar>& Z,
                     RowMatrix<Scalar>& dZ) {
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
  if constexpr (Kind == MetricKind::Cosine) {
    RowMatrix<Scalar> U;
    Vector<Scalar> norm;
    normalize_rows<Scalar>(Z, U, norm);
    for (const GradientEntry<Scalar>& e : entries) {
      add_cosine_pair_gradient<Scalar>(e.g, e.d, norm(e.i), U.row(e.i), U.row(e.j), dZ.row(e.i));
      add_cosine_pair_gradient<Scalar>(e.g, e.d, norm(e.j), U.row(e.j), U.row(e.i), dZ.row(e.j));
    }
  } else if constexpr (Kind == MetricKind::DotProduct) {
    // d = -x_i . x_j
    for (const GradientEntry<Scalar>& e : entries) {
      dZ.row(e.i) -= e.g * Z.row(e.j);
      dZ.row(e.j) -= e.g * Z.row(e.i);
    }
  } else {
    for (const GradientEntry<Scalar>& e : entries) {
      const Scalar w = difference_weight<Kind>(e.g, e.d);
      if (w == Scalar(0)) continue;
      const RowVec diff = Z.row(e.i) - Z.row(e.j);
      dZ.row(e.i) += w * diff;
      dZ.row(e.j) -= w * diff;
    }
  }
}

template <class Loss, class = void>
struct is_two_pass : std::false_type {};
template <class Loss>
struct is_two_pass<Loss, std::void_t<decltype(Loss::two_pass)>> : std::integral_constant<bool, Loss::two_pass> {};

// Runs a panel loss over the symmetric distance matrix of Z's rows under
// `kind`'s kernel. Returns the value; with dZ, its gradient with respect to Z.
//
// A two-pass loss (static constexpr bool two_pass = true) writes its gradient
// only once finish() has seen every panel, in gradient(D, sink): the engine
// then walks the panels a second time, recomputing their distances unless the
// whole matrix is held.
template <MetricKind Kind, class Scalar, class Loss>
Scalar run_panels(const char* function, const ConstRowRef<Scalar>& Z, std::size_t workspace_bytes, Loss& loss,
                  RowMatrix<Scalar>* dZ) {
  constexpr bool two_pass = is_two_pass<Loss>::value;
  const Index n = Z.rows();
  const bool dense = dZ && !Loss::sparse_gradient;
  const PanelPlan plan = plan_panels<Scalar>(function, workspace_bytes, n, dense ? 2 : 1);
  using Sink = SinkOf<Loss, Scalar>;
  if (dZ) dZ->setZero(n, Z.cols());
  SparseGradientSink<Scalar> sparse;

  auto forward_of = [&](Index first, Index rows) {
    if (plan.whole_matrix) {
      PairwiseForward<Scalar> f = pairwise_forward<Kind, Scalar>(Z, Z, true);
      // The own column is 0 under every kernel (DotProduct's kernel keeps -|x|^2 there).
      if constexpr (Kind == MetricKind::DotProduct) f.distances.diagonal().setZero();
      return f;
    }
    PairwiseForward<Scalar> f = pairwise_forward<Kind, Scalar>(Z.middleRows(first, rows), Z, false);
    // A row's distance to itself is exactly 0 (a zero row's Cosine distance to itself too).
    for (Index r = 0; r < rows; ++r) f.distances(r, first + r) = Scalar(0);
    return f;
  };
  // The gradient of one panel: into the sparse entries, or dense and through the backward.
  auto backward_of = [&](PairwiseForward<Scalar>& forward, const DistancePanel<Scalar>& panel, auto&& write) {
    if constexpr (Loss::sparse_gradient) {
      sparse.panel = &panel;
      write(&sparse);
      sparse.panel = nullptr;
    } else {
      RowMatrix<Scalar> W = RowMatrix<Scalar>::Zero(panel.rows, n);
      DenseGradientSink<Scalar> sink{panel.first, n, W.data()};
      write(&sink);
      if (plan.whole_matrix) {
        pairwise_backward_in_place<Kind, Scalar>(forward, Z, Z, W, *dZ, nullptr);
      } else {
        panel_backward<Kind, Scalar>(forward, Z, panel.first, panel.rows, W, *dZ);
      }
    }
  };

  // Pass 1. The whole matrix, when held, is kept for a second pass.
  PairwiseForward<Scalar> held;
  for (Index first = 0; first < n; first += plan.panel_rows) {
    const Index rows = std::min(plan.panel_rows, n - first);
    PairwiseForward<Scalar> forward = forward_of(first, rows);
    const DistancePanel<Scalar> panel{first, rows, n, forward.distances.data()};
    if (!dZ || two_pass) {
      loss.panel(panel, static_cast<Sink*>(nullptr));
      if (two_pass && plan.whole_matrix) held = std::move(forward);
      continue;
    }
    backward_of(forward, panel, [&](auto* sink) { loss.panel(panel, sink); });
  }
  const Reduced<Scalar> reduced = loss.finish();

  // Pass 2, for a two-pass loss's gradient.
  if constexpr (two_pass) {
    if (dZ) {
      for (Index first = 0; first < n; first += plan.panel_rows) {
        const Index rows = std::min(plan.panel_rows, n - first);
        PairwiseForward<Scalar> forward = plan.whole_matrix ? std::move(held) : forward_of(first, rows);
        const DistancePanel<Scalar> panel{first, rows, n, forward.distances.data()};
        backward_of(forward, panel, [&](auto* sink) { loss.gradient(panel, sink); });
      }
    }
  }
  if (dZ) {
    if constexpr (Loss::sparse_gradient) sparse_backward<Kind, Scalar>(sparse.entries, Z, *dZ);
    *dZ *= reduced.weight;
  }
  return reduced.value;
}

}  // namespace detail
}  // namespace contrastive
