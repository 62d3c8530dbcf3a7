// Triplet margin loss on explicit triplets: row i of A (anchor), P (positive)
// and N (negative), or index triplets (a, p, n) into one embedding matrix X.
//
//   term_i = [d(a_i, p_i) - d(a_i, n_i) + margin]+        (options.soft: softplus(d_ap - d_an))
//   swap:    d(a_i, n_i) := min(d(a_i, n_i), d(p_i, n_i)) (ties keep d(a_i, n_i))
//   loss   = reduce(term), Reduction::Mean (over all triplets), Sum or MeanNonZero
//
// Gradients: {dA, dP, dN} for explicit triplets; {dX} (scatter-added over all
// triplets a row takes part in) for index triplets. Terms: one per triplet.
// No triplet (0 rows, or empty Triplets): loss 0, zero gradient.
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
// Cost: explicit triplets O(T D). Index triplets go through the pairwise
// distance matrix of X (one Gram product forward, one product backward):
// O(N^2 D + T), memory O(N^2), whatever the number T of triplets.
#pragma once

#include "contrastive/core/evaluate.hpp"
#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/distance.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

namespace contrastive {
namespace detail {

template <class Metric, class Scalar>
Scalar triplet_margin_eval(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& P,
                           const ConstRowRef<Scalar>& N, const TripletOptions& options,
                           Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const char* fn = "triplet_margin_loss";
  require_embeddings<Scalar>(fn, "anchor", A);
  require_embeddings<Scalar>(fn, "positive", P);
  require_embeddings<Scalar>(fn, "negative", N);
  require_same_shape(fn, "anchor", A, "positive", P);
  require_same_shape(fn, "anchor", A, "negative", N);
  require_triplet_options(fn, options, true, true);

  const Index count = A.rows();
  const Scalar margin = static_cast<Scalar>(options.margin);
  const Vector<Scalar> d_ap = Metric::template rowwise<Scalar>(A, P);
  const Vector<Scalar> d_an = Metric::template rowwise<Scalar>(A, N);
  const Vector<Scalar> d_pn = options.swap ? Vector<Scalar>(Metric::template rowwise<Scalar>(P, N))
                                           : Vector<Scalar>();
  Vector<Scalar> term(count);
  Vector<Scalar> slope(count);
  Scalar sum(0);
  Index positive = 0;
  for (Index i = 0; i < count; ++i) {
    const Scalar d_neg = options.swap && d_pn(i) < d_an(i) ? d_pn(i) : d_an(i);
    const TripletTerm<Scalar> t = triplet_term<Scalar>(d_ap(i), d_neg, margin, options.soft);
    term(i) = t.value;
    slope(i) = t.slope;
    sum += t.value;
    if (t.value > Scalar(0)) ++positive;
  }
  const Reduced<Scalar> reduced = reduce<Scalar>(options.reduction, sum, count, positive);
  if (terms) *terms = term;
  if (!grads) return reduced.value;

  // dL/d d_ap = w * slope; dL/d d_an (or d_pn when swapped in) = -w * slope.
  const Vector<Scalar> dd_ap = reduced.weight * slope;
  Vector<Scalar> dd_an = -dd_ap;
  Vector<Scalar> dd_pn = Vector<Scalar>::Zero(options.swap ? count : 0);
  if (options.swap) {
    for (Index i = 0; i < count; ++i) {
      if (d_pn(i) < d_an(i)) std::swap(dd_an(i), dd_pn(i));
    }
  }
  grads->assign(3, RowMatrix<Scalar>());
  RowMatrix<Scalar> dA_an, dN_part;
  Metric::template rowwise_backward<Scalar>(A, P, d_ap, dd_ap, (*grads)[0], (*grads)[1]);
  Metric::template rowwise_backward<Scalar>(A, N, d_an, dd_an, dA_an, (*grads)[2]);
  (*grads)[0] += dA_an;
  if (options.swap) {
    RowMatrix<Scalar> dP_pn;
    Metric::template rowwise_backward<Scalar>(P, N, d_pn, dd_pn, dP_pn, dN_part);
    (*grads)[1] += dP_pn;
    (*grads)[2] += dN_part;
  }
  return reduced.value;
}

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

template <class Metric, class Scalar>
Scalar triplet_margin_index_eval(const ConstRowRef<Scalar>& X, const Triplets& triplets,
                                 const TripletOptions& options, Gradients<Scalar>* grads,
                                 Vector<Scalar>* terms) {
  const char* fn = "triplet_margin_loss";
  require_embeddings<Scalar>(fn, "X", X);
  require_triplet_options(fn, options, true, true);
  require_triplet_indices(fn, triplets, X.rows());

  const Index count = triplets.size();
  const Scalar margin = static_cast<Scalar>(options.margin);
  auto loss = [&](const RowMatrix<Scalar>& D, RowMatrix<Scalar>* dD) {
    if (terms) terms->resize(count);
    Scalar sum(0);
    Index positive = 0;
    for (Index t = 0; t < count; ++t) {
      const std::size_t k = static_cast<std::size_t>(t);
      const TripletTerm<Scalar> term =
          triplet_term<Scalar>(D(triplets.anchor[k], triplets.positive[k]),
                               options.swap ? std::min(D(triplets.anchor[k], triplets.negative[k]),
                                                       D(triplets.positive[k], triplets.negative[k]))
                                            : D(triplets.anchor[k], triplets.negative[k]),
                               margin, options.soft);
      if (terms) (*terms)(t) = term.value;
      sum += term.value;
      if (term.value > Scalar(0)) ++positive;
    }
    const Reduced<Scalar> reduced = reduce<Scalar>(options.reduction, sum, count, positive);
    if (!dD) return reduced.value;
    for (Index t = 0; t < count; ++t) {
      const std::size_t k = static_cast<std::size_t>(t);
      const Index a = triplets.anchor[k], p = triplets.positive[k], n = triplets.negative[k];
      // Ties keep d(a, n), as in the explicit form.
      const bool swapped = options.swap && D(p, n) < D(a, n);
      const Scalar d_an = swapped ? D(p, n) : D(a, n);
      const Scalar slope = triplet_term<Scalar>(D(a, p), d_an, margin, options.soft).slope;
      if (slope == Scalar(0)) continue;
      (*dD)(a, p) += reduced.weight * slope;
      (swapped ? (*dD)(p, n) : (*dD)(a, n)) -= reduced.weight * slope;
    }
    return reduced.value;
  };
  return pairwise_pipeline<Metric, Scalar>(X, loss, grads);
}

}  // namespace detail

// Explicit triplets: row i of anchor, positive and negative. grad = {dA, dP, dN}.
template <class Metric = Euclidean, class DA, class DP, class DN>
LossResult<typename DA::Scalar> triplet_margin_loss(const Eigen::MatrixBase<DA>& anchor,
                                                    const Eigen::MatrixBase<DP>& positive,
                                                    const Eigen::MatrixBase<DN>& negative,
                                                    const TripletOptions& options = {}) {
  using Scalar = typename DA::Scalar;
  detail::check_same_scalar<DA, DP>();
  detail::check_same_scalar<DA, DN>();
  const ConstRowRef<Scalar> a(anchor.derived()), p(positive.derived()), n(negative.derived());
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::triplet_margin_eval<Metric, Scalar>(a, p, n, options, g, t);
  });
}

template <class Metric = Euclidean, class DA, class DP, class DN>
typename DA::Scalar triplet_margin_loss(const Eigen::MatrixBase<DA>& anchor,
                                        const Eigen::MatrixBase<DP>& positive,
                                        const Eigen::MatrixBase<DN>& negative,
                                        const TripletOptions& options, ValueOnly) {
  using Scalar = typename DA::Scalar;
  detail::check_same_scalar<DA, DP>();
  detail::check_same_scalar<DA, DN>();
  const ConstRowRef<Scalar> a(anchor.derived()), p(positive.derived()), n(negative.derived());
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::triplet_margin_eval<Metric, Scalar>(a, p, n, options, g, t);
  });
}

// Gradients written into caller-owned buffers shaped like anchor, positive, negative.
template <class Metric = Euclidean, class DA, class DP, class DN, class GA, class GP, class GN>
typename DA::Scalar triplet_margin_loss(const Eigen::MatrixBase<DA>& anchor,
                                        const Eigen::MatrixBase<DP>& positive,
                                        const Eigen::MatrixBase<DN>& negative,
                                        const TripletOptions& options,
                                        const Eigen::MatrixBase<GA>& grad_anchor,
                                        const Eigen::MatrixBase<GP>& grad_positive,
                                        const Eigen::MatrixBase<GN>& grad_negative) {
  using Scalar = typename DA::Scalar;
  detail::check_same_scalar<DA, DP>();
  detail::check_same_scalar<DA, DN>();
  const ConstRowRef<Scalar> a(anchor.derived()), p(positive.derived()), n(negative.derived());
  return detail::evaluate_into<Scalar>(
      "triplet_margin_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::triplet_margin_eval<Metric, Scalar>(a, p, n, options, g, t);
      },
      {std::make_pair(a.rows(), a.cols()), std::make_pair(p.rows(), p.cols()),
       std::make_pair(n.rows(), n.cols())},
      grad_anchor, grad_positive, grad_negative);
}

// Index triplets into X (e.g. from mine_triplets). grad = {dX}.
template <class Metric = Euclidean, class DX>
LossResult<typename DX::Scalar> triplet_margin_loss(const Eigen::MatrixBase<DX>& X,
                                                    const Triplets& triplets,
                                                    const TripletOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::triplet_margin_index_eval<Metric, Scalar>(x, triplets, options, g, t);
  });
}

template <class Metric = Euclidean, class DX>
typename DX::Scalar triplet_margin_loss(const Eigen::MatrixBase<DX>& X, const Triplets& triplets,
                                        const TripletOptions& options, ValueOnly) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::triplet_margin_index_eval<Metric, Scalar>(x, triplets, options, g, t);
  });
}

template <class Metric = Euclidean, class DX, class G>
typename DX::Scalar triplet_margin_loss(const Eigen::MatrixBase<DX>& X, const Triplets& triplets,
                                        const TripletOptions& options,
                                        const Eigen::MatrixBase<G>& grad_out) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  return detail::evaluate_into<Scalar>(
      "triplet_margin_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::triplet_margin_index_eval<Metric, Scalar>(x, triplets, options, g, t);
      },
      {std::make_pair(x.rows(), x.cols())}, grad_out);
}

}  // namespace contrastive
