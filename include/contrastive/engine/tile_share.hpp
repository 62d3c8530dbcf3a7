// Several processes computing one batch's loss together on the symmetric
// tiles (engine/tiles.hpp), each with the whole batch in memory:
//
//   pass 1    each part computes its share of the tiles (share_tiles: the
//             tiles dealt out in schedule order, each to the part with the
//             least work so far, so the parts' products differ by at most a tile)
//   combine   loss.combine_rows(share): the per-anchor state of pass 1
//             (maxima, minima, sums, online log-sum-exps) combined across
//             the parts, so that every part holds every anchor's state
//   finish    on every part, for every anchor: the same value and terms everywhere
//   pass 2    each part its share of the tiles again; the parts' dZ summed
//   (sparse losses: every part writes the few entries of every anchor)
//
// Each part does 1/parts of the products and of the per-pair passes; the
// parts exchange O(N) numbers per anchor-state vector and, for dense
// gradients, one N x D sum. The engine does not know how the parts talk: a
// TileShare is the collectives it needs, implemented by the caller
// (contrastive/distributed/tile_share.hpp over MPI). Every part must call
// with the same rows, labels and options: the collectives are entered in the
// same order because every part takes the same path.
//
// A tile loss opts in by combining its row state:
//   void combine_rows(const TileShare<Scalar>& share);
// Losses without it (or with a refine pass or a single-pass gradient) ignore
// a share and compute every tile on every part: the same result, no saving.
#pragma once

#include "contrastive/core/types.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

namespace contrastive {
namespace detail {

template <class Scalar>
class TileShare {
 public:
  TileShare(int part, int parts) : part_(part), parts_(parts) {}
  TileShare(const TileShare&) = delete;
  TileShare& operator=(const TileShare&) = delete;

  int part() const { return part_; }
  int parts() const { return parts_; }

  // Elementwise over the parts, in place; every part passes the same n.
  virtual void sum(Scalar* values, Index n) const = 0;
  virtual void min(Scalar* values, Index n) const = 0;
  virtual void max(Scalar* values, Index n) const = 0;
  virtual void min(std::int32_t* values, Index n) const = 0;

 protected:
  ~TileShare() = default;

 private:
  int part_, parts_;
};

constexpr std::size_t not_mine = static_cast<std::size_t>(-1);

// The tiles of `part`: for every tile (costs in schedule order), its slot
// among this part's tiles or not_mine. Greedy: each tile goes to the part
// with the least cost so far (the lowest part on a tie); every part computes
// the same assignment.
inline std::vector<std::size_t> share_tiles(const std::vector<double>& costs, int part, int parts,
                                            std::size_t& own_tiles) {
  std::vector<double> load(static_cast<std::size_t>(parts), 0.0);
  std::vector<std::size_t> slots(costs.size(), not_mine);
  own_tiles = 0;
  for (std::size_t k = 0; k < costs.size(); ++k) {
    std::size_t least = 0;
    for (std::size_t p = 1; p < load.size(); ++p) {
      if (load[p] < load[least]) least = p;
    }
    load[least] += costs[k];
    if (least == static_cast<std::size_t>(part)) slots[k] = own_tiles++;
  }
  return slots;
}

template <class Loss, class Scalar, class = void>
struct combines_rows : std::false_type {};
template <class Loss, class Scalar>
struct combines_rows<Loss, Scalar,
                     std::void_t<decltype(std::declval<Loss&>().combine_rows(std::declval<const TileShare<Scalar>&>()))>>
    : std::true_type {};

// Per anchor the largest (or smallest) value over the parts and its index,
// the lowest index on a tie; index -1 (nothing seen) sits with a value no
// candidate can tie (an infinity).
template <class Scalar>
void combine_extremum(const TileShare<Scalar>& share, std::vector<Scalar>& value, std::vector<std::int32_t>& index,
                      bool largest) {
  const Index n = static_cast<Index>(value.size());
  const std::vector<Scalar> mine = value;
  if (largest) {
    share.max(value.data(), n);
  } else {
    share.min(value.data(), n);
  }
  constexpr std::int32_t none = std::numeric_limits<std::int32_t>::max();
  for (std::size_t i = 0; i < value.size(); ++i) {
    index[i] = index[i] >= 0 && mine[i] == value[i] ? index[i] : none;
  }
  share.min(index.data(), n);
  for (std::int32_t& j : index) {
    if (j == none) j = -1;
  }
}

}  // namespace detail
}  // namespace contrastive
