// The engine for losses on given pairs of rows rather than on a whole batch:
// explicit pairs and triplets (row i of A with row i of B), and mined index
// tuples (pairs of rows of one X). Distances are computed directly from each
// pair, O(pairs x D) forward and backward, with no pairwise matrix at all.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/metrics/metric_traits.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <cstddef>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// Adds a metric's parameter gradients (blocks 1.. of `from`) onto those of `into`.
template <class Scalar>
void add_parameter_gradients(std::vector<RowMatrix<Scalar>>& into, std::vector<RowMatrix<Scalar>>& from) {
  for (std::size_t k = 1; k < from.size(); ++k) {
    if (into.size() <= k) {
      into.push_back(std::move(from[k]));
    } else {
      into[k] += from[k];
    }
  }
}

// Calls loss(d, dd), or loss(kind, d, dd) for a loss that needs the kernel
// kind (a loss written on similarities tells Cosine's d = 1 - cos from the rest).
template <MetricKind K, class Scalar, class LossOnDistances>
Scalar call_on_distances(LossOnDistances& loss, const Vector<Scalar>& d, Vector<Scalar>* dd) {
  if constexpr (std::is_invocable<LossOnDistances&, kind_constant<K>, const Vector<Scalar>&, Vector<Scalar>*>::value) {
    return loss(kind_constant<K>{}, d, dd);
  } else {
    return loss(d, dd);
  }
}

// Loss on the distances between row i of A and row i of B. `loss(d, dd)` (or
// `loss(kind, d, dd)`) returns the value and, when dd is not null, writes
// dL/dd. grads: dA, dB, then the metric's parameter gradients.
template <class Scalar, class Metric, class LossOnDistances>
Scalar rowwise_pipeline(const Metric& metric, const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B,
                        LossOnDistances&& loss, Gradients<Scalar>* grads) {
  return metric.template with_rows<Scalar>(A, [&](auto kind, const ConstRowRef<Scalar>& ZA) {
    return metric.template with_rows<Scalar>(B, [&](auto, const ConstRowRef<Scalar>& ZB) {
      constexpr MetricKind K = decltype(kind)::value;
      const Vector<Scalar> d = rowwise_forward<K, Scalar>(ZA, ZB);
      if (!grads) return call_on_distances<K, Scalar>(loss, d, static_cast<Vector<Scalar>*>(nullptr));
      Vector<Scalar> dd = Vector<Scalar>::Zero(d.size());
      const Scalar value = call_on_distances<K, Scalar>(loss, d, &dd);
      RowMatrix<Scalar> dZA, dZB;
      rowwise_backward<K, Scalar>(ZA, ZB, d, dd, dZA, dZB);
      std::vector<RowMatrix<Scalar>> ga, gb;
      metric.template rows_backward<Scalar>(A, std::move(dZA), ga);
      metric.template rows_backward<Scalar>(B, std::move(dZB), gb);
      grads->clear();
      grads->push_back(std::move(ga[0]));
      grads->push_back(std::move(gb[0]));
      ga[0] = RowMatrix<Scalar>();
      add_parameter_gradients(ga, gb);
      for (std::size_t k = 1; k < ga.size(); ++k) grads->push_back(std::move(ga[k]));
      return value;
    });
  });
}

// The loss of a row-wise pipeline with one term per row: term(k, d_k, slope)
// returns row k's term and sets d term / d d_k; the terms are tallied under
// their rows (sample weights) and reduced.
template <class Scalar, class Term>
Scalar reduce_row_terms(const Vector<Scalar>& d, Tally<Scalar> tally, Term&& term, Vector<Scalar>* dd,
                        Vector<Scalar>* terms) {
  const Index n = d.size();
  if (terms) terms->resize(n);
  for (Index k = 0; k < n; ++k) {
    Scalar slope;
    const Scalar t = tally.add(k, term(k, d(k), slope));
    if (terms) (*terms)(k) = t;
    if (dd) (*dd)(k) = slope * tally.weight(k);
  }
  const Reduced<Scalar> r = tally.finish();
  if (dd) *dd *= r.weight;
  return r.value;
}

// Index pairs (first[k], second[k]) into the rows of one X.
struct IndexPairs {
  std::vector<Index> first;
  std::vector<Index> second;
  Index size() const { return static_cast<Index>(first.size()); }
  void add(Index i, Index j) {
    first.push_back(i);
    second.push_back(j);
  }
};

// Loss on the distances of index pairs of X: the rows are gathered, the
// row-wise pipeline runs on them, and the two row gradients of each pair are
// added back onto dX (a row may be in many pairs). grads: dX, then the
// metric's parameter gradients.
template <class Scalar, class Metric, class PairList, class LossOnDistances>
Scalar index_pairs_pipeline(const Metric& metric, const ConstRowRef<Scalar>& X, const PairList& pairs,
                            LossOnDistances&& loss, Gradients<Scalar>* grads) {
  const Index k = static_cast<Index>(pairs.first.size());
  RowMatrix<Scalar> A(k, X.cols());
  RowMatrix<Scalar> B(k, X.cols());
  for (Index p = 0; p < k; ++p) {
    const std::size_t up = static_cast<std::size_t>(p);
    A.row(p) = X.row(pairs.first[up]);
    B.row(p) = X.row(pairs.second[up]);
  }
  const ConstRowRef<Scalar> a(A), b(B);
  if (!grads) return rowwise_pipeline<Scalar>(metric, a, b, loss, nullptr);
  Gradients<Scalar> pair_grads;
  const Scalar value = rowwise_pipeline<Scalar>(metric, a, b, loss, &pair_grads);
  RowMatrix<Scalar> dX = RowMatrix<Scalar>::Zero(X.rows(), X.cols());
  for (Index p = 0; p < k; ++p) {
    const std::size_t up = static_cast<std::size_t>(p);
    dX.row(pairs.first[up]) += pair_grads[0].row(p);
    dX.row(pairs.second[up]) += pair_grads[1].row(p);
  }
  grads->clear();
  grads->push_back(std::move(dX));
  for (std::size_t g = 2; g < pair_grads.size(); ++g) grads->push_back(std::move(pair_grads[g]));
  return value;
}

}  // namespace detail
}  // namespace contrastive
