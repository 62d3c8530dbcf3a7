// Labels as dense 32-bit class ids, shared by the pair losses' O(N^2) passes.
#pragma once

#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/types.hpp"

#include <cstdint>
#include <vector>

namespace contrastive {
namespace detail {

// LabelGroups' ids alone, for the tile losses that need no class runs.
inline std::vector<std::int32_t> dense_label_ids(const LabelVector& labels) { return LabelGroups(labels).ids; }

// The ids of the anchors' and the columns' labels on one numbering (the same
// vector twice on symmetric tiles, the queries' and the reference set's otherwise).
inline void dense_label_ids(const LabelVector& labels, const LabelVector& column_labels,
                            std::vector<std::int32_t>& ids, std::vector<std::int32_t>& column_ids) {
  if (&labels == &column_labels) {
    ids = dense_label_ids(labels);
    column_ids = ids;
    return;
  }
  LabelVector both(labels.size() + column_labels.size());
  both << labels, column_labels;
  const std::vector<std::int32_t> all = dense_label_ids(both);
  const std::ptrdiff_t n = static_cast<std::ptrdiff_t>(labels.size());
  ids.assign(all.begin(), all.begin() + n);
  column_ids.assign(all.begin() + n, all.end());
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

// The same with the columns' ids from their own vector (reference tiles).
template <class Scalar>
void label_mask(const std::vector<std::int32_t>& ids, const std::vector<std::int32_t>& column_ids, Index i, Index j0,
                Index m, Scalar if_same, Scalar if_other, Scalar* out) {
  const std::int32_t li = ids[static_cast<std::size_t>(i)];
  const std::int32_t* lj = column_ids.data() + j0;
  for (Index c = 0; c < m; ++c) out[c] = lj[c] == li ? if_same : if_other;
}

}  // namespace detail
}  // namespace contrastive
