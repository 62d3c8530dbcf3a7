// Tuplet margin loss (Yu & Tao 2019, "Deep Metric Learning with Tuplet Margin
// Loss"), with pytorch-metric-learning 2.8.1's TupletMarginLoss semantics.
//
// c = cos(x_i, x_j) (PML asserts CosineSimilarity; any other metric is
// rejected), theta = arccos(c), m = margin in radians (the option is in
// degrees, as PML's), s = scale. Per ordered positive pair (a, p), a != p,
// y_a = y_p, with N(a) the negatives of a:
//   term_ap = log(1 + sum_{n in N(a)} exp(s (c_an - cos(theta_ap - m))))
//   loss = reduce over the ordered positive pairs (PML's MeanReducer on its
//          "pos_pair" losses: Reduction::Mean, the default), Sum or MeanNonZero.
// In this library's cosine distance d = 1 - c, with z_ap the softplus argument
// log sum_n exp(s c_an) - s cos(theta_ap - m) and sigma the logistic function:
//   dterm_ap/dd_an = -s sigma(z_ap) softmax_n(s c_an),
//   dterm_ap/dd_ap =  s sigma(z_ap) sin(theta_ap - m) / sin(theta_ap)
// (the derivative through arccos, d theta/dc = -1/sin theta, as PML's autograd).
//
// The angle: PML takes torch.acos of the raw cosine, without clamping (a
// rounding above 1 is NaN there). Here c comes from this library's cosine
// distance, already in [-1, 1], and theta is computed as 2 asin(sqrt(d / 2))
// for d <= 1 (accurate near 0) and acos(1 - d) above. A positive pair at
// angle exactly 0 or pi (sin theta = 0) has an infinite slope in PML (a
// non-finite gradient); here that pair's d-slope is 0: its value counts,
// its gradient through theta is dropped (the negatives' part is kept).
//
// Edge cases: no positive pair, or no negative pair in the batch (a single
// class): loss 0 with zero gradient (PML's zero_losses); an anchor that has
// positives has negatives whenever the batch has two classes. N = 0: loss 0,
// 0 x D gradient.
// Terms: one per row, the anchor's summed (weighted) pair terms. Sample
// weights: one per row, each pair taking its anchor's.
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_tuplet_margin_loss.cpp
// against tests/reference/data/pml_tuplet_margin.txt, written by PML itself):
//   TupletMarginLoss(margin, scale)(X, labels)      tuplet_margin_loss(X, labels, {margin, scale})
// The gradient is with respect to the raw rows (through the normalisation, as PML's).
// torch's logsumexp is exact; so is ours (shifted by the largest exponent).
//
// Cost: one pass of row panels (options.workspace_bytes bounds the panel), one
// exp per pair: O(N^2) beyond the products.
//
// Bad input: margin outside (0, 90) degrees, scale <= 0, either non-finite, a
// metric other than Cosine: std::invalid_argument naming the argument.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/softplus.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/option_checks.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace contrastive {

struct TupletMarginOptions {
  double margin = 5.73;  // degrees, in (0, 90): the angular margin on the positive
  double scale = 64;     // > 0
  Reducer reduction = Reduction::Mean;  // over the ordered positive pairs (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // the pairwise workspace
};

namespace detail {

// theta = arccos(1 - d) for a cosine distance d in [0, 2], accurately near 0.
template <class Scalar>
Scalar cosine_distance_angle(Scalar d) {
  if (d <= Scalar(1)) return Scalar(2) * std::asin(std::sqrt(std::max(d, Scalar(0)) * Scalar(0.5)));
  return std::acos(std::max(Scalar(-1), Scalar(1) - d));
}

struct TupletMarginLoss {
  static constexpr const char* name = "tuplet_margin_loss";
  using Options = TupletMarginOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    require_acute_degrees(name, "options.margin", o.margin);
    require_positive(name, "options.scale", o.scale);
    require_metric_kind<MetricKind::Cosine, Scalar>(
        name, metric, X, "Cosine (pytorch-metric-learning's TupletMarginLoss accepts only CosineSimilarity)");
    Tally<Scalar> tally(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    const Index n = X.rows();
    const std::vector<std::int32_t> ids = dense_label_ids(labels);
    const Scalar m = static_cast<Scalar>(o.margin * degrees_to_radians);
    const Scalar s = static_cast<Scalar>(o.scale);
    const bool nonzero_only = tally.kind() == Reduction::MeanNonZero;
    if (terms) terms->setZero(n);
    // Per anchor: its summed weighted terms, pairs and pairs with term > 0.
    std::vector<Scalar> anchor_sums(static_cast<std::size_t>(n));
    std::vector<Index> anchor_pairs(static_cast<std::size_t>(n)), anchor_positive(static_cast<std::size_t>(n));
    struct Scratch {
      std::vector<Scalar> e;  // exp(s c_an - max) per column (0 off the negatives)
    };
    std::vector<Scratch> scratch(anchor_threads());
    auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
      for_each_anchor(D, scratch, [&](Index a, Scratch& sc) {
        const std::size_t ua = static_cast<std::size_t>(a);
        anchor_pairs[ua] = 0;
        const Scalar* d = D.row(a);
        const std::int32_t ya = ids[ua];
        // The negatives' log-sum-exp of s c = s (1 - d), shifted by its largest.
        Scalar top = -std::numeric_limits<Scalar>::infinity();
        Index positives = 0;
        for (Index j = 0; j < n; ++j) {
          const std::int32_t yj = ids[static_cast<std::size_t>(j)];
          if (yj != ya) top = std::max(top, s * (Scalar(1) - d[j]));
          if (yj == ya && j != a) ++positives;
        }
        if (positives == 0 || !(top > -std::numeric_limits<Scalar>::infinity())) return;
        sc.e.assign(static_cast<std::size_t>(n), Scalar(0));
        Scalar S(0);
        for (Index j = 0; j < n; ++j) {
          if (ids[static_cast<std::size_t>(j)] == ya) continue;
          const Scalar e = std::exp(s * (Scalar(1) - d[j]) - top);
          sc.e[static_cast<std::size_t>(j)] = e;
          S += e;
        }
        const Scalar lse = top + std::log(S);
        const Scalar w = tally.weight(a);
        Scalar sum(0), sigma_sum(0);
        Index counted = 0;
        for (Index p = 0; p < n; ++p) {
          if (p == a || ids[static_cast<std::size_t>(p)] != ya) continue;
          const Scalar theta = cosine_distance_angle(d[p]);
          const Scalar z = lse - s * std::cos(theta - m);
          const SoftplusValue<Scalar> sp = softplus_with_slope(z);
          const Scalar weighted = w * sp.value;
          sum += weighted;
          if (weighted > Scalar(0)) ++counted;
          if (!dD || (nonzero_only && !(weighted > Scalar(0)))) continue;
          sigma_sum += sp.slope;
          const Scalar sin_theta = std::sin(theta);
          (*dD)(a, p) = sin_theta > Scalar(0) ? w * s * sp.slope * std::sin(theta - m) / sin_theta : Scalar(0);
        }
        if (dD && sigma_sum != Scalar(0)) {
          const Scalar f = -w * s * sigma_sum / S;
          for (Index j = 0; j < n; ++j) {
            const Scalar e = sc.e[static_cast<std::size_t>(j)];
            if (e != Scalar(0)) (*dD)(a, j) = f * e;
          }
        }
        anchor_sums[ua] = sum;
        anchor_pairs[ua] = positives;
        anchor_positive[ua] = counted;
        if (terms) (*terms)(a) = sum;
      });
      // In anchor order, whatever the threads.
      for (Index a = D.first; a < D.end(); ++a) {
        const std::size_t ua = static_cast<std::size_t>(a);
        if (anchor_pairs[ua] > 0) tally.add_totals(anchor_sums[ua], anchor_pairs[ua], anchor_positive[ua]);
      }
    };
    auto finish = [&] { return tally.finish(); };
    return run_pairwise_loss<Scalar>(name, metric, X, o.workspace_bytes, panel_loss<dense_gradient>(panel, finish),
                                     grads);
  }
};

}  // namespace detail

// tuplet_margin_loss(X, labels, [Cosine / AnyMetric cosine], [options], [value_only | grad_out...]):
// every ordered positive pair of the batch against the anchor's negatives; grad = {dX};
// terms: one per row (the anchor's pairs, summed).
template <class Metric = Cosine, class DX, class... Tail>
auto tuplet_margin_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::TupletMarginLoss, Metric>(X, labels, tail...);
}

}  // namespace contrastive
