// Circle loss (Sun et al. 2020), pair form, with pytorch-metric-learning
// 2.8.1's CircleLoss semantics.
//
// s = cos(x_i, x_j) (PML asserts CosineSimilarity; any other metric is
// rejected). Per anchor i with positives P(i) and negatives N(i):
//   a_ip = -gamma [1 + m - s_ip]+ (s_ip - (1 - m))      (p in P(i))
//   a_in =  gamma [s_in + m]+     (s_in - m)            (n in N(i))
//   term_i = softplus(log sum_p exp(a_ip) + log sum_n exp(a_in))
//            (torch's Softplus: z itself for z > 20, its threshold)
//   term_i = 0 when P(i) or N(i) is empty (PML's final_mask).
//
// The gradient is PML's, which is NOT the derivative of the value: PML
// detaches the weights [1 + m - s_ip]+ and [s_in + m]+ (.detach() in
// circle_loss.py), so autograd differentiates a_ip as -gamma w_ip s_ip and
// a_in as gamma w_in s_in with w held fixed:
//   dterm_i/ds_ip = -gamma w_ip sigmoid(z_i) softmax_p(a_i.)_p,
//   dterm_i/ds_in =  gamma w_in sigmoid(z_i) softmax_n(a_i.)_n,   z_i the softplus argument.
// This header reproduces that gradient (training with it matches PML); the
// finite differences of the value differ from it wherever s - (1 - m) or
// s - m is not 0. Tests check it against the finite differences of the
// value with the weights frozen at the point, which is what it is.
//
// Reduction (options.reduction): MeanNonZero by default (PML's
// AvgNonZeroReducer: the mean over rows with term > 0, so rows without a
// positive or a negative drop out), Mean (over all N rows), Sum. Sample
// weights: one per row, the anchor's. terms: one per row of X.
//
//   circle_loss(X, labels, [Cosine / AnyMetric cosine], [options], [value_only | grad_out])
//   circle_loss(X, pairs, ...)   mined pairs (PML's indices_tuple; masks as GenericPairLoss:
//                                a pair listed twice counts once, zero losses when pairs holds at
//                                most one positive and one negative entry)
//
// Reproducing pytorch-metric-learning 2.8.1 (tests/test_circle_loss.cpp against
// tests/reference/data/pml_circle.txt, written by PML itself):
//   CircleLoss(m, gamma)(X, labels)                           circle_loss(X, labels, {m, gamma})
//   CircleLoss(m, gamma)(X, labels, indices_tuple=mined)      circle_loss(X, mined_pairs, {m, gamma})
// The gradient is with respect to the raw rows (through the normalisation, as PML's).
//
// Bad input: m < 0, gamma <= 0 (or non-finite), a metric other than Cosine:
// std::invalid_argument naming the argument. Stability: each log-sum-exp is
// shifted by its largest logit; gamma = 256 in float is finite.
#pragma once

#include "contrastive/core/call_forms.hpp"
#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/softplus.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"
#include "contrastive/engine/rowwise.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/losses/detail/dense_labels.hpp"
#include "contrastive/losses/detail/masked_pairs.hpp"
#include "contrastive/losses/detail/online_softmin.hpp"
#include "contrastive/metrics/cosine.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {

struct CircleOptions {
  double m = 0.4;       // >= 0: the relaxation margin
  double gamma = 80;    // > 0: the scale
  Reducer reduction = Reduction::MeanNonZero;  // PML's AvgNonZeroReducer
  std::size_t workspace_bytes = default_workspace_bytes;  // the labels form's pairwise workspace
};

namespace detail {

template <class Scalar, class Metric>
void validate_circle(const char* function, const Metric& metric, const ConstRowRef<Scalar>& X, const CircleOptions& o) {
  require_non_negative(function, "options.m", o.m);
  require_positive(function, "options.gamma", o.gamma);
  const bool cosine = metric.template with_rows<Scalar>(
      X, [](auto kind, const ConstRowRef<Scalar>&) { return decltype(kind)::value == MetricKind::Cosine; });
  if (!cosine) {
    fail(function, "argument 'metric' must be Cosine (pytorch-metric-learning's CircleLoss accepts only "
                   "CosineSimilarity)");
  }
}

// The logits of one pair from its cosine distance d = 1 - s, and d logit / d d
// with PML's weight held fixed.
template <class Scalar>
struct CircleTerm {
  Scalar m, gamma;

  template <class D>
  auto positive_logit(const D& d) const {  // -gamma [1 + m - s]+ (s - 1 + m), s = 1 - d
    return -gamma * (m + d).max(Scalar(0)) * (m - d);
  }
  template <class D>
  auto negative_logit(const D& d) const {  // gamma [s + m]+ (s - m)
    return gamma * (Scalar(1) + m - d).max(Scalar(0)) * (Scalar(1) - m - d);
  }
  // d logit / d d with the weight fixed: ds/dd = -1.
  template <class D>
  auto positive_slope(const D& d) const {
    return gamma * (m + d).max(Scalar(0));
  }
  template <class D>
  auto negative_slope(const D& d) const {
    return -gamma * (Scalar(1) + m - d).max(Scalar(0));
  }

  explicit CircleTerm(const CircleOptions& o) : m(static_cast<Scalar>(o.m)), gamma(static_cast<Scalar>(o.gamma)) {}
};

// One anchor: its term and the factors f with dterm/dlogit_k = f exp(logit_k - max)
// (max_p, S_p: the positives' largest logit and sum exp(logit - max_p); likewise for the negatives).
template <class Scalar>
struct CircleAnchor {
  Scalar term = Scalar(0), positive_factor = Scalar(0), negative_factor = Scalar(0);
};

template <class Scalar>
CircleAnchor<Scalar> circle_anchor(Scalar max_p, Scalar S_p, Scalar max_n, Scalar S_n) {
  CircleAnchor<Scalar> out;
  if (!(S_p > Scalar(0)) || !(S_n > Scalar(0))) return out;
  const Scalar z = max_p + std::log(S_p) + max_n + std::log(S_n);
  // torch.nn.Softplus(beta=1) has threshold=20: above it, softplus(z) = z (an
  // error of log1p(e^-z) < 2.1e-9 that PML has, reproduced here).
  const SoftplusValue<Scalar> sp = z > Scalar(20) ? SoftplusValue<Scalar>{z, Scalar(1)} : softplus_with_slope(z);
  out.term = sp.value;
  out.positive_factor = sp.slope / S_p;
  out.negative_factor = sp.slope / S_n;
  return out;
}

// Every pair of a batch, on symmetric tiles. Pass 1: per anchor, the online
// log-sum-exp of its positive logits and of its negative logits
// (OnlineSoftmin over -logit at scale 1). Pass 2: the pair weights
//   W_ij = c_i(d_ij) + c_j(d_ij),  c_a(d) = w_a f_a exp(logit(d) - max_a) slope(d).
template <class Scalar>
class CircleTiles {
 public:
  static constexpr bool symmetric_tiles = true;
  static constexpr bool sparse_gradient = false;
  static constexpr bool reference_tiles = true;
  using Row = Eigen::Array<Scalar, Eigen::Dynamic, 1>;

  // Anchors carry `labels`, the columns `column_labels` (the same on symmetric tiles).
  CircleTiles(const LabelVector& labels, const LabelVector& column_labels, const CircleOptions& o, Tally<Scalar> tally,
              Vector<Scalar>* terms)
      : term_(o), tally_(std::move(tally)), terms_(terms), n_(labels.size()), positives_(labels.size(), Scalar(1)),
        negatives_(labels.size(), Scalar(1)) {
    dense_label_ids(labels, column_labels, ids_, col_ids_);
    if (terms_) terms_->setZero(n_);
  }

  void tile(const DistanceTile<Scalar>& t) {
    typename OnlineSoftmin<Scalar>::Scratch scratch;
    TileRowBuffer<Scalar> same{}, other{}, lp{}, ln{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      const Eigen::Map<const Row> dv(t.row(i) + c0, m);
      masks(i, j0, m, same.data(), other.data());
      Eigen::Map<Row>(lp.data(), m) = -term_.positive_logit(dv);
      Eigen::Map<Row>(ln.data(), m) = -term_.negative_logit(dv);
      positives_.add_row(i, lp.data(), same.data(), m, scratch);
      negatives_.add_row(i, ln.data(), other.data(), m, scratch);
      if (t.reference) continue;  // reference columns are no anchors
      positives_.add_columns(j0, lp.data(), same.data(), m, scratch);
      negatives_.add_columns(j0, ln.data(), other.data(), m, scratch);
    }
  }

  // Several processes sharing the tiles (engine/tile_share.hpp).
  void combine_rows(const TileShare<Scalar>& share) {
    positives_.combine(share);
    negatives_.combine(share);
  }

  template <MetricKind>
  Reduced<Scalar> finish(TileSparseSink<Scalar>*) {
    positive_factor_.setZero(n_);
    negative_factor_.setZero(n_);
    for (Index i = 0; i < n_; ++i) {
      const CircleAnchor<Scalar> a = circle_anchor(-positives_.shift()(i), positives_.sum()(i),
                                                   -negatives_.shift()(i), negatives_.sum()(i));
      const Scalar weighted = tally_.add(i, a.term);
      if (terms_) (*terms_)(i) = weighted;
      const Scalar w = tally_.gradient_weight(i, weighted);
      if (w == Scalar(0)) continue;  // left out: its factors stay 0
      positive_factor_(i) = w * a.positive_factor;
      negative_factor_(i) = w * a.negative_factor;
    }
    return tally_.finish();
  }

  void tile_gradient(const DistanceTile<Scalar>& t, Scalar* W) {
    TileRowBuffer<Scalar> same{}, other{};
    for (Index i = t.i0; i < t.i0 + t.rows; ++i) {
      const Index c0 = t.first_col(i), m = t.cols - c0;
      if (m <= 0) continue;
      const Index j0 = t.j0 + c0;
      masks(i, j0, m, same.data(), other.data());
      const Eigen::Map<const Row> dv(t.row(i) + c0, m), sv(same.data(), m), ov(other.data(), m);
      const Row lp = -term_.positive_logit(dv), ln = -term_.negative_logit(dv);
      Eigen::Map<Row> g(W + (i - t.i0) * t.cols + c0, m);
      if (t.reference) {
        g = sv * term_.positive_slope(dv) * (positive_factor_(i) * positives_.row_exp(i, lp)) +
            ov * term_.negative_slope(dv) * (negative_factor_(i) * negatives_.row_exp(i, ln));
        continue;
      }
      g = sv * term_.positive_slope(dv) *
              (positive_factor_(i) * positives_.row_exp(i, lp) +
               positive_factor_.segment(j0, m) * positives_.column_exp(j0, lp)) +
          ov * term_.negative_slope(dv) *
              (negative_factor_(i) * negatives_.row_exp(i, ln) +
               negative_factor_.segment(j0, m) * negatives_.column_exp(j0, ln));
    }
  }

 private:
  void masks(Index i, Index j0, Index m, Scalar* same, Scalar* other) const {
    label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(1), Scalar(0), same);
    label_mask<Scalar>(ids_, col_ids_, i, j0, m, Scalar(0), Scalar(1), other);
  }

  CircleTerm<Scalar> term_;
  Tally<Scalar> tally_;
  Vector<Scalar>* terms_;
  std::vector<std::int32_t> ids_, col_ids_;
  Index n_;
  OnlineSoftmin<Scalar> positives_, negatives_;
  Row positive_factor_, negative_factor_;
};

struct CircleLoss {
  static constexpr const char* name = "circle_loss";
  using Options = CircleOptions;
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source>
  static Scalar eval(const Metric& metric, const Source& s, const Options& o, Gradients<Scalar>* grads,
                     Vector<Scalar>* terms) {
    require_pair_source<Scalar>(name, metric, s);
    validate_circle<Scalar>(name, metric, s.X, o);
    Tally<Scalar> tally(name, "options.reduction", o.reduction, s.X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(name, metric, s, o.workspace_bytes,
                                     CircleTiles<Scalar>(s.labels, s.candidate_labels(), o, std::move(tally), terms),
                                     grads);
  }
};

// Mined pairs: per anchor, the two log-sum-exps over its listed pairs.
struct CircleMinedLoss {
  static constexpr const char* name = "circle_loss";
  using Options = CircleOptions;

  template <class Scalar, class Metric>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const Pairs& given, const Options& o,
                     Gradients<Scalar>* grads, Vector<Scalar>* terms) {
    require_embeddings<Scalar>(name, "X", X);
    validate_pairs(name, given, X.rows());
    validate_circle<Scalar>(name, metric, X, o);
    const Tally<Scalar> weights(name, "options.reduction", o.reduction, X.rows(), "the rows of X");
    const MaskedPairs masked(given);
    const Index n = X.rows();
    const CircleTerm<Scalar> circle(o);
    auto loss = [&](const Vector<Scalar>& d, Vector<Scalar>* dd) {
      using Array = Eigen::Array<Scalar, Eigen::Dynamic, 1>;
      const Index count = d.size();
      const auto first = [&](Index k) { return masked.pairs.first[static_cast<std::size_t>(k)]; };
      const auto positive = [&](Index k) { return masked.similar[static_cast<std::size_t>(k)] != 0; };
      Array logit(count), slope(count);
      for (Index k = 0; k < count; ++k) {
        const Eigen::Array<Scalar, 1, 1> one(d(k));
        logit(k) = positive(k) ? circle.positive_logit(one)(0) : circle.negative_logit(one)(0);
        slope(k) = positive(k) ? circle.positive_slope(one)(0) : circle.negative_slope(one)(0);
      }
      const Scalar inf = std::numeric_limits<Scalar>::infinity();
      Array max_p = Array::Constant(n, -inf), max_n = Array::Constant(n, -inf);
      for (Index k = 0; k < count; ++k) {
        Scalar& top = positive(k) ? max_p(first(k)) : max_n(first(k));
        top = std::max(top, logit(k));
      }
      Array e(count), S_p = Array::Zero(n), S_n = Array::Zero(n);
      for (Index k = 0; k < count; ++k) {
        const Index a = first(k);
        e(k) = std::exp(logit(k) - (positive(k) ? max_p(a) : max_n(a)));
        (positive(k) ? S_p(a) : S_n(a)) += e(k);
      }
      Tally<Scalar> tally = weights;
      Array pf = Array::Zero(n), nf = Array::Zero(n);
      if (terms) terms->setZero(n);
      for (Index i = 0; i < n; ++i) {
        const CircleAnchor<Scalar> a = circle_anchor(max_p(i), S_p(i), max_n(i), S_n(i));
        const Scalar weighted = tally.add(i, a.term);
        if (terms) (*terms)(i) = weighted;
        const Scalar w = tally.gradient_weight(i, weighted);
        if (w == Scalar(0)) continue;  // left out: its factors stay 0
        pf(i) = w * a.positive_factor;
        nf(i) = w * a.negative_factor;
      }
      const Reduced<Scalar> r = tally.finish();
      if (dd) {
        for (Index k = 0; k < count; ++k) {
          (*dd)(k) = r.weight * (positive(k) ? pf(first(k)) : nf(first(k))) * e(k) * slope(k);
        }
      }
      return r.value;
    };
    return index_pairs_pipeline<Scalar>(metric, X, masked.pairs, loss, grads);
  }
};

}  // namespace detail

// circle_loss(X, labels, [metric], [options], [value_only | grad_out...]): every pair of the
// batch; grad = {dX} (PML's detached-weight gradient); terms: one per row.
template <class Metric = Cosine, class DX, class... Tail>
auto circle_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const Tail&... tail) {
  return detail::labelled_loss<detail::CircleLoss, Metric>(X, labels, tail...);
}

// circle_loss(X, labels, reference_set(R, ref_labels[, self_offset]), ...): grad = {dX, dR}.
template <class Metric = Cosine, class DX, class DR, class... Tail>
auto circle_loss(const Eigen::MatrixBase<DX>& X, const Labels& labels, const ReferenceSet<DR>& reference,
                 const Tail&... tail) {
  return detail::reference_loss<detail::CircleLoss, Metric>(X, labels, reference, tail...);
}

// circle_loss(X, pairs, [metric], [options], [value_only | grad_out...]): mined pairs.
template <class Metric = Cosine, class DX, class... Tail>
auto circle_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const Tail&... tail) {
  return detail::pairs_loss<detail::CircleMinedLoss, Metric>(X, pairs, tail...);
}

// circle_loss(X, pairs, reference_set(R), ...): pairs.first indexes X, pairs.second R.
template <class Metric = Cosine, class DX, class DR, class... Tail>
auto circle_loss(const Eigen::MatrixBase<DX>& X, const Pairs& pairs, const ReferenceSet<DR>& reference,
                 const Tail&... tail) {
  return detail::mined_reference_loss<detail::CircleMinedLoss, Metric>(X, pairs, reference, tail...);
}

}  // namespace contrastive
