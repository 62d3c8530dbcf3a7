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

#include "contrastive/core/evaluate.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/losses/detail/infonce_softmax.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/distance.hpp"

#include <array>
#include <cmath>
#include <utility>

namespace contrastive {

struct NTXentOptions {
  // Over the 2N rows of [view1; view2], or over the positive pairs with labels.
  Reduction reduction = Reduction::Mean;
};

namespace detail {

// The labelled NT-Xent on a distance matrix D (N x N, zero diagonal). Writes
// dL/dD into dD (zero on entry) when it is not null. Terms: one per ordered
// positive pair, anchor-major, positives in row order.
template <class Scalar>
Scalar ntxent_on_distances(const RowMatrix<Scalar>& D, const LabelVector& labels, Scalar inv_t,
                           Reduction reduction, RowMatrix<Scalar>* dD, Vector<Scalar>* terms) {
  const Index n = D.rows();
  const LabelGroups groups(labels);
  Index count = 0;
  for (Index i = 0; i < n; ++i) count += groups.class_size(i) - 1;
  Vector<Scalar> term(count);
  // Per anchor: the sum of its shifted negative exponentials (0 if it has none).
  Vector<Scalar> neg_sum = Vector<Scalar>::Zero(n);
  Eigen::Matrix<Scalar, 1, Eigen::Dynamic> row_buffer(n);
  Scalar sum(0);
  Index positive_terms = 0;
  Index t = 0;
  for (Index i = 0; i < n; ++i) {
    const Index size = groups.class_size(i);
    if (size == 1) continue;
    const Index* same = groups.class_of(i);  // the anchor and its positives: not negatives
    // Always reduced in the same aligned buffer, so the value-only call returns
    // exactly the same value; with a gradient to come, the row waits in dD.
    const MaskedExpRow<Scalar> e = masked_exp_row<Scalar>(D.row(i), same, size, inv_t, row_buffer);
    if (dD) dD->row(i) = row_buffer;
    neg_sum(i) = e.sum;
    const Scalar log_neg_sum = e.sum > Scalar(0) ? std::log(e.sum) : Scalar(0);
    for (Index k = 0; k < size; ++k) {
      const Index p = same[k];
      if (p == i) continue;
      // term = log(exp(a) + S) - a = softplus(log S - a), a = s_ip - largest negative logit.
      const Scalar value =
          e.sum > Scalar(0) ? softplus<Scalar>(log_neg_sum - (e.shift - D(i, p)) * inv_t) : Scalar(0);
      term(t++) = value;
      sum += value;
      if (value > Scalar(0)) ++positive_terms;
    }
  }
  const Reduced<Scalar> reduced = reduce<Scalar>(reduction, sum, count, positive_terms);
  if (terms) *terms = term;
  if (!dD) return reduced.value;

  // d term_ap / d s_ap = -sigma, d term_ap / d s_an = sigma * e_an / S, with
  // sigma = 1 - exp(-term) (the softplus's sigmoid); dL/dD = -(dL/ds) / t.
  t = 0;
  for (Index i = 0; i < n; ++i) {
    const Index size = groups.class_size(i);
    if (size == 1) continue;
    const Index* same = groups.class_of(i);
    const Index first = t;
    Scalar negative_weight(0);
    for (Index k = 0; k < size; ++k) {
      if (same[k] == i) continue;
      const Scalar value = term(t++);
      if (reduction == Reduction::MeanNonZero && !(value > Scalar(0))) continue;
      negative_weight += reduced.weight * -std::expm1(-value);
    }
    // The row holds e_an (0 at the anchor and its positives).
    if (neg_sum(i) > Scalar(0)) {
      dD->row(i) *= -negative_weight * inv_t / neg_sum(i);
    }
    t = first;
    for (Index k = 0; k < size; ++k) {
      const Index p = same[k];
      if (p == i) continue;
      const Scalar value = term(t++);
      const bool counted = reduction != Reduction::MeanNonZero || value > Scalar(0);
      (*dD)(i, p) = counted ? reduced.weight * -std::expm1(-value) * inv_t : Scalar(0);
    }
  }
  return reduced.value;
}

template <class Metric, class Scalar>
Scalar ntxent_labels_eval(const ConstRowRef<Scalar>& X, const LabelVector& labels,
                          double temperature, const NTXentOptions& options,
                          Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const char* fn = "ntxent_loss";
  require_embeddings<Scalar>(fn, "X", X);
  const Scalar inv_t = inverse_temperature<Scalar>(fn, temperature);
  auto loss = [&](const RowMatrix<Scalar>& D, RowMatrix<Scalar>* dD) {
    return ntxent_on_distances<Scalar>(D, labels, inv_t, options.reduction, dD, terms);
  };
  return pairwise_pipeline<Metric, Scalar>(X, loss, grads);
}

template <class Metric, class Scalar>
Scalar ntxent_views_eval(const ConstRowRef<Scalar>& view1, const ConstRowRef<Scalar>& view2,
                         double temperature, const NTXentOptions& options,
                         Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  const char* fn = "ntxent_loss";
  require_embeddings<Scalar>(fn, "view1", view1);
  require_embeddings<Scalar>(fn, "view2", view2);
  require_same_shape(fn, "view1", view1, "view2", view2);
  const Scalar inv_t = inverse_temperature<Scalar>(fn, temperature);

  const Index n = view1.rows();
  RowMatrix<Scalar> z(2 * n, view1.cols());
  z.topRows(n) = view1;
  z.bottomRows(n) = view2;
  // Row i and row i + N are the only pair sharing a label: SimCLR's positives.
  LabelVector labels(2 * n);
  for (Index i = 0; i < n; ++i) labels(i) = labels(i + n) = static_cast<Label>(i);
  auto loss = [&](const RowMatrix<Scalar>& D, RowMatrix<Scalar>* dD) {
    return ntxent_on_distances<Scalar>(D, labels, inv_t, options.reduction, dD, terms);
  };
  Gradients<Scalar> stacked;
  const Scalar value = pairwise_pipeline<Metric, Scalar>(ConstRowRef<Scalar>(z), loss,
                                                         grads ? &stacked : nullptr);
  if (grads) {
    grads->assign(2, RowMatrix<Scalar>());
    (*grads)[0] = stacked[0].topRows(n);
    (*grads)[1] = stacked[0].bottomRows(n);
  }
  return value;
}

}  // namespace detail

// SimCLR's two views: row i of view1 and row i of view2 are a positive pair.
// grad = {d view1, d view2}; terms: the 2N per-row losses of [view1; view2].
template <class Metric = Cosine, class D1, class D2, detail::enable_if_floating<D2> = 0>
LossResult<typename D1::Scalar> ntxent_loss(const Eigen::MatrixBase<D1>& view1,
                                            const Eigen::MatrixBase<D2>& view2, double temperature,
                                            const NTXentOptions& options = {}) {
  using Scalar = typename D1::Scalar;
  detail::check_same_scalar<D1, D2>();
  const ConstRowRef<Scalar> a(view1.derived()), b(view2.derived());
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::ntxent_views_eval<Metric, Scalar>(a, b, temperature, options, g, t);
  });
}

template <class Metric = Cosine, class D1, class D2, detail::enable_if_floating<D2> = 0>
typename D1::Scalar ntxent_loss(const Eigen::MatrixBase<D1>& view1, const Eigen::MatrixBase<D2>& view2,
                                double temperature, const NTXentOptions& options, ValueOnly) {
  using Scalar = typename D1::Scalar;
  detail::check_same_scalar<D1, D2>();
  const ConstRowRef<Scalar> a(view1.derived()), b(view2.derived());
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::ntxent_views_eval<Metric, Scalar>(a, b, temperature, options, g, t);
  });
}

// Gradients written into caller-owned buffers shaped like view1 and view2.
template <class Metric = Cosine, class D1, class D2, class G1, class G2,
          detail::enable_if_floating<D2> = 0>
typename D1::Scalar ntxent_loss(const Eigen::MatrixBase<D1>& view1, const Eigen::MatrixBase<D2>& view2,
                                double temperature, const NTXentOptions& options,
                                const Eigen::MatrixBase<G1>& grad_view1,
                                const Eigen::MatrixBase<G2>& grad_view2) {
  using Scalar = typename D1::Scalar;
  detail::check_same_scalar<D1, D2>();
  const ConstRowRef<Scalar> a(view1.derived()), b(view2.derived());
  return detail::evaluate_into<Scalar>(
      "ntxent_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::ntxent_views_eval<Metric, Scalar>(a, b, temperature, options, g, t);
      },
      {{{a.rows(), a.cols()}, {b.rows(), b.cols()}}}, grad_view1, grad_view2);
}

// pytorch-metric-learning's NTXentLoss: positives are the pairs sharing a label.
// grad = {dX}; terms: one per ordered positive pair.
template <class Metric = Cosine, class DX, class DL, detail::enable_if_integral<DL> = 0>
LossResult<typename DX::Scalar> ntxent_loss(const Eigen::MatrixBase<DX>& X,
                                            const Eigen::DenseBase<DL>& labels, double temperature,
                                            const NTXentOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::to_labels("ntxent_loss", "labels", labels, x.rows());
  return detail::evaluate_with_gradient<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::ntxent_labels_eval<Metric, Scalar>(x, l, temperature, options, g, t);
  });
}

template <class Metric = Cosine, class DX, class DL, detail::enable_if_integral<DL> = 0>
typename DX::Scalar ntxent_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<DL>& labels,
                                double temperature, const NTXentOptions& options, ValueOnly) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::to_labels("ntxent_loss", "labels", labels, x.rows());
  return detail::evaluate_value_only<Scalar>([&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
    return detail::ntxent_labels_eval<Metric, Scalar>(x, l, temperature, options, g, t);
  });
}

template <class Metric = Cosine, class DX, class DL, class G, detail::enable_if_integral<DL> = 0>
typename DX::Scalar ntxent_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<DL>& labels,
                                double temperature, const NTXentOptions& options,
                                const Eigen::MatrixBase<G>& grad_out) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector l = detail::to_labels("ntxent_loss", "labels", labels, x.rows());
  return detail::evaluate_into<Scalar>(
      "ntxent_loss",
      [&](detail::Gradients<Scalar>* g, Vector<Scalar>* t) {
        return detail::ntxent_labels_eval<Metric, Scalar>(x, l, temperature, options, g, t);
      },
      {{{x.rows(), x.cols()}}}, grad_out);
}

}  // namespace contrastive
