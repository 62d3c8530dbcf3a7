// The batch losses over a communicator: each rank passes its own rows and
// labels, every rank gets the loss of the global batch (the ranks' rows in
// rank order) and dL/d(its own rows). The arguments after the labels are
// the loss's own ([temperature,] [metric], [options], [value_only | grad_out...]);
// sample weights, when given, are one per local row. docs/distributed.md.
//
//   distributed::Communicator comm(MPI_COMM_WORLD);
//   LossResult<float> r = distributed::supcon_loss(comm, X_local, labels_local, 0.1);
//   // r.value: the global loss on every rank; r.grad[0]: dL/dX_local (N_local x D)
//
// Path (global_loss.hpp): "own anchors" (each rank 1/P of the work) for the
// losses with a reference-set form, "whole loss" (every rank the whole loss)
// for the others; distributed::path<loss>(options) tells which a call takes.
// terms: the own-anchors path gives this rank's anchors' terms, the
// whole-loss path the global batch's.
#pragma once

#include "contrastive/distributed/global_loss.hpp"
#include "contrastive/losses/angular_loss.hpp"
#include "contrastive/losses/batch_all_triplet_loss.hpp"
#include "contrastive/losses/batch_hard_triplet_loss.hpp"
#include "contrastive/losses/batch_semihard_triplet_loss.hpp"
#include "contrastive/losses/circle_loss.hpp"
#include "contrastive/losses/contrastive_loss.hpp"
#include "contrastive/losses/lifted_structure_loss.hpp"
#include "contrastive/losses/multi_similarity_loss.hpp"
#include "contrastive/losses/nca_loss.hpp"
#include "contrastive/losses/npairs_loss.hpp"
#include "contrastive/losses/ntxent_loss.hpp"
#include "contrastive/losses/supcon_loss.hpp"
#include "contrastive/losses/tuplet_margin_loss.hpp"

namespace contrastive {
namespace distributed {
namespace detail {

// The reference form counts each unordered pair twice (as (i, j) and (j, i)):
// Mean and MeanNonZero match the batch form, Sum is halved. Sample weights
// (a pair takes both rows' weights) and separate averaging (two tallies) take
// the whole-loss path.
template <>
struct GlobalLossTraits<contrastive::detail::BatchContrastiveLoss> {
  static bool own_anchors(const ContrastiveOptions& o) { return !o.average_separately && !o.reduction.weighted(); }
  static constexpr int sum_divisor = 2;
};

// Its InfoNCE evaluation takes a pair source, but the loss refuses a reference set.
template <>
struct GlobalLossTraits<contrastive::detail::NTXentLabelsLoss> {
  template <class Options>
  static bool own_anchors(const Options&) {
    return false;
  }
  static constexpr int sum_divisor = 1;
};

}  // namespace detail

// Own anchors.
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_hard_triplet_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                             const Tail&... tail) {
  return detail::global_loss<contrastive::detail::BatchHardTripletLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_contrastive_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                            const Tail&... tail) {
  return detail::global_loss<contrastive::detail::BatchContrastiveLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Cosine, class DX, class... Tail>
auto multi_similarity_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                           const Tail&... tail) {
  return detail::global_loss<contrastive::detail::MultiSimilarityLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Cosine, class DX, class... Tail>
auto circle_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::global_loss<contrastive::detail::CircleLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Cosine, class DX, class... Tail>
auto supcon_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, double temperature,
                 const Tail&... tail) {
  return detail::global_loss_with<contrastive::detail::SupConLoss, Metric>(comm, X, labels, temperature, tail...);
}
template <class Metric = SquaredEuclidean, class DX, class... Tail>
auto nca_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::global_loss<contrastive::detail::NCALoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Euclidean, class DX, class... Tail>
auto generalized_lifted_structure_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                                       const Tail&... tail) {
  return detail::global_loss<contrastive::detail::GeneralizedLiftedStructureLoss, Metric>(comm, X, labels, tail...);
}

// Whole loss on every rank.
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_all_triplet_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                            const Tail&... tail) {
  return detail::global_loss<contrastive::detail::BatchAllTripletLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_semihard_triplet_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                                 const Tail&... tail) {
  return detail::global_loss<contrastive::detail::BatchSemihardTripletLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Euclidean, class DX, class... Tail>
auto lifted_structure_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                           const Tail&... tail) {
  return detail::global_loss<contrastive::detail::LiftedStructureLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Cosine, class DX, class... Tail>
auto npairs_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::global_loss<contrastive::detail::NPairsLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Cosine, class DX, class... Tail>
auto tuplet_margin_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                        const Tail&... tail) {
  return detail::global_loss<contrastive::detail::TupletMarginLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Euclidean, class DX, class... Tail>
auto angular_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::global_loss<contrastive::detail::AngularLoss, Metric>(comm, X, labels, tail...);
}
template <class Metric = Cosine, class DX, class... Tail>
auto ntxent_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, double temperature,
                 const Tail&... tail) {
  return detail::global_loss_with<contrastive::detail::NTXentLabelsLoss, Metric>(comm, X, labels, temperature, tail...);
}

}  // namespace distributed
}  // namespace contrastive
