// NT-Xent (normalised temperature-scaled cross entropy), SimCLR's loss, and
// its labelled form, pytorch-metric-learning's NTXentLoss.
//
// Similarities s_ij = cos(z_i, z_j) / temperature (under another Metric,
// s_ij = -d(z_i, z_j) / temperature; for Cosine the two differ by the
// constant 1 / temperature, which the loss cannot see).
//
// Two views, ntxent_loss(view1, view2, temperature):
//   z = [view1; view2] (2N x D); row i's positive is its other view pos(i) = i +- N
//   term_i = -s_{i,pos(i)} + log sum_{k != i} exp(s_ik)          (2N terms, one per row of z)
//   loss   = Reduction::Mean (default, over the 2N rows), Sum or MeanNonZero
//   grad   = {d view1, d view2}; sample weights: one per row of view1, for both
//            of its views' terms
//
// Labels, ntxent_loss(X, labels, temperature): one term per ordered positive
// pair (a, p), a != p, labels equal; negatives of a are the rows with another label:
//   term_ap = -s_ap + log( exp(s_ap) + sum_{n: label n != label a} exp(s_an) )
//   loss    = Reduction::Mean (default, over the positive pairs), Sum or MeanNonZero
//   grad    = {dX}; terms in anchor order, positives in row order within an anchor.
//   Sample weights: one per row, a pair (a, p) taking its anchor's.
// Other positives of a are not in term_ap's denominator (PML's choice; supcon_loss
// puts them there). With labels [0..N-1, 0..N-1] on [view1; view2] the two forms
// are the same loss, term for term.
//
// Empty sets: no positive pair (or N = 0) gives loss 0; an anchor without a
// negative has term 0 (a single-class batch, or N = 1 views, gives loss 0).
// Zero vectors have cosine similarity 0 with everything and gradient 0.
//
// Reproducing other libraries:
// - SimCLR (Chen et al. 2020) NT-Xent, and the usual PyTorch code
//   F.cross_entropy(sim.masked_fill(eye, -inf), targets) with sim = z z^T / t over
//   normalised z and targets = pos(i): the two-view form, Reduction::Mean.
// - pytorch-metric-learning NTXentLoss(temperature) with the default
//   CosineSimilarity and MeanReducer: the labels form, Metric = Cosine,
//   Reduction::Mean. PML adds finfo.tiny inside its log, below any tolerance.
//   With PML's LpDistance (non-inverted distance, logits -d / t): Metric = Euclidean.
// - TensorFlow Addons has no NT-Xent; tfa.losses.npairs_loss is a different loss.
//
// Stability: each anchor's exponentials are shifted by its largest negative
// logit, so the largest is exactly 1, and each term is a softplus; temperature
// 0.01 on unit vectors in float is finite. Cost: one Gram product forward, one
// product backward (the Cosine metric's), O(N^2) vectorised exp in between.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/infonce_softmax.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/losses/detail/positive_pairs.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace contrastive {

struct NTXentOptions {
  // Over the 2N rows of [view1; view2], or over the positive pairs with labels.
  Reducer reduction = Reduction::Mean;
  std::size_t workspace_bytes = default_workspace_bytes;  // pairwise workspace
};

namespace detail {

// The labelled NT-Xent on symmetric tiles: one term per ordered positive pair,
// anchor-major, positives in row order. Pass 1: per anchor, the online
// softmin over its negatives, and the distance of each positive pair
// (O(sum of class sizes squared) memory). finish(): the terms
//   term_ap = softplus(log S_a - (shift_a - d_ap) / t)
// and their sigmoids sigma_ap = 1 - exp(-term_ap). Pass 2: the pair weights,
// positives sigma_ap / t (from either side), negatives
// -(sum_p sigma_ap) exp((shift_a - d) / t) / (t S_a) from either side.
template <class Scalar>
class NTXentTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  // Symmetric tiles only: column_labels is `labels` (no reference-set form).
  NTXentTiles(const LabelVector& labels, const LabelVector&, Scalar inv_t, const NTXentOptions&, Tally<Scalar> tally,
              Vector<Scalar>* terms)
      : tally_(std::move(tally)), terms_(terms), pairs_(LabelGroups(labels)), ids_(pairs_.groups().ids),
        n_(labels.size()), inv_t_(inv_t), softmin_(labels.size(), inv_t) {
    positive_d_.assign(pairs_.size(), Scalar(0));
    sigma_.assign(pairs_.size(), Scalar(0));
    if (terms_) terms_->resize(static_cast<Index>(pairs_.size()));
  }

  void tile(const DistanceTile<Scalar>& t) {
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> negatives{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Scalar* d = t.row(i) + c0;
      const Scalar* keep = negative_mask(i, j0, m, negatives.data());
      softmin_.add_row(i, d, keep, m, scratch);
      softmin_.add_columns(j0, d, keep, m, scratch);
      pairs_.record(i, j0, m, d, positive_d_);
    }
  }

  // Several processes sharing the tiles (engine/tile_share.hpp): each
  // positive distance was written by the one part owning its tile, 0 elsewhere.
  void combine_rows(const TileShare<Scalar>& share) {
    softmin_.combine(share);
    share.sum(positive_d_.data(), static_cast<Index>(positive_d_.size()));
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    weight_.setZero(n_);
    for (Index i = 0; i < n_; ++i) {
      const Scalar S = softmin_.sum()(i);
      const Scalar log_s = S > Scalar(0) ? std::log(S) : Scalar(0);
      Scalar sigma_sum(0);
      const Scalar w = tally_.weight(i);
      for (Index k = pairs_.first(i); k < pairs_.first(i) + pairs_.count(i); ++k) {
        const std::size_t u = static_cast<std::size_t>(k);
        // term = log(exp(a) + S) - a = softplus(log S - a), a = s_ip - largest negative logit.
        const Scalar raw = S > Scalar(0) ? softplus<Scalar>(log_s - (softmin_.shift()(i) - positive_d_[u]) * inv_t_)
                                         : Scalar(0);
        const Scalar value = tally_.add(i, raw);
        if (terms_) (*terms_)(k) = value;
        const bool counted = tally_.kind() != Reduction::MeanNonZero || value > Scalar(0);
        sigma_[u] = counted ? w * -std::expm1(-raw) : Scalar(0);
        sigma_sum += sigma_[u];
      }
      if (S > Scalar(0)) weight_(i) = -sigma_sum * inv_t_ / S;
    }
    return tally_.finish();
  }

  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> negatives{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Eigen::Map<const Row> dv(t.row(i) + c0, m);
      const Eigen::Map<const Row> kv(negative_mask(i, j0, m, negatives.data()), m);
      Scalar* row = W + (i - t.i0) * t.cols + c0;
      Eigen::Map<Row> g(row, m);
      g = kv * (weight_(i) * softmin_.row_exp(i, dv) + weight_.segment(j0, m) * softmin_.column_exp(j0, dv));
      pairs_.for_positives(i, j0, m, [&](Index p) {
        row[p - j0] = (sigma_[pairs_.slot(i, p)] + sigma_[pairs_.slot(p, i)]) * inv_t_;
      });
    }
  }

 private:
  const Scalar* negative_mask(Index i, Index j0, Index m, Scalar* out) const {
    label_mask<Scalar>(ids_, i, j0, m, Scalar(0), Scalar(1), out);
    return out;
  }

  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  PositivePairs pairs_;
  std::vector<std::int32_t> ids_;
  Index n_;
  Scalar inv_t_;
  OnlineSoftmin<Scalar> softmin_;
  std::vector<Scalar> positive_d_, sigma_;
  Row weight_;
};

struct NTXentLabelsLoss : TemperatureLoss<NTXentLabelsLoss, NTXentTiles> {
  static constexpr const char* name = "ntxent_loss";
  using Options = NTXentOptions;
};

// SimCLR's two views: the labelled form on [view1; view2], row i and row i + N
// the only pair sharing a label.
struct NTXentViewsLoss {
  static constexpr const char* name = "ntxent_loss";
  using Options = NTXentOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& view1, const ConstRowRef<Scalar>& view2,
                     double temperature, const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "view1", view1);
    require_embeddings<Scalar>(name, "view2", view2);
    // The form is picked by the second argument's scalar type: floating labels land here.
    if (view2.cols() == 1 && view1.cols() != 1 && view2.rows() == view1.rows()) {
      fail(name, "argument 'view2' is " + shape_of(view2.rows(), view2.cols()) +
                     ", one column like a label vector: a floating second argument selects the two-view form "
                     "ntxent_loss(view1, view2, t); for the labelled form pass integer labels "
                     "(e.g. labels.cast<int>())");
    }
    require_same_shape(name, "view1", view1, "view2", view2);
    const Index n = view1.rows();
    // A sample is a pair of views: its weight applies to both rows.
    require_sample_weights(name, "options.reduction", options.reduction, n, "the samples (rows of view1)");
    Options stacked_options = options;
    if (options.reduction.weighted()) {
      const Vector<double>& w = options.reduction.sample_weights();
      Vector<double> both(2 * n);
      both << w, w;
      stacked_options.reduction = Reducer(options.reduction.kind(), both);
    }
    RowMatrix<Scalar> z(2 * n, view1.cols());
    z.topRows(n) = view1;
    z.bottomRows(n) = view2;
    LabelVector labels(2 * n);
    for (Index i = 0; i < n; ++i) labels(i) = labels(i + n) = static_cast<Label>(i);
    const ConstRowRef<Scalar> zr(z);
    const Scalar value = NTXentLabelsLoss::eval<Scalar>(metric, BatchSource<Scalar>{zr, labels}, temperature,
                                                        stacked_options, grads, terms);
    if (grads) {
      // {d[view1; view2], params...} -> {d view1, d view2, params...}
      RowMatrix<Scalar> stacked = std::move((*grads)[0]);
      (*grads)[0] = stacked.topRows(n);
      grads->insert(grads->begin() + 1, RowMatrix<Scalar>(stacked.bottomRows(n)));
    }
    return value;
  }
};

}  // namespace detail

// ntxent_loss(view1, view2, temperature, [metric], [options], [value_only | grad_view1, grad_view2, ...]):
// SimCLR's two views, row i of view1 and row i of view2 a positive pair.
// grad = {d view1, d view2}; terms: the 2N per-row losses of [view1; view2].
template <class Metric = Cosine, class D1, class D2, class... Tail, detail::enable_if_floating<D2> = 0>
auto ntxent_loss(const Eigen::MatrixBase<D1>& view1, const Eigen::MatrixBase<D2>& view2, double temperature,
                 const Tail&... tail) {
  using Scalar = typename D1::Scalar;
  using Loss = detail::NTXentViewsLoss;
  detail::check_same_scalar<D1, D2>();
  const ConstRowRef<Scalar> a(view1.derived()), b(view2.derived());
  const auto eval = [&](const auto& metric, const NTXentOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, a, b, temperature, o, g, t); };
  return detail::call_forms<Metric, Scalar, NTXentOptions>(
      detail::CallSpec{Loss::name, {{a.rows(), a.cols()}, {b.rows(), b.cols()}}}, eval, tail...);
}

// ntxent_loss(X, labels, temperature, [metric], [options], [value_only | grad_out...]):
// pytorch-metric-learning's NTXentLoss, positives the pairs sharing a label.
// grad = {dX}; terms: one per ordered positive pair.
template <class Metric = Cosine, class DX, class... Tail>
auto ntxent_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, double temperature,
                 const Tail&... tail) {
  return detail::labelled_loss_with<detail::NTXentLabelsLoss, Metric>(X, labels, temperature, tail...);
}

}  // namespace contrastive
