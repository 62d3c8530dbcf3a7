// Where the miners and counters get their distances: the batch against itself,
// or anchors X (with labels) against a separate reference set R (with its own
// labels): a memory bank or a gallery, as pytorch-metric-learning's ref_emb.
//
// Batch form: one symmetric N x N distance matrix while it fits
// ReferenceOptions::memory_budget_bytes, row blocks against the batch beyond
// that; a positive of anchor a is any other row with a's label (a itself is
// never its own positive).
// Reference form: the anchors are processed in blocks of rows, each block's
// distances pairwise_distance<Metric>(X_block, R) computed and consumed before
// the next, so memory stays O(block x M) instead of O(N x M). A positive of
// anchor a is any reference row with a's label, with no self-exclusion (PML's
// semantics when ref_emb is given): with R = X that includes row a itself at
// distance 0, unless ReferenceOptions::exclude_same_index is set.
#pragma once

#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

namespace contrastive {

struct ReferenceOptions {
  // Bytes for one block of anchor-to-reference distances (block rows x M scalars).
  std::size_t memory_budget_bytes = std::size_t(64) << 20;
  // Rows per block; 0 derives it from memory_budget_bytes. Tests force tiny blocks.
  Index block_rows = 0;
  // For R = X: skip reference row i for anchor i (needs as many reference rows as anchors).
  bool exclude_same_index = false;
};

namespace detail {

// A read-only run of an anchor's candidates (reference rows as seen from it)
// in a buffer owned by AnchorCandidates.
template <class Scalar>
struct CandidateSpan {
  const RankedDistance<Scalar>* first = nullptr;
  std::size_t count = 0;

  const RankedDistance<Scalar>* begin() const { return first; }
  const RankedDistance<Scalar>* end() const { return first + count; }
  std::size_t size() const { return count; }
  bool empty() const { return count == 0; }
  const RankedDistance<Scalar>& operator[](std::size_t i) const { return first[i]; }
};

// One anchor's positives and negatives, each in increasing reference-row order.
// The buffers are reused from anchor to anchor: no allocation per pair.
template <class Scalar>
struct AnchorCandidates {
  Index anchor = 0;
  CandidateSpan<Scalar> positives;
  CandidateSpan<Scalar> negatives;
  AnchorSides<Scalar> sides;  // the buffers
};

// Reference row `self` is neither a positive nor a negative (-1: none).
template <class Scalar>
void gather_candidates(Index anchor, Label label, const Scalar* distances, const LabelVector& ref_labels,
                       Index self, AnchorCandidates<Scalar>& out) {
  out.sides.split_against(label, distances, ref_labels, self);
  out.anchor = anchor;
  out.positives = {out.sides.positives(), out.sides.num_positives};
  out.negatives = {out.sides.negatives(), out.sides.num_negatives};
}

inline Index block_rows_for(const ReferenceOptions& options, Index references, std::size_t scalar_size) {
  if (options.block_rows > 0) return options.block_rows;
  const std::size_t row_bytes = std::max<std::size_t>(1, static_cast<std::size_t>(references) * scalar_size);
  return std::max<Index>(1, static_cast<Index>(options.memory_budget_bytes / row_bytes));
}

// The validated inputs of one mining call and the loop over its anchors.
// Eigen's EIGEN_GEMM_TO_COEFFBASED_THRESHOLD (rows + cols + depth) is 20.
constexpr Index min_product_rows = 20;

template <class Metric, class Scalar>
struct AnchorSource {
  const ConstRowRef<Scalar>& X;
  const LabelVector& labels;
  const ConstRowRef<Scalar>* R;        // null: the batch against itself
  const LabelVector* ref_labels;       // null with R
  ReferenceOptions reference;

  Index anchors() const { return X.rows(); }
  Index references() const { return R ? R->rows() : X.rows(); }

  // Calls visit(const AnchorCandidates<Scalar>&) for every anchor in increasing order.
  template <class Visit>
  void for_each(Visit&& visit) const {
    AnchorCandidates<Scalar> candidates;
    const std::size_t whole_bytes = static_cast<std::size_t>(X.rows()) * static_cast<std::size_t>(X.rows()) * sizeof(Scalar);
    if (!R && (whole_bytes > reference.memory_budget_bytes || reference.block_rows > 0) && X.rows() > 0) {
      // The batch beyond the budget: row blocks against the batch itself, self excluded.
      blocks(X, labels, true, visit, candidates);
      return;
    }
    if (!R) {
      const RowMatrix<Scalar> D = Metric::template pairwise<Scalar>(X, X, true).distances;
      for (Index i = 0; i < X.rows(); ++i) {
        gather_candidates<Scalar>(i, labels(i), D.row(i).data(), labels, i, candidates);
        visit(static_cast<const AnchorCandidates<Scalar>&>(candidates));
      }
      return;
    }
    if (X.rows() == 0 || R->rows() == 0) {
      // No reference rows: every anchor has empty candidate lists.
      for (Index i = 0; i < X.rows(); ++i) {
        gather_candidates<Scalar>(i, labels(i), static_cast<const Scalar*>(nullptr), *ref_labels, -1,
                                  candidates);
        visit(static_cast<const AnchorCandidates<Scalar>&>(candidates));
      }
      return;
    }
    blocks(*R, *ref_labels, reference.exclude_same_index, visit, candidates);
  }

 private:
  // The anchors in blocks of rows against `refs`, each block's distances
  // computed and consumed before the next.
  template <class Visit>
  void blocks(const ConstRowRef<Scalar>& refs, const LabelVector& ref_labels_, bool exclude_self, Visit& visit,
              AnchorCandidates<Scalar>& candidates) const {
    const Index block = block_rows_for(reference, refs.rows(), sizeof(Scalar));
    // Eigen picks its product kernel by size (a 1-row product is a GEMV, a tiny
    // one coefficient-wise), and the kernels round differently. A window of at
    // least min(N, min_product_rows) rows keeps every block on the kernel the
    // one-shot product takes, so block-wise results equal one-shot results.
    const Index window_rows = std::min(X.rows(), min_product_rows);
    for (Index start = 0; start < X.rows(); start += block) {
      const Index rows = std::min(block, X.rows() - start);
      const Index window_start = rows >= window_rows ? start : std::min(start, X.rows() - window_rows);
      const Index window = std::max(rows, window_rows);
      const ConstRowRef<Scalar> X_block(X.middleRows(window_start, window));
      const RowMatrix<Scalar> D = Metric::template pairwise<Scalar>(X_block, refs, false).distances;
      for (Index r = 0; r < rows; ++r) {
        const Index i = start + r;
        gather_candidates<Scalar>(i, labels(i), D.row(start - window_start + r).data(), ref_labels_,
                                  exclude_self ? i : -1, candidates);
        visit(static_cast<const AnchorCandidates<Scalar>&>(candidates));
      }
    }
  }
};

// Checks of the batch form: embeddings and one label per row.
template <class Scalar>
LabelVector batch_labels(const char* function, const ConstRowRef<Scalar>& X, const Labels& labels) {
  require_embeddings<Scalar>(function, "X", X);
  return to_labels(function, "labels", labels, X.rows());
}

// Checks of the reference form: both embedding sets, their labels, the options.
template <class Scalar>
void require_reference(const char* function, const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& R,
                       const ReferenceOptions& options) {
  require_embeddings<Scalar>(function, "R", R);
  require_same_cols(function, "X", X, "R", R);
  if (options.block_rows < 0) {
    fail(function, "ReferenceOptions::block_rows must be >= 0 (0 = from the memory budget), got " +
                       std::to_string(options.block_rows));
  }
  if (options.exclude_same_index && X.rows() != R.rows()) {
    fail(function, "ReferenceOptions::exclude_same_index is for R = X, but X has " +
                       std::to_string(X.rows()) + " rows and R has " + std::to_string(R.rows()));
  }
}

}  // namespace detail
}  // namespace contrastive
