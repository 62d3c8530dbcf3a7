// The negative classifier: is negative n of a triplet (a, p, n) hard, semi-hard
// or easy for a margin m >= 0? (The losses' rule too: with m = 0 no negative
// is semi-hard.)
//
//   Library convention (FaceNet, Schroff et al. 2015; docs/mining.md):
//     hard       d(a,n) <  d(a,p)
//     semi-hard  d(a,p) <= d(a,n) < d(a,p) + m
//     easy       d(a,n) >= d(a,p) + m
//   Every negative is in exactly one class, and a triplet has positive hinge
//   loss [d(a,p) - d(a,n) + m]+ > 0 exactly when it is hard or semi-hard.
//   In floating point the upper bound is tested as the losses' hinge,
//   (d(a,p) - d(a,n)) + m > 0, not as d(a,n) < d(a,p) + m: when a distance
//   is more than 1/eps times the margin, d(a,p) + m rounds to d(a,p) and a
//   tie would be "easy" while its loss is m > 0.
//   TensorFlow Addons' triplet_semihard_loss uses the same strict
//   d(a,n) > d(a,p) for "farther than the positive" (a tie is not semi-hard
//   there but is not hard either: it is the loss's fallback case).
//
//   TieConvention::PytorchMetricLearning reproduces PML's TripletMarginMiner
//   (type_of_triplets) exactly, from triplet_margin = d(a,n) - d(a,p):
//     hard       triplet_margin <= 0          (a tie d(a,n) = d(a,p) is hard)
//     semi-hard  0 < triplet_margin <= m      (d(a,n) = d(a,p) + m is semi-hard)
//     easy       triplet_margin > m
//   PML's type "all" mines hard and semi-hard together (triplet_margin <= m).
//   With PML's CosineSimilarity (an inverted distance) its triplet margin is
//   sim(a,p) - sim(a,n), which equals d(a,n) - d(a,p) for our Cosine = 1 - cos.
//
// The absolute form, for contrastive pair margins (pos_margin <= neg_margin):
//     hard       d(a,n) <  pos_margin
//     semi-hard  pos_margin <= d(a,n) < neg_margin   (the negative has contrastive loss)
//     easy       d(a,n) >= neg_margin
//
// NegativeKinds is a set of kinds for the miners: NegativeKind::Hard | NegativeKind::SemiHard.
// NegativeKinds::with_loss() is that set, the negatives whose triplet has
// loss: PML's type_of_triplets="all". NegativeKinds::all() is every kind,
// easy included: every valid triplet.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <cstdint>
#include <string>

namespace contrastive {

enum class NegativeKind : std::uint8_t { Hard = 1, SemiHard = 2, Easy = 4 };

// Which side of a boundary a tie falls on (see the table at the top).
enum class TieConvention { Library, PytorchMetricLearning };

// A set of negative kinds, built with operator|.
class NegativeKinds {
 public:
  constexpr NegativeKinds() = default;
  constexpr NegativeKinds(NegativeKind kind) : bits_(static_cast<std::uint8_t>(kind)) {}  // NOLINT: implicit by design

  static constexpr NegativeKinds none() { return NegativeKinds(); }
  // Every kind, easy included: every valid triplet. Not PML's "all" (that is with_loss()).
  static constexpr NegativeKinds all() {
    return NegativeKinds(static_cast<std::uint8_t>(7));
  }
  // Hard and semi-hard: the triplets with positive hinge loss, PML's type_of_triplets="all".
  static constexpr NegativeKinds with_loss() {
    return NegativeKinds(static_cast<std::uint8_t>(3));
  }

  constexpr bool contains(NegativeKind kind) const {
    return (bits_ & static_cast<std::uint8_t>(kind)) != 0;
  }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr std::uint8_t bits() const { return bits_; }

  friend constexpr NegativeKinds operator|(NegativeKinds a, NegativeKinds b) {
    return NegativeKinds(static_cast<std::uint8_t>(a.bits_ | b.bits_));
  }
  friend constexpr bool operator==(NegativeKinds a, NegativeKinds b) { return a.bits_ == b.bits_; }
  friend constexpr bool operator!=(NegativeKinds a, NegativeKinds b) { return a.bits_ != b.bits_; }

 private:
  constexpr explicit NegativeKinds(std::uint8_t bits) : bits_(bits) {}
  std::uint8_t bits_ = 0;
};

constexpr NegativeKinds operator|(NegativeKind a, NegativeKind b) {
  return NegativeKinds(a) | NegativeKinds(b);
}

inline const char* to_string(NegativeKind kind) {
  switch (kind) {
    case NegativeKind::Hard: return "hard";
    case NegativeKind::SemiHard: return "semi-hard";
    case NegativeKind::Easy: return "easy";
  }
  return "?";
}

namespace detail {

// The rule itself, unchecked, in the distances' scalar type. Every miner and
// counter calls this (or a binary search on exactly these comparisons), so
// they agree with classify_negative bit for bit.
template <class Scalar>
NegativeKind classify(Scalar d_ap, Scalar d_an, Scalar margin, TieConvention convention) {
  if (convention == TieConvention::Library) {
    if (d_an < d_ap) return NegativeKind::Hard;
    if ((d_ap - d_an) + margin > Scalar(0)) return NegativeKind::SemiHard;
    return NegativeKind::Easy;
  }
  const Scalar triplet_margin = d_an - d_ap;
  if (triplet_margin <= Scalar(0)) return NegativeKind::Hard;
  if (triplet_margin <= margin) return NegativeKind::SemiHard;
  return NegativeKind::Easy;
}

// The two boundaries as predicates of d(a,p) for a fixed d(a,n). is_easy is
// true on a prefix of the positives sorted by ascending d(a,p) (d_ap - d_an,
// plus m or not, is monotone under rounding), is_hard on a suffix; binary
// search on them counts exactly what classify() would.
template <class Scalar>
bool is_easy(Scalar d_ap, Scalar d_an, Scalar margin, TieConvention convention) {
  return convention == TieConvention::Library ? !((d_ap - d_an) + margin > Scalar(0))
                                              : (d_an - d_ap > margin);
}

template <class Scalar>
bool is_hard(Scalar d_ap, Scalar d_an, TieConvention convention) {
  return convention == TieConvention::Library ? d_an < d_ap : !(d_an - d_ap > Scalar(0));
}

// The triplet losses' rule: finite and >= 0.
inline void require_margin(const char* function, double margin) {
  require_finite_scalar(function, "margin", margin);
  require_non_negative(function, "margin", margin);
}

inline void require_pair_margins(const char* function, double pos_margin, double neg_margin) {
  require_finite_scalar(function, "pos_margin", pos_margin);
  require_finite_scalar(function, "neg_margin", neg_margin);
  if (pos_margin > neg_margin) {
    fail(function, "argument 'pos_margin' (" + std::to_string(pos_margin) +
                       ") must be <= 'neg_margin' (" + std::to_string(neg_margin) + ")");
  }
}

}  // namespace detail

// Kind of negative n for the triplet (a, p, n) given d(a,p), d(a,n) and margin >= 0.
template <class Scalar>
NegativeKind classify_negative(Scalar d_ap, Scalar d_an, double margin,
                               TieConvention convention = TieConvention::Library) {
  detail::check_scalar<Scalar>();
  const char* fn = "classify_negative";
  detail::require_margin(fn, margin);
  detail::require_finite_scalar(fn, "d_ap", static_cast<double>(d_ap));
  detail::require_finite_scalar(fn, "d_an", static_cast<double>(d_an));
  return detail::classify<Scalar>(d_ap, d_an, static_cast<Scalar>(margin), convention);
}

// Absolute form: kind of a negative at distance d_an under contrastive pair
// margins pos_margin <= neg_margin.
template <class Scalar>
NegativeKind classify_negative_absolute(Scalar d_an, double pos_margin, double neg_margin) {
  detail::check_scalar<Scalar>();
  const char* fn = "classify_negative_absolute";
  detail::require_pair_margins(fn, pos_margin, neg_margin);
  detail::require_finite_scalar(fn, "d_an", static_cast<double>(d_an));
  if (d_an < static_cast<Scalar>(pos_margin)) return NegativeKind::Hard;
  if (d_an < static_cast<Scalar>(neg_margin)) return NegativeKind::SemiHard;
  return NegativeKind::Easy;
}

}  // namespace contrastive
