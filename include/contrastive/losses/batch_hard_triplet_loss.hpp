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
// Cost: one symmetric Gram product forward (row panels beyond the workspace),
// one O(N^2) scan, and a sparse backward: two rows per anchor, O(N D).
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/engine/panels.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <limits>
#include <vector>

namespace contrastive {
namespace detail {

struct BatchHardTripletLoss {
  static constexpr const char* name = "batch_hard_triplet_loss";
  using Options = TripletOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    require_triplet_options(name, options, true, false);
    metric.check_rows(name, X);

    const Index n = X.rows();
    const Scalar margin = static_cast<Scalar>(options.margin);
    if (terms) terms->setZero(n);
    Scalar sum(0);
    Index count = 0, positive = 0;
    // Per anchor: its hardest positive and negative, then the term's slope
    // into the two entries (the sparse gradient: two per row).
    auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
      for (Index a = D.first; a < D.end(); ++a) {
        const Label own = labels(a);
        const Scalar* row = D.row(a);
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
        if (terms) (*terms)(a) = t.value;
        sum += t.value;
        ++count;
        if (t.value > Scalar(0)) ++positive;
        if (dD) {
          dD->add(a, p, t.slope);
          dD->add(a, q, -t.slope);
        }
      }
    };
    auto finish = [&] { return reduce<Scalar>(options.reduction, sum, count, positive); };
    return run_pairwise_loss<Scalar>(name, metric, X, options.workspace_bytes,
                                     panel_loss<sparse_gradient>(panel, finish), grads);
  }
};

}  // namespace detail

// batch_hard_triplet_loss(X, labels, [metric], [options], [value_only | grad_out...])
template <class Metric = Euclidean, class DX, class L, class... Tail>
auto batch_hard_triplet_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<L>& labels,
                             const Tail&... tail) {
  return detail::labelled_loss<detail::BatchHardTripletLoss, Metric>(X, labels, tail...);
}

}  // namespace contrastive
