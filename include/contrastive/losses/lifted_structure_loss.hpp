// Lifted structure losses (Oh Song et al. 2016; the generalized form of
// Hermans et al. 2017), with pytorch-metric-learning 2.8.1's
// LiftedStructureLoss and GeneralizedLiftedStructureLoss semantics.
//
// PML writes both on its distance's matrix: a similarity s for an inverted
// distance (CosineSimilarity, DotProductSimilarity), a distance d otherwise
// (LpDistance), its BaseDistance::margin flipping the signs for the former.
// Both read as one formula in this library's distances d (Cosine: d = 1 - cos;
// DotProduct: d = -x.y; the others: d itself) with the thresholds
//   lambda(m) = 1 - m (Cosine), -m (DotProduct), m (Euclidean, SquaredEuclidean, Mahalanobis)
// for lambda_p = lambda(pos_margin), lambda_n = lambda(neg_margin):
//
// lifted_structure_loss: one term per ORDERED positive pair (a, p), a != p,
// equal labels. Its negatives are the ordered negative pairs whose anchor is
// a or p (PML's n_per_p: a2 == a1 | a2 == p), i.e. the distances d_an and d_pn
// for every n of another label (each n twice):
//   z_ap = log( sum_n exp(lambda_n - d_an) + sum_n exp(lambda_n - d_pn) ) + d_ap - lambda_p
//   term_ap = [z_ap]+^2 / 2
// (a term and its mirror (p, a) are equal.) Gradient: dterm/dd_ap = [z]+,
// dterm/dd_an = -[z]+ softmax_ap(n), softmax over the 2 |N| negatives of the pair.
// Reduction (options.reduction): Mean (default) over the ordered positive
// pairs (PML's MeanReducer on its "pos_pair" losses), Sum, MeanNonZero over
// the pairs with term > 0. Sample weights: one per row; a pair's term takes
// its anchor a's. terms: one per row of X, the sum of the weighted terms of
// the pairs it anchors. A batch without positive pairs or without negative
// pairs (one class) has loss 0 (PML's zero_losses).
// On symmetric tiles in three passes: the per-row negative log-sum-exps, then
// (refine) the positive pairs' terms and each row's negative factor
//   F_x = sum_{p in P(x)} (w_x + w_p) [z_xp]+ / (the pair's negative sum, in row x's shift)
// then the gradient. Memory O(N + workspace), never a list of pairs.
//
// generalized_lifted_structure_loss: one term per row i:
//   term_i = [ log sum_{p in P(i)} exp(d_ip - lambda_p) + log sum_{n in N(i)} exp(lambda_n - d_in) ]+
// an empty sum contributing 0 (PML's logsumexp on an all-false mask). Reduction:
// Mean (default) over all N rows, rows without pairs counting 0 (PML's
// MeanReducer on its "element" losses), Sum, MeanNonZero. Sample weights: one
// per row. terms: one per row. On symmetric tiles
// (losses/detail/two_sided_tiles.hpp, as multi_similarity_loss), two passes.
//
//   lifted_structure_loss<Metric = Euclidean>(X, labels, [metric], [options], [value_only | grad_out])
//   generalized_lifted_structure_loss<Metric = Euclidean>(X, labels, ...)
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_lifted_structure_loss.cpp
// against tests/reference/data/pml_lifted.txt, written by PML itself):
//   LiftedStructureLoss(neg_margin, pos_margin, distance=D)(X, labels)
//   GeneralizedLiftedStructureLoss(neg_margin, pos_margin, distance=D)(X, labels)
// with D = LpDistance(normalize_embeddings=False)                Euclidean
//          LpDistance(normalize_embeddings=False, power=2)       SquaredEuclidean
//          CosineSimilarity()                                     Cosine (gradient w.r.t. the raw rows)
//          DotProductSimilarity(normalize_embeddings=False)       DotProduct
// PML's default distance, LpDistance(), normalises the rows: the metric
// normalized(Euclidean{}) reproduces it, gradient through the normalisation
// included (or pass unit rows to Euclidean: the gradient is then with respect
// to the rows passed).
//
// Bad input: a non-finite neg_margin or pos_margin (any finite value is
// meaningful: under a similarity they are similarities, which may be < 0):
// std::invalid_argument naming the option. N = 0 gives loss 0 and a 0 x D
// gradient; N = 1 loss 0.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/losses/detail/two_sided_tiles.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {

struct LiftedStructureOptions {
  double neg_margin = 1;  // finite: the negatives' margin (a similarity under Cosine / DotProduct)
  double pos_margin = 0;  // finite: the positives' margin
  Reducer reduction = Reduction::Mean;  // lifted: over ordered positive pairs; generalized: over rows
  std::size_t workspace_bytes = default_workspace_bytes;  // the pairwise workspace
};

namespace detail {

inline void validate_lifted_options(const char* function, const LiftedStructureOptions& o) {
  require_finite_scalar(function, "options.neg_margin", o.neg_margin);
  require_finite_scalar(function, "options.pos_margin", o.pos_margin);
}

// A PML margin in this library's distances: PML's margin(mat, m) and
// margin(m, mat) are d - lambda(m) and lambda(m) - d.
template <MetricKind Kind>
double pml_margin_threshold(double margin) {
  if constexpr (Kind == MetricKind::Cosine) {
    return 1.0 - margin;  // s = 1 - d
  } else if constexpr (Kind == MetricKind::DotProduct) {
    return -margin;  // s = -d
  } else {
    return margin;
  }
}

// The positive pairs of lifted_structure_loss on symmetric tiles.
template <class Scalar>
class LiftedStructureTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool refine_pass = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  LiftedStructureTiles(const LabelVector& labels, const LiftedStructureOptions& o, Tally<Scalar> tally,
                       Vector<Scalar>* terms)
      : o_(o), tally_(std::move(tally)), terms_(terms), ids_(dense_label_ids(labels)), n_(labels.size()),
        negatives_(labels.size(), Scalar(1)), row_sum_(Row::Zero(n_)), factor_(Row::Zero(n_)),
        row_count_(static_cast<std::size_t>(n_), 0), row_positive_(static_cast<std::size_t>(n_), 0) {
    if (terms_) terms_->setZero(n_);
  }

  // Pass 1: per row, the online log-sum-exp of -d over its negatives.
  void tile(const DistanceTile<Scalar>& t) {
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> other{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      label_mask<Scalar>(ids_, i, j0, m, Scalar(0), Scalar(1), other.data());
      negatives_.add_row(i, d, other.data(), m, scratch);
      negatives_.add_columns(j0, d, other.data(), m, scratch);
    }
  }

  // Refine: every positive pair's term, tallied under both of its ordered
  // pairs' anchors, and its share of the two rows' negative factors.
  template <MetricKind Kind>
  void refine_tile(const DistanceTile<Scalar>& t) {
    const Thresholds th = thresholds<Kind>();
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Scalar* d = t.row(i);
      for (Index c = t.first_col(i); c < t.cols; ++c) {
        const Index j = t.j0 + c;
        if (ids_[static_cast<std::size_t>(i)] != ids_[static_cast<std::size_t>(j)]) continue;
        const PairNegatives q = pair_negatives(i, j);
        if (!(q.sigma > Scalar(0))) continue;  // no negatives: PML's zero losses
        const Scalar r = std::max(Scalar(0), th.lambda_n - q.c + std::log(q.sigma) + d[c] - th.lambda_p);
        const Scalar term = r * r * Scalar(0.5);
        const Scalar wi = tally_.weight(i), wj = tally_.weight(j);
        tally_row(i, wi * term);
        tally_row(j, wj * term);
        const Scalar g = (wi + wj) * r / q.sigma;
        factor_(i) += g * std::exp(q.c - negatives_.shift()(i));
        factor_(j) += g * std::exp(q.c - negatives_.shift()(j));
      }
    }
  }

  template <MetricKind Kind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    th_ = thresholds<Kind>();
    for (Index i = 0; i < n_; ++i) {
      tally_.add_totals(row_sum_(i), row_count_[static_cast<std::size_t>(i)],
                        row_positive_[static_cast<std::size_t>(i)]);
      if (terms_) (*terms_)(i) = row_sum_(i);
    }
    return tally_.finish();
  }

  // Pass 2: W_ij = (w_i + w_j) [z_ij]+ for a positive pair, -(F_i e^{shift_i - d} + F_j e^{shift_j - d}) for a negative.
  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> other{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      label_mask<Scalar>(ids_, i, j0, m, Scalar(0), Scalar(1), other.data());
      const Eigen::Map<const Row> dv(t.row(i) + c0, m), ov(other.data(), m);
      Eigen::Map<Row> g(W + (i - t.i0) * t.cols + c0, m);
      g = -ov * (factor_(i) * negatives_.row_exp(i, dv) + factor_.segment(j0, m) * negatives_.column_exp(j0, dv));
      for (Index c = 0; c < m; ++c) {
        if (other[static_cast<std::size_t>(c)] > Scalar(0)) continue;
        const Index j = j0 + c;
        const PairNegatives q = pair_negatives(i, j);
        if (!(q.sigma > Scalar(0))) continue;
        const Scalar r = std::max(Scalar(0), th_.lambda_n - q.c + std::log(q.sigma) + dv(c) - th_.lambda_p);
        g(c) = (tally_.weight(i) + tally_.weight(j)) * r;
      }
    }
  }

 private:
  struct Thresholds {
    Scalar lambda_p = Scalar(0), lambda_n = Scalar(0);
  };
  template <MetricKind Kind>
  Thresholds thresholds() const {
    return {static_cast<Scalar>(pml_margin_threshold<Kind>(o_.pos_margin)),
            static_cast<Scalar>(pml_margin_threshold<Kind>(o_.neg_margin))};
  }

  // The negatives of the pair (i, j): sum_n exp(-d_in) + sum_n exp(-d_jn) = e^{-c} sigma.
  struct PairNegatives {
    Scalar c = Scalar(0), sigma = Scalar(0);
  };
  PairNegatives pair_negatives(Index i, Index j) const {
    const Scalar Si = negatives_.sum()(i), Sj = negatives_.sum()(j);
    PairNegatives q;
    if (!(Si > Scalar(0)) && !(Sj > Scalar(0))) return q;
    const Scalar hi = negatives_.shift()(i), hj = negatives_.shift()(j);
    q.c = std::min(hi, hj);
    q.sigma = (Si > Scalar(0) ? std::exp(q.c - hi) * Si : Scalar(0)) + (Sj > Scalar(0) ? std::exp(q.c - hj) * Sj : Scalar(0));
    return q;
  }

  void tally_row(Index i, Scalar weighted_term) {
    row_sum_(i) += weighted_term;
    ++row_count_[static_cast<std::size_t>(i)];
    if (weighted_term > Scalar(0)) ++row_positive_[static_cast<std::size_t>(i)];
  }

  const LiftedStructureOptions& o_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_;
  Index n_;
  OnlineSoftmin<Scalar> negatives_;
  Row row_sum_, factor_;
  std::vector<Index> row_count_, row_positive_;
  Thresholds th_;
};

struct LiftedStructureLoss {
  static constexpr const char* name = "lifted_structure_loss";
  using Options = LiftedStructureOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    validate_lifted_options(name, o);
    metric.check_rows(name, X);
    Tally<Scalar> tally(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(name, metric, X, o.workspace_bytes,
                                     LiftedStructureTiles<Scalar>(labels, o, std::move(tally), terms), grads);
  }
};

// generalized_lifted_structure_loss's anchor: [P + N]+ from the two log-sum-exps at scale 1.
template <class Scalar>
struct GeneralizedLiftedTerm {
  Scalar lambda_p, lambda_n;

  struct Anchor {
    Scalar term, positive_factor, negative_factor;
  };
  Anchor operator()(Scalar max_p, Scalar S_p, Scalar min_n, Scalar S_n) const {
    const bool has_p = S_p > Scalar(0), has_n = S_n > Scalar(0);
    const Scalar z = (has_p ? max_p - lambda_p + std::log(S_p) : Scalar(0)) +
                     (has_n ? lambda_n - min_n + std::log(S_n) : Scalar(0));
    if (!(z > Scalar(0))) return {Scalar(0), Scalar(0), Scalar(0)};
    return {z, has_p ? Scalar(1) / S_p : Scalar(0), has_n ? Scalar(-1) / S_n : Scalar(0)};
  }
};

struct GeneralizedLiftedSpec {
  using Options = LiftedStructureOptions;
  static double positive_scale(const Options&) { return 1.0; }
  static double negative_scale(const Options&) { return 1.0; }
  template <MetricKind Kind, class Scalar>
  static GeneralizedLiftedTerm<Scalar> term(const Options& o) {
    return {static_cast<Scalar>(pml_margin_threshold<Kind>(o.pos_margin)),
            static_cast<Scalar>(pml_margin_threshold<Kind>(o.neg_margin))};
  }
};

struct GeneralizedLiftedStructureLoss {
  static constexpr const char* name = "generalized_lifted_structure_loss";
  using Options = LiftedStructureOptions;
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source>
  static Scalar eval(const Metric& metric, const Source& s, const Options& o, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    require_pair_source<Scalar>(name, metric, s);
    validate_lifted_options(name, o);
    Tally<Scalar> tally(name, "options.reduction", o.reduction, s.X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(
        name, metric, s, o.workspace_bytes,
        TwoSidedLogSumExpTiles<Scalar, GeneralizedLiftedSpec>(s.labels, s.candidate_labels(), o, std::move(tally),
                                                              terms),
        grads);
  }
};

}  // namespace detail

// lifted_structure_loss(X, labels, [metric], [options], [value_only | grad_out...]): grad = {dX};
// terms: one per row (the weighted terms of the positive pairs it anchors, summed).
template <class Metric = Euclidean, class DX, class... Tail>
auto lifted_structure_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::LiftedStructureLoss, Metric>(X, labels, tail...);
}

// generalized_lifted_structure_loss(X, labels, [metric], [options], [value_only | grad_out...]):
// grad = {dX}; terms: one per row.
template <class Metric = Euclidean, class DX, class... Tail>
auto generalized_lifted_structure_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::GeneralizedLiftedStructureLoss, Metric>(X, labels, tail...);
}

// generalized_lifted_structure_loss(X, labels, reference_set(R, ref_labels[, self_offset]), ...): grad = {dX, dR}.
template <class Metric = Euclidean, class DX, class DR, class... Tail>
auto generalized_lifted_structure_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                                       const ReferenceSet<DR>& reference, const Tail&... tail) {
  return detail::reference_loss<detail::GeneralizedLiftedStructureLoss, Metric>(X, labels, reference, tail...);
}

}  // namespace contrastive
