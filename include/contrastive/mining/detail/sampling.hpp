// Seeded sampling that gives the same result with every standard library:
// std::mt19937_64 is fully specified, std::uniform_int_distribution is not.
#pragma once

#include "contrastive/core/types.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace contrastive {
namespace detail {

// SplitMix64: decorrelates the seeds of neighbouring anchors.
inline std::uint64_t mix_seed(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// One generator per anchor, so a sample does not depend on block sizes or on
// the order anchors are processed in.
inline std::mt19937_64 anchor_generator(std::uint64_t seed, Index anchor) {
  return std::mt19937_64(mix_seed(seed ^ mix_seed(static_cast<std::uint64_t>(anchor))));
}

// Uniform in [0, n), n > 0, by rejection: exactly uniform, portable.
inline std::uint64_t uniform_index(std::mt19937_64& gen, std::uint64_t n) {
  const std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  const std::uint64_t limit = max - max % n;  // a multiple of n
  for (;;) {
    const std::uint64_t r = gen();
    if (r < limit) return r % n;
  }
}

// k distinct values of [0, n) chosen uniformly (Floyd's algorithm), sorted, into `out`.
inline void sample_distinct(std::mt19937_64& gen, Index n, Index k, std::vector<Index>& out) {
  out.clear();
  for (Index j = n - k; j < n; ++j) {
    const Index t = static_cast<Index>(uniform_index(gen, static_cast<std::uint64_t>(j) + 1));
    auto at = std::lower_bound(out.begin(), out.end(), t);
    if (at != out.end() && *at == t) {
      // t already taken: take j, larger than everything so far.
      out.push_back(j);
    } else {
      out.insert(at, t);
    }
  }
}

}  // namespace detail
}  // namespace contrastive
