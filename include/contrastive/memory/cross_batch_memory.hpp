// A cross-batch memory: the last M embeddings and their labels in a ring
// buffer, against which a batch loss is computed for the current batch
// (pytorch-metric-learning's CrossBatchMemory; Wang et al. 2020, "Cross-Batch
// Memory for Embedding Learning", XBM).
//
//   CrossBatchMemory<float> memory(D, M, options);
//   LossResult<float> r = memory(loss, X, labels [, enqueue_mask]);
//
// One call, one training step:
//   1. Rows enter the memory: the whole batch, or with enqueue_mask (MoCo
//      style: a 0/1 vector of length N) only the masked rows. The oldest rows
//      are overwritten once M are held.
//   2. The queries: the whole batch, or with a mask the rows left out of it.
//   3. loss(queries, query_labels, reference_set(memory rows, their labels[, self_offset]))
//      is the value. Without a mask the memory holds the batch itself and each
//      query's own slot is excluded (self_offset); with a mask nothing is
//      excluded, as PML does.
//   4. dL/dX: the queries' rows get the loss's dL/dX; memory rows carry no
//      gradient (PML detaches them), so masked rows get 0.
// `loss` is any reference-set loss as a callable, e.g.
//   [&](const auto& Q, const auto& y, const auto& ref) { return supcon_loss(Q, y, ref, 0.1); }
// The memory passes the reference set detached: no dL/dR is computed.
//
// options.warmup_steps (XBM's start iteration): the first warm-up calls leave
// the memory empty and untouched and return the plain batch loss
// loss(X, labels, reference_set(X, labels, 0)) with its full gradient.
//
// Memory: the M x D buffer; the loss runs under its own workspace budget
// (never an N x M matrix beyond options.workspace_bytes), in buffers the
// memory keeps from step to step (a Workspace, engine/workspace.hpp): up to
// the budget plus, under Cosine, the M x D unit rows. release_workspace()
// frees them; workspace_bytes() says how much they hold.
//
// Bad input (std::invalid_argument naming the argument): memory_size <= 0,
// embedding_size <= 0, X with other than embedding_size columns, labels or
// enqueue_mask of the wrong length, more rows to enqueue than the memory holds.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reference_set.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/workspace.hpp"

#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {

struct CrossBatchMemoryOptions {
  Index warmup_steps = 0;  // >= 0: steps computed on the batch alone before the memory is used
};

template <class Scalar>
class CrossBatchMemory {
  static_assert(std::is_same<Scalar, float>::value || std::is_same<Scalar, double>::value,
                "contrastive::CrossBatchMemory: Scalar must be float or double");

 public:
  CrossBatchMemory(Index embedding_size, Index memory_size, const CrossBatchMemoryOptions& options = {})
      : options_(options) {
    constexpr const char* fn = "CrossBatchMemory";
    if (memory_size <= 0) {
      detail::fail(fn, "argument 'memory_size' must be positive, got " + std::to_string(memory_size));
    }
    if (embedding_size <= 0) {
      detail::fail(fn, "argument 'embedding_size' must be positive, got " + std::to_string(embedding_size));
    }
    if (options.warmup_steps < 0) {
      detail::fail(fn, "argument 'options.warmup_steps' must be >= 0, got " + std::to_string(options.warmup_steps));
    }
    embeddings_.setZero(memory_size, embedding_size);
    labels_.setZero(memory_size);
  }

  Index memory_size() const { return embeddings_.rows(); }
  Index embedding_size() const { return embeddings_.cols(); }
  // Rows held: min(rows enqueued so far, M).
  Index size() const { return filled_ ? memory_size() : next_; }
  // The slot the next enqueued row goes to.
  Index next_slot() const { return next_; }
  Index steps() const { return steps_; }
  // The held rows and their labels (slots [0, size())).
  auto embeddings() const { return embeddings_.topRows(size()); }
  auto labels() const { return labels_.head(size()); }

  // The loss's reused buffers: how much they hold, and freeing them (the next step allocates again).
  std::size_t workspace_bytes() const { return workspace_.bytes(); }
  void release_workspace() { workspace_.release(); }

  // Empties the memory and restarts the warm-up count.
  void reset() {
    next_ = 0;
    filled_ = false;
    steps_ = 0;
  }

  template <class Loss, class DX>
  LossResult<Scalar> operator()(const Loss& loss, const Eigen::MatrixBase<DX>& X, const Labels& labels) {
    return step(loss, X, labels, nullptr);
  }

  template <class Loss, class DX>
  LossResult<Scalar> operator()(const Loss& loss, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                                const Labels& enqueue_mask) {
    return step(loss, X, labels, &enqueue_mask);
  }

 private:
  template <class Loss, class DX>
  LossResult<Scalar> step(const Loss& loss, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                          const Labels* enqueue_mask) {
    static_assert(std::is_same<typename DX::Scalar, Scalar>::value,
                  "contrastive::CrossBatchMemory: X must have the memory's Scalar type");
    constexpr const char* fn = "CrossBatchMemory";
    const ConstRowRef<Scalar> x(X.derived());
    const Index n = x.rows();
    if (x.cols() != embedding_size()) {
      detail::fail(fn, "argument 'X' has " + std::to_string(x.cols()) + " columns, the memory holds rows of " +
                           std::to_string(embedding_size()));
    }
    detail::require_embeddings<Scalar>(fn, "X", x);
    const LabelVector y = detail::to_labels(fn, "labels", labels, n);
    std::vector<bool> enqueue(static_cast<std::size_t>(n), true);
    Index enqueued = n;
    if (enqueue_mask) {
      const LabelVector mask = detail::to_labels(fn, "enqueue_mask", *enqueue_mask, n);
      enqueued = 0;
      for (Index i = 0; i < n; ++i) {
        if (mask(i) != 0 && mask(i) != 1) {
          detail::fail(fn, "argument 'enqueue_mask' must hold 0 or 1, got " + std::to_string(mask(i)) + " at row " +
                               std::to_string(i));
        }
        enqueue[static_cast<std::size_t>(i)] = mask(i) != 0;
        enqueued += mask(i);
      }
    }
    if (enqueued > memory_size()) {
      detail::fail(fn, "argument 'X' has " + std::to_string(enqueued) + " rows to enqueue, more than the " +
                           std::to_string(memory_size()) + " the memory holds");
    }
    LossResult<Scalar> result;
    if (steps_ < options_.warmup_steps) {
      // Warm-up: the batch alone; its rows play both roles, so both gradients count.
      result = n > 0 ? loss(x, y, reference_set(x, y, 0)) : loss(x, y, reference_set(x, y));
      result.grad[0] += result.grad[1];
      result.grad.resize(1);
      ++steps_;
      return result;
    }
    ++steps_;
    // 1. Enqueue.
    const Index first = next_;
    for (Index i = 0; i < n; ++i) {
      if (!enqueue[static_cast<std::size_t>(i)]) continue;
      embeddings_.row(next_) = x.row(i);
      labels_(next_) = y(i);
      next_ = (next_ + 1) % memory_size();
      if (next_ == 0) filled_ = true;
    }
    const auto held = embeddings_.topRows(size());
    const LabelVector held_labels = labels_.head(size());
    // 2-4. The queries against the memory.
    if (!enqueue_mask) {
      // The batch sits in slots first, first + 1, ... (mod M): those are its self pairs.
      result = n > 0 ? loss(x, y, memory_set(held, held_labels, first))
                     : loss(x, y, memory_set(held, held_labels, -1));
      result.grad.resize(1);
      return result;
    }
    std::vector<Index> rows;
    for (Index i = 0; i < n; ++i) {
      if (!enqueue[static_cast<std::size_t>(i)]) rows.push_back(i);
    }
    const Index q = static_cast<Index>(rows.size());
    RowMatrix<Scalar> queries(q, x.cols());
    LabelVector query_labels(q);
    for (Index k = 0; k < q; ++k) {
      queries.row(k) = x.row(rows[static_cast<std::size_t>(k)]);
      query_labels(k) = y(rows[static_cast<std::size_t>(k)]);
    }
    const LossResult<Scalar> r =
        loss(queries, query_labels, memory_set(held, held_labels, -1));
    result.value = r.value;
    result.terms = r.terms;
    result.grad.assign(1, RowMatrix<Scalar>::Zero(n, x.cols()));
    for (Index k = 0; k < q; ++k) result.grad[0].row(rows[static_cast<std::size_t>(k)]) = r.grad[0].row(k);
    return result;
  }

  // The held rows as the loss sees them: no gradient, this memory's buffers,
  // and no second embedding check (every row was checked as it entered).
  template <class Rows>
  ReferenceSet<Rows> memory_set(const Rows& held, const LabelVector& held_labels, Index self_offset) {
    const ReferenceSet<Rows> set =
        self_offset >= 0 ? reference_set(held, held_labels, self_offset) : reference_set(held, held_labels);
    return set.detached().reusing(workspace_).checked_rows();
  }

  CrossBatchMemoryOptions options_;
  RowMatrix<Scalar> embeddings_;
  Workspace workspace_;  // the loss's large buffers, reused step after step
  LabelVector labels_;
  Index next_ = 0;
  bool filled_ = false;
  Index steps_ = 0;
};

}  // namespace contrastive
