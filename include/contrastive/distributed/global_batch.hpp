// The global batch: every rank's rows, labels (and sample weights) gathered
// in rank order, and the way back: each rank's block of a gradient summed
// over all ranks.
//
//   GlobalBatch<Scalar> batch = gather_batch(comm, function, X, labels, local_error[, weights]);
//   batch.rows      N_global x D, rank 0's rows first
//   batch.labels    N_global
//   batch.offset    this rank's first global row
//   batch.counts    every rank's row count
//
// Collective: one small all-gather of (rows, columns, error) first
// (agreement.hpp), then one all-gather each of the rows and the labels.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/distributed/agreement.hpp"
#include "contrastive/distributed/communicator.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace contrastive {
namespace distributed {

template <class Scalar>
struct GlobalBatch {
  RowMatrix<Scalar> rows;
  LabelVector labels;
  Vector<double> weights;  // the gathered sample weights, when asked for
  std::vector<Index> counts;
  Index offset = 0;
  Index local_rows = 0;
};

namespace detail {

// Collective. `error` is this rank's problem with its own input ("" when
// none); `weights`, when not null, one per local row, are gathered too.
template <class Scalar>
GlobalBatch<Scalar> gather_batch(const Communicator& comm, const char* function, const ConstRowRef<Scalar>& X,
                                 const LabelVector& labels, const std::string& error,
                                 const Vector<double>* weights = nullptr) {
  const std::vector<Shape> shapes = agree_on_shapes(comm, function, X.rows(), X.cols(), error);
  GlobalBatch<Scalar> batch;
  Index cols = 0, total = 0;
  for (std::size_t r = 0; r < shapes.size(); ++r) {
    if (shapes[r].rows > 0 && cols == 0) cols = shapes[r].cols;
    if (static_cast<int>(r) < comm.rank()) batch.offset += shapes[r].rows;
    batch.counts.push_back(shapes[r].rows);
    total += shapes[r].rows;
  }
  if (total == 0) {
    for (const Shape& s : shapes) cols = std::max(cols, s.cols);
  }
  batch.local_rows = X.rows();
  batch.rows.resize(total, cols);
  batch.labels.resize(total);
  std::vector<Index> elements(batch.counts.size());
  for (std::size_t r = 0; r < elements.size(); ++r) elements[r] = batch.counts[r] * cols;
  if (X.rows() > 0 && X.outerStride() != X.cols()) {
    const RowMatrix<Scalar> contiguous = X;
    comm.allgatherv(contiguous.data(), elements, batch.rows.data());
  } else {
    comm.allgatherv(X.data(), elements, batch.rows.data());
  }
  comm.allgatherv(labels.data(), batch.counts, batch.labels.data());
  if (weights) {
    batch.weights.resize(total);
    comm.allgatherv(weights->data(), batch.counts, batch.weights.data());
  }
  return batch;
}

// Collective: the sum over ranks of `all` (N_global x D on every rank), of
// which this rank gets its own rows, added into `mine` (N_local x D).
template <class Scalar>
void add_scattered(const Communicator& comm, const GlobalBatch<Scalar>& batch, const RowMatrix<Scalar>& all,
                   RowMatrix<Scalar>& mine) {
  const Index cols = batch.rows.cols();
  std::vector<Index> elements(batch.counts.size());
  for (std::size_t r = 0; r < elements.size(); ++r) elements[r] = batch.counts[r] * cols;
  RowMatrix<Scalar> block(mine.rows(), cols);
  comm.reduce_scatter(all.data(), elements, block.data());
  mine += block;
}

}  // namespace detail
}  // namespace distributed
}  // namespace contrastive
