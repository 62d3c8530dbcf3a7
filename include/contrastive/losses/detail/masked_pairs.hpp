// Mined pairs as pytorch-metric-learning's GenericPairLoss sees them: the
// masks pos_mask[a1, p] = 1 and neg_mask[a2, n] = 1 (a pair listed twice
// counts once), and zero losses when every index tensor has at most one entry.
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/engine/rowwise.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <tuple>
#include <vector>

namespace contrastive {
namespace detail {

// Pairs as PML's masks: each (first, second, similar) once, sorted by first.
// PML's GenericPairLoss returns zero losses when every index tensor has at
// most one entry: then no pair is kept.
struct MaskedPairs {
  IndexPairs pairs;
  std::vector<std::uint8_t> similar;

  explicit MaskedPairs(const Pairs& given) {
    Index positives = 0;
    for (const std::uint8_t s : given.similar) positives += s != 0 ? 1 : 0;
    if (positives <= 1 && given.size() - positives <= 1) return;
    std::vector<std::tuple<Index, Index, std::uint8_t>> list;
    list.reserve(given.first.size());
    for (std::size_t k = 0; k < given.first.size(); ++k) {
      list.emplace_back(given.first[k], given.second[k], given.similar[k]);
    }
    std::sort(list.begin(), list.end());
    list.erase(std::unique(list.begin(), list.end()), list.end());
    for (const auto& p : list) {
      pairs.add(std::get<0>(p), std::get<1>(p));
      similar.push_back(std::get<2>(p));
    }
  }
};

}  // namespace detail
}  // namespace contrastive
