// P x K batches (Hermans et al. 2017): P classes, K samples of each, so every
// anchor of a batch has K - 1 positives and (P - 1) K negatives.
#pragma once

#include <contrastive/contrastive.hpp>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

namespace digits {

using contrastive::Index;
using contrastive::LabelVector;

class PkSampler {
 public:
  // Labels are 0..classes-1. Each class is walked in a shuffled order, so
  // every sample is used before any is reused.
  PkSampler(const LabelVector& labels, int classes, Index p, Index k, std::mt19937& rng)
      : p_(p), k_(k), rng_(rng), rows_(static_cast<std::size_t>(classes)),
        next_(static_cast<std::size_t>(classes), 0) {
    for (Index i = 0; i < labels.size(); ++i) rows_[static_cast<std::size_t>(labels(i))].push_back(i);
    if (p < 2 || p > classes)
      throw std::invalid_argument("P must be in 2.." + std::to_string(classes) + ", got " + std::to_string(p));
    if (k < 2) throw std::invalid_argument("K must be >= 2, got " + std::to_string(k));
    for (std::size_t c = 0; c < rows_.size(); ++c) {
      if (static_cast<Index>(rows_[c].size()) < k)
        throw std::invalid_argument("class " + std::to_string(c) + " has " + std::to_string(rows_[c].size()) +
                                    " training samples, fewer than K = " + std::to_string(k));
      std::shuffle(rows_[c].begin(), rows_[c].end(), rng_);
    }
  }

  Index batch_size() const { return p_ * k_; }

  // Row indices of the next batch, grouped by class.
  std::vector<Index> next() {
    std::vector<std::size_t> classes(rows_.size());
    for (std::size_t c = 0; c < classes.size(); ++c) classes[c] = c;
    std::shuffle(classes.begin(), classes.end(), rng_);
    std::vector<Index> batch;
    batch.reserve(static_cast<std::size_t>(p_ * k_));
    for (Index j = 0; j < p_; ++j) {
      const std::size_t c = classes[static_cast<std::size_t>(j)];
      for (Index i = 0; i < k_; ++i) {
        if (next_[c] == rows_[c].size()) {
          std::shuffle(rows_[c].begin(), rows_[c].end(), rng_);
          next_[c] = 0;
        }
        batch.push_back(rows_[c][next_[c]++]);
      }
    }
    return batch;
  }

 private:
  Index p_, k_;
  std::mt19937& rng_;
  std::vector<std::vector<Index>> rows_;
  std::vector<std::size_t> next_;
};

}  // namespace digits
