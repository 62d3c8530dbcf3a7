// Reducers: how a loss's per-term values become its value.
//
//   options.reduction = Reduction::Sum;                  // the kind alone
//   options.reduction = MeanNonZero();                   // the same, as an object
//   options.reduction = Mean(sample_weights);            // each term times its sample's weight
//
// Every term of a loss belongs to one sample, a row of the embeddings (each
// loss documents which: the anchor of a triplet, of a positive pair, of a
// row). With sample weights w (one per sample, finite, >= 0) the term becomes
// w[sample] * term and the weighted terms are reduced exactly as unweighted
// ones are:
//   Sum          sum of the weighted terms
//   Mean         that sum / the number of terms (the weights do not enter the
//                divisor: pytorch-metric-learning's ClassWeightedReducer rule;
//                for a weighted average give weights that average 1)
//   MeanNonZero  that sum / the number of weighted terms > 0 (a weight of 0
//                takes its sample's terms out of the count)
// A term of an unordered pair (batch_contrastive_loss) takes the mean of its
// two rows' weights: the pair stands for the ordered pairs (i, j) and (j, i).
// Weights of 1 give the unweighted result bit for bit. LossResult::terms holds
// the weighted terms.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <cmath>
#include <sstream>
#include <string>
#include <vector>

namespace contrastive {
namespace detail {
struct DeferredTotals;
}  // namespace detail

enum class Reduction {
  Mean,         // average over all terms (pairs, triplets, anchors: see each loss)
  Sum,          // sum over all terms
  MeanNonZero,  // average over terms with positive loss (pytorch-metric-learning's AvgNonZeroReducer)
};

// A reduction kind with optional per-sample weights. Converts implicitly from
// Reduction, so options.reduction = Reduction::Mean keeps working.
class Reducer {
 public:
  Reducer(Reduction kind = Reduction::Mean) : kind_(kind) {}  // NOLINT(google-explicit-constructor)

  template <class W>
  Reducer(Reduction kind, const Eigen::DenseBase<W>& sample_weights) : kind_(kind), weighted_(true) {
    static_assert(std::is_arithmetic<typename W::Scalar>::value, "contrastive: sample weights must be numbers");
    if (sample_weights.rows() != 1 && sample_weights.cols() != 1 && sample_weights.size() != 0) {
      throw std::invalid_argument("contrastive::Reducer: sample weights must be a vector, got " +
                                  detail::shape_of(sample_weights.rows(), sample_weights.cols()));
    }
    weights_.resize(sample_weights.size());
    for (Index k = 0; k < sample_weights.size(); ++k) {
      weights_(k) = static_cast<double>(sample_weights.derived().coeff(k));
    }
  }

  Reduction kind() const { return kind_; }
  bool weighted() const { return weighted_; }
  // One weight per sample; empty when not weighted().
  const Vector<double>& sample_weights() const { return weights_; }

  // The hook of a reduction whose divisor is not this call's own
  // (contrastive/distributed: the count of terms over all processes). With
  // `totals` set, every tally of the call records its sum, count and positive
  // count there and finishes with divisor 1; the terms MeanNonZero leaves out
  // still get no gradient. The caller divides the value and the gradient by
  // the divisor it assembles. Not for everyday use.
  Reducer deferred(detail::DeferredTotals* totals) const {
    Reducer copy = *this;
    copy.deferred_ = totals;
    return copy;
  }
  detail::DeferredTotals* deferred_totals() const { return deferred_; }

 private:
  Reduction kind_;
  bool weighted_ = false;
  Vector<double> weights_;
  detail::DeferredTotals* deferred_ = nullptr;
};

// The reducers by name: Mean(), Sum(), MeanNonZero(), each optionally Mean(w).
struct Mean : Reducer {
  Mean() : Reducer(Reduction::Mean) {}
  template <class W>
  explicit Mean(const Eigen::DenseBase<W>& w) : Reducer(Reduction::Mean, w) {}
};
struct Sum : Reducer {
  Sum() : Reducer(Reduction::Sum) {}
  template <class W>
  explicit Sum(const Eigen::DenseBase<W>& w) : Reducer(Reduction::Sum, w) {}
};
struct MeanNonZero : Reducer {
  MeanNonZero() : Reducer(Reduction::MeanNonZero) {}
  template <class W>
  explicit MeanNonZero(const Eigen::DenseBase<W>& w) : Reducer(Reduction::MeanNonZero, w) {}
};

namespace detail {

// What the tallies of a call with a deferred reduction recorded, one entry
// per finish() (a loss that finishes one tally twice records it twice).
struct DeferredTotals {
  struct Entry {
    double sum;
    Index count;
    Index positive;
  };
  std::vector<Entry> entries;
};

// The value of a reduction and d value / d (weighted) term.
template <class Scalar>
struct Reduced {
  Scalar value;
  Scalar weight;
};

// The reduction of `count` terms with sum `sum`, `positive` of them > 0.
template <class Scalar>
Reduced<Scalar> reduce(Reduction reduction, Scalar sum, Index count, Index positive) {
  Index divisor = 1;
  switch (reduction) {
    case Reduction::Sum: divisor = 1; break;
    case Reduction::Mean: divisor = count; break;
    case Reduction::MeanNonZero: divisor = positive; break;
  }
  // Empty sets give loss 0 and zero gradient, never 0/0.
  if (divisor == 0) return {Scalar(0), Scalar(0)};
  const Scalar weight = Scalar(1) / static_cast<Scalar>(divisor);
  return {sum * weight, weight};
}

// Checked before any work: one finite, non-negative weight per sample.
inline void require_sample_weights(const char* function, const char* argument, const Reducer& reducer,
                                   Index samples, const char* samples_are) {
  if (!reducer.weighted()) return;
  const Vector<double>& w = reducer.sample_weights();
  if (w.size() != samples) {
    fail(function, std::string(argument) + " has " + std::to_string(w.size()) + " sample weights but " +
                       samples_are + " number " + std::to_string(samples) + "; give one weight per sample");
  }
  for (Index k = 0; k < w.size(); ++k) {
    if (!(std::isfinite(w(k)) && w(k) >= 0.0)) {
      std::ostringstream msg;
      msg << argument << ": sample weight " << k << " is " << w(k) << "; weights must be finite and >= 0";
      fail(function, msg.str());
    }
  }
}

// The running reduction of one loss: each term is tallied under the sample it
// belongs to. finish() gives the value and d value / d weighted term; a term's
// own gradient factor is that times weight(sample).
template <class Scalar>
class Tally {
 public:
  // `samples_are` completes the error "... sample weights but <samples_are> number n".
  Tally(const char* function, const char* argument, const Reducer& reducer, Index samples,
        const char* samples_are)
      : kind_(reducer.kind()), deferred_(reducer.deferred_totals()) {
    require_sample_weights(function, argument, reducer, samples, samples_are);
    if (reducer.weighted()) weights_ = reducer.sample_weights().template cast<Scalar>();
  }

  bool weighted() const { return weights_.size() > 0; }
  Reduction kind() const { return kind_; }
  Scalar weight(Index sample) const { return weighted() ? weights_(sample) : Scalar(1); }
  // An unordered pair's weight: the mean of its two rows'.
  Scalar pair_weight(Index i, Index j) const {
    return weighted() ? (weights_(i) + weights_(j)) * Scalar(0.5) : Scalar(1);
  }

  // Tallies term * weight(sample) and returns it.
  Scalar add(Index sample, Scalar term) { return add_weighted(weighted() ? term * weights_(sample) : term); }
  Scalar add_weighted(Scalar weighted_term) {
    sum_ += weighted_term;
    ++count_;
    if (weighted_term > Scalar(0)) ++positive_;
    return weighted_term;
  }
  // The factor a tallied term's own derivative takes before finish()'s scale:
  // its sample's weight, or 0 when MeanNonZero leaves the term out (weighted <= 0).
  Scalar gradient_weight(Index sample, Scalar weighted_term) const {
    if (kind_ == Reduction::MeanNonZero && !(weighted_term > Scalar(0))) return Scalar(0);
    return weight(sample);
  }
  // Sums accumulated elsewhere (per tile, per row) join in one step.
  void add_totals(Scalar sum, Index count, Index positive) {
    sum_ += sum;
    count_ += count;
    positive_ += positive;
  }

  Scalar sum() const { return sum_; }
  Index count() const { return count_; }
  Index positive() const { return positive_; }
  Reduced<Scalar> finish() const {
    if (deferred_) {
      deferred_->entries.push_back({static_cast<double>(sum_), count_, positive_});
      return {sum_, Scalar(1)};
    }
    return reduce<Scalar>(kind_, sum_, count_, positive_);
  }

 private:
  Reduction kind_;
  DeferredTotals* deferred_ = nullptr;
  Vector<Scalar> weights_;
  Scalar sum_ = Scalar(0);
  Index count_ = 0;
  Index positive_ = 0;
};

}  // namespace detail
}  // namespace contrastive
