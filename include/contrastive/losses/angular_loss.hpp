// Angular loss (Wang et al. 2017, "Deep Metric Learning with Angular Loss"),
// with pytorch-metric-learning 2.8.1's AngularLoss semantics.
//
// PML normalises the anchors and the positives, NOT the negatives: with
// u = x / |x| (a zero row stays zero, as F.normalize), t = tan(alpha) (alpha
// given in degrees, as PML's), per ordered positive pair (a, p), a != p,
// y_a = y_p, and its anchor's negatives n (y_n != y_a, raw rows x_n):
//   f_apn   = 4 t^2 (u_a + u_p) . x_n - 2 (1 + t^2) u_a . u_p
//   term_ap = log(1 + sum_n exp(f_apn))
//   loss    = reduce over the ordered positive pairs (PML's MeanReducer on its
//             "pos_pair" losses: Reduction::Mean, the default), Sum or MeanNonZero.
// Gradient, with pi_apn = exp(f_apn - term_ap) (the softmax with the one):
//   dterm/dx_n = pi 4 t^2 (u_a + u_p),  dterm/du_a = sum_n pi (4 t^2 x_n - 2 (1 + t^2) u_p)
//   (and u_a <-> u_p), then through the normalisation of a and p.
//
// The metric: PML asserts LpDistance(p=2, power=1, normalize_embeddings=True)
// and uses it only to normalise; the loss takes Euclidean (its rows: X itself;
// Mahalanobis(L) gives the loss on the rows L x). Any other metric is rejected
// (std::invalid_argument naming `metric`).
//
// Edge cases: no positive pair, or a single class (no negatives): loss 0 with
// zero gradient (PML's zero_losses). N = 0: loss 0, 0 x D gradient. Terms: one
// per row, the anchor's summed (weighted) pair terms. Sample weights: one per
// row, each pair taking its anchor's.
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_angular_loss.cpp
// against tests/reference/data/pml_angular.txt, written by PML itself, on rows
// of unequal norms):
//   AngularLoss(alpha)(X, labels)                    angular_loss(X, labels, {alpha})
//
// Cost and memory: per class, its negatives gathered once (O(N D)); its ordered
// positive pairs in blocks of at most 256, each block's scores against the
// negatives in column chunks of at most options.workspace_bytes (block x
// chunk), an online log-sum-exp across chunks, recomputed for the gradient:
// O(N P N_neg D) flops in products of up to 256 rows, no N x N matrix.
//
// Bad input: alpha outside (0, 90) degrees or non-finite, a metric other than
// Euclidean: std::invalid_argument naming the argument.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/option_checks.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace contrastive {

struct AngularOptions {
  double alpha = 40;  // degrees, in (0, 90)
  Reducer reduction = Reduction::Mean;  // over the ordered positive pairs (PML's MeanReducer)
  std::size_t workspace_bytes = default_workspace_bytes;  // bounds each anchor's score chunk
};

namespace detail {

struct AngularLoss {
  static constexpr const char* name = "angular_loss";
  // Score rows (ordered positive pairs) per product: enough for full-width GEMMs.
  static constexpr Index max_pair_rows = 256;
  using Options = AngularOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const Options& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    require_acute_degrees(name, "options.alpha", o.alpha);
    require_metric_kind<MetricKind::Euclidean, Scalar>(
        name, metric, X,
        "Euclidean (pytorch-metric-learning's AngularLoss accepts only LpDistance(p=2, power=1, "
        "normalize_embeddings=True))");
    const Tally<Scalar> weights(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    return metric.template with_rows<Scalar>(X, [&](auto, const ConstRowRef<Scalar>& Z) {
      if (!grads) return on_rows<Scalar>(Z, labels, o, weights, nullptr, terms);
      RowMatrix<Scalar> dZ;
      const Scalar value = on_rows<Scalar>(Z, labels, o, weights, &dZ, terms);
      grads->clear();
      metric.template rows_backward<Scalar>(X, std::move(dZ), *grads);
      return value;
    });
  }

  template <class Scalar>
  static Scalar on_rows(const ConstRowRef<Scalar>& Z, const LabelVector& labels, const Options& o,
                        Tally<Scalar> tally, RowMatrix<Scalar>* dZ, Vector<Scalar>* terms) {
    using Mat = RowMatrix<Scalar>;
    using Arr = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
    const Index n = Z.rows(), dim = Z.cols();
    const double tan_alpha = std::tan(o.alpha * degrees_to_radians);
    const Scalar t4 = static_cast<Scalar>(4 * tan_alpha * tan_alpha);
    const Scalar c2 = static_cast<Scalar>(2 * (1 + tan_alpha * tan_alpha));
    const bool nonzero_only = tally.kind() == Reduction::MeanNonZero;
    if (terms) terms->setZero(n);
    if (dZ) dZ->setZero(n, dim);
    // Unit rows (zero rows stay zero) and norms.
    Mat U(n, dim);
    Vector<Scalar> norm(n);
    for (Index i = 0; i < n; ++i) {
      norm(i) = Z.row(i).norm();
      U.row(i) = norm(i) > Scalar(0) ? (Z.row(i) / norm(i)).eval() : Z.row(i).eval();
    }
    Mat dU = dZ ? Mat::Zero(n, dim) : Mat();
    // Members of each class, in row order.
    const std::vector<std::int32_t> ids = dense_label_ids(labels);
    std::int32_t classes = 0;
    for (const std::int32_t y : ids) classes = std::max(classes, y + 1);
    std::vector<std::vector<Index>> members(static_cast<std::size_t>(classes));
    for (Index i = 0; i < n; ++i) members[static_cast<std::size_t>(ids[static_cast<std::size_t>(i)])].push_back(i);
    // Per pair of an anchor: its reduction factor (the anchor's weight, 0 when
    // MeanNonZero drops it) and log-sum-exp. The gradient is scaled at the end.
    for (const std::vector<Index>& cls : members) {
      const Index k = static_cast<Index>(cls.size());
      if (k < 2 || k == n) continue;
      std::vector<Index> negatives;
      negatives.reserve(static_cast<std::size_t>(n - k));
      for (Index i = 0; i < n; ++i) {
        if (ids[static_cast<std::size_t>(i)] != ids[static_cast<std::size_t>(cls[0])]) negatives.push_back(i);
      }
      const Index nn = static_cast<Index>(negatives.size());
      Mat Xn(nn, dim);
      for (Index j = 0; j < nn; ++j) Xn.row(j) = Z.row(negatives[static_cast<std::size_t>(j)]);
      Mat dXn = dZ ? Mat::Zero(nn, dim) : Mat();
      // The class's ordered positive pairs (a, p), anchor by anchor, in blocks
      // of at most max_pair_rows score rows; each block's scores against the
      // negatives in column chunks of at most workspace_bytes.
      std::vector<std::pair<Index, Index>> pairs;
      pairs.reserve(static_cast<std::size_t>(k * (k - 1)));
      for (const Index a : cls) {
        for (const Index p : cls) {
          if (p != a) pairs.emplace_back(a, p);
        }
      }
      const Index total = static_cast<Index>(pairs.size());
      const Index block = std::min<Index>(total, max_pair_rows);
      const std::size_t per_column = static_cast<std::size_t>(block) * sizeof(Scalar);
      const Index chunk =
          std::max<Index>(1, std::min<Index>(nn, static_cast<Index>(o.workspace_bytes / per_column)));
      Mat W(block, dim), F, V;
      Arr bias(block), top(block), sum(block), lse(block), factor(block), sigma(block);
      for (Index r0 = 0; r0 < total; r0 += block) {
        const Index rows = std::min(block, total - r0);
        const auto pair = [&](Index r) { return pairs[static_cast<std::size_t>(r0 + r)]; };
        // Score rows t4 (u_a + u_p) and biases -c2 u_a . u_p.
        for (Index r = 0; r < rows; ++r) {
          W.row(r) = t4 * (U.row(pair(r).first) + U.row(pair(r).second));
          bias(r) = -c2 * U.row(pair(r).first).dot(U.row(pair(r).second));
        }
        const auto Wb = W.topRows(rows);
        // log(1 + sum_n exp(f)): the one enters as exp(0) at shift 0.
        top.head(rows).setZero();
        sum.head(rows).setOnes();
        for (Index j0 = 0; j0 < nn; j0 += chunk) {
          const Index cols = std::min(chunk, nn - j0);
          F.noalias() = Wb * Xn.middleRows(j0, cols).transpose();
          F.colwise() += bias.head(rows).matrix();
          for (Index r = 0; r < rows; ++r) {
            const Scalar new_top = std::max(top(r), F.row(r).maxCoeff());
            sum(r) = sum(r) * std::exp(top(r) - new_top) + (F.row(r).array() - new_top).exp().sum();
            top(r) = new_top;
          }
        }
        lse.head(rows) = top.head(rows) + sum.head(rows).log();
        for (Index r = 0; r < rows; ++r) {
          const Index a = pair(r).first;
          const Scalar weighted = tally.add(a, lse(r));
          if (terms) (*terms)(a) += weighted;
          factor(r) = nonzero_only && !(weighted > Scalar(0)) ? Scalar(0) : tally.weight(a);
        }
        if (!dZ || !(factor.head(rows).abs().maxCoeff() > Scalar(0))) continue;
        // pi = exp(f - lse) times the pair's factor; V = pi Xn, sigma = row sums of pi.
        V.setZero(rows, dim);
        sigma.head(rows).setZero();
        for (Index j0 = 0; j0 < nn; j0 += chunk) {
          const Index cols = std::min(chunk, nn - j0);
          const auto Xc = Xn.middleRows(j0, cols);
          F.noalias() = Wb * Xc.transpose();
          F.colwise() += (bias.head(rows) - lse.head(rows)).matrix();
          F = (F.array().exp().colwise() * factor.head(rows)).matrix();
          sigma.head(rows) += F.rowwise().sum().array();
          V.noalias() += F * Xc;
          dXn.middleRows(j0, cols).noalias() += F.transpose() * Wb;
        }
        for (Index r = 0; r < rows; ++r) {
          const Index a = pair(r).first, p = pair(r).second;
          dU.row(a) += t4 * V.row(r) - c2 * sigma(r) * U.row(p);
          dU.row(p) += t4 * V.row(r) - c2 * sigma(r) * U.row(a);
        }
      }
      if (dZ) {
        for (Index j = 0; j < nn; ++j) dZ->row(negatives[static_cast<std::size_t>(j)]) += dXn.row(j);
      }
    }
    const Reduced<Scalar> r = tally.finish();
    if (dZ) {
      // Through u = z / |z|: (dU - (u . dU) u) / |z|; a zero row has no gradient through u.
      for (Index i = 0; i < n; ++i) {
        if (norm(i) > Scalar(0)) dZ->row(i) += (dU.row(i) - U.row(i).dot(dU.row(i)) * U.row(i)) / norm(i);
      }
      *dZ *= r.weight;
    }
    return r.value;
  }
};

}  // namespace detail

// angular_loss(X, labels, [Euclidean], [options], [value_only | grad_out...]): every ordered
// positive pair against its anchor's negatives; grad = {dX}; terms: one per row.
template <class Metric = Euclidean, class DX, class... Tail>
auto angular_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::AngularLoss, Metric>(X, labels, tail...);
}

}  // namespace contrastive
