// Rows grouped by label, for the losses and the miners alike: the batch's
// classes (dense ids, each class's rows as one run), and one anchor's
// distance row split into its positives and negatives.
#pragma once

#include "contrastive/core/types.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace contrastive {
namespace detail {

// The classes of a batch, from one O(N log N) sort of the labels.
// Dense 32-bit ids let per-row label compares vectorise beside float
// distances; the runs give an anchor's positives in O(K) instead of a label
// comparison over the whole row.
struct LabelGroups {
  std::vector<std::int32_t> ids;  // per row: its class, in [0, classes), equal labels <=> equal ids
  std::vector<Index> order;       // rows sorted by (label, row): each class one run, rows ascending
  std::vector<Index> starts;      // per class: where its run starts in `order`; then N
  bool any_positive = false;      // some class has two rows
  bool any_negative = false;      // there are two classes

  explicit LabelGroups(const LabelVector& labels) {
    const Index n = labels.size();
    const std::size_t size = static_cast<std::size_t>(n);
    ids.resize(size);
    order.resize(size);
    for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::sort(order.begin(), order.end(), [&](Index a, Index b) {
      return labels(a) != labels(b) ? labels(a) < labels(b) : a < b;
    });
    std::int32_t id = -1;
    for (std::size_t k = 0; k < size; ++k) {
      if (k == 0 || labels(order[k]) != labels(order[k - 1])) {
        ++id;
        starts.push_back(static_cast<Index>(k));
      }
      ids[static_cast<std::size_t>(order[k])] = id;
    }
    starts.push_back(n);
    for (std::size_t c = 0; c + 1 < starts.size(); ++c) {
      if (starts[c + 1] - starts[c] > 1) any_positive = true;
    }
    any_negative = starts.size() > 2;
  }

  // The rows sharing row i's label, i included: class_of(i)[0 .. class_size(i)).
  const Index* class_of(Index i) const { return order.data() + starts[class_index(i)]; }
  Index class_size(Index i) const { return starts[class_index(i) + 1] - starts[class_index(i)]; }

 private:
  std::size_t class_index(Index i) const { return static_cast<std::size_t>(ids[static_cast<std::size_t>(i)]); }
};

// One entry of a distance row: the distance and the column it came from.
template <class Scalar>
struct RankedDistance {
  Scalar distance;
  Index index;
};

// Ascending distance, then ascending index: ties resolve to the lowest index.
template <class Scalar>
bool ranked_less(const RankedDistance<Scalar>& x, const RankedDistance<Scalar>& y) {
  return x.distance < y.distance || (x.distance == y.distance && x.index < y.index);
}

// One anchor's positives (its label) and negatives (another label), each in
// column order, as [begin, end) ranges over buffers reused across anchors.
template <class Scalar>
struct AnchorSides {
  std::vector<RankedDistance<Scalar>> positive_buffer;
  std::vector<RankedDistance<Scalar>> negative_buffer;
  std::size_t num_positives = 0;
  std::size_t num_negatives = 0;

  AnchorSides() = default;
  explicit AnchorSides(Index n)
      : positive_buffer(static_cast<std::size_t>(n)), negative_buffer(static_cast<std::size_t>(n)) {}

  RankedDistance<Scalar>* positives() { return positive_buffer.data(); }
  RankedDistance<Scalar>* negatives() { return negative_buffer.data(); }

  // Anchor `anchor` of the batch against the batch: the anchor is not its own positive.
  template <class Row>
  void split(Index anchor, const Row& distances, const LabelVector& labels) {
    split_against(labels(anchor), distances, labels, anchor);
  }

  // An anchor with label `own` against rows with `labels` (distances[j] to row
  // j); column `self` is on neither side (-1: none). Every entry is written to
  // both buffers and only the matching count advances: no branch on the labels.
  template <class Row>
  void split_against(Label own, const Row& distances, const LabelVector& labels, Index self) {
    const Index m = labels.size();
    if (positive_buffer.size() < static_cast<std::size_t>(m)) {
      positive_buffer.resize(static_cast<std::size_t>(m));
      negative_buffer.resize(static_cast<std::size_t>(m));
    }
    RankedDistance<Scalar>* pos = positive_buffer.data();
    RankedDistance<Scalar>* neg = negative_buffer.data();
    std::size_t np = 0, nn = 0;
    for (Index j = 0; j < m; ++j) {
      const RankedDistance<Scalar> entry{distances[j], j};
      const bool same = labels(j) == own;
      const bool kept = j != self;
      pos[np] = entry;
      neg[nn] = entry;
      np += static_cast<std::size_t>(same & kept);
      nn += static_cast<std::size_t>(!same & kept);
    }
    num_positives = np;
    num_negatives = nn;
  }
};

}  // namespace detail
}  // namespace contrastive
