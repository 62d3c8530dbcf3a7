// Internals shared by the InfoNCE family (ntxent_loss, supcon_loss): a stable,
// vectorised, masked exponential of one row of logits, and the scalar helpers
// around it.
//
// Logits are s_ik = -D_ik / t for a distance D. Under Cosine (D = 1 - cos)
// that is cos / t minus the constant 1 / t, which no softmax or log-sum-exp
// difference can see, so the losses equal their cos / t definitions exactly.
// Working from D keeps the row maximum exact: it is the smallest kept
// distance, and every kept exponent (shift - D_ik) / t is <= 0.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

namespace contrastive {
namespace detail {

// 1 / temperature in the loss's scalar type; a temperature so small that it
// overflows (e.g. 1e-40 for float) would turn every logit into inf or NaN.
template <class Scalar>
Scalar inverse_temperature(const char* function, double temperature) {
  require_positive(function, "temperature", temperature);
  const Scalar inv = static_cast<Scalar>(1.0 / temperature);
  if (!std::isfinite(inv)) {
    fail(function, "argument 'temperature' (" + std::to_string(temperature) +
                       ") is too small: 1 / temperature overflows the embeddings' scalar type");
  }
  return inv;
}

template <class Scalar>
struct MaskedExpRow {
  Scalar shift;  // smallest kept distance (the largest kept logit is -shift / t); 0 if none kept
  Scalar sum;    // sum of the kept exponentials, in [1, kept count], or 0 if none kept
};

// e_k = keep_k * exp((shift - d_k) / t) with shift = min of the kept d_k, so
// the largest kept term is exactly 1 and nothing overflows. `keep` is a 0/1
// array. Unkept exponents are clamped at 0 before exp so that their product
// with 0 is 0 (never inf * 0); the whole row stays vectorised.
template <class Scalar, class DRow, class KeepRow, class ERow>
MaskedExpRow<Scalar> masked_exp_row(const DRow& d, const KeepRow& keep, Scalar inv_t, ERow&& e) {
  const Scalar inf = std::numeric_limits<Scalar>::infinity();
  const Scalar shift = (keep > Scalar(0)).select(d.array(), inf).minCoeff();
  if (!(shift < inf)) {
    e.setZero();
    return {Scalar(0), Scalar(0)};
  }
  e.array() = ((shift - d.array()) * inv_t).min(Scalar(0)).exp() * keep;
  return {shift, e.sum()};
}

// log(1 + exp(x)) without overflow or loss of small values.
template <class Scalar>
Scalar softplus(Scalar x) {
  return std::max(x, Scalar(0)) + std::log1p(std::exp(-std::abs(x)));
}

// Row-shaped copy of the labels, so a row of masks is one vectorised compare.
inline Eigen::Array<Label, 1, Eigen::Dynamic> label_row(const LabelVector& labels) {
  return labels.transpose().array();
}

// Whether any two rows share a label and whether any two differ: the batch
// has at least one positive pair / at least one negative pair. O(N log N).
struct PairPresence {
  bool any_positive = false;
  bool any_negative = false;
};

inline PairPresence pair_presence(const LabelVector& labels) {
  PairPresence p;
  if (labels.size() < 2) return p;
  LabelVector sorted = labels;
  std::sort(sorted.data(), sorted.data() + sorted.size());
  for (Index i = 1; i < sorted.size(); ++i) {
    if (sorted(i) == sorted(i - 1)) p.any_positive = true;
    else p.any_negative = true;
  }
  return p;
}

template <class D>
using enable_if_floating = std::enable_if_t<std::is_floating_point<typename D::Scalar>::value, int>;

template <class D>
using enable_if_integral = std::enable_if_t<std::is_integral<typename D::Scalar>::value, int>;

}  // namespace detail
}  // namespace contrastive
