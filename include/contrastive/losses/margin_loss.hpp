// Margin loss of Wu, Manmatha, Smola & Kraehenbuehl 2017, "Sampling Matters in
// Deep Embedding Learning", with the gradient with respect to beta as well.
//
// Every row a is an anchor; for every other row b (ordered pairs (a, b), a != b)
//   positive pair (same label):       [d(a, b) - beta_a + alpha]+
//   negative pair (different labels): [beta_a - d(a, b) + alpha]+
// beta_a = options.beta, or options.class_beta(label of a): the ANCHOR's class
// picks beta. Each unordered pair appears twice, once per anchor; under Mean and
// MeanNonZero that changes nothing for a scalar beta, under Sum it doubles.
//
// options.triplet_weights = true weights every pair as pytorch-metric-learning's
// "all triplets" does: each (anchor, positive, negative) triplet contributes its
// positive and its negative term, so (a, p) counts once per negative of a and
// (a, n) once per positive of a (O(N^2) all the same: no triplet is formed).
//
// Regulariser on beta (options.nu, default 0, added only where there is at least
// one term): scalar beta: + nu * beta. Per-class betas: + nu * sum over "uses"
// of beta_a, times the reduction's weight (1/divisor); a use is a triplet
// (triplet_weights) or an ordered pair (otherwise).
//
// Reduction (default MeanNonZero): the weighted term sum divided by the weighted
// count of terms with positive loss (PML's divisor num_pos_pairs + num_neg_pairs).
// Mean divides by the weighted count of all terms; Sum divides by 1.
//
// Result: MarginLossResult<Scalar>: value, grad = {dX}, terms = the unweighted
// loss of every ordered pair (a, b), a != b, in row-major order (N(N-1) terms),
// beta_grad = dL/dbeta: length 1 for a scalar beta, else class_beta.size().
//
// Reproducing pytorch-metric-learning MarginLoss(margin=alpha, nu, beta,
// triplets_per_anchor="all", learn_beta, num_classes) with its default
// LpDistance(normalize_embeddings=True) and DivisorReducer:
//   margin_loss on row-normalised embeddings with {alpha, beta (or class_beta =
//   beta repeated num_classes times), nu = learn_beta ? nu : 0,
//   triplet_weights = true, MeanNonZero}. Proved by tests/test_margin_loss.cpp
//   against tests/reference/data/pair_margin_*.txt. (PML returns 0 when no
//   triplet exists; so do we.)
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

namespace contrastive {

struct MarginOptions {
  double alpha = 0.2;           // margin around the boundary beta
  double beta = 1.2;            // the boundary, when class_beta is empty
  Eigen::VectorXd class_beta;   // optional: one boundary per class, indexed by label in [0, size)
  double nu = 0;                // regulariser weight on beta
  bool triplet_weights = false; // weight pairs as PML's triplets_per_anchor="all"
  Reduction reduction = Reduction::MeanNonZero;
  std::size_t workspace_bytes = default_workspace_bytes;  // pairwise workspace
};

template <class Scalar>
struct MarginLossResult : LossResult<Scalar> {
  Vector<Scalar> beta_grad;  // dL/dbeta, or dL/dclass_beta
};

namespace detail {

// The beta gradient travels as the last gradient block; the result names it.
template <class Scalar>
struct CompleteResult<MarginLossResult<Scalar>> {
  static void apply(MarginLossResult<Scalar>& r) {
    if (r.grad.empty()) return;
    r.beta_grad = r.grad.back().col(0);
    r.grad.pop_back();
  }
};

}  // namespace detail

namespace detail {

inline void validate_margin_options(const char* function, const MarginOptions& o,
                                    const LabelVector& labels) {
  require_non_negative(function, "options.alpha", o.alpha);
  require_finite_scalar(function, "options.beta", o.beta);
  require_non_negative(function, "options.nu", o.nu);
  if (o.class_beta.size() == 0) return;
  require_finite_vector<double>(function, "options.class_beta", o.class_beta);
  for (Index i = 0; i < labels.size(); ++i) {
    if (labels(i) < 0 || labels(i) >= o.class_beta.size()) {
      fail(function, "argument 'labels' has " + std::to_string(labels(i)) + " at row " +
                         std::to_string(i) + ", outside [0, " + std::to_string(o.class_beta.size()) +
                         ") required by 'options.class_beta' (one beta per class)");
    }
  }
}

inline Index margin_beta_count(const MarginOptions& o) {
  return o.class_beta.size() == 0 ? Index(1) : o.class_beta.size();
}

// The beta count of the options among a call's trailing arguments (1 without options).
inline Index margin_beta_count_of() { return 1; }
template <class First, class... Rest>
Index margin_beta_count_of(const First& first, const Rest&... rest) {
  if constexpr (std::is_same<First, MarginOptions>::value) {
    return margin_beta_count(first);
  } else {
    return margin_beta_count_of(rest...);
  }
}

struct MarginLoss {
  static constexpr const char* name = "margin_loss";
  using Options = MarginOptions;

  // grads: dX, the metric's parameter gradients, then dL/dbeta (one column).
  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     const MarginOptions& o, Gradients<Scalar>* grads, Vector<Scalar>* terms) {
  require_embeddings<Scalar>(name, "X", X);
  validate_margin_options(name, o, labels);
  metric.check_rows(name, X);
  const bool per_class = o.class_beta.size() != 0;
  const Index n_beta = margin_beta_count(o);
  const Vector<Scalar> betas = per_class ? Vector<Scalar>(o.class_beta.template cast<Scalar>())
                                         : Vector<Scalar>::Constant(1, static_cast<Scalar>(o.beta));
  const Scalar alpha = static_cast<Scalar>(o.alpha);
  const Scalar nu = static_cast<Scalar>(o.nu);

    const Index n = X.rows();
    const std::vector<std::int32_t> ids = dense_label_ids(labels);
    const std::int32_t* id = ids.data();
    // Per beta: weighted sum of the hinge slopes d term / d beta (integer: the
    // slopes are +-weights), and the uses for the regulariser.
    Eigen::Matrix<Index, Eigen::Dynamic, 1> beta_slope = Eigen::Matrix<Index, Eigen::Dynamic, 1>::Zero(n_beta);
    Vector<Scalar> uses = Vector<Scalar>::Zero(n_beta);
    if (terms) terms->resize(n * (n > 0 ? n - 1 : 0));
    // One row of terms, and of the same-label mask (1/0), per anchor: no per-pair work
    // beyond one branch-free vectorisable loop.
    Eigen::Array<Scalar, Eigen::Dynamic, 1> t_row(n), s_row(n), h_row(n);
    Scalar* T = t_row.data();
    Scalar* S = s_row.data();
    Scalar* H = h_row.data();
    Scalar sum = Scalar(0);
    Index count = 0;
    Index positive = 0;
  auto panel = [&](const DistancePanel<Scalar>& D, auto* dD) {
    for (Index a = D.first; a < D.end(); ++a) {
      const std::int32_t ia = id[a];
      std::int32_t same_all = 0;
      for (Index b = 0; b < n; ++b) same_all += id[b] == ia ? 1 : 0;
      const Index n_pos = same_all - 1;  // the anchor itself is not a pair
      const Index n_neg = n - 1 - n_pos;
      const Index c = per_class ? static_cast<Index>(labels(a)) : 0;
      const Scalar beta = betas(c);
      uses(c) += static_cast<Scalar>(o.triplet_weights ? n_pos * n_neg : n - 1);
      const Index wpos = o.triplet_weights ? n_neg : 1;
      const Index wneg = o.triplet_weights ? n_pos : 1;
      const Scalar fpos = static_cast<Scalar>(wpos);
      const Scalar fneg = -static_cast<Scalar>(wneg);
      const Scalar* d = D.row(a);
      Scalar* g = dD ? dD->row(a) : nullptr;
      // positive pair: (d - beta) + alpha; negative: -(d - beta) + alpha == (beta - d) + alpha exactly.
      // Plain float selects only (no integer or boolean reductions) so the loop vectorises;
      // the hit counts are sums of 0/1 floats, exact for any row length below 2^24.
      for (Index b = 0; b < n; ++b) {
        const bool similar = id[b] == ia;
        const Scalar x = d[b] - beta;
        const Scalar h = (similar ? x : -x) + alpha;
        const Scalar t = h > Scalar(0) ? h : Scalar(0);
        T[b] = t;
        S[b] = similar ? Scalar(1) : Scalar(0);
        H[b] = t > Scalar(0) ? Scalar(1) : Scalar(0);
      }
      // The diagonal (a, a) is no pair.
      T[a] = Scalar(0);
      S[a] = Scalar(0);
      H[a] = Scalar(0);
      if (g) {
        for (Index b = 0; b < n; ++b) g[b] = H[b] * (S[b] > Scalar(0) ? fpos : fneg);
      }
      const Index all_hits = static_cast<Index>(h_row.sum());
      const Index pos_hits = static_cast<Index>((h_row * s_row).sum());
      const Index neg_hits = all_hits - pos_hits;
      if (terms && n > 1) {
        Scalar* out = terms->data() + a * (n - 1);
        std::copy(T, T + a, out);
        std::copy(T + a + 1, T + n, out + a);
      }
      if (o.triplet_weights) {
        const Scalar sp = (t_row * s_row).sum();
        const Scalar sn = (t_row * (Scalar(1) - s_row)).sum();
        sum += fpos * sp + static_cast<Scalar>(wneg) * sn;
      } else {
        sum += t_row.sum();
      }
      count += wpos * n_pos + wneg * n_neg;
      positive += wpos * pos_hits + wneg * neg_hits;
      beta_slope(c) -= wpos * pos_hits - wneg * neg_hits;
    }
  };
  Scalar value(0);
  Vector<Scalar> gbeta;
  auto finish = [&] {
    const Reduced<Scalar> r = reduce<Scalar>(o.reduction, sum, count, positive);
    value = r.value;
    gbeta = beta_slope.template cast<Scalar>() * r.weight;
    if (count > 0 && nu != Scalar(0)) {
      if (per_class) {
        value += nu * r.weight * uses.dot(betas);
        gbeta += nu * r.weight * uses;
      } else {
        value += nu * betas(0);
        gbeta(0) += nu;
      }
    }
    return Reduced<Scalar>{value, r.weight};
  };
  run_pairwise_loss<Scalar>(name, metric, X, o.workspace_bytes, panel_loss<dense_gradient>(panel, finish), grads);
  if (grads) grads->push_back(RowMatrix<Scalar>(gbeta));
  return value;
  }
};

}  // namespace detail

// margin_loss(X, labels, [metric], [options], [value_only | grad_out [, (metric params), beta_grad_out]]):
// the full result has grad = {dX, the metric's parameter gradients} and beta_grad;
// caller-owned outputs take dX, then the metric's parameters, then dL/dbeta
// (a vector of length 1, or class_beta.size()).
template <class Metric = Euclidean, class DX, class L, class... Tail>
auto margin_loss(const Eigen::MatrixBase<DX>& X, const Eigen::DenseBase<L>& labels, const Tail&... tail) {
  using Scalar = typename DX::Scalar;
  using Loss = detail::MarginLoss;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  const LabelVector y = detail::to_labels(Loss::name, "labels", labels, x.rows());
  const auto eval = [&](const auto& metric, const MarginOptions& o, detail::Gradients<Scalar>* g,
                        Vector<Scalar>* t) { return Loss::eval<Scalar>(metric, x, y, o, g, t); };
  // The beta gradient's shape depends on the options, which the call form picks:
  // the spec names the largest it can be and the options' own check runs in eval.
  return detail::call_forms<Metric, Scalar, MarginOptions, MarginLossResult<Scalar>>(
      detail::CallSpec{Loss::name, {{x.rows(), x.cols()}}, {{detail::margin_beta_count_of(tail...), 1}}, {"beta_grad"}}, eval,
      tail...);
}

}  // namespace contrastive
