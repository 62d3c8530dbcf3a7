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
// Algorithm. Hinge batches with few positives per anchor (at most
// tile_positives_per_anchor = 32 on average: P x K batches) run on symmetric
// tiles: pass 1 records the positive pairs' distances, a second look at each
// tile sums every positive pair's hinges over its negatives directly (O(N^2 K)
// vectorised), pass 2 forms the pair weights (a positive's active count, a
// negative's count of the anchor's positives it activates) for the dense
// backward; no N x N buffer. The others (and soft) run on row panels, O(N^2 log K)
// beyond the two products, never enumerating
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
#include "contrastive/core/label_groups.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/positive_pairs.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// Hinge batch-all on symmetric tiles (the header's rule).
template <class Scalar>
class BatchAllTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool refine_pass = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  BatchAllTiles(LabelGroups groups, const TripletOptions& options, Tally<Scalar> tally, Vector<Scalar>* terms)
      : margin_(static_cast<Scalar>(options.margin)), tally_(std::move(tally)), terms_(terms),
        pairs_(std::move(groups)), n_(static_cast<Index>(pairs_.groups().ids.size())) {
    positive_d_.assign(pairs_.size(), Scalar(0));
    hinge_sum_.assign(pairs_.size(), Scalar(0));
    active_.assign(pairs_.size(), Scalar(0));
  }

  // Pass 1: the positive pairs' distances.
  void tile(const DistanceTile<Scalar>& t) {
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      pairs_.record(i, j0, m, d, positive_d_);
    }
  }

  // Every positive pair's hinges (d_ap - d_an) + margin over the tile's
  // negatives, summed with their active count, from both sides of the tile.
  template <MetricKind>
  void refine_tile(const DistanceTile<Scalar>& t) {
    TileRowBuffer<Scalar> other{}, hinge{}, active{};
    Columns cols(*this, t);
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      const Scalar* neg = negatives(i, j0, m, other.data());
      const std::size_t first = static_cast<std::size_t>(pairs_.first(i));
      Scalar* is_active = active.data();
      for (Index k = 0; k < pairs_.count(i); ++k) {
        const std::size_t s = first + static_cast<std::size_t>(k);
        const Scalar threshold = positive_d_[s];
        // Selects into buffers, then vectorised sums (a bool count would not vectorise).
        Scalar* hv = hinge.data();
        for (Index c = 0; c < m; ++c) {
          const Scalar h = ((threshold - d[c]) + margin_) * neg[c];
          hv[c] = h > Scalar(0) ? h : Scalar(0);
          is_active[c] = h > Scalar(0) ? Scalar(1) : Scalar(0);
        }
        hinge_sum_[s] += Eigen::Map<const Row>(hv, m).sum();
        active_[s] += Eigen::Map<const Row>(is_active, m).sum();
      }
      for (Index k = 0; k < cols.k_max; ++k) {
        const Scalar* th = cols.threshold(k) + c0;
        Scalar* hs = cols.sum(k) + c0;
        Scalar* ac = cols.active(k) + c0;
        for (Index c = 0; c < m; ++c) {
          const Scalar h = ((th[c] - d[c]) + margin_) * neg[c];
          hs[c] += std::max(h, Scalar(0));  // a max vectorises; a select of arithmetic does not
          ac[c] += h > Scalar(0) ? Scalar(1) : Scalar(0);
        }
      }
    }
    cols.add_to(*this);
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    const LabelGroups& g = pairs_.groups();
    if (terms_) terms_->setZero(n_);
    positive_weight_.assign(pairs_.size(), Scalar(0));
    anchor_weight_.setZero(n_);
    for (Index a = 0; a < n_; ++a) {
      const Index np = pairs_.count(a), nn = n_ - g.class_size(a);
      if (np == 0 || nn == 0) continue;
      const Scalar w = tally_.weight(a);
      Scalar sum(0), active(0);
      for (Index k = 0; k < np; ++k) {
        const std::size_t s = static_cast<std::size_t>(pairs_.first(a) + k);
        sum += hinge_sum_[s];
        active += active_[s];
        positive_weight_[s] = w * active_[s];
      }
      // The anchor's triplets all take its weight: w > 0 keeps their positive count.
      const Scalar weighted = tally_.weighted() ? w * sum : sum;
      if (terms_) (*terms_)(a) = weighted;
      tally_.add_totals(weighted, np * nn, w > Scalar(0) ? static_cast<Index>(active) : 0);
      anchor_weight_(a) = w;
    }
    return tally_.finish();
  }

  // dL/dd of each pair from both anchors: a positive's w * (its active
  // negatives), a negative's -w * (the anchor's positives it activates).
  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> other{}, count{};
    Columns cols(*this, t);
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      const Scalar* neg = negatives(i, j0, m, other.data());
      Scalar* counted = count.data();
      std::fill(counted, counted + m, Scalar(0));
      const std::size_t first = static_cast<std::size_t>(pairs_.first(i));
      for (Index k = 0; k < pairs_.count(i); ++k) {
        const Scalar threshold = positive_d_[first + static_cast<std::size_t>(k)];
        for (Index c = 0; c < m; ++c) counted[c] += ((threshold - d[c]) + margin_) > Scalar(0) ? Scalar(1) : Scalar(0);
      }
      Scalar* g = W + (i - t.i0) * t.cols + c0;
      const Scalar wi = anchor_weight_(i);
      for (Index c = 0; c < m; ++c) g[c] = -wi * counted[c] * neg[c];
      for (Index k = 0; k < cols.k_max; ++k) {
        const Scalar* th = cols.threshold(k) + c0;
        const Scalar* wj = cols.weight() + c0;
        for (Index c = 0; c < m; ++c) {
          const Scalar h = ((th[c] - d[c]) + margin_) * neg[c];
          g[c] -= (h > Scalar(0) ? Scalar(1) : Scalar(0)) * wj[c];  // exact: wj is finite
        }
      }
      pairs_.for_positives(i, j0, m, [&](Index p) {
        g[p - j0] = positive_weight_[pairs_.slot(i, p)] + positive_weight_[pairs_.slot(p, i)];
      });
    }
  }

 private:
  // A tile's column anchors, one row of the tile's width per positive rank:
  // their thresholds (-inf past a column's positives: no hinge is active
  // there, and -inf * 0 is NaN, not > 0), and the sums the refine pass adds back.
  struct Columns {
    Index k_max = 0;
    std::size_t width;
    std::vector<Scalar> thresholds, sums, actives, weights;
    Index j0;

    Columns(const BatchAllTiles& loss, const DistanceTile<Scalar>& t) : width(static_cast<std::size_t>(t.cols)), j0(t.j0) {
      for (Index c = 0; c < t.cols; ++c) k_max = std::max(k_max, loss.pairs_.count(t.j0 + c));
      thresholds.assign(static_cast<std::size_t>(k_max) * width, -std::numeric_limits<Scalar>::infinity());
      sums.assign(thresholds.size(), Scalar(0));
      actives.assign(thresholds.size(), Scalar(0));
      weights.assign(width, Scalar(0));
      for (Index c = 0; c < t.cols; ++c) {
        const std::size_t first = static_cast<std::size_t>(loss.pairs_.first(t.j0 + c));
        for (Index k = 0; k < loss.pairs_.count(t.j0 + c); ++k) {
          thresholds[at(k, c)] = loss.positive_d_[first + static_cast<std::size_t>(k)];
        }
        if (loss.anchor_weight_.size() > 0) weights[static_cast<std::size_t>(c)] = loss.anchor_weight_(t.j0 + c);
      }
    }
    std::size_t at(Index k, Index c) const { return static_cast<std::size_t>(k) * width + static_cast<std::size_t>(c); }
    const Scalar* threshold(Index k) const { return thresholds.data() + at(k, 0); }
    Scalar* sum(Index k) { return sums.data() + at(k, 0); }
    Scalar* active(Index k) { return actives.data() + at(k, 0); }
    const Scalar* weight() const { return weights.data(); }
    void add_to(BatchAllTiles& loss) const {
      for (std::size_t c = 0; c < width; ++c) {
        const Index a = j0 + static_cast<Index>(c);
        const std::size_t first = static_cast<std::size_t>(loss.pairs_.first(a));
        for (Index k = 0; k < loss.pairs_.count(a); ++k) {
          loss.hinge_sum_[first + static_cast<std::size_t>(k)] += sums[at(k, static_cast<Index>(c))];
          loss.active_[first + static_cast<std::size_t>(k)] += actives[at(k, static_cast<Index>(c))];
        }
      }
    }
  };

  // 1 where column j0 + c is a negative of i, else 0.
  const Scalar* negatives(Index i, Index j0, Index m, Scalar* out) const {
    label_mask<Scalar>(pairs_.groups().ids, i, j0, m, Scalar(0), Scalar(1), out);
    return out;
  }

  Scalar margin_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  PositivePairs pairs_;
  Index n_;
  std::vector<Scalar> positive_d_, hinge_sum_, active_, positive_weight_;
  Vector<Scalar> anchor_weight_;
};

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
    if (!options.soft) {
      LabelGroups groups(labels);
      if (few_positives_per_anchor(groups)) {
        return run_pairwise_loss<Scalar>(fn, metric, X, options.workspace_bytes,
                                         BatchAllTiles<Scalar>(std::move(groups), options, std::move(tally), terms),
                                         grads);
      }
    }
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
