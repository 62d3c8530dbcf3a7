// Batch-all triplet loss: every valid triplet of the batch.
//
//   valid (a, p, n): y_a = y_p, a != p, y_n != y_a
//   loss = reduce over valid triplets of [d(a,p) - d(a,n) + margin]+
//          (options.soft: softplus(d(a,p) - d(a,n) + margin); margin 0 is the
//          Hermans et al. soft margin)
//     Reduction::MeanNonZero: divide by the number of triplets with positive loss
//     Reduction::Mean (default): divide by the number of valid triplets
//     Reduction::Sum
//
// Terms: one per anchor (length N): the summed hinge (softplus) of the
// anchor's valid triplets, 0 for an anchor without a positive or a negative.
// A triplet whose hinge is exactly 0 is inactive (no loss, no gradient, not
// counted by MeanNonZero). A softplus is > 0 for every triplet unless it
// underflows (d_ap - d_an + margin below about -745 in double, -103 in float),
// so MeanNonZero with soft is the mean over the valid triplets, as PML's
// AvgNonZeroReducer on its smooth_loss. No valid triplet: loss 0, zero
// gradient. options.swap is rejected (invalid_argument).
// Sample weights: one per row, every triplet taking its anchor's weight.
//
// Reproducing other libraries:
// - pytorch-metric-learning TripletMarginLoss(margin=0.05) without a miner
//   (all triplets, AvgNonZeroReducer): margin = 0.05, Reduction::MeanNonZero;
//   TripletMarginLoss(margin, smooth_loss=True): the same with soft = true
//   (tests/test_batch_all_triplet_loss.cpp against
//   tests/reference/data/pml_soft_triplet.txt, written by PML 2.8.1 itself, for
//   CosineSimilarity() = Cosine, DotProductSimilarity(normalize_embeddings=False)
//   = DotProduct, LpDistance(normalize_embeddings=False) = Euclidean, and its
//   power=2 = SquaredEuclidean). PML's default LpDistance normalises the
//   embeddings: pass unit rows. PML's softplus (torch's, threshold 20) returns x
//   itself above 20, where ours adds log1p(e^-x) < 2.1e-9.
// - TensorFlow Addons / PyTorch have no batch-all loss.
//
// Soft: the softplus does not decompose over an anchor's sorted distances, so
// each anchor's P x N_neg triplets are visited directly: O(N P N_neg) time,
// O(N) scratch per thread beyond the pairwise workspace, never N^3 memory.
//
// Algorithm, O(N^2 log K) beyond the two products, never enumerating
// triplets: per anchor, sort the smaller side (usually its K-1 positives)
// ascending; each element of the other side binary-searches the sorted side
// for the triplets it makes active (a suffix of the sorted positives, or a
// prefix of the sorted negatives). Weighted sums of the gaps between sorted
// neighbours give the summed hinge (below); the number found is the
// negative's (positive's) dL/dD; a difference array over the sorted order with
// a running sum gives the other side's.
//
// Precision: the active hinges of one element are summed as
//   c * (hinge of the boundary triplet) + sum over gaps g_u >= 0 of (count) * g_u,
// every term non-negative, so the sum is as accurate as a direct loop over the
// hinges. (Sums of raw distances, c * (d + m) - sum of d, would cancel to noise
// of eps * d per triplet when distances are large beside the margin.)
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

struct BatchAllTripletLoss {
  static constexpr const char* name = "batch_all_triplet_loss";
  using Options = TripletOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    const char* fn = name;
    require_embeddings<Scalar>(fn, "X", X);
    require_triplet_options(fn, options, true, false);
    metric.check_rows(fn, X);
    Tally<Scalar> tally(fn, "options.reduction", options.reduction, X.rows(), "the rows of X");

    const Index n = X.rows();
    const Scalar margin = static_cast<Scalar>(options.margin);
    if (terms) terms->setZero(n);
    // Per thread: one anchor's split, the gap sums over its sorted side and the
    // difference array over it. Per anchor: its summed hinge, valid and active triplets.
    struct Scratch {
      AnchorSides<Scalar> sides;
      std::vector<Scalar> gap_sums;    // per boundary j: the active elements' distances from the boundary element,
                                       // summed (soft: each positive's, then each negative's summed slopes)
      std::vector<Index> activations;  // difference array over the sorted side
    };
    std::vector<Scratch> scratch(anchor_threads(), Scratch{AnchorSides<Scalar>(n), {}, {}});
    std::vector<Scalar> anchor_sums(static_cast<std::size_t>(n));
    std::vector<Index> anchor_valid(static_cast<std::size_t>(n)), anchor_active(static_cast<std::size_t>(n));
    auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
      for_each_anchor(D, scratch, [&](Index a, Scratch& sc) {
        AnchorSides<Scalar>& sides = sc.sides;
        std::vector<Scalar>& gap_sums = sc.gap_sums;
        std::vector<Index>& activations = sc.activations;
        const std::size_t u_a = static_cast<std::size_t>(a);
        anchor_valid[u_a] = 0;
        sides.split(a, D.row_vector(a), labels);
        RankedDistance<Scalar>* const pos = sides.positives();
        RankedDistance<Scalar>* const neg = sides.negatives();
        const std::size_t np = sides.num_positives;
        const std::size_t nn = sides.num_negatives;
        if (np == 0 || nn == 0) return;
        const Scalar w = tally.weight(a);
        Scalar anchor_sum(0);
        Index active = 0;
        if (dD) activations.assign(std::min(np, nn) + 1, 0);
        if (options.soft) {
          // Every triplet of the anchor, directly; dL/dD summed per side.
          if (dD) gap_sums.assign(np + nn, Scalar(0));
          for (std::size_t t = 0; t < np; ++t) {
            for (std::size_t k = 0; k < nn; ++k) {
              const TripletTerm<Scalar> term = triplet_term<Scalar>(pos[t].distance, neg[k].distance, margin, true);
              if (!(term.value > Scalar(0))) continue;
              anchor_sum += term.value;
              ++active;
              if (dD) {
                gap_sums[t] += term.slope;
                gap_sums[np + k] += term.slope;
              }
            }
          }
          if (dD) {
            for (std::size_t t = 0; t < np; ++t) (*dD)(a, pos[t].index) = w * gap_sums[t];
            for (std::size_t k = 0; k < nn; ++k) (*dD)(a, neg[k].index) = -w * gap_sums[np + k];
          }
        } else if (np <= nn) {
          std::sort(pos, pos + np, ranked_less<Scalar>);
          // gap_sums[j] = sum over t >= j of (d_t - d_j) = sum over u > j of (np - u) * (d_u - d_{u-1}).
          gap_sums.assign(np + 1, Scalar(0));
          for (std::size_t u = np; u-- > 1;)
            gap_sums[u - 1] = gap_sums[u] + static_cast<Scalar>(np - u) * (pos[u].distance - pos[u - 1].distance);
          for (std::size_t k = 0; k < nn; ++k) {
            const Scalar v = neg[k].distance;
            // The hinge grows with d_ap, so the inactive positives form a prefix.
            const std::size_t j = partition_point_index(
                pos, np, [&](const RankedDistance<Scalar>& q) { return !(q.distance - v + margin > Scalar(0)); });
            // c = 0 adds nothing; j = np is a spare slot of the difference array.
            const Index c = static_cast<Index>(np - j);
            if (c > 0) anchor_sum += gap_sums[j] + static_cast<Scalar>(c) * ((pos[j].distance - v) + margin);
            active += c;
            if (dD) {
              (*dD)(a, neg[k].index) = -w * static_cast<Scalar>(c);
              ++activations[j];
            }
          }
          if (dD) {
            Index running = 0;
            for (std::size_t t = 0; t < np; ++t) {
              running += activations[t];
              (*dD)(a, pos[t].index) = w * static_cast<Scalar>(running);
            }
          }
        } else {
          std::sort(neg, neg + nn, ranked_less<Scalar>);
          // gap_sums[j] = sum over t < j of (d_{j-1} - d_t) = sum over u < j of u * (d_u - d_{u-1}).
          gap_sums.assign(nn + 1, Scalar(0));
          for (std::size_t u = 1; u < nn; ++u)
            gap_sums[u + 1] = gap_sums[u] + static_cast<Scalar>(u) * (neg[u].distance - neg[u - 1].distance);
          for (std::size_t k = 0; k < np; ++k) {
            const Scalar s = pos[k].distance;
            // The hinge falls with d_an, so the active negatives form a prefix.
            const std::size_t j = partition_point_index(
                neg, nn, [&](const RankedDistance<Scalar>& q) { return s - q.distance + margin > Scalar(0); });
            const Index c = static_cast<Index>(j);
            if (c > 0) anchor_sum += gap_sums[j] + static_cast<Scalar>(c) * ((s - neg[j - 1].distance) + margin);
            active += c;
            if (dD) {
              (*dD)(a, pos[k].index) = w * static_cast<Scalar>(c);
              ++activations[j];
            }
          }
          if (dD) {
            // Negative t is active for every positive whose prefix ends beyond t.
            Index running = 0;
            for (std::size_t t = nn; t-- > 0;) {
              running += activations[t + 1];
              (*dD)(a, neg[t].index) = -w * static_cast<Scalar>(running);
            }
          }
        }
        // The anchor's triplets all take its weight: w > 0 keeps their positive count.
        const Scalar weighted = tally.weighted() ? w * anchor_sum : anchor_sum;
        if (terms) (*terms)(a) = weighted;
        anchor_sums[u_a] = weighted;
        anchor_valid[u_a] = static_cast<Index>(np) * static_cast<Index>(nn);
        anchor_active[u_a] = w > Scalar(0) ? active : 0;
      });
      // In anchor order, whatever the threads.
      for (Index a = D.first; a < D.end(); ++a) {
        const std::size_t u_a = static_cast<std::size_t>(a);
        if (anchor_valid[u_a] > 0) tally.add_totals(anchor_sums[u_a], anchor_valid[u_a], anchor_active[u_a]);
      }
    };
    auto finish = [&] { return tally.finish(); };
    return run_pairwise_loss<Scalar>(fn, metric, X, options.workspace_bytes, panel_loss<dense_gradient>(panel, finish),
                                     grads);
  }
};

}  // namespace detail

// batch_all_triplet_loss(X, labels, [metric], [options], [value_only | grad_out...])
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_all_triplet_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::BatchAllTripletLoss, Metric>(X, labels, tail...);
}

}  // namespace contrastive
