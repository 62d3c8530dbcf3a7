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
// Path (global_loss.hpp): "shared tiles" (each rank 1/P of the tiles) for the
// losses whose symmetric tiles combine their row state, "own pairs" for
// batch_contrastive, "whole loss" (every rank the whole loss) for the others;
// detail::path_of<Loss>(options) tells which a call takes.
// terms: those of the global batch, on every rank.
#pragma once

#include "contrastive/distributed/global_loss.hpp"
#include "contrastive/losses/angular_loss.hpp"
#include "contrastive/losses/batch_all_triplet_loss.hpp"
#include "contrastive/losses/batch_hard_triplet_loss.hpp"
#include "contrastive/losses/batch_semihard_triplet_loss.hpp"
#include "contrastive/losses/circle_loss.hpp"
#include "contrastive/losses/contrastive_loss.hpp"
#include "contrastive/losses/lifted_structure_loss.hpp"
#include "contrastive/losses/margin_loss.hpp"
#include "contrastive/losses/multi_similarity_loss.hpp"
#include "contrastive/losses/nca_loss.hpp"
#include "contrastive/losses/npairs_loss.hpp"
#include "contrastive/losses/ntxent_loss.hpp"
#include "contrastive/losses/supcon_loss.hpp"
#include "contrastive/losses/tuplet_margin_loss.hpp"
#include "contrastive/losses/vicreg_loss.hpp"

namespace contrastive {
namespace distributed {
namespace detail {

// Own pairs (each unordered pair once). Sample weights (a pair takes both
// rows' weights) and separate averaging (two tallies) take the whole-loss path.
template <>
struct OwnPairs<contrastive::detail::BatchContrastiveLoss> {
  static bool applies(const ContrastiveOptions& o) { return !o.average_separately && !o.reduction.weighted(); }
};

// Symmetric tiles that combine their row state: the shared-tiles path.
template <>
struct SharedTiles<contrastive::detail::BatchHardTripletLoss> : std::true_type {};
template <>
struct SharedTiles<contrastive::detail::MultiSimilarityLoss> : std::true_type {};
template <>
struct SharedTiles<contrastive::detail::CircleLoss> : std::true_type {};
template <>
struct SharedTiles<contrastive::detail::SupConLoss> : std::true_type {};
template <>
struct SharedTiles<contrastive::detail::NCALoss> : std::true_type {};
template <>
struct SharedTiles<contrastive::detail::GeneralizedLiftedStructureLoss> : std::true_type {};
template <>
struct SharedTiles<contrastive::detail::NTXentLabelsLoss> : std::true_type {};

}  // namespace detail

// Shared tiles.
template <class Metric = Cosine, class DX, class... Tail>
auto ntxent_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, double temperature,
                 const Tail&... tail) {
  return detail::global_loss_with<contrastive::detail::NTXentLabelsLoss, Metric>(comm, X, labels, temperature, tail...);
}
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_hard_triplet_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                             const Tail&... tail) {
  return detail::global_loss<contrastive::detail::BatchHardTripletLoss, Metric>(comm, X, labels, tail...);
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

// Own pairs.
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_contrastive_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels,
                            const Tail&... tail) {
  return detail::global_loss<contrastive::detail::BatchContrastiveLoss, Metric>(comm, X, labels, tail...);
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
// Whole loss on every rank; the full result's beta_grad (the learned beta's
// gradient) is the global one, as are the caller-owned beta outputs.
template <class Metric = Euclidean, class DX, class... Tail>
auto margin_loss(const Communicator& comm, const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Loss = contrastive::detail::MarginLoss;
  return detail::global_call<Loss, Metric, MarginLossResult<Scalar>>(
      comm, X, labels, detail::Evaluate<Loss>{},
      contrastive::detail::CallSpec{Loss::name, {}, {{contrastive::detail::margin_beta_count_of(tail...), 1}}, {"beta_grad"}},
      tail...);
}

namespace detail {

// The two-view losses (row i of view1 and of view2: one sample): each rank
// passes its rows of both views; the loss of the two gathered views, the
// whole loss on every rank; grad = {d view1_local, d view2_local, metric...}.
template <class Loss, class Options, class DefaultMetric, class D1, class D2, class Run, class... Tail>
auto global_views_call(const Communicator& comm, const Eigen::MatrixBase<D1>& V1, const Eigen::MatrixBase<D2>& V2,
                       const Run& run, const Tail&... tail) {
  using Scalar = typename D1::Scalar;
  contrastive::detail::check_same_scalar<D1, D2>();
  const char* fn = Loss::name;
  const ConstRowRef<Scalar> a(V1.derived()), b(V2.derived());
  std::string local_error;
  try {
    if (a.rows() != b.rows() || (a.rows() > 0 && a.cols() != b.cols())) {
      contrastive::detail::fail(fn, "the two views are " + contrastive::detail::shape_of(a.rows(), a.cols()) + " and " +
                                        contrastive::detail::shape_of(b.rows(), b.cols()) +
                                        "; each rank passes the same rows of both");
    }
    contrastive::detail::require_embeddings<Scalar>(fn, "view1", a);
    contrastive::detail::require_embeddings<Scalar>(fn, "view2", b);
  } catch (const std::invalid_argument& e) {
    local_error = message_of(e);
  }
  bool agreed = false;
  const auto eval = [&](const auto& metric, const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) -> Scalar {
    agreed = true;
    const LabelVector none = LabelVector::Zero(a.rows());
    const GlobalBatch<Scalar> g1 = gather_batch<Scalar>(comm, fn, a, none, local_error);
    const GlobalBatch<Scalar> g2 = gather_batch<Scalar>(comm, fn, b, none, "");
    const ConstRowRef<Scalar> r1(g1.rows), r2(g2.rows);
    Gradients<Scalar> g;
    Scalar value = Scalar(0);
    std::string error;
    try {
      value = run(metric, r1, r2, o, grads ? &g : nullptr, terms);
    } catch (const std::invalid_argument& e) {
      error = message_of(e);
    }
    agree(comm, fn, error);
    if (grads) {
      grads->clear();
      grads->push_back(g[0].middleRows(g1.offset, g1.local_rows));
      grads->push_back(g[1].middleRows(g2.offset, g2.local_rows));
      for (std::size_t k = 2; k < g.size(); ++k) grads->push_back(std::move(g[k]));
    }
    return value;
  };
  return guarded(comm, fn, a, agreed, [&] {
    return contrastive::detail::call_forms<DefaultMetric, Scalar, Options>(
        contrastive::detail::CallSpec{fn, {{a.rows(), a.cols()}, {b.rows(), b.cols()}}}, eval, tail...);
  });
}

}  // namespace detail

// ntxent_loss(comm, view1_local, view2_local, temperature, ...): SimCLR over the
// global batch (every other row of both gathered views a negative).
template <class Metric = Cosine, class D1, class D2, class... Tail, contrastive::detail::enable_if_floating<D2> = 0>
auto ntxent_loss(const Communicator& comm, const Eigen::MatrixBase<D1>& view1, const Eigen::MatrixBase<D2>& view2,
                 double temperature, const Tail&... tail) {
  using Scalar = typename D1::Scalar;
  using Loss = contrastive::detail::NTXentViewsLoss;
  const auto run = [temperature](const auto& metric, const ConstRowRef<Scalar>& a, const ConstRowRef<Scalar>& b,
                                 const NTXentOptions& o, detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return Loss::template eval<Scalar>(metric, a, b, temperature, o, g, t);
  };
  return detail::global_views_call<Loss, NTXentOptions, Metric>(comm, view1, view2, run, tail...);
}

// vicreg_loss(comm, Z_local, Z2_local, ...): the variance and covariance terms over the global batch.
template <class Metric = SquaredEuclidean, class D1, class D2, class... Tail>
auto vicreg_loss(const Communicator& comm, const Eigen::MatrixBase<D1>& Z, const Eigen::MatrixBase<D2>& Z2,
                 const Tail&... tail) {
  using Scalar = typename D1::Scalar;
  using Loss = contrastive::detail::VICRegLoss;
  const auto run = [](const auto& metric, const ConstRowRef<Scalar>& a, const ConstRowRef<Scalar>& b,
                      const VICRegOptions& o, detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return Loss::template eval<Scalar>(metric, a, b, o, g, t);
  };
  return detail::global_views_call<Loss, VICRegOptions, Metric>(comm, Z, Z2, run, tail...);
}

}  // namespace distributed
}  // namespace contrastive
