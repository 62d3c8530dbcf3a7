// Semi-hard triplet loss (Schroff et al. 2015, FaceNet), TensorFlow Addons
// semantics: one triplet per ordered positive pair.
//
//   for each (a, p), a != p, y_a = y_p:
//     n*(a, p) = the negative closest to a with d(a, n) > d(a, p);
//                if there is none, the negative farthest from a
//     term(a, p) = [d(a,p) - d(a,n*) + margin]+    (options.soft: softplus(d(a,p) - d(a,n*) + margin))
//   loss = reduce over the positive pairs: Reduction::Mean (default, TFA divides
//          by the number of positive pairs), Sum or MeanNonZero.
//
// The choice of n* does not depend on the margin. Ties in d(a, n) pick the
// lowest index. An anchor with no negative at all (only possible in a
// single-class batch) has no triplet: its pairs are skipped, not counted by
// Mean, so a single-class batch gives loss 0 and zero gradient. (TFA's masked
// maximum gives such an anchor d(a,n*) = 0, i.e. term d(a,p) + margin.)
// Terms: one per positive pair of an anchor that has a negative, ordered by
// anchor, then by positive index. options.swap is rejected (invalid_argument).
// Sample weights: one per row, a pair (a, p) taking its anchor's.
//
// Reproducing other libraries:
// - TensorFlow Addons tfa.losses.triplet_semihard_loss(margin, distance_metric):
//   Metric = Euclidean ("L2", TFA's default), SquaredEuclidean ("squared-L2");
//   same margin, Reduction::Mean. Identical for every batch with two or more
//   classes (TFA returns NaN when there is no positive pair; we return 0).
// - pytorch-metric-learning's TripletMarginMiner(type_of_triplets="semihard")
//   selects all semi-hard triplets, not one per pair: use mine_triplets and the
//   index form of triplet_margin_loss instead.
//
// Algorithm. Batches with few positives per anchor (at most
// tile_positives_per_anchor on average: P x K batches) run on symmetric tiles,
// half a Gram product and no N x N buffer: pass 1 records every positive
// pair's distance and each anchor's farthest negative; a second look at each
// tile (kept or recomputed) keeps, for every positive pair, its closest
// negative strictly farther than the positive, in O(N^2 K) vectorised compares;
// the gradient is sparse (two entries per triplet). Other batches run on row
// panels: per anchor, n* of every positive from SemihardSelection
// (mining/detail/semihard_selection.hpp, the selection mine_semihard returns),
// which sorts the smaller side, O(N^2 log K). Both apply the same rule and
// agree to rounding (tests/test_engine.cpp).
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/core/label_groups.hpp"
#include "contrastive/losses/detail/positive_pairs.hpp"
#include "contrastive/mining/detail/semihard_selection.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// Semi-hard triplets on symmetric tiles (the header's rule).
template <class Scalar>
class BatchSemihardTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = true;
  static constexpr bool refine_pass = true;

  BatchSemihardTiles(LabelGroups groups, const TripletOptions& options, Tally<Scalar> tally, Vector<Scalar>* terms)
      : options_(options), tally_(std::move(tally)), terms_(terms), pairs_(std::move(groups)),
        n_(static_cast<Index>(pairs_.groups().ids.size())) {
    positive_d_.assign(pairs_.size(), Scalar(0));
    best_d_.assign(pairs_.size(), inf());
    best_j_.assign(pairs_.size(), -1);
    far_d_.assign(static_cast<std::size_t>(n_), -inf());
    far_j_.assign(static_cast<std::size_t>(n_), -1);
  }

  // Pass 1: the positive pairs' distances, each anchor's farthest negative.
  void tile(const DistanceTile<Scalar>& t) {
    TileRowBuffer<Scalar> masked{};
    const std::int32_t* ids = pairs_.groups().ids.data();
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      pairs_.record(i, j0, m, d, positive_d_);
      const std::int32_t li = ids[i];
      const std::int32_t ii = static_cast<std::int32_t>(i);
      const std::int32_t* lab = ids + j0;
      Scalar* fd = far_d_.data() + j0;
      std::int32_t* fj = far_j_.data() + j0;
      // The column anchors j see i; -1 (nothing yet) sits with -inf, which no v ties.
      for (Index c = 0; c < m; ++c) {
        const Scalar v = d[c];
        const bool take = (lab[c] != li) & ((v > fd[c]) | ((v == fd[c]) & (ii < fj[c])));
        fd[c] = take ? v : fd[c];
        fj[c] = take ? ii : fj[c];
      }
      Scalar* mk = masked.data();
      for (Index c = 0; c < m; ++c) mk[c] = lab[c] != li ? d[c] : -inf();
      keep_extreme(mk, m, j0, true, far_d_[static_cast<std::size_t>(i)], far_j_[static_cast<std::size_t>(i)]);
    }
  }

  // Every positive pair's closest negative strictly farther than the
  // positive, from both sides of the tile.
  template <MetricKind>
  void refine_tile(const DistanceTile<Scalar>& t) {
    TileRowBuffer<Scalar> masked{};
    const std::int32_t* ids = pairs_.groups().ids.data();
    // The column anchors' thresholds and bests, one row of the tile's width per positive rank.
    Index k_max = 0;
    for (Index c = 0; c < t.cols; ++c) k_max = std::max(k_max, pairs_.count(t.j0 + c));
    const std::size_t width = static_cast<std::size_t>(t.cols);
    std::vector<Scalar> thr(static_cast<std::size_t>(k_max) * width, inf()), bd(thr.size(), inf());
    std::vector<std::int32_t> bj(thr.size(), -1);
    for (Index c = 0; c < t.cols; ++c) {
      const std::size_t first = static_cast<std::size_t>(pairs_.first(t.j0 + c));
      for (Index k = 0; k < pairs_.count(t.j0 + c); ++k) {
        const std::size_t at = static_cast<std::size_t>(k) * width + static_cast<std::size_t>(c);
        thr[at] = positive_d_[first + static_cast<std::size_t>(k)];
        bd[at] = best_d_[first + static_cast<std::size_t>(k)];
        bj[at] = best_j_[first + static_cast<std::size_t>(k)];
      }
    }
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      const std::int32_t li = ids[i];
      const std::int32_t ii = static_cast<std::int32_t>(i);
      const std::int32_t* lab = ids + j0;
      // Row anchor i: per positive, a vectorised masked minimum, the index only on improvement.
      const std::size_t first = static_cast<std::size_t>(pairs_.first(i));
      for (Index k = 0; k < pairs_.count(i); ++k) {
        const std::size_t s = first + static_cast<std::size_t>(k);
        const Scalar threshold = positive_d_[s];
        Scalar* mk = masked.data();
        for (Index c = 0; c < m; ++c) mk[c] = ((lab[c] != li) & (d[c] > threshold)) ? d[c] : inf();
        keep_extreme(mk, m, j0, false, best_d_[s], best_j_[s]);
      }
      // Column anchors j see i, elementwise over the row, one pass per positive rank.
      for (Index k = 0; k < k_max; ++k) {
        const std::size_t base = static_cast<std::size_t>(k) * width + static_cast<std::size_t>(c0);
        const Scalar* th = thr.data() + base;
        Scalar* b = bd.data() + base;
        std::int32_t* j = bj.data() + base;
        for (Index c = 0; c < m; ++c) {
          const Scalar v = d[c];
          // Bitwise, not short-circuit: one vectorised select per lane.
          const bool take = (lab[c] != li) & (v > th[c]) & ((v < b[c]) | ((v == b[c]) & (ii < j[c])));
          b[c] = take ? v : b[c];
          j[c] = take ? ii : j[c];
        }
      }
    }
    for (Index c = 0; c < t.cols; ++c) {
      const std::size_t first = static_cast<std::size_t>(pairs_.first(t.j0 + c));
      for (Index k = 0; k < pairs_.count(t.j0 + c); ++k) {
        // The better of the two: in a diagonal tile the row pass improved the same anchors.
        const std::size_t at = static_cast<std::size_t>(k) * width + static_cast<std::size_t>(c);
        const std::size_t s = first + static_cast<std::size_t>(k);
        if (bd[at] < best_d_[s] || (bd[at] == best_d_[s] && bj[at] >= 0 && (best_j_[s] < 0 || bj[at] < best_j_[s]))) {
          best_d_[s] = bd[at];
          best_j_[s] = bj[at];
        }
      }
    }
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>* sink) {
    const Scalar margin = static_cast<Scalar>(options_.margin);
    std::vector<Scalar> values;
    for (Index a = 0; a < n_; ++a) {
      const std::size_t ua = static_cast<std::size_t>(a);
      if (far_j_[ua] < 0) continue;  // no negative: no triplet
      const Index* cls = pairs_.groups().class_of(a);
      std::size_t s = static_cast<std::size_t>(pairs_.first(a));
      for (Index k = 0; k < pairs_.groups().class_size(a); ++k) {
        const Index p = cls[k];
        if (p == a) continue;
        const bool semihard = best_j_[s] >= 0;
        const Index neg = semihard ? best_j_[s] : far_j_[ua];
        const Scalar d_an = semihard ? best_d_[s] : far_d_[ua];
        const TripletTerm<Scalar> term = triplet_term<Scalar>(positive_d_[s], d_an, margin, options_.soft);
        const Scalar value = tally_.add(a, term.value);
        if (terms_) values.push_back(value);
        const Scalar slope = tally_.weight(a) * term.slope;
        if (sink && slope != Scalar(0)) {
          sink->add(a, p, slope, positive_d_[s]);
          sink->add(a, neg, -slope, d_an);
        }
        ++s;
      }
    }
    if (terms_) *terms_ = Eigen::Map<const Vector<Scalar>>(values.data(), static_cast<Index>(values.size()));
    return tally_.finish();
  }

 private:
  static constexpr Scalar inf() { return std::numeric_limits<Scalar>::infinity(); }

  // The largest (or smallest) of masked[0, m) (columns j0 + c) against (best, index):
  // a better value, or an equal one at a lower index, replaces it. A vectorised
  // extreme first; the index only when it can win.
  static void keep_extreme(const Scalar* masked, Index m, Index j0, bool largest, Scalar& best, std::int32_t& index) {
    const Eigen::Map<const Vector<Scalar>> v(masked, m);
    const Scalar e = largest ? v.maxCoeff() : v.minCoeff();
    if (e == (largest ? -inf() : inf())) return;
    if (largest ? e < best : e > best) return;
    Index c = 0;
    while (!(masked[c] == e)) ++c;
    const std::int32_t j = static_cast<std::int32_t>(j0 + c);
    if (e != best || j < index) {
      best = e;
      index = j;
    }
  }

  const TripletOptions& options_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  PositivePairs pairs_;
  Index n_;
  std::vector<Scalar> positive_d_, best_d_, far_d_;
  std::vector<std::int32_t> best_j_, far_j_;
};

struct BatchSemihardTripletLoss {
  static constexpr const char* name = "batch_semihard_triplet_loss";
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
    LabelGroups groups(labels);
    if (few_positives_per_anchor(groups)) {
      return run_pairwise_loss<Scalar>(fn, metric, X, options.workspace_bytes,
                                       BatchSemihardTiles<Scalar>(std::move(groups), options, std::move(tally), terms),
                                       grads);
    }
    const Scalar margin = static_cast<Scalar>(options.margin);
    // A positive pair's triplet as its anchor's thread finds it: tallied, and
    // its gradient entries written, in anchor order afterwards.
    struct Found {
      Index anchor, positive, negative;
      Scalar value, slope;
      Index slot, of;  // the pair's rank among the anchor's positives in column order, of how many
    };
    struct Scratch {
      AnchorSides<Scalar> sides;
      SemihardSelection<Scalar> semihard;
      std::vector<Index> rank;  // column of a positive -> its rank in column order
      std::vector<Found> found;
    };
    std::vector<Scratch> scratch(anchor_threads(), Scratch{AnchorSides<Scalar>(n), SemihardSelection<Scalar>(n),
                                                           std::vector<Index>(static_cast<std::size_t>(n)), {}});
    std::vector<Scalar> term_values;
    if (terms) term_values.reserve(static_cast<std::size_t>(n) * 4);
    auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
      for (Scratch& sc : scratch) sc.found.clear();
      for_each_anchor(D, scratch, [&](Index a, Scratch& sc) {
        sc.sides.split(a, D.row_vector(a), labels);
        RankedDistance<Scalar>* const pos = sc.sides.positives();
        RankedDistance<Scalar>* const neg = sc.sides.negatives();
        const std::size_t np = sc.sides.num_positives;
        const std::size_t nn = sc.sides.num_negatives;
        if (np == 0 || nn == 0) return;
        for (std::size_t t = 0; t < np; ++t) sc.rank[static_cast<std::size_t>(pos[t].index)] = static_cast<Index>(t);
        // Reorders pos: the terms below follow it, and rank puts them back in column order.
        const std::vector<RankedDistance<Scalar>>& chosen = sc.semihard.select(pos, np, neg, nn);
        for (std::size_t t = 0; t < np; ++t) {
          const TripletTerm<Scalar> term =
              triplet_term<Scalar>(pos[t].distance, chosen[t].distance, margin, options.soft);
          sc.found.push_back(Found{a, pos[t].index, chosen[t].index, term.value, term.slope,
                                   sc.rank[static_cast<std::size_t>(pos[t].index)], static_cast<Index>(np)});
        }
      });
      // The threads' chunks in thread order are the anchors in order.
      Index current = -1;
      std::size_t first_term = 0;
      for (const Scratch& sc : scratch) {
        for (const Found& f : sc.found) {
          if (terms && f.anchor != current) {
            current = f.anchor;
            first_term = term_values.size();
            term_values.resize(first_term + static_cast<std::size_t>(f.of));
          }
          const Scalar value = tally.add(f.anchor, f.value);
          if (terms) term_values[first_term + static_cast<std::size_t>(f.slot)] = value;
          const Scalar slope = tally.weight(f.anchor) * f.slope;
          if (dD && slope != Scalar(0)) {
            dD->add(f.anchor, f.positive, slope);
            dD->add(f.anchor, f.negative, -slope);
          }
        }
      }
    };
    auto finish = [&] {
      if (terms) *terms = Eigen::Map<const Vector<Scalar>>(term_values.data(), static_cast<Index>(term_values.size()));
      return tally.finish();
    };
    return run_pairwise_loss<Scalar>(fn, metric, X, options.workspace_bytes, panel_loss<sparse_gradient>(panel, finish),
                                     grads);
  }
};

}  // namespace detail

// batch_semihard_triplet_loss(X, labels, [metric], [options], [value_only | grad_out...])
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_semihard_triplet_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::BatchSemihardTripletLoss, Metric>(X, labels, tail...);
}

}  // namespace contrastive
