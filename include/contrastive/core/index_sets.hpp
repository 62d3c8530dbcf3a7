// Index sets that miners return and losses accept: plain vectors of row indices.
#pragma once

#include "contrastive/core/types.hpp"

#include <cstdint>
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

}  // namespace contrastive
