// Batches of M samples per class: pytorch-metric-learning's
// samplers.MPerClassSampler(labels, m, batch_size, length_before_new_iter),
// seeded. Its rules, which this class keeps:
//   - an epoch is a list of `length()` row indices, read in batches of
//     batch_size: length_before_new_iter, rounded down to a multiple of
//     batch_size, or without a batch size to a multiple of M x (number of
//     classes) when that is smaller;
//   - the list is built from rounds: shuffle the classes, take the first
//     batch_size / M of them (every class without a batch size), and append M
//     rows of each: M distinct rows drawn uniformly from the class, or, for a
//     class with fewer than M rows, M rows drawn with replacement;
//     length() / batch_size rounds (length() / (M x classes) without a batch
//     size, at least one). Without a batch size and with M x classes above
//     length_before_new_iter, the one round stops at length() (PML's list
//     grows past its own length there);
//   - batch_size must be a multiple of M, at most M x classes and at most
//     length_before_new_iter.
// So every batch of batch_size consecutive indices holds batch_size / M
// classes with exactly M rows each. PML draws from numpy's global generator;
// this draws from std::mt19937_64 seeded by `seed` (portable: the same epochs
// with every standard library), so the properties match, not the numbers.
// Choose length_before_new_iter = the number of rows for epochs that cover the
// data once on average.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/mining/detail/sampling.hpp"

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace contrastive {

class MPerClassSampler {
 public:
  // batch_size 0: no batch size (PML's None).
  MPerClassSampler(const Labels& labels, Index m, Index batch_size = 0, Index length_before_new_iter = 100000,
                   std::uint64_t seed = 0)
      : m_(m), batch_size_(batch_size), gen_(detail::mix_seed(seed)) {
    const char* fn = "MPerClassSampler";
    const LabelVector y = detail::to_labels(fn, "labels", labels, labels.size(), "itself");
    if (y.size() == 0) detail::fail(fn, "argument 'labels' is empty");
    if (m <= 0) detail::fail(fn, "argument 'm' must be >= 1, got " + std::to_string(m));
    if (batch_size < 0) detail::fail(fn, "argument 'batch_size' must be >= 0 (0 = none), got " + std::to_string(batch_size));
    if (length_before_new_iter <= 0) {
      detail::fail(fn, "argument 'length_before_new_iter' must be >= 1, got " + std::to_string(length_before_new_iter));
    }
    // Rows of each class, classes in order of first appearance (PML's dict order).
    std::vector<Label> sorted(y.data(), y.data() + y.size());
    std::sort(sorted.begin(), sorted.end());
    sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
    rows_.resize(sorted.size());
    std::vector<Index> slot(sorted.size(), -1);
    for (Index i = 0; i < y.size(); ++i) {
      const std::size_t c =
          static_cast<std::size_t>(std::lower_bound(sorted.begin(), sorted.end(), y(i)) - sorted.begin());
      if (slot[c] < 0) {
        slot[c] = static_cast<Index>(classes_.size());
        classes_.push_back(static_cast<Index>(classes_.size()));
      }
      rows_[static_cast<std::size_t>(slot[c])].push_back(i);
    }
    const Index single_pass = m * static_cast<Index>(classes_.size());
    length_ = length_before_new_iter;
    if (batch_size == 0) {
      if (single_pass < length_) length_ -= length_ % single_pass;
    } else {
      if (length_ < batch_size) {
        detail::fail(fn, "argument 'length_before_new_iter' (" + std::to_string(length_) +
                             ") must be >= 'batch_size' (" + std::to_string(batch_size) + ")");
      }
      if (single_pass < batch_size) {
        detail::fail(fn, "m x (number of classes) = " + std::to_string(single_pass) + " must be >= 'batch_size' (" +
                             std::to_string(batch_size) + ")");
      }
      if (batch_size % m != 0) {
        detail::fail(fn, "argument 'm' (" + std::to_string(m) + ") must divide 'batch_size' (" +
                             std::to_string(batch_size) + ")");
      }
      length_ -= length_ % batch_size;
    }
  }

  // Indices per epoch (PML's len(sampler)).
  Index length() const { return length_; }
  Index batch_size() const { return batch_size_; }
  Index m() const { return m_; }
  Index classes() const { return static_cast<Index>(classes_.size()); }

  // The next epoch's index list (PML's list(iter(sampler))); each call draws a new one.
  std::vector<Index> epoch() {
    std::vector<Index> list(static_cast<std::size_t>(length_), 0);
    const Index divisor = batch_size_ == 0 ? m_ * classes() : batch_size_;
    const Index rounds = divisor < length_ ? length_ / divisor : 1;
    const Index per_round = batch_size_ == 0 ? classes() : batch_size_ / m_;
    std::size_t at = 0;
    std::vector<Index> picked;
    for (Index r = 0; r < rounds; ++r) {
      for (std::size_t i = classes_.size(); i > 1; --i) {  // Fisher-Yates
        const std::size_t j = static_cast<std::size_t>(detail::uniform_index(gen_, i));
        std::swap(classes_[i - 1], classes_[j]);
      }
      for (Index c = 0; c < per_round && at < list.size(); ++c) {
        const std::vector<Index>& rows = rows_[static_cast<std::size_t>(classes_[static_cast<std::size_t>(c)])];
        const Index n = static_cast<Index>(rows.size());
        if (n >= m_) {
          detail::sample_distinct(gen_, n, m_, picked);
          // Floyd's sample is sorted; shuffle it so a batch's rows of one class come in random order.
          for (std::size_t i = picked.size(); i > 1; --i) {
            std::swap(picked[i - 1], picked[static_cast<std::size_t>(detail::uniform_index(gen_, i))]);
          }
        } else {
          picked.clear();
          for (Index k = 0; k < m_; ++k) picked.push_back(static_cast<Index>(detail::uniform_index(gen_, static_cast<std::uint64_t>(n))));
        }
        for (Index k = 0; k < m_ && at < list.size(); ++k) list[at++] = rows[static_cast<std::size_t>(picked[static_cast<std::size_t>(k)])];
      }
    }
    return list;
  }

 private:
  Index m_, batch_size_, length_ = 0;
  std::mt19937_64 gen_;
  std::vector<Index> classes_;             // class slots, shuffled each round
  std::vector<std::vector<Index>> rows_;   // rows of each slot
};

}  // namespace contrastive
