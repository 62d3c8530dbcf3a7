// The miners and counters over a communicator: the result of the global
// batch (the ranks' rows in rank order) with global row indices, the same on
// every rank. Each rank gathers the batch and mines all of it (whole batch
// on every rank: exact, including the seeded per-anchor caps, whose draws
// depend on the anchors' order). The arguments after the labels are the
// miner's own.
//
//   Triplets t = distributed::mine_triplets(comm, X_local, labels_local, 0.2, NegativeKind::SemiHard);
//   NegativeStats<float> s = distributed::negative_stats(comm, X_local, labels_local, 0.2);
//
// on_global_batch(comm, name, X, labels, f) runs any f(R, ref_labels) this way.
#pragma once

#include "contrastive/distributed/agreement.hpp"
#include "contrastive/distributed/communicator.hpp"
#include "contrastive/distributed/global_batch.hpp"
#include "contrastive/mining/mine_triplets.hpp"
#include "contrastive/mining/negative_stats.hpp"
#include "contrastive/mining/pair_miners.hpp"
#include "contrastive/mining/selection_miners.hpp"

#include <string>

namespace contrastive {
namespace distributed {

// Collective: f(global rows, global labels) on every rank, its result
// returned; an invalid_argument on any rank (its input, or f's own checks)
// becomes the same error on every rank.
template <class DX, class F>
auto on_global_batch(const Communicator& comm, const char* function, const Eigen::MatrixBase<DX>& X,
                     const Labels& labels, F&& f) {
  using Scalar = typename DX::Scalar;
  contrastive::detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  std::string error;
  LabelVector y;
  try {
    y = contrastive::detail::to_labels(function, "labels", labels, x.rows());
    contrastive::detail::require_embeddings<Scalar>(function, "X", x);
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  const GlobalBatch<Scalar> batch = detail::gather_batch<Scalar>(comm, function, x, y, error);
  using Result = decltype(f(batch.rows, batch.labels));
  Result result{};
  error.clear();
  try {
    result = f(batch.rows, batch.labels);
  } catch (const std::invalid_argument& e) {
    error = e.what();
  }
  detail::agree(comm, function, error);
  return result;
}

template <class Metric = Euclidean, class DX, class... Args>
Triplets mine_triplets(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                       const Args&... args) {
  return on_global_batch(comm, "mine_triplets", X, labels,
                         [&](const auto& R, const LabelVector& y) { return contrastive::mine_triplets<Metric>(R, y, args...); });
}
template <class Metric = Euclidean, class DX>
Triplets mine_batch_hard(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels) {
  return on_global_batch(comm, "mine_batch_hard", X, labels,
                         [&](const auto& R, const LabelVector& y) { return contrastive::mine_batch_hard<Metric>(R, y); });
}
template <class Metric = Euclidean, class DX>
Triplets mine_semihard(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels) {
  return on_global_batch(comm, "mine_semihard", X, labels,
                         [&](const auto& R, const LabelVector& y) { return contrastive::mine_semihard<Metric>(R, y); });
}
template <class Metric = Euclidean, class DX, class... Args>
Triplets mine_easy_hard(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                        const Args&... args) {
  return on_global_batch(comm, "mine_easy_hard", X, labels,
                         [&](const auto& R, const LabelVector& y) { return contrastive::mine_easy_hard<Metric>(R, y, args...); });
}
template <class Metric = Euclidean, class DX>
Pairs mine_pairs(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, double pos_margin,
                 double neg_margin) {
  return on_global_batch(comm, "mine_pairs", X, labels, [&](const auto& R, const LabelVector& y) {
    return contrastive::mine_pairs<Metric>(R, y, pos_margin, neg_margin);
  });
}
template <class Metric = Cosine, class DX>
Pairs mine_multi_similarity(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                            double epsilon = 0.1) {
  return on_global_batch(comm, "mine_multi_similarity", X, labels, [&](const auto& R, const LabelVector& y) {
    return contrastive::mine_multi_similarity<Metric>(R, y, epsilon);
  });
}
template <class Metric = Euclidean, class DX, class... Args>
NegativeStats<typename DX::Scalar> negative_stats(const Communicator& comm, const Eigen::MatrixBase<DX>& X,
                                                  const Labels& labels, double margin, const Args&... args) {
  return on_global_batch(comm, "negative_stats", X, labels, [&](const auto& R, const LabelVector& y) {
    return contrastive::negative_stats<Metric>(R, y, margin, args...);
  });
}

}  // namespace distributed
}  // namespace contrastive
