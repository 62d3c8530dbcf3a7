// A reference set: the rows a batch loss draws its positives and negatives
// from when they are not the batch itself (a gallery, a memory, a global
// batch). Anchors are the queries X; every pair is (query, reference row).
//
//   loss(X, labels, reference_set(R, ref_labels), [metric], [options], [value_only | grad_out...])
//
// The full result's gradients are dL/dX, then dL/dR (then the metric's
// parameters). With caller-owned outputs, one output asks for dL/dX alone and
// the dL/dR product is not computed.
//
// self_offset: query i is reference row (i + self_offset) mod M (R = X: 0; a
// slice of a batch inside the whole batch: the slice's first row; a batch
// written into a ring buffer: its first slot), and that pair is skipped, as
// the batch loss skips an anchor's own row. Without it every (query,
// reference) pair counts, also between identical rows.
//
// detached(): R carries no gradient (a memory of past embeddings); dL/dR is
// neither computed nor returned (grad[1] is empty).
// reusing(workspace): the call's large buffers come from a Workspace the
// caller keeps between calls (engine/workspace.hpp), for a set used every step.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/workspace.hpp"

#include <type_traits>

namespace contrastive {

template <class Scalar>
class CrossBatchMemory;

template <class DR>
class ReferenceSet {
 public:
  ReferenceSet(const Eigen::MatrixBase<DR>& R, const Labels& labels, Index self_offset)
      : R_(&R.derived()), labels_(labels), self_offset_(self_offset) {}

  const DR& rows() const { return *R_; }
  const Labels& labels() const { return labels_; }
  Index self_offset() const { return self_offset_; }
  bool has_self_pairs() const { return self_offset_ >= 0; }
  bool has_gradient() const { return gradient_; }
  ReferenceSet detached() const {
    ReferenceSet copy = *this;
    copy.gradient_ = false;
    return copy;
  }
  // The call reuses `workspace`'s buffers (engine/workspace.hpp), which must outlive it.
  ReferenceSet reusing(Workspace& workspace) const {
    ReferenceSet copy = *this;
    copy.workspace_ = &workspace;
    return copy;
  }
  Workspace* workspace() const { return workspace_; }
  // R's rows passed the embedding checks before (a memory checks rows as they enter it).
  bool rows_checked() const { return rows_checked_; }

 private:
  template <class>
  friend class CrossBatchMemory;
  ReferenceSet checked_rows() const {
    ReferenceSet copy = *this;
    copy.rows_checked_ = true;
    return copy;
  }

  const DR* R_;  // the caller's expression, alive for the call it is built in
  Labels labels_;
  Index self_offset_;
  bool gradient_ = true;
  Workspace* workspace_ = nullptr;
  bool rows_checked_ = false;
};

// The rows alone, for losses on mined index tuples whose positives and
// negatives index R (the reference-set miners' Triplets and Pairs).
template <class DR>
ReferenceSet<DR> reference_set(const Eigen::MatrixBase<DR>& R) {
  return ReferenceSet<DR>(R, LabelVector(0), -1);
}

// Without self pairs.
template <class DR>
ReferenceSet<DR> reference_set(const Eigen::MatrixBase<DR>& R, const Labels& ref_labels) {
  return ReferenceSet<DR>(R, ref_labels, -1);
}

// Query i is reference row i + self_offset (>= 0): that pair is excluded.
template <class DR>
ReferenceSet<DR> reference_set(const Eigen::MatrixBase<DR>& R, const Labels& ref_labels, Index self_offset) {
  return ReferenceSet<DR>(R, ref_labels, self_offset < 0 ? Index(-2) : self_offset);
}

namespace detail {

template <class Scalar>
class TileShare;  // engine/tile_share.hpp

// What a batch loss pairs up: the batch with itself (BatchSource), or the
// queries X with a reference set (PairSource). A loss's eval is written once,
// generic over the two; they are separate types so that a batch call does
// not instantiate the reference path.
template <class Scalar>
struct BatchSource {
  const ConstRowRef<Scalar>& X;
  const LabelVector& labels;
  // Several processes computing this batch's loss together, each its share
  // of the symmetric tiles (engine/tile_share.hpp); null: all of them.
  const TileShare<Scalar>* share = nullptr;
  static constexpr const ConstRowRef<Scalar>* R = nullptr;

  static constexpr bool is_reference() { return false; }
  const ConstRowRef<Scalar>& candidates() const { return X; }
  // The same object as `labels`: the tile losses take that as "symmetric tiles".
  const LabelVector& candidate_labels() const { return labels; }
};

template <class Scalar>
struct PairSource {
  const ConstRowRef<Scalar>& X;
  const LabelVector& labels;
  const ConstRowRef<Scalar>* R = nullptr;
  const LabelVector* ref_labels = nullptr;
  Index self_offset = -1;               // -1: none
  bool reference_gradient = true;       // dL/dR wanted (with a gradient at all)
  Workspace* workspace = nullptr;       // the caller's buffers to reuse, or none
  bool rows_checked = false;            // R passed require_embeddings before this call

  bool is_reference() const { return R != nullptr; }
  // The candidates' rows and labels: R's, or the batch's own.
  const ConstRowRef<Scalar>& candidates() const { return R ? *R : X; }
  const LabelVector& candidate_labels() const { return R ? *ref_labels : labels; }
};

// The embedding checks of a PairSource's rows (finite, bounded, what the metric
// needs); shapes and label counts were checked by the call form.
template <class Scalar, class Metric, class Source>
void require_pair_source(const char* function, const Metric& metric, const Source& s) {
  require_embeddings<Scalar>(function, "X", s.X);
  metric.check_rows(function, s.X);
  if constexpr (!std::is_same<Source, BatchSource<Scalar>>::value) {
    if (!s.rows_checked) require_embeddings<Scalar>(function, "R", *s.R);
    metric.check_rows(function, *s.R);
  }
}

}  // namespace detail
}  // namespace contrastive
