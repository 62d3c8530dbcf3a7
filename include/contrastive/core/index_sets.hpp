// Index sets that miners return and losses accept: plain vectors of row indices.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace contrastive {

// (anchor, positive, negative) row indices into one embedding matrix (or, for
// reference-set mining, anchor into the queries and the others into the reference set).
struct Triplets {
  std::vector<Index> anchor;
  std::vector<Index> positive;
  std::vector<Index> negative;

  Index size() const { return static_cast<Index>(anchor.size()); }
  bool empty() const { return anchor.empty(); }
  void add(Index a, Index p, Index n) {
    anchor.push_back(a);
    positive.push_back(p);
    negative.push_back(n);
  }
};

// (first, second) row-index pairs, each marked similar (positive pair) or not.
struct Pairs {
  std::vector<Index> first;
  std::vector<Index> second;
  std::vector<std::uint8_t> similar;  // 1 = positive pair, 0 = negative pair

  Index size() const { return static_cast<Index>(first.size()); }
  bool empty() const { return first.empty(); }
  void add(Index a, Index b, bool is_similar) {
    first.push_back(a);
    second.push_back(b);
    similar.push_back(is_similar ? 1 : 0);
  }
};

namespace detail {

// Checked before any work by every loss that takes Pairs: equal lengths,
// flags 0 or 1, indices in [0, rows).
inline void validate_pairs(const char* function, const Pairs& pairs, Index rows) {
  const std::size_t n = pairs.first.size();
  if (pairs.second.size() != n || pairs.similar.size() != n) {
    fail(function, "argument 'pairs' has " + std::to_string(n) + " first, " +
                       std::to_string(pairs.second.size()) + " second and " +
                       std::to_string(pairs.similar.size()) +
                       " similar entries; all three must have the same length");
  }
  for (std::size_t k = 0; k < n; ++k) {
    if (pairs.similar[k] > 1) {
      fail(function, "argument 'pairs': pair " + std::to_string(k) + " has similar = " +
                         std::to_string(static_cast<int>(pairs.similar[k])) +
                         "; use 1 for a positive pair and 0 for a negative one");
    }
    const Index a = pairs.first[k];
    const Index b = pairs.second[k];
    if (a < 0 || a >= rows || b < 0 || b >= rows) {
      fail(function, "argument 'pairs': pair " + std::to_string(k) + " (" + std::to_string(a) +
                         ", " + std::to_string(b) + ") has an index out of range for X with " +
                         std::to_string(rows) + " rows");
    }
  }
}

}  // namespace detail

}  // namespace contrastive
