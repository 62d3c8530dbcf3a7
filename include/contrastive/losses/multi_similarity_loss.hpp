// Multi-similarity loss (Wang et al. 2019), with pytorch-metric-learning
// 2.8.1's MultiSimilarityLoss semantics.
//
// PML writes it on its distance's matrix: a similarity s for an inverted
// distance (CosineSimilarity, DotProductSimilarity), a distance d otherwise
// (LpDistance), and flips signs for the latter (BaseDistance::margin). Per
// anchor i, with P(i) its positives and N(i) its negatives:
//   similarity:  term_i = (1/alpha) log(1 + sum_{p in P(i)} exp(-alpha (s_ip - base)))
//                       + (1/beta)  log(1 + sum_{n in N(i)} exp( beta  (s_in - base)))
//   distance:    term_i = (1/alpha) log(1 + sum_{p in P(i)} exp( alpha (d_ip - base)))
//                       + (1/beta)  log(1 + sum_{n in N(i)} exp(-beta  (d_in - base)))
// An empty sum contributes 0 (log 1): a row without positives keeps its
// negative part, a row without negatives its positive part, and a row with
// neither has term 0. Both read as one formula in this library's distances d
// (Cosine: d = 1 - cos; DotProduct: d = -x.y; the others: d itself) with the
// threshold lambda = 1 - base (Cosine), -base (DotProduct), base (Euclidean,
// SquaredEuclidean, Mahalanobis):
//   term_i = (1/alpha) log(1 + sum_p exp(alpha (d_ip - lambda))) + (1/beta) log(1 + sum_n exp(beta (lambda - d_in)))
//   dterm_i/dd_ip = exp(alpha (d_ip - lambda)) / (1 + sum_p ...),  dterm_i/dd_in = -exp(beta (lambda - d_in)) / (1 + sum_n ...)
// Each log(1 + sum) is shifted by its largest exponent (and 0, for the one),
// so nothing overflows: beta = 50 in float is finite.
//
// Reduction (options.reduction): Mean (default) over all N rows, rows
// without pairs counting 0 (PML's MeanReducer over the N per-row losses);
// Sum; MeanNonZero over the rows with term > 0 (PML's AvgNonZeroReducer).
// Sample weights: one per row, the anchor's. terms: one per row of X.
//
// Two ways to give the pairs:
//   multi_similarity_loss<Metric>(X, labels, options)   every pair i != j, equal labels positive;
//       on the tiled engine (two passes over symmetric tiles, options.workspace_bytes).
//   multi_similarity_loss<Metric>(X, pairs, options)    mined pairs (contrastive::Pairs, e.g. from
//       mine_multi_similarity or mine_pairs): (first, second) with similar = 1 is a positive of
//       row `first`, similar = 0 a negative. As PML's masks, a pair listed twice counts once, and
//       when pairs holds at most one positive and at most one negative entry the loss is 0 with
//       zero gradient (GenericPairLoss returns zero losses when every index tensor has length <= 1).
//       Distances of the listed pairs only, O(pairs x D), no matrix. Labels are not needed: PML
//       ignores them when indices_tuple is given.
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_multi_similarity_loss.cpp against
// tests/reference/data/pml_multi_similarity.txt, written by PML itself):
//   MultiSimilarityLoss(alpha, beta, base)(X, labels)                           Cosine (default), Mean
//   ... distance=DotProductSimilarity(normalize_embeddings=False)                DotProduct
//   ... distance=LpDistance(normalize_embeddings=False)                          Euclidean
//   ... distance=LpDistance(normalize_embeddings=False, power=2)                 SquaredEuclidean
//   ... (X, labels, indices_tuple=MultiSimilarityMiner(epsilon)(X, labels))      multi_similarity_loss(X,
//                                                        mine_multi_similarity<Metric>(X, labels, epsilon))
//   PML's LpDistance() and DotProductSimilarity() normalise rows by default: pass unit rows (the
//   gradient is then with respect to the rows passed), or use Cosine, which is DotProductSimilarity()
//   with its normalisation and whose gradient is with respect to the raw rows.
//
// Bad input: alpha <= 0, beta <= 0, non-finite alpha, beta or base: std::invalid_argument naming
// the option. N = 0 gives loss 0 and a 0 x D gradient; N = 1 loss 0.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/masked_pairs.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/losses/detail/two_sided_tiles.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {

struct MultiSimilarityOptions {
  double alpha = 2;    // > 0: the positives' scale
  double beta = 50;    // > 0: the negatives' scale
  double base = 0.5;   // finite: the similarity (or distance) the exponents are measured from
  Reducer reduction = Reduction::Mean;  // Mean over all N rows (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the labels form's pairwise workspace
};

namespace detail {

inline void validate_multi_similarity_options(const char* function, const MultiSimilarityOptions& o) {
  require_positive(function, "options.alpha", o.alpha);
  require_positive(function, "options.beta", o.beta);
  require_finite_scalar(function, "options.base", o.base);
}

// PML's base in this library's distances: where exp(alpha (d - lambda)) is 1.
template <MetricKind Kind>
double multi_similarity_threshold(double base) {
  if constexpr (Kind == MetricKind::Cosine) {
    return 1.0 - base;  // s = 1 - d
  } else if constexpr (Kind == MetricKind::DotProduct) {
    return -base;  // s = -d
  } else {
    return base;  // a distance: PML's signs flipped
  }
}

// log(1 + e^a S) for S = sum of exp(x_k - max) and a = the largest exponent,
// and the factor c with d log(1 + sum exp x_k) / d x_k = c exp(x_k - max).
// S = 0 (an empty sum) gives 0 and 0.
template <class Scalar>
struct AddOneLogSumExp {
  Scalar value = Scalar(0);
  Scalar factor = Scalar(0);
};

template <class Scalar>
AddOneLogSumExp<Scalar> add_one_log_sum_exp(Scalar a, Scalar S) {
  AddOneLogSumExp<Scalar> out;
  if (!(S > Scalar(0))) return out;
  if (a > Scalar(0)) {
    const Scalar r = std::exp(-a) + S;  // 1 + e^a S = e^a r
    out.value = a + std::log(r);
    out.factor = Scalar(1) / r;
  } else {
    const Scalar e = std::exp(a);
    out.value = std::log1p(e * S);
    out.factor = e / (Scalar(1) + e * S);
  }
  return out;
}

// One anchor's term from its two sums, and its pair factors: dterm/dd_ip =
// positive_factor exp(alpha (d_ip - max_p d)), dterm/dd_in = negative_factor exp(beta (min_n d - d_in)).
template <class Scalar>
struct MultiSimilarityAnchor {
  Scalar term, positive_factor, negative_factor;
};

template <class Scalar>
struct MultiSimilarityTerm {
  Scalar alpha, beta, lambda;

  // max_p, S_p: the positives' largest distance and sum exp(alpha (d - max_p));
  // min_n, S_n: the negatives' smallest and sum exp(beta (min_n - d)). Empty sums are 0.
  MultiSimilarityAnchor<Scalar> operator()(Scalar max_p, Scalar S_p, Scalar min_n, Scalar S_n) const {
    const AddOneLogSumExp<Scalar> p =
        S_p > Scalar(0) ? add_one_log_sum_exp(alpha * (max_p - lambda), S_p) : AddOneLogSumExp<Scalar>{};
    const AddOneLogSumExp<Scalar> n =
        S_n > Scalar(0) ? add_one_log_sum_exp(beta * (lambda - min_n), S_n) : AddOneLogSumExp<Scalar>{};
    return {p.value / alpha + n.value / beta, p.factor, -n.factor};
  }
};

template <MetricKind Kind, class Scalar>
MultiSimilarityTerm<Scalar> multi_similarity_term(const MultiSimilarityOptions& o) {
  return {static_cast<Scalar>(o.alpha), static_cast<Scalar>(o.beta),
          static_cast<Scalar>(multi_similarity_threshold<Kind>(o.base))};
}

// Every pair of a batch, on symmetric tiles (losses/detail/two_sided_tiles.hpp):
// per anchor the log-sum-exp of its positives at scale alpha and of its
// negatives at scale beta, then MultiSimilarityTerm.
struct MultiSimilaritySpec {
  using Options = MultiSimilarityOptions;
  static double positive_scale(const Options& o) { return o.alpha; }
  static double negative_scale(const Options& o) { return o.beta; }
  template <MetricKind Kind, class Scalar>
  static MultiSimilarityTerm<Scalar> term(const Options& o) {
    return multi_similarity_term<Kind, Scalar>(o);
  }
};

template <class Scalar>
using MultiSimilarityTiles = TwoSidedLogSumExpTiles<Scalar, MultiSimilaritySpec>;

struct MultiSimilarityLoss {
  static constexpr const char* name = "multi_similarity_loss";
  using Options = MultiSimilarityOptions;
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source>
  static Scalar eval(const Metric& metric, const Source& s, const Options& o, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    require_pair_source<Scalar>(name, metric, s);
    validate_multi_similarity_options(name, o);
    Tally<Scalar> tally(name, "options.reduction", o.reduction, s.X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(
        name, metric, s, o.workspace_bytes,
        MultiSimilarityTiles<Scalar>(s.labels, s.candidate_labels(), o, std::move(tally), terms), grads);
  }
};

// Mined pairs: per anchor, the two sums over its listed pairs.
struct MultiSimilarityMinedLoss {
  static constexpr const char* name = "multi_similarity_loss";
  using Options = MultiSimilarityOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const Pairs& given, const Options& o,
                     Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    validate_pairs(name, given, X.rows());
    validate_multi_similarity_options(name, o);
    metric.check_rows(name, X);
    const Tally<Scalar> weights(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    const MaskedPairs masked(given);
    const Index n = X.rows();
    auto loss = [&](auto kind, const Vector<Scalar>& d, Vector<Scalar>* dd) {
      constexpr MetricKind K = decltype(kind)::value;
      const MultiSimilarityTerm<Scalar> term = multi_similarity_term<K, Scalar>(o);
      const Index count = d.size();
      const auto first = [&](Index k) { return masked.pairs.first[static_cast<std::size_t>(k)]; };
      const auto positive = [&](Index k) { return masked.similar[static_cast<std::size_t>(k)] != 0; };
      Vector<Scalar> max_p = Vector<Scalar>::Constant(n, -std::numeric_limits<Scalar>::infinity());
      Vector<Scalar> min_n = Vector<Scalar>::Constant(n, std::numeric_limits<Scalar>::infinity());
      for (Index k = 0; k < count; ++k) {
        if (positive(k)) {
          max_p(first(k)) = std::max(max_p(first(k)), d(k));
        } else {
          min_n(first(k)) = std::min(min_n(first(k)), d(k));
        }
      }
      // exp(x_k - max) of each pair, then the sums per anchor.
      Vector<Scalar> e(count);
      Vector<Scalar> S_p = Vector<Scalar>::Zero(n), S_n = Vector<Scalar>::Zero(n);
      for (Index k = 0; k < count; ++k) {
        const Index a = first(k);
        if (positive(k)) {
          e(k) = std::exp(term.alpha * (d(k) - max_p(a)));
          S_p(a) += e(k);
        } else {
          e(k) = std::exp(term.beta * (min_n(a) - d(k)));
          S_n(a) += e(k);
        }
      }
      Tally<Scalar> tally = weights;
      Vector<Scalar> pf = Vector<Scalar>::Zero(n), nf = Vector<Scalar>::Zero(n);
      if (terms) terms->setZero(n);
      for (Index i = 0; i < n; ++i) {
        const MultiSimilarityAnchor<Scalar> a = term(max_p(i), S_p(i), min_n(i), S_n(i));
        const Scalar weighted = tally.add(i, a.term);
        if (terms) (*terms)(i) = weighted;
        const Scalar w = tally.gradient_weight(i, weighted);
        if (w == Scalar(0)) continue;  // left out: its factors stay 0
        pf(i) = w * a.positive_factor;
        nf(i) = w * a.negative_factor;
      }
      const Reduced<Scalar> r = tally.finish();
      if (dd) {
        for (Index k = 0; k < count; ++k) (*dd)(k) = r.weight * (positive(k) ? pf(first(k)) : nf(first(k))) * e(k);
      }
      return r.value;
    };
    return index_pairs_pipeline<Scalar>(metric, X, masked.pairs, loss, grads);
  }
};

}  // namespace detail

// multi_similarity_loss(X, labels, [metric], [options], [value_only | grad_out...]): every pair
// of the batch; grad = {dX}; terms: one per row.
template <class Metric = Cosine, class DX, class... Tail>
auto multi_similarity_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::MultiSimilarityLoss, Metric>(X, labels, tail...);
}

// multi_similarity_loss(X, pairs, [metric], [options], [value_only | grad_out...]): mined pairs
// (PML's indices_tuple); grad = {dX}; terms: one per row.
// multi_similarity_loss(X, labels, reference_set(R, ref_labels[, self_offset]), ...): grad = {dX, dR}.
template <class Metric = Cosine, class DX, class DR, class... Tail>
auto multi_similarity_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                           const Tail&... tail) {
  return detail::reference_loss<detail::MultiSimilarityLoss, Metric>(X, labels, reference, tail...);
}

template <class Metric = Cosine, class DX, class... Tail>
auto multi_similarity_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const Tail&... tail) {
  return detail::pairs_loss<detail::MultiSimilarityMinedLoss, Metric>(X, pairs, tail...);
}

// multi_similarity_loss(X, pairs, reference_set(R), ...): pairs.first indexes X, pairs.second R.
template <class Metric = Cosine, class DX, class DR, class... Tail>
auto multi_similarity_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const ReferenceSet<DR>& reference,
                           const Tail&... tail) {
  return detail::mined_reference_loss<detail::MultiSimilarityMinedLoss, Metric>(X, pairs, reference, tail...);
}

}  // namespace contrastive
