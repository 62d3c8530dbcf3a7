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
// Cost and memory: f is a sum of two entries of M = U X^T (unit rows against
// raw rows), M_an + M_pn, so the products are those of the distance matrix:
// the rows in class order, panels of whole classes (at most 256 rows), each
// panel's M against column chunks under options.workspace_bytes (scores and
// their gradient, 2 x rows x chunk), per pair an online log-sum-exp over the
// negatives (the columns outside its class's run), then the weights pi into
// dM and dU_panel += dM X, dX += dM^T U_panel: three N x N x D products in
// all (four when a panel's columns do not fit at once) and O(N P N_neg)
// exponentials, no N x N matrix.
//
// Bad input: alpha outside (0, 90) degrees or non-finite, a metric other than
// Euclidean: std::invalid_argument naming the argument.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/workspace.hpp"
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
  // Rows of a score panel: enough for full-width GEMMs.
  static constexpr Index max_panel_rows = 256;
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
    const LabelGroups groups(labels);
    if (!groups.any_positive || !groups.any_negative) return tally.finish().value;
    // The rows in class order (each class one run [start, end)), raw (S) and
    // unit (U; a zero row stays zero), with their gradients.
    Mat S(n, dim), U(n, dim);
    Vector<Scalar> norm(n);
    for (Index k = 0; k < n; ++k) {
      S.row(k) = Z.row(groups.order[static_cast<std::size_t>(k)]);
      norm(k) = S.row(k).norm();
      if (norm(k) > Scalar(0)) {
        U.row(k) = S.row(k) / norm(k);
      } else {
        U.row(k).setZero();
      }
    }
    Mat dS = dZ ? Mat::Zero(n, dim) : Mat(), dU = dZ ? Mat::Zero(n, dim) : Mat();
    const std::size_t classes = groups.starts.size() - 1;
    const auto start = [&](std::size_t c) { return groups.starts[c]; };
    const std::size_t scalar = sizeof(Scalar);
    // Panel rows: whole classes, up to max_panel_rows and the budget for the
    // panel's score and gradient columns (2 x rows x n); a larger class is a
    // panel of its own, its columns then in chunks.
    const Index panel_cap = std::max<Index>(
        1, std::min<Index>(max_panel_rows, static_cast<Index>(o.workspace_bytes / (2 * scalar * std::size_t(n)))));
    Mat M, dM;
    Arr f(n);
    std::vector<Index> first, second;       // per pair: its anchor and positive (class-order rows)
    std::vector<Index> run_begin, run_end;  // per pair: its class's run
    Arr bias, top, sum, lse, factor, sigma;
    for (std::size_t c0 = 0; c0 < classes;) {
      std::size_t c1 = c0 + 1;
      while (c1 < classes && start(c1 + 1) - start(c0) <= panel_cap) ++c1;
      const Index p0 = start(c0), rows = start(c1) - p0;
      // The panel's ordered positive pairs (a, p), a != p, anchor-major.
      first.clear();
      second.clear();
      run_begin.clear();
      run_end.clear();
      for (std::size_t c = c0; c < c1; ++c) {
        const Index b = start(c), e = start(c + 1);
        if (e - b < 2) continue;
        for (Index a = b; a < e; ++a) {
          for (Index q = b; q < e; ++q) {
            if (q == a) continue;
            first.push_back(a);
            second.push_back(q);
            run_begin.push_back(b);
            run_end.push_back(e);
          }
        }
      }
      c0 = c1;
      const Index pairs = static_cast<Index>(first.size());
      if (pairs == 0) continue;
      const auto at = [](const std::vector<Index>& v, Index r) { return v[static_cast<std::size_t>(r)]; };
      bias.resize(pairs);
      for (Index r = 0; r < pairs; ++r) bias(r) = -c2 * U.row(at(first, r)).dot(U.row(at(second, r)));
      const Index chunk = std::max<Index>(
          1, std::min<Index>(n, static_cast<Index>(o.workspace_bytes / (2 * scalar * std::size_t(rows)))));
      const auto Up = U.middleRows(p0, rows);
      // Scores of the panel's rows against columns [j0, j0 + cols): M = U_panel S^T.
      const auto scores = [&](Index j0, Index cols) { M.noalias() = Up * S.middleRows(j0, cols).transpose(); };
      // Visits pair r's negatives among columns [j0, j0 + cols) (everything
      // outside its class's run) as f = t4 (M_a + M_p) + bias, segment by segment.
      const auto each_segment = [&](Index r, Index j0, Index cols, auto&& visit) {
        const Index a = at(first, r) - p0, q = at(second, r) - p0;
        const Index ranges[2][2] = {{j0, std::min(j0 + cols, at(run_begin, r))},
                                    {std::max(j0, at(run_end, r)), j0 + cols}};
        for (const auto& range : ranges) {
          const Index len = range[1] - range[0];
          if (len <= 0) continue;
          const Index col = range[0] - j0;
          f.head(len) = t4 * (M.row(a).segment(col, len) + M.row(q).segment(col, len)).array() + bias(r);
          visit(a, q, col, len);
        }
      };
      // Pass 1: log(1 + sum_n exp(f)), online across column chunks (the one
      // is exp(0) at shift 0).
      top.setZero(pairs);
      sum.setOnes(pairs);
      for (Index j0 = 0; j0 < n; j0 += chunk) {
        const Index cols = std::min(chunk, n - j0);
        scores(j0, cols);
        for (Index r = 0; r < pairs; ++r) {
          each_segment(r, j0, cols, [&](Index, Index, Index, Index len) {
            const Scalar new_top = std::max(top(r), f.head(len).maxCoeff());
            sum(r) = sum(r) * std::exp(top(r) - new_top) + (f.head(len) - new_top).exp().sum();
            top(r) = new_top;
          });
        }
      }
      lse = top + sum.log();
      factor.resize(pairs);
      for (Index r = 0; r < pairs; ++r) {
        const Index anchor = groups.order[static_cast<std::size_t>(at(first, r))];
        const Scalar weighted = tally.add(anchor, lse(r));
        if (terms) (*terms)(anchor) += weighted;
        factor(r) = nonzero_only && !(weighted > Scalar(0)) ? Scalar(0) : tally.weight(anchor);
      }
      if (!dZ || !(factor.abs().maxCoeff() > Scalar(0))) continue;
      // Pass 2: pi = factor exp(f - lse); dM_a += t4 pi, dM_p += t4 pi, then
      // dU_panel += dM S_chunk and dS_chunk += dM^T U_panel.
      sigma.setZero(pairs);
      for (Index j0 = 0; j0 < n; j0 += chunk) {
        const Index cols = std::min(chunk, n - j0);
        if (chunk < n) scores(j0, cols);  // one chunk: M still holds it
        dM.setZero(rows, cols);
        for (Index r = 0; r < pairs; ++r) {
          if (factor(r) == Scalar(0)) continue;
          each_segment(r, j0, cols, [&](Index a, Index q, Index col, Index len) {
            f.head(len) = (f.head(len) - lse(r)).exp() * factor(r);
            sigma(r) += f.head(len).sum();
            dM.row(a).segment(col, len).array() += t4 * f.head(len);
            dM.row(q).segment(col, len).array() += t4 * f.head(len);
          });
        }
        dU.middleRows(p0, rows).noalias() += dM * S.middleRows(j0, cols);
        dS.middleRows(j0, cols).noalias() += dM.transpose() * Up;
      }
      for (Index r = 0; r < pairs; ++r) {
        const Index a = at(first, r), q = at(second, r);
        dU.row(a) -= (c2 * sigma(r)) * U.row(q);
        dU.row(q) -= (c2 * sigma(r)) * U.row(a);
      }
    }
    const Reduced<Scalar> reduced = tally.finish();
    if (dZ) {
      // Through u = z / |z|: (dU - (u . dU) u) / |z|; a zero row has no gradient through u.
      for (Index k = 0; k < n; ++k) {
        auto out = dZ->row(groups.order[static_cast<std::size_t>(k)]);
        out = dS.row(k);
        if (norm(k) > Scalar(0)) out += (dU.row(k) - U.row(k).dot(dU.row(k)) * U.row(k)) / norm(k);
      }
      *dZ *= reduced.weight;
    }
    return reduced.value;
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
