// Labels as dense 32-bit class ids, shared by the pair losses' O(N^2) passes.
#pragma once

#include "contrastive/core/types.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

namespace contrastive {
namespace detail {

// Equal labels <=> equal ids, ids in [0, classes), so per-row label compares
// have the width of a float lane and vectorise beside the distances.
inline std::vector<std::int32_t> dense_label_ids(const LabelVector& labels) {
  const Index n = labels.size();
  std::vector<Index> order(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
  std::sort(order.begin(), order.end(), [&](Index x, Index y) { return labels(x) < labels(y); });
  std::vector<std::int32_t> ids(static_cast<std::size_t>(n));
  std::int32_t id = -1;
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (k == 0 || labels(order[k]) != labels(order[k - 1])) ++id;
    ids[static_cast<std::size_t>(order[k])] = id;
  }
  return ids;
}

// out[c] = if_same where row j0 + c has row i's label, else if_other, for c in
// [0, m): the 0/1 masks the tile losses multiply their terms by (a plain loop
// the compiler vectorises: ids and float lanes have one width).
template <class Scalar>
void label_mask(const std::vector<std::int32_t>& ids, Index i, Index j0, Index m, Scalar if_same, Scalar if_other,
                Scalar* out) {
  const std::int32_t li = ids[static_cast<std::size_t>(i)];
  const std::int32_t* lj = ids.data() + j0;
  for (Index c = 0; c < m; ++c) out[c] = lj[c] == li ? if_same : if_other;
}

}  // namespace detail
}  // namespace contrastive
