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
// Algorithm, O(N^2 log K) beyond the two products: per anchor, n* of every
// positive from SemihardSelection (mining/detail/semihard_selection.hpp, the
// selection mine_semihard returns), which sorts the smaller side.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/triplet_common.hpp"
#include "contrastive/losses/triplet_options.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/mining/detail/semihard_selection.hpp"

#include <vector>

namespace contrastive {
namespace detail {

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
