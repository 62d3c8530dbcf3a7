// Contrastive (pair) loss: pull positive pairs within pos_margin, push
// negative pairs beyond neg_margin.
//
//   positive pair:  scale * [d - pos_margin]+      (squared: scale * [d - pos_margin]+^2)
//   negative pair:  scale * [neg_margin - d]+      (squared: scale * [neg_margin - d]+^2)
//
// d is the Metric's distance (Euclidean by default). The terms are reduced with
// options.reduction over all pairs, or, with options.average_separately, the
// positive and the negative terms are each reduced on their own and the two
// results added.
//
// Three ways to give the pairs:
//   contrastive_loss<Metric>(X1, X2, similar, options)   row i of X1 with row i of X2;
//       `similar` an integer/bool vector, 1 = positive pair, 0 = negative pair
//       (any other value throws std::invalid_argument). grad = {dX1, dX2};
//       terms: one per row, in row order.
//   contrastive_loss<Metric>(X, pairs, options)          mined index pairs (contrastive::Pairs).
//       grad = {dX}; terms: one per pair, in the order of `pairs`.
//   batch_contrastive_loss<Metric>(X, labels, options)   every pair i < j, equal labels = positive.
//       grad = {dX}; terms: the N(N-1)/2 pairs in row-major upper-triangle order
//       (0,1), (0,2), ..., (0,N-1), (1,2), ..., while they fit options.workspace_bytes;
//       beyond it terms is empty (per-pair terms are O(N^2) memory).
//
// Options (ContrastiveOptions): pos_margin (0) <= neg_margin (1), both >= 0;
// squared (false); reduction (Mean); average_separately (false); scale (1, > 0).
// Sample weights (reduction = Mean(w) etc., core/reducer.hpp): explicit pairs,
// one per row of X1 (pair); mined pairs, one per row of X, a pair taking its
// first index's; batch_contrastive_loss, one per row, a pair (i, j) taking
// (w_i + w_j) / 2.
//
// Reproducing other libraries (each proved by tests/test_contrastive_loss.cpp
// against tests/reference/data/pair_*.txt written by PyTorch):
//   Hadsell, Chopra & LeCun 2006, L = sum (1-Y) 1/2 D^2 + Y 1/2 max(0, m - D)^2
//   (their Y = 0 marks a similar pair):
//       squared = true, scale = 0.5, pos_margin = 0, neg_margin = m, reduction = Sum
//       (or Mean for the batch average).
//   TensorFlow Addons tfa.losses.contrastive_loss(y, d, margin=m) with the Keras
//   default reduction, mean of y d^2 + (1 - y) max(m - d, 0)^2 (d = Euclidean distance):
//       contrastive_loss(X1, X2, y, {pos_margin 0, neg_margin m, squared true, Mean}).
//   pytorch-metric-learning ContrastiveLoss(pos_margin=0, neg_margin=1) with its
//   defaults (LpDistance(normalize_embeddings=True), AvgNonZeroReducer on each
//   sub-loss, sub-losses added):
//       batch_contrastive_loss on row-normalised embeddings with
//       {pos_margin, neg_margin, squared false, MeanNonZero, average_separately true}.
//       PML counts ordered pairs (i, j) and (j, i); averages are unchanged by that.
//       Normalise rows yourself (PML's gradient then flows through the normalisation
//       in your framework); our gradient is with respect to the rows passed in.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace contrastive {

struct ContrastiveOptions {
  double pos_margin = 0;   // positive pairs closer than this cost nothing
  double neg_margin = 1;   // negative pairs farther than this cost nothing
  bool squared = false;    // true: squared hinge terms
  Reducer reduction = Reduction::Mean;
  bool average_separately = false;  // reduce positive and negative terms each on their own, then add
  double scale = 1;        // multiplies every term (0.5 gives Hadsell et al.'s 1/2 factors)
  std::size_t workspace_bytes = default_workspace_bytes;  // batch_contrastive_loss's pairwise workspace
};

namespace detail {

inline void validate_contrastive_options(const char* function, const ContrastiveOptions& o) {
  require_non_negative(function, "options.pos_margin", o.pos_margin);
  require_non_negative(function, "options.neg_margin", o.neg_margin);
  if (o.pos_margin > o.neg_margin) {
    fail(function, "argument 'options.pos_margin' (" + std::to_string(o.pos_margin) +
                       ") must be <= 'options.neg_margin' (" + std::to_string(o.neg_margin) + ")");
  }
  require_positive(function, "options.scale", o.scale);
}

// One pair's term and its slope d term / d distance.
template <class Scalar>
struct ContrastiveTerm {
  Scalar pos_margin, neg_margin, scale;
  bool squared;

  explicit ContrastiveTerm(const ContrastiveOptions& o)
      : pos_margin(static_cast<Scalar>(o.pos_margin)),
        neg_margin(static_cast<Scalar>(o.neg_margin)),
        scale(static_cast<Scalar>(o.scale)),
        squared(o.squared) {}

  Scalar operator()(bool similar, Scalar d, Scalar& slope) const {
    const Scalar h = similar ? d - pos_margin : neg_margin - d;
    if (!(h > Scalar(0))) {
      slope = Scalar(0);
      return Scalar(0);
    }
    const Scalar sign = similar ? Scalar(1) : Scalar(-1);
    if (squared) {
      slope = sign * scale * Scalar(2) * h;
      return scale * h * h;
    }
    slope = sign * scale;
    return scale * h;
  }
};

// The tallies of the negative [0] and positive [1] (weighted) terms; reduced
// jointly or separately. finish() gives the value and d value / d weighted
// term for each side.
template <class Scalar>
struct ContrastiveTally {
  Tally<Scalar> side[2];

  explicit ContrastiveTally(const Tally<Scalar>& tally) : side{tally, tally} {}

  Scalar finish(const ContrastiveOptions& o, Scalar weight[2]) const {
    if (o.average_separately) {
      const Reduced<Scalar> neg = side[0].finish();
      const Reduced<Scalar> pos = side[1].finish();
      weight[0] = neg.weight;
      weight[1] = pos.weight;
      return neg.value + pos.value;
    }
    Tally<Scalar> all = side[0];
    all.add_totals(side[1].sum(), side[1].count(), side[1].positive());
    const Reduced<Scalar> r = all.finish();
    weight[0] = weight[1] = r.weight;
    return r.value;
  }
};

// Loss on paired distances d(k) with flags similar(k), pair k belonging to
// sample owner(k): the body shared by the explicit-pair and the mined-pair forms.
template <class Scalar, class IsSimilar, class Owner>
Scalar contrastive_on_rowwise(const Vector<Scalar>& d, IsSimilar&& is_similar, Owner&& owner,
                              const ContrastiveOptions& o, const Tally<Scalar>& weights,
                              Vector<Scalar>* dd, Vector<Scalar>* terms) {
  const ContrastiveTerm<Scalar> term(o);
  ContrastiveTally<Scalar> tally(weights);
  if (terms) terms->resize(d.size());
  for (Index k = 0; k < d.size(); ++k) {
    Scalar slope;
    const bool similar = is_similar(k);
    const Index sample = owner(k);
    const Scalar t = tally.side[similar ? 1 : 0].add(sample, term(similar, d(k), slope));
    if (terms) (*terms)(k) = t;
    if (dd) (*dd)(k) = slope * weights.weight(sample);
  }
  Scalar weight[2];
  const Scalar value = tally.finish(o, weight);
  if (dd) {
    for (Index k = 0; k < d.size(); ++k) (*dd)(k) *= weight[is_similar(k) ? 1 : 0];
  }
  return value;
}

// `similar` is a flag per pair: 1 (or true) for a positive pair, 0 for a
// negative one. Anything else is rejected, not read as "non-zero": a -1 meant
// as cosine_embedding_loss's "dissimilar" would otherwise become "similar".
inline void require_pair_flags(const char* function, const LabelVector& similar) {
  for (Index k = 0; k < similar.size(); ++k) {
    if (similar(k) != 0 && similar(k) != 1) {
      fail(function, "argument 'similar' has " + std::to_string(similar(k)) + " at row " + std::to_string(k) +
                         "; use 1 (or true) for a similar pair and 0 for a dissimilar one");
    }
  }
}

// Explicit pairs: row i of X1 with row i of X2, similar(i) != 0 for a positive pair.
struct ContrastivePairsLoss {
  static constexpr const char* name = "contrastive_loss";
  using Options = ContrastiveOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X1, const ConstRowRef<Scalar>& X2,
                     const LabelVector& similar, const Options& o, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X1", X1);
    require_embeddings<Scalar>(name, "X2", X2);
    require_same_shape(name, "X1", X1, "X2", X2);
    validate_contrastive_options(name, o);
    require_pair_flags(name, similar);
    metric.check_rows(name, X1);
    const Tally<Scalar> weights(name, "options.reduction", o.reduction, X1.rows(), "the pairs (rows of X1)");
    auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
      return contrastive_on_rowwise<Scalar>(
          d, [&](Index k) { return similar(k) != 0; }, [](Index k) { return k; }, o, weights, dd, terms);
    };
    return rowwise_pipeline<Scalar>(metric, X1, X2, loss, grads);
  }
};

// Mined index pairs of one X: the distances of the listed pairs only.
struct ContrastiveMinedLoss {
  static constexpr const char* name = "contrastive_loss";
  using Options = ContrastiveOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const Pairs& pairs, const Options& o,
                     Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    validate_pairs(name, pairs, X.rows());
    validate_contrastive_options(name, o);
    metric.check_rows(name, X);
    const Tally<Scalar> weights(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
      return contrastive_on_rowwise<Scalar>(
          d, [&](Index p) { return pairs.similar[static_cast<std::size_t>(p)] != 0; },
          [&](Index p) { return pairs.first[static_cast<std::size_t>(p)]; }, o, weights, dd, terms);
    };
    return index_pairs_pipeline<Scalar>(metric, X, pairs, loss, grads);
  }
};

// All pairs i < j of a batch, on symmetric tiles: pass 1 tallies the sums and
// counts of both sides, per row i of the pair (rows of a tile's block I only,
// so the tiles of a round may run in parallel); the reduction weights (which may differ per side) are
// known only then, so pass 2 writes each pair's dL/dd once, recomputing the
// pair's hinge (cheaper than keeping it). With sample weights each pair's
// term and slope are scaled by the mean of its two rows' weights.
template <class Scalar>
class BatchContrastiveTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool reference_tiles = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  // column_labels: the reference set's labels, or `labels` itself (the same
  // object) on symmetric tiles. Every pair belongs to its row, so the two
  // cases differ only in where a pair's term is stored.
  BatchContrastiveTiles(const LabelVector& labels, const LabelVector& column_labels, const ContrastiveOptions& o,
                        const Tally<Scalar>& tally, Vector<Scalar>* terms)
      : o_(o), term_(o), reference_(&labels != &column_labels), m_(column_labels.size()),
        terms_(pair_terms_within<Scalar>(
            terms,
            reference_ ? labels.size() * column_labels.size()
                       : labels.size() * (labels.size() > 0 ? labels.size() - 1 : 0) / 2,
            o.workspace_bytes)),
        n_(labels.size()), tally_(tally) {
    dense_label_ids(labels, column_labels, ids_, col_ids_);
    for (int s = 0; s < 2; ++s) {
      row_sum_[s] = Row::Zero(n_);
      row_count_[s].assign(static_cast<std::size_t>(n_), 0);
      row_positive_[s].assign(static_cast<std::size_t>(n_), 0);
    }
  }

  void tile(const DistanceTile<Scalar>& t) {
    TileRowBuffer<Scalar> s_buf{}, c_buf{}, h_buf{}, w_buf{};
    const Scalar scale = term_.scale;
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      // Terms in row-major upper-triangle order: pair (i, j) at i (2N - i - 1) / 2 + j - i - 1;
      // against a reference set row-major N x M (a self pair's term stays 0).
      Scalar* T = !terms_     ? c_buf.data()
                  : reference_ ? terms_->data() + i * m_ + t.j0 + c0
                               : terms_->data() + (i * (2 * n_ - i - 1)) / 2 + (t.j0 + c0 - i - 1);
      Scalar* S = s_buf.data();
      Scalar* H = h_buf.data();
      hinges(t, i, S, T);
      {
        Eigen::Map<Row> tv(T, m);
        if (term_.squared) {
          tv = (scale * tv) * tv;
        } else {
          tv = scale * tv;
        }
        if (weighted()) tv *= pair_weights(i, t.j0 + c0, m, w_buf.data());
      }
      // A term counts as positive when it is > 0 (as Tally::add).
      for (Index j = 0; j < m; ++j) H[j] = T[j] > Scalar(0) ? Scalar(1) : Scalar(0);
      const Eigen::Map<const Row> tm(T, m), sm(S, m), hm(H, m);
      const Index same = static_cast<Index>(sm.sum());
      const Index hits_pos = static_cast<Index>((hm * sm).sum());
      const std::size_t k = static_cast<std::size_t>(i);
      row_sum_[1](i) += (tm * sm).sum();
      row_sum_[0](i) += (tm * (Scalar(1) - sm)).sum();
      row_count_[1][k] += same;
      row_count_[0][k] += m - same;
      row_positive_[1][k] += hits_pos;
      row_positive_[0][k] += static_cast<Index>(hm.sum()) - hits_pos;
    }
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    for (int s = 0; s < 2; ++s) {
      for (Index i = 0; i < n_; ++i) {
        const std::size_t k = static_cast<std::size_t>(i);
        tally_.side[s].add_totals(row_sum_[s](i), row_count_[s][k], row_positive_[s][k]);
      }
    }
    const Scalar value = tally_.finish(o_, weight_);
    return Reduced<Scalar>{value, Scalar(1)};
  }

  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> s_buf{}, c_buf{}, h_buf{}, w_buf{};
    const Scalar wp = weight_[1] * term_.scale, wn = -weight_[0] * term_.scale;
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      Scalar* S = s_buf.data();
      Scalar* C = c_buf.data();
      Scalar* H = h_buf.data();
      hinges(t, i, S, C);
      const Eigen::Map<const Row> sv(S, m), cv(C, m);
      Eigen::Map<Row> gv(W + (i - t.i0) * t.cols + c0, m);
      if (term_.squared) {
        gv = (sv * wp + (Scalar(1) - sv) * wn) * (Scalar(2) * cv);
      } else {
        for (Index j = 0; j < m; ++j) H[j] = C[j] > Scalar(0) ? Scalar(1) : Scalar(0);
        gv = Eigen::Map<const Row>(H, m) * (sv * wp + (Scalar(1) - sv) * wn);
      }
      if (weighted()) gv *= pair_weights(i, t.j0 + c0, m, w_buf.data());
    }
  }

 private:
  bool weighted() const { return tally_.side[0].weighted(); }

  // The weights of pairs (i, j0), ..., (i, j0 + m - 1), written to `out`.
  Eigen::Map<const Row> pair_weights(Index i, Index j0, Index m, Scalar* out) const {
    for (Index j = 0; j < m; ++j) out[j] = tally_.side[0].pair_weight(i, j0 + j);
    return Eigen::Map<const Row>(out, m);
  }

  // The pairs of row i in tile t: S = same-label mask (0/1), C = the unscaled
  // hinges. A simple loop GCC vectorises for the labels, Eigen for the rest.
  // positive: d - pos_margin; negative: -(d - neg_margin) == neg_margin - d
  // exactly: sim * pm + (1 - sim) * nm is exactly one margin and 2 sim - 1 is +-1.
  void hinges(const DistanceTile<Scalar>& t, Index i, Scalar* S, Scalar* C) const {
    const Index c0 = t.first_col(i), m = t.cols - c0;
    label_mask<Scalar>(ids_, col_ids_, i, t.j0 + c0, m, Scalar(1), Scalar(0), S);
    const Scalar pm = term_.pos_margin, nm = term_.neg_margin;
    const Eigen::Map<const Row> sv(S, m), dv(t.row(i) + c0, m);
    Eigen::Map<Row>(C, m) = ((Scalar(2) * sv - Scalar(1)) * (dv - (sv * pm + (Scalar(1) - sv) * nm))).cwiseMax(Scalar(0));
  }

  const ContrastiveOptions& o_;
  const ContrastiveTerm<Scalar> term_;
  bool reference_;
  Index m_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_, col_ids_;
  Index n_;
  ContrastiveTally<Scalar> tally_;
  // Per row i: the sums, counts and positive counts of its pairs (i, j > i), negative [0] and positive [1].
  Row row_sum_[2];
  std::vector<Index> row_count_[2], row_positive_[2];
  Scalar weight_[2] = {Scalar(0), Scalar(0)};
};

struct BatchContrastiveLoss {
  static constexpr const char* name = "batch_contrastive_loss";
  using Options = ContrastiveOptions;
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source>
  static Scalar eval(const Metric& metric, const Source& s, const Options& o, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    require_pair_source<Scalar>(name, metric, s);
    validate_contrastive_options(name, o);
    const Tally<Scalar> tally(name, "options.reduction", o.reduction, s.X.rows(), "the rows of X");
    if (s.is_reference() && tally.weighted()) {
      fail(name, "argument 'options.reduction' has sample weights, which weigh a pair by both of its rows; "
                 "against a reference set the reference rows have none");
    }
    return run_pairwise_loss<Scalar>(name, metric, s, o.workspace_bytes,
                                     BatchContrastiveTiles<Scalar>(s.labels, s.candidate_labels(), o, tally, terms),
                                     grads);
  }
};

}  // namespace detail

// contrastive_loss(X1, X2, similar, [metric], [options], [value_only | grad_out...]):
// row i of X1 with row i of X2; grad = {dX1, dX2}.
template <class Metric = Euclidean, class D1, class D2, class S, class... Tail>
auto contrastive_loss(const Eigen::MatrixBase<D1>& X1, const Eigen::MatrixBase<D2>& X2,
                      const Eigen::DenseBase<S>& similar, const Tail&... tail) {
  using Scalar = typename D1::Scalar;
  using Loss = detail::ContrastivePairsLoss;
  detail::check_same_scalar<D1, D2>();
  const ConstRowRef<Scalar> x1(X1.derived()), x2(X2.derived());
  const LabelVector sim = detail::to_labels(Loss::name, "similar", similar, x1.rows(), "X1");
  const auto eval = [&](const auto& metric, const ContrastiveOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, x1, x2, sim, o, g, t); };
  return detail::call_forms<Metric, Scalar, ContrastiveOptions>(
      detail::CallSpec{Loss::name, {{x1.rows(), x1.cols()}, {x2.rows(), x2.cols()}}}, eval, tail...);
}

// contrastive_loss(X, pairs, [metric], [options], [value_only | grad_out]): mined pairs; grad = {dX}.
template <class Metric = Euclidean, class DX, class... Tail>
auto contrastive_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const Tail&... tail) {
  return detail::pairs_loss<detail::ContrastiveMinedLoss, Metric>(X, pairs, tail...);
}

// contrastive_loss(X, pairs, reference_set(R), ...): pairs.first indexes X, pairs.second R
// (mine_pairs against a reference set); grad = {dX, dR}.
template <class Metric = Euclidean, class DX, class DR, class... Tail>
auto contrastive_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const ReferenceSet<DR>& reference,
                      const Tail&... tail) {
  return detail::mined_reference_loss<detail::ContrastiveMinedLoss, Metric>(X, pairs, reference, tail...);
}

// batch_contrastive_loss(X, labels, [metric], [options], [value_only | grad_out...]): all pairs i < j.
template <class Metric = Euclidean, class DX, class... Tail>
auto batch_contrastive_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                            const Tail&... tail) {
  return detail::labelled_loss<detail::BatchContrastiveLoss, Metric>(X, labels, tail...);
}

// batch_contrastive_loss(X, labels, reference_set(R, ref_labels[, self_offset]), ...): every
// (query, reference) pair; grad = {dX, dR}; terms: N x M row-major while they fit the workspace.
// At R = X (self_offset 0) each unordered pair counts twice, as in PML: Mean and
// MeanNonZero equal the batch form, Sum is twice it.
template <class Metric = Euclidean, class DX, class DR, class... Tail>
auto batch_contrastive_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                            const Tail&... tail) {
  return detail::reference_loss<detail::BatchContrastiveLoss, Metric>(X, labels, reference, tail...);
}

}  // namespace contrastive
