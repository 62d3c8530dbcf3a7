// Batch-hard triplet loss (Hermans, Beyer & Leibe 2017, "In Defense of the
// Triplet Loss"): per anchor, its hardest positive and hardest negative.
//
//   p*(a) = argmax_{p != a, y_p = y_a} d(a, p)      n*(a) = argmin_{y_n != y_a} d(a, n)
//   term_a = [d(a, p*) - d(a, n*) + margin]+      (options.soft: softplus(d(a,p*) - d(a,n*)))
//   loss   = reduce over the anchors that have a positive and a negative:
//            Reduction::Mean (default), Sum or MeanNonZero.
//
// Ties pick the lowest index (the gradient flows to that one row only).
// Anchors lacking a positive or a negative are skipped: term 0, not counted by
// Mean. Terms: one per anchor (length N); a skipped anchor's term is 0.
// options.swap is rejected (invalid_argument).
//
// Reproducing other libraries:
// - TensorFlow Addons tfa.losses.triplet_hard_loss(margin, soft, distance_metric):
//   Metric = Euclidean ("L2"), SquaredEuclidean ("squared-L2"); same margin and
//   soft; Reduction::Mean. Identical whenever every anchor of the batch has a
//   positive and a negative (e.g. a P x K batch with K >= 2, P >= 2). TFA
//   averages over all N anchors and, through its masked max/min, gives an
//   anchor without positives d_ap* = 0 (term [margin - d_an*]+) and an anchor
//   without negatives d_an* = max of its row (term [margin]+ or log 2), where
//   we skip both. No option reproduces that; drop such samples from the batch.
// - pytorch-metric-learning TripletMarginLoss + BatchHardMiner: margin = 0.05,
//   Reduction::MeanNonZero (AvgNonZeroReducer), smooth_loss = false; the miner
//   drops anchors without a positive or a negative, as we do. PML's default
//   LpDistance normalises the embeddings: pass unit rows.
// - PyTorch has no batch-hard loss.
//
// Cost: one Gram product forward, one product backward, one O(N^2) scan.
#pragma once

#include "contrastive/core/evaluate.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/distance.hpp"

#include <limits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

template <class Metric, class Scalar>
Scalar batch_hard_triplet_eval(const ConstRowRef<Scalar>& X, const LabelVector& labels,
                               const TripletOptions& options, Gradients<Scalar>* grads,
                               Vector<Scalar>* terms) {
  const char* fn = "batch_hard_triplet_loss";
  require_embeddings<Scalar>(fn, "X", X);
  require_triplet_options(fn, options, true, false);

  const Index n = X.rows();
  const Scalar margin = static_cast<Scalar>(options.margin);
  auto loss = [&](const RowMatrix<Scalar>& D, RowMatrix<Scalar>* dD) {
    if (terms) terms->setZero(n);
    // Per anchor: chosen positive, negative and the term's slope; -1 = skipped.
    std::vector<Index> hardest_positive(static_cast<std::size_t>(n), -1);
    std::vector<Index> hardest_negative(static_cast<std::size_t>(n), -1);
    std::vector<Scalar> slope(static_cast<std::size_t>(n), Scalar(0));
    Scalar sum(0);
    Index count = 0, positive = 0;
    for (Index a = 0; a < n; ++a) {
      const Label own = labels(a);
      const Scalar* row = D.data() + a * D.cols();
      Index p = -1, q = -1;
      Scalar d_ap = -std::numeric_limits<Scalar>::infinity();
      Scalar d_an = std::numeric_limits<Scalar>::infinity();
      for (Index j = 0; j < n; ++j) {
        const Scalar d = row[j];
        const bool negative = labels(j) != own;
        // Strict comparisons keep the lowest index on ties; selects instead of
        // branches, whose outcome the predictor cannot know.
        const bool take_negative = negative & (d < d_an);
        const bool take_positive = !negative & (j != a) & (d > d_ap);
        d_an = take_negative ? d : d_an;
        q = take_negative ? j : q;
        d_ap = take_positive ? d : d_ap;
        p = take_positive ? j : p;
      }
      if (p < 0 || q < 0) continue;
      const TripletTerm<Scalar> t = triplet_term<Scalar>(d_ap, d_an, margin, options.soft);
      const std::size_t k = static_cast<std::size_t>(a);
      hardest_positive[k] = p;
      hardest_negative[k] = q;
      slope[k] = t.slope;
      if (terms) (*terms)(a) = t.value;
      sum += t.value;
      ++count;
      if (t.value > Scalar(0)) ++positive;
    }
    const Reduced<Scalar> reduced = reduce<Scalar>(options.reduction, sum, count, positive);
    if (!dD) return reduced.value;
    for (Index a = 0; a < n; ++a) {
      const std::size_t k = static_cast<std::size_t>(a);
      if (hardest_positive[k] < 0 || slope[k] == Scalar(0)) continue;
      (*dD)(a, hardest_positive[k]) += reduced.weight * slope[k];
      (*dD)(a, hardest_negative[k]) -= reduced.weight * slope[k];
    }
    return reduced.value;
  };
  return pairwise_pipeline<Metric, Scalar>(X, loss, grads);
}

}  // namespace detail

template <class Metric = Euclidean, class DX, class L>
LossResult<typename DX::Scalar> batch_hard_triplet_loss(const Eigen::MatrixBase<DX>& X,
                                                        const Eigen::DenseBase<L>& labels,
                                                        const TripletOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = detail::to_labels("batch_hard_triplet_loss", "labels", labels, x.rows());
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::batch_hard_triplet_eval<Metric, Scalar>(x, y, options, g, t);
  });
}

template <class Metric = Euclidean, class DX, class L>
typename DX::Scalar batch_hard_triplet_loss(const Eigen::MatrixBase<DX>& X,
                                            const Eigen::DenseBase<L>& labels,
                                            const TripletOptions& options, ValueOnly) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = detail::to_labels("batch_hard_triplet_loss", "labels", labels, x.rows());
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::batch_hard_triplet_eval<Metric, Scalar>(x, y, options, g, t);
  });
}

template <class Metric = Euclidean, class DX, class L, class G>
typename DX::Scalar batch_hard_triplet_loss(const Eigen::MatrixBase<DX>& X,
                                            const Eigen::DenseBase<L>& labels,
                                            const TripletOptions& options,
                                            const Eigen::MatrixBase<G>& grad_out) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = detail::to_labels("batch_hard_triplet_loss", "labels", labels, x.rows());
  return detail::evaluate_into<Scalar>(
      "batch_hard_triplet_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::batch_hard_triplet_eval<Metric, Scalar>(x, y, options, g, t);
      },
      {std::make_pair(x.rows(), x.cols())}, grad_out);
}

}  // namespace contrastive
