// P x K batches (Hermans et al. 2017): P classes, K samples of each, so every
// anchor of a batch has K - 1 positives and (P - 1) K negatives. The batches
// are consecutive slices of contrastive::MPerClassSampler's epochs (M = K,
// batch size P K, an epoch as long as the data), pytorch-metric-learning's
// MPerClassSampler rules.
#pragma once

#include <contrastive/contrastive.hpp>

#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace digits {

using contrastive::Index;
using contrastive::LabelVector;

class PkSampler {
 public:
  // Labels are 0..classes-1; the sampler's seed is drawn from rng.
  PkSampler(const LabelVector& labels, int classes, Index p, Index k, std::mt19937& rng)
      : sampler_(checked(labels, classes, p, k), k, p * k, labels.size(), (std::uint64_t(rng()) << 32) | rng()) {}

  Index batch_size() const { return sampler_.batch_size(); }
  // Batches per epoch: the epoch is as long as the data, rounded down to whole batches.
  Index batches_per_epoch() const { return sampler_.length() / sampler_.batch_size(); }

  // Row indices of the next batch, grouped by class.
  std::vector<Index> next() {
    if (next_ + static_cast<std::size_t>(batch_size()) > epoch_.size()) {
      epoch_ = sampler_.epoch();
      next_ = 0;
    }
    const auto first = epoch_.begin() + static_cast<std::ptrdiff_t>(next_);
    next_ += static_cast<std::size_t>(batch_size());
    return std::vector<Index>(first, first + batch_size());
  }

 private:
  static const LabelVector& checked(const LabelVector& labels, int classes, Index p, Index k) {
    if (p < 2 || p > classes)
      throw std::invalid_argument("P must be in 2.." + std::to_string(classes) + ", got " + std::to_string(p));
    if (k < 2) throw std::invalid_argument("K must be >= 2, got " + std::to_string(k));
    return labels;
  }

  contrastive::MPerClassSampler sampler_;
  std::vector<Index> epoch_;
  std::size_t next_ = 0;
};

}  // namespace digits
