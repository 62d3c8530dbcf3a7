// Triplet margin loss on explicit triplets: row i of A (anchor), P (positive)
// and N (negative), or index triplets (a, p, n) into one embedding matrix X.
//
//   term_i = [d(a_i, p_i) - d(a_i, n_i) + margin]+        (options.soft: softplus(d_ap - d_an + margin))
//   swap:    d(a_i, n_i) := min(d(a_i, n_i), d(p_i, n_i)) (ties keep d(a_i, n_i))
//   loss   = reduce(term), Reduction::Mean (over all triplets), Sum or MeanNonZero
//
// Gradients: {dA, dP, dN} for explicit triplets; {dX} (scatter-added over all
// triplets a row takes part in) for index triplets. Terms: one per triplet.
// No triplet (0 rows, or empty Triplets): loss 0, zero gradient.
// Sample weights (options.reduction = Mean(w), see core/reducer.hpp): one per
// triplet for explicit triplets; one per row of X for index triplets, each
// triplet taking its anchor's.
//
// Reproducing other libraries:
// - PyTorch torch.nn.TripletMarginLoss(margin, p=2, swap, reduction='mean'|'sum'):
//   Metric = Euclidean, same margin / swap, Reduction::Mean or Sum. PyTorch
//   measures ||a - p + eps|| with eps = 1e-6; our distances are exact, so values
//   differ by O(eps) (the reference data is generated with eps = 0).
//   torch.nn.TripletMarginWithDistanceLoss(distance_function=d) is Metric = d
//   (SquaredEuclidean, Cosine = 1 - cosine_similarity).
// - pytorch-metric-learning TripletMarginLoss on mined index triplets (a miner's
//   output): the index overload with margin = 0.05 and Reduction::MeanNonZero;
//   PML's default LpDistance normalises the embeddings first, so pass unit rows.
// - TensorFlow Addons has no explicit-triplet loss; see the batch losses.
//
// Cost: O(T D) for T triplets, explicit or by index: only the triplets' own
// pairs are measured.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

namespace contrastive {
namespace detail {

// The terms of `count` triplets from the distances of their pairs, laid out
// as d = [d_ap (count), d_an (count), d_pn (count, with swap)]; dd likewise.
// Triplet t belongs to sample anchor(t) of the reduction's weights.
template <class Scalar, class Anchor>
Scalar triplet_terms_on_pairs(const Vector<Scalar>& d, Index count, const TripletOptions& options,
                              Tally<Scalar>& tally, Anchor&& anchor, Vector<Scalar>* dd, Vector<Scalar>* terms) {
  const Scalar margin = static_cast<Scalar>(options.margin);
  if (terms) terms->resize(count);
  for (Index t = 0; t < count; ++t) {
    const Scalar d_ap = d(t), d_an = d(count + t);
    const bool swapped = options.swap && d(2 * count + t) < d_an;
    const TripletTerm<Scalar> term =
        triplet_term<Scalar>(d_ap, swapped ? d(2 * count + t) : d_an, margin, options.soft);
    const Index a = anchor(t);
    const Scalar weighted = tally.add(a, term.value);
    if (terms) (*terms)(t) = weighted;
    if (dd) {
      const Scalar slope = term.slope * tally.weight(a);
      (*dd)(t) = slope;
      (*dd)((swapped ? 2 : 1) * count + t) = -slope;
    }
  }
  const Reduced<Scalar> reduced = tally.finish();
  if (dd) *dd *= reduced.weight;
  return reduced.value;
}

// Explicit triplets: row i of A, P and N.
struct TripletMarginLoss {
  static constexpr const char* name = "triplet_margin_loss";
  using Options = TripletOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& P,
                     const ConstRowRef<Scalar>& N, const Options& options, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    const char* fn = name;
    require_embeddings<Scalar>(fn, "anchor", A);
    require_embeddings<Scalar>(fn, "positive", P);
    require_embeddings<Scalar>(fn, "negative", N);
    require_same_shape(fn, "anchor", A, "positive", P);
    require_same_shape(fn, "anchor", A, "negative", N);
    require_triplet_options(fn, options, true, true);
    metric.check_rows(fn, A);
    Tally<Scalar> tally(fn, "options.reduction", options.reduction, A.rows(), "the triplets (rows of anchor)");

    // The three row sets stacked: pairs (a, p), (a, n) and, with swap, (p, n) are index pairs into it.
    const Index count = A.rows();
    RowMatrix<Scalar> X(3 * count, A.cols());
    X.topRows(count) = A;
    X.middleRows(count, count) = P;
    X.bottomRows(count) = N;
    IndexPairs pairs;
    for (Index i = 0; i < count; ++i) pairs.add(i, count + i);
    for (Index i = 0; i < count; ++i) pairs.add(i, 2 * count + i);
    if (options.swap) {
      for (Index i = 0; i < count; ++i) pairs.add(count + i, 2 * count + i);
    }
    auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
      return triplet_terms_on_pairs<Scalar>(d, count, options, tally, [](Index t) { return t; }, dd, terms);
    };
    Gradients<Scalar> stacked;
    const Scalar value =
        index_pairs_pipeline<Scalar>(metric, ConstRowRef<Scalar>(X), pairs, loss, grads ? &stacked : nullptr);
    if (grads) {
      grads->clear();
      grads->push_back(stacked[0].topRows(count));
      grads->push_back(stacked[0].middleRows(count, count));
      grads->push_back(stacked[0].bottomRows(count));
      for (std::size_t k = 1; k < stacked.size(); ++k) grads->push_back(std::move(stacked[k]));
    }
    return value;
  }
};

inline void require_triplet_indices(const char* function, const Triplets& triplets, Index rows) {
  const std::size_t count = triplets.anchor.size();
  if (triplets.positive.size() != count || triplets.negative.size() != count) {
    fail(function, "argument 'triplets' has " + std::to_string(count) + " anchors, " +
                       std::to_string(triplets.positive.size()) + " positives and " +
                       std::to_string(triplets.negative.size()) +
                       " negatives; the three index vectors must have the same length");
  }
  const char* roles[] = {"anchor", "positive", "negative"};
  const std::vector<Index>* sides[] = {&triplets.anchor, &triplets.positive, &triplets.negative};
  for (std::size_t t = 0; t < count; ++t) {
    for (int s = 0; s < 3; ++s) {
      const Index index = (*sides[s])[t];
      if (index < 0 || index >= rows) {
        fail(function, "argument 'triplets': triplet " + std::to_string(t) + " has " + roles[s] +
                           " index " + std::to_string(index) + " but X has " + std::to_string(rows) +
                           " rows");
      }
    }
  }
}

// Mined index triplets of one X: only the listed pairs' distances are computed.
struct TripletMarginIndexLoss {
  static constexpr const char* name = "triplet_margin_loss";
  using Options = TripletOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const Triplets& triplets,
                     const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    require_triplet_options(name, options, true, true);
    require_triplet_indices(name, triplets, X.rows());
    metric.check_rows(name, X);
    Tally<Scalar> tally(name, "options.reduction", options.reduction, X.rows(), "the rows of X");
    const Index count = triplets.size();
    IndexPairs pairs;
    for (std::size_t t = 0; t < triplets.anchor.size(); ++t) pairs.add(triplets.anchor[t], triplets.positive[t]);
    for (std::size_t t = 0; t < triplets.anchor.size(); ++t) pairs.add(triplets.anchor[t], triplets.negative[t]);
    if (options.swap) {
      for (std::size_t t = 0; t < triplets.anchor.size(); ++t) pairs.add(triplets.positive[t], triplets.negative[t]);
    }
    auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
      const auto anchor = [&](Index t) { return triplets.anchor[static_cast<std::size_t>(t)]; };
      return triplet_terms_on_pairs<Scalar>(d, count, options, tally, anchor, dd, terms);
    };
    return index_pairs_pipeline<Scalar>(metric, X, pairs, loss, grads);
  }
};

}  // namespace detail

// triplet_margin_loss(anchor, positive, negative, [metric], [options], [value_only | grad_a, grad_p, grad_n, ...]):
// row i of each; grad = {d anchor, d positive, d negative}.
template <class Metric = Euclidean, class DA, class DP, class DN, class... Tail>
auto triplet_margin_loss(const Eigen::MatrixBase<DA>& anchor, const Eigen::MatrixBase<DP>& positive,
                         const Eigen::MatrixBase<DN>& negative, const Tail&... tail) {
  using Scalar = typename DA::Scalar;
  using Loss = detail::TripletMarginLoss;
  detail::check_same_scalar<DA, DP>();
  detail::check_same_scalar<DA, DN>();
  const ConstRowRef<Scalar> a(anchor.derived()), p(positive.derived()), n(negative.derived());
  const auto eval = [&](const auto& metric, const TripletOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, a, p, n, o, g, t); };
  return detail::call_forms<Metric, Scalar, TripletOptions>(
      detail::CallSpec{Loss::name, {{a.rows(), a.cols()}, {p.rows(), p.cols()}, {n.rows(), n.cols()}}}, eval,
      tail...);
}

// triplet_margin_loss(X, triplets, [metric], [options], [value_only | grad_out...]): mined
// index triplets (contrastive::Triplets); grad = {dX}.
template <class Metric = Euclidean, class DX, class... Tail>
auto triplet_margin_loss(const Eigen::MatrixBase<DX>& X, const Triplets& triplets, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Loss = detail::TripletMarginIndexLoss;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const auto eval = [&](const auto& metric, const TripletOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, x, triplets, o, g, t); };
  return detail::call_forms<Metric, Scalar, TripletOptions>(detail::CallSpec{Loss::name, {{x.rows(), x.cols()}}},
                                                            eval, tail...);
}

// triplet_margin_loss(X, triplets, reference_set(R), ...): anchors index X, positives and
// negatives index R (mine_triplets against a reference set); grad = {dX, dR}.
template <class Metric = Euclidean, class DX, class DR, class... Tail>
auto triplet_margin_loss(const Eigen::MatrixBase<DX>& X, const Triplets& triplets, const ReferenceSet<DR>& reference,
                         const Tail&... tail) {
  return detail::mined_reference_loss<detail::TripletMarginIndexLoss, Metric>(X, triplets, reference, tail...);
}

}  // namespace contrastive
