// Branch-free partition points: the per-anchor searches of the triplet losses,
// the negative counters and the miners all go through these.
#pragma once

#include <cstddef>

namespace contrastive {
namespace detail {

// std::partition_point for a range on which pred holds on a prefix, without
// branches on the data: the loop runs ceil(log2 n) times whatever the
// outcome, and the step is a conditional move. It runs once per (anchor,
// element of the other side); whether a probe lands left or right is a coin
// flip that a branch predictor would lose about half the time.
//
// Ranges of at most 16 elements (the positives of a P x K batch) are counted
// instead, which equals the partition point because pred holds on a prefix:
// cheaper than halving there (batch-all, float N = 1024 value-only: 15.5 ->
// 12.8 ms median; batch-semi-hard unchanged within the machine's noise).
template <class Iter, class Pred>
Iter partition_point_branchless(Iter first, Iter last, Pred pred) {
  auto n = last - first;
  if (n <= 16) {
    decltype(n) count = 0;
    for (Iter it = first; it != last; ++it) count += pred(*it) ? 1 : 0;
    return first + count;
  }
  while (n > 1) {
    const auto half = n / 2;
    first = pred(first[half]) ? first + half : first;
    n -= half;
  }
  return pred(*first) ? first + 1 : first;
}

// The same over [first, first + count), as an index.
template <class T, class Pred>
std::size_t partition_point_index(const T* first, std::size_t count, Pred pred) {
  return static_cast<std::size_t>(partition_point_branchless(first, first + count, pred) - first);
}

}  // namespace detail
}  // namespace contrastive
