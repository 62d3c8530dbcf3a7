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
// Sample weights (reduction = MeanNonZero(w), core/reducer.hpp): one per row;
// an ordered pair (a, b) takes its anchor a's weight, in its term, its count
// (a weight of 0 takes it out of MeanNonZero's divisor), its beta gradient and
// its per-class regulariser use.
//
// Result: MarginLossResult<Scalar>: value, grad = {dX}, terms = the loss of
// every ordered pair (a, b), a != b, times a's sample weight but not the
// triplet weighting, in row-major order (N(N-1) terms,
// while they fit options.workspace_bytes; beyond it terms is empty),
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
#include <utility>
#include <vector>

namespace contrastive {

struct MarginOptions {
  double alpha = 0.2;           // margin around the boundary beta
  double beta = 1.2;            // the boundary, when class_beta is empty
  Eigen::VectorXd class_beta;   // optional: one boundary per class, indexed by label in [0, size)
  double nu = 0;                // regulariser weight on beta
  bool triplet_weights = false; // weight pairs as PML's triplets_per_anchor="all"
  Reducer reduction = Reduction::MeanNonZero;
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

// Ordered pairs on symmetric tiles: the unordered pair (i, j) of a tile gives
// anchor i's term and anchor j's term from one distance. Per anchor, the
// sums of its positive and negative terms and their hit counts (0/1 sums,
// exact below 2^24 pairs per anchor) are kept; the reduction and the beta
// gradient come from them at the end. The pair weights are known in pass 1
// up to the reduction's factor: one pass.
template <class Scalar>
class MarginTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool single_pass = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  MarginTiles(const LabelVector& labels, const MarginOptions& o, Tally<Scalar> tally, Vector<Scalar>* terms)
      : o_(o), tally_(std::move(tally)),
        terms_(pair_terms_within<Scalar>(terms, labels.size() * (labels.size() > 0 ? labels.size() - 1 : 0), o.workspace_bytes)),
        ids_(dense_label_ids(labels)), n_(labels.size()) {
    per_class_ = o.class_beta.size() != 0;
    // Anchor i's and anchor j's terms of a pair differ with per-class betas or sample weights.
    separate_ = per_class_ || tally_.weighted();
    const Index n_beta = margin_beta_count(o);
    betas_ = per_class_ ? Vector<Scalar>(o.class_beta.template cast<Scalar>())
                        : Vector<Scalar>::Constant(1, static_cast<Scalar>(o.beta));
    uses_ = Vector<Scalar>::Zero(n_beta);
    // Per anchor: its class sizes, beta, and weights (PML's triplet weighting or 1);
    // fpos_ / fneg_ are d term / d d of an active hinge, times the sample weight.
    std::vector<Index> class_size(ids_.empty() ? 0 : static_cast<std::size_t>(*std::max_element(ids_.begin(), ids_.end()) + 1), 0);
    for (const std::int32_t id : ids_) ++class_size[static_cast<std::size_t>(id)];
    const std::size_t n = static_cast<std::size_t>(n_);
    beta_of_.resize(n);
    class_of_.resize(n);
    wpos_.resize(n);
    wneg_.resize(n);
    fpos_.resize(n);
    fneg_.resize(n);
    for (std::size_t a = 0; a < n; ++a) {
      const Index n_pos = class_size[static_cast<std::size_t>(ids_[a])] - 1;  // the anchor is no pair
      const Index n_neg = n_ - 1 - n_pos;
      const Index c = per_class_ ? static_cast<Index>(labels(static_cast<Index>(a))) : 0;
      class_of_[a] = c;
      beta_of_[a] = betas_(c);
      const Scalar w = tally_.weight(static_cast<Index>(a));
      uses_(c) += w * static_cast<Scalar>(o.triplet_weights ? n_pos * n_neg : n_ - 1);
      wpos_[a] = o.triplet_weights ? n_neg : 1;
      wneg_[a] = o.triplet_weights ? n_pos : 1;
      fpos_[a] = w * static_cast<Scalar>(wpos_[a]);
      fneg_[a] = -w * static_cast<Scalar>(wneg_[a]);
      count_ += wpos_[a] * n_pos + wneg_[a] * n_neg;
    }
    for (Row* r : {&t_pos_, &t_neg_, &h_pos_, &h_neg_}) r->setZero(n_);
  }

  void tile(const DistanceTile<Scalar>& t) {
    TileRowBuffer<Scalar> s_buf{}, ti_buf{}, tj_buf{}, hi_buf{}, hj_buf{};
    std::vector<Scalar> column_terms(terms_ ? static_cast<std::size_t>(t.rows * t.cols) : 0);
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      Scalar* S = s_buf.data();
      Scalar* Ti = ti_buf.data();
      Scalar* Tj = separate_ ? tj_buf.data() : ti_buf.data();
      Scalar* Hi = hi_buf.data();
      Scalar* Hj = separate_ ? hj_buf.data() : hi_buf.data();
      terms_of_pair(t, i, S, Ti, Tj);
      if (tally_.weighted()) {
        Eigen::Map<Row>(Ti, m) *= tally_.weight(i);
        for (Index c = 0; c < m; ++c) Tj[c] *= tally_.weight(j0 + c);
      }
      for (Index c = 0; c < m; ++c) Hi[c] = Ti[c] > Scalar(0) ? Scalar(1) : Scalar(0);
      if (separate_) {
        for (Index c = 0; c < m; ++c) Hj[c] = Tj[c] > Scalar(0) ? Scalar(1) : Scalar(0);
      }
      const Eigen::Map<const Row> sm(S, m), ti(Ti, m), tj(Tj, m), hi(Hi, m), hj(Hj, m);
      // Anchor i: row sums. Anchors j: elementwise.
      const Scalar t_all = ti.sum(), t_same = ti.matrix().dot(sm.matrix());
      const Scalar h_all = hi.sum(), h_same = hi.matrix().dot(sm.matrix());
      t_pos_(i) += t_same;
      t_neg_(i) += t_all - t_same;
      h_pos_(i) += h_same;
      h_neg_(i) += h_all - h_same;
      t_pos_.segment(j0, m) += tj * sm;
      t_neg_.segment(j0, m) += tj - tj * sm;
      h_pos_.segment(j0, m) += hj * sm;
      h_neg_.segment(j0, m) += hj - hj * sm;
      if (terms_ && n_ > 1) {
        // Row-major over ordered pairs (a, b != a): (i, j > i) at i (N-1) + j - 1 here;
        // (j, i) at j (N-1) + i is contiguous in i, so it waits in a tile buffer.
        std::copy(Ti, Ti + m, terms_->data() + i * (n_ - 1) + j0 - 1);
        Scalar* column = column_terms.data() + (i - t.i0);
        for (Index c = 0; c < m; ++c) column[(c0 + c) * t.rows] = Tj[c];
      }
    }
    if (terms_ && n_ > 1) {
      for (Index c = 0; c < t.cols; ++c) {
        const Index j = t.j0 + c;
        const Index count = t.diagonal ? c : t.rows;  // rows i < j of a diagonal tile
        const Scalar* column = column_terms.data() + c * t.rows;
        std::copy(column, column + count, terms_->data() + j * (n_ - 1) + t.i0);
      }
    }
  }

  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> s_buf{}, ti_buf{}, tj_buf{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      Scalar* S = s_buf.data();
      Scalar* Ti = ti_buf.data();
      Scalar* Tj = separate_ ? tj_buf.data() : ti_buf.data();
      terms_of_pair(t, i, S, Ti, Tj);
      const std::size_t k = static_cast<std::size_t>(i);
      const Scalar fp = fpos_[k], fn = fneg_[k];
      const Scalar* fpj = fpos_.data() + j0;
      const Scalar* fnj = fneg_.data() + j0;
      Scalar* g = W + (i - t.i0) * t.cols + c0;
      // d term / d d: +weight on a positive pair's active hinge, -weight on a negative's.
      for (Index c = 0; c < m; ++c) {
        const bool similar = S[c] > Scalar(0);
        const Scalar gi = Ti[c] > Scalar(0) ? (similar ? fp : fn) : Scalar(0);
        const Scalar gj = Tj[c] > Scalar(0) ? (similar ? fpj[c] : fnj[c]) : Scalar(0);
        g[c] = gi + gj;
      }
    }
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    Scalar sum(0);
    Index positive = 0;
    // Whole multiples of the sample weights: exact in double (integers below 2^53 when unweighted).
    Eigen::VectorXd beta_slope = Eigen::VectorXd::Zero(betas_.size());
    for (Index a = 0; a < n_; ++a) {
      const std::size_t k = static_cast<std::size_t>(a);
      // The tile sums already carry the sample weight.
      sum += o_.triplet_weights ? static_cast<Scalar>(wpos_[k]) * t_pos_(a) + static_cast<Scalar>(wneg_[k]) * t_neg_(a)
                                : t_pos_(a) + t_neg_(a);
      const Index pos_hits = static_cast<Index>(h_pos_(a)), neg_hits = static_cast<Index>(h_neg_(a));
      positive += wpos_[k] * pos_hits + wneg_[k] * neg_hits;
      beta_slope(class_of_[k]) -=
          static_cast<double>(tally_.weight(a)) * static_cast<double>(wpos_[k] * pos_hits - wneg_[k] * neg_hits);
    }
    tally_.add_totals(sum, count_, positive);
    const Reduced<Scalar> r = tally_.finish();
    value_ = r.value;
    beta_grad_ = beta_slope.template cast<Scalar>() * r.weight;
    const Scalar nu = static_cast<Scalar>(o_.nu);
    if (count_ > 0 && nu != Scalar(0)) {
      if (per_class_) {
        value_ += nu * r.weight * uses_.dot(betas_);
        beta_grad_ += nu * r.weight * uses_;
      } else {
        value_ += nu * betas_(0);
        beta_grad_(0) += nu;
      }
    }
    return Reduced<Scalar>{value_, r.weight};
  }

  const Vector<Scalar>& beta_grad() const { return beta_grad_; }

 private:
  // The pairs of row i in tile t: S = same-label mask (0/1); Ti = anchor i's
  // terms, Tj = the column anchors' terms (the same buffer when beta is scalar).
  // positive pair: (d - beta) + alpha; negative: -(d - beta) + alpha == (beta - d) + alpha exactly.
  void terms_of_pair(const DistanceTile<Scalar>& t, Index i, Scalar* S, Scalar* Ti, Scalar* Tj) const {
    const Index c0 = t.first_col(i), m = t.cols - c0;
    const Index j0 = t.j0 + c0;
    const std::int32_t li = ids_[static_cast<std::size_t>(i)];
    const std::int32_t* lj = ids_.data() + j0;
    const Scalar* d = t.row(i) + c0;
    const Scalar alpha = static_cast<Scalar>(o_.alpha);
    const Scalar bi = beta_of_[static_cast<std::size_t>(i)];
    for (Index c = 0; c < m; ++c) {
      const bool similar = lj[c] == li;
      S[c] = similar ? Scalar(1) : Scalar(0);
      const Scalar x = d[c] - bi;
      const Scalar h = (similar ? x : -x) + alpha;
      Ti[c] = h > Scalar(0) ? h : Scalar(0);
    }
    if (Tj == Ti) return;
    const Scalar* bj = beta_of_.data() + j0;
    for (Index c = 0; c < m; ++c) {
      const bool similar = S[c] > Scalar(0);
      const Scalar x = d[c] - bj[c];
      const Scalar h = (similar ? x : -x) + alpha;
      Tj[c] = h > Scalar(0) ? h : Scalar(0);
    }
  }

  const MarginOptions& o_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_;
  Index n_;
  bool per_class_ = false;
  bool separate_ = false;
  Vector<Scalar> betas_, uses_, beta_grad_;
  std::vector<Scalar> beta_of_, fpos_, fneg_;
  std::vector<Index> class_of_, wpos_, wneg_;
  Index count_ = 0;
  Row t_pos_, t_neg_, h_pos_, h_neg_;
  Scalar value_ = Scalar(0);
};

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
    MarginTiles<Scalar> loss(labels, o, Tally<Scalar>(name, "options.reduction", o.reduction, X.rows(), "the rows of X"),
                             terms);
    const Scalar value = run_pairwise_loss<Scalar>(name, metric, X, o.workspace_bytes, loss, grads);
    if (grads) grads->push_back(RowMatrix<Scalar>(loss.beta_grad()));
    return value;
  }
};

}  // namespace detail

// margin_loss(X, labels, [metric], [options], [value_only | grad_out [, (metric params), beta_grad_out]]):
// the full result has grad = {dX, the metric's parameter gradients} and beta_grad;
// caller-owned outputs take dX, then the metric's parameters, then dL/dbeta
// (a vector of length 1, or class_beta.size()).
template <class Metric = Euclidean, class DX, class... Tail>
auto margin_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
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
