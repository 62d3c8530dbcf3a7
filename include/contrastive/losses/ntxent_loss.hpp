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
//   grad   = {d view1, d view2}
//
// Labels, ntxent_loss(X, labels, temperature): one term per ordered positive
// pair (a, p), a != p, labels equal; negatives of a are the rows with another label:
//   term_ap = -s_ap + log( exp(s_ap) + sum_{n: label n != label a} exp(s_an) )
//   loss    = Reduction::Mean (default, over the positive pairs), Sum or MeanNonZero
//   grad    = {dX}; terms in anchor order, positives in row order within an anchor.
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
#include "contrastive/losses/detail/infonce_softmax.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <array>
#include <cmath>
#include <utility>

namespace contrastive {

struct NTXentOptions {
  // Over the 2N rows of [view1; view2], or over the positive pairs with labels.
  Reduction reduction = Reduction::Mean;
  std::size_t workspace_bytes = default_workspace_bytes;  // pairwise workspace
};

namespace detail {

// The labelled NT-Xent: one term per ordered positive pair, anchor-major,
// positives in row order. The two-view form runs it on [view1; view2].
struct NTXentLabelsLoss {
  static constexpr const char* name = "ntxent_loss";
  using Options = NTXentOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     double temperature, const Options& options, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    const Scalar inv_t = inverse_temperature<Scalar>(name, temperature);
    metric.check_rows(name, X);
    const Index n = X.rows();
    const LabelGroups groups(labels);
    Index count = 0;
    for (Index i = 0; i < n; ++i) count += groups.class_size(i) - 1;
    if (terms) terms->resize(count);
    Eigen::Matrix<Scalar, 1, Eigen::Dynamic> row_buffer(n);
    Scalar sum(0);
    Index positive_terms = 0;
    Index t = 0;  // the next term, across panels (anchors arrive in order)
    auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
      for (Index i = D.first; i < D.end(); ++i) {
        const Index size = groups.class_size(i);
        if (size == 1) continue;
        const Index* same = groups.class_of(i);  // the anchor and its positives: not negatives
        const MaskedExpRow<Scalar> e = masked_exp_row<Scalar>(D.row_vector(i), same, size, inv_t, row_buffer);
        const Scalar log_neg_sum = e.sum > Scalar(0) ? std::log(e.sum) : Scalar(0);
        // d term_ap / d s_ap = -sigma, d term_ap / d s_an = sigma * e_an / S, with
        // sigma = 1 - exp(-term) (the softplus's sigmoid); dL/dD = -(dL/ds) / t.
        Scalar negative_weight(0);
        for (Index k = 0; k < size; ++k) {
          const Index p = same[k];
          if (p == i) continue;
          // term = log(exp(a) + S) - a = softplus(log S - a), a = s_ip - largest negative logit.
          const Scalar value =
              e.sum > Scalar(0) ? softplus<Scalar>(log_neg_sum - (e.shift - D(i, p)) * inv_t) : Scalar(0);
          if (terms) (*terms)(t) = value;
          ++t;
          sum += value;
          if (value > Scalar(0)) ++positive_terms;
          const bool counted = options.reduction != Reduction::MeanNonZero || value > Scalar(0);
          if (dD && counted) {
            const Scalar sigma = -std::expm1(-value);
            negative_weight += sigma;
            dD->row(i)[p] = sigma * inv_t;
          }
        }
        if (dD && e.sum > Scalar(0)) {
          // The buffer holds e_an, 0 at the anchor and its positives, whose entries are set above.
          Scalar* g = dD->row(i);
          const Scalar w = -negative_weight * inv_t / e.sum;
          for (Index j = 0; j < n; ++j) g[j] += w * row_buffer(j);
        }
      }
    };
    auto finish = [&] { return reduce<Scalar>(options.reduction, sum, count, positive_terms); };
    return run_pairwise_loss<Scalar>(name, metric, X, options.workspace_bytes,
                                     panel_loss<dense_gradient>(panel, finish), grads);
  }
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
    require_same_shape(name, "view1", view1, "view2", view2);
    const Index n = view1.rows();
    RowMatrix<Scalar> z(2 * n, view1.cols());
    z.topRows(n) = view1;
    z.bottomRows(n) = view2;
    LabelVector labels(2 * n);
    for (Index i = 0; i < n; ++i) labels(i) = labels(i + n) = static_cast<Label>(i);
    const Scalar value = NTXentLabelsLoss::eval<Scalar>(metric, ConstRowRef<Scalar>(z), labels, temperature,
                                                        options, grads, terms);
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
template <class Metric = Cosine, class DX, class DL, class... Tail, detail::enable_if_integral<DL> = 0>
auto ntxent_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<DL>& labels, double temperature,
                 const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Loss = detail::NTXentLabelsLoss;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = detail::to_labels(Loss::name, "labels", labels, x.rows());
  const auto eval = [&](const auto& metric, const NTXentOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, x, y, temperature, o, g, t); };
  return detail::call_forms<Metric, Scalar, NTXentOptions>(detail::CallSpec{Loss::name, {{x.rows(), x.cols()}}},
                                                           eval, tail...);
}

}  // namespace contrastive
