// Symmetric tiles: the fast path for losses whose per-anchor state is a
// reduction (max / min with their index, sums, counts) and whose gradient
// weight of a pair is a function of that pair's distance and the final state.
//
// The upper triangle of the distance matrix is cut into B x B tiles; tile
// (I, J), I <= J, is one X_I X_J^T product whose distances feed the rows of I
// (by rows) and the rows of J (by columns) in one pass while the tile is in
// cache. No N x N buffer: the distance and weight tiles are B x B, and the
// tiles are kept for the second pass as far as the workspace holds them (the
// rest are recomputed).
//
//   pass 1   loss.tile(t)                   row and column state
//   refine   loss.refine_tile<Kind>(t)      optional (Loss::refine_pass): a second look at
//                                           every tile once pass 1's state is complete, for
//                                           state that needs both anchors' pass-1 results
//                                           (lifted_structure_loss's positive pairs)
//   finish   loss.finish<Kind>(sparse_sink) value, and the factor dX is scaled by;
//                                           a sparse loss adds its entries here
//   pass 2   loss.tile_gradient(t, W)       dense losses: W_ij = dL/dd_ij of the
//                                           unordered pair (i < j), then
//            dX_I += w X_I-rowsum - w X_J,   dX_J += w^T-rowsum X_J - w^T X_I
//
// Threads (OpenMP): the tiles run in rounds in which no two tiles share a
// block of rows (a round-robin tournament over the blocks), so the tiles of a
// round update disjoint anchors and disjoint rows of dX and run in parallel.
// Every anchor meets its tiles in round order whatever the thread count, so
// results do not depend on it. A loss's tile() and tile_gradient() must
// therefore write only the state of rows I and J (scratch lives on the stack:
// a tile is at most max_tile_side wide).
//
// Shared (engine/tile_share.hpp): several processes with the same rows each
// run their share of the tiles, and combine their row state after pass 1.
//
// Cost: half a Gram product forward (plus half again when tiles are
// recomputed), one product backward for dense losses, O(N^2) fused passes.
// A sparse loss may also ask for the metric's "order" distances (squared
// Euclidean for Euclidean) when it only compares them, and convert the few it
// keeps (order_distance_to_distance).
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/engine/panels.hpp"
#include "contrastive/engine/tile_share.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// The widest tile; per-row scratch of a tile fits a TileRowBuffer.
constexpr Index max_tile_side = 256;
template <class Scalar>
using TileRowBuffer = std::array<Scalar, static_cast<std::size_t>(max_tile_side)>;

// Distances of rows [i0, i0 + rows) to rows [j0, j0 + cols), row-major. In a
// diagonal tile (i0 == j0) only the entries right of the diagonal are pairs.
template <class Scalar>
struct DistanceTile {
  Index i0 = 0, rows = 0, j0 = 0, cols = 0;
  const Scalar* data = nullptr;
  bool diagonal = false;
  // Columns index a reference set, not the anchors: the loss updates the state
  // of its rows only (engine/reference_tiles.hpp). Never diagonal.
  bool reference = false;

  const Scalar* row(Index i) const { return data + (i - i0) * cols; }
  // First local column of row i that is a pair (j > i in a diagonal tile).
  Index first_col(Index i) const { return diagonal ? i - i0 + 1 : 0; }
};

// (anchor, column, dL/dd, d) entries of a sparse loss on tiles.
template <class Scalar>
struct TileSparseSink {
  std::vector<GradientEntry<Scalar>> entries;
  void add(Index i, Index j, Scalar g, Scalar d) {
    if (g != Scalar(0)) entries.push_back(GradientEntry<Scalar>{i, j, g, d});
  }
};

// The kernel whose distances a loss that only compares them may use instead.
template <MetricKind Kind>
constexpr MetricKind order_kind() {
  return Kind == MetricKind::Euclidean ? MetricKind::SquaredEuclidean : Kind;
}

template <MetricKind Kind, class Scalar>
Scalar order_distance_to_distance(Scalar s) {
  if constexpr (Kind == MetricKind::Euclidean) {
    return static_cast<Scalar>(std::sqrt(static_cast<double>(s)));
  } else {
    return s;
  }
}

// The rows the tile products run on: the embeddings, or for Cosine their unit
// rows (zero rows stay zero), with the squared norms the distances need. The
// unit rows go to `unit_storage` (rows x cols) when given, a caller's
// Workspace buffer, else to storage of their own.
template <MetricKind Kind, class Scalar>
class TileRows {
 public:
  explicit TileRows(const ConstRowRef<Scalar>& X, Scalar* unit_storage = nullptr) : X_(X) {
    if constexpr (Kind == MetricKind::Cosine) {
      if (!unit_storage) {
        own_.resize(X.rows(), X.cols());
        unit_storage = own_.data();
      }
      new (&unit_) Eigen::Map<RowMatrix<Scalar>>(unit_storage, X.rows(), X.cols());
      normalize_rows<Scalar>(X, unit_, norm_);
      sq_ = (norm_.array() > Scalar(0)).template cast<Scalar>();
    } else {
      sq_ = X.rowwise().squaredNorm();
    }
  }
  TileRows(const TileRows&) = delete;
  TileRows& operator=(const TileRows&) = delete;

  // The rows of the products (unit rows for Cosine).
  auto rows(Index first, Index count) const {
    if constexpr (Kind == MetricKind::Cosine) {
      return unit_.middleRows(first, count);
    } else {
      return X_.middleRows(first, count);
    }
  }
  auto row(Index i) const { return rows(i, 1).row(0); }
  const Vector<Scalar>& squared_norms() const { return sq_; }
  const Vector<Scalar>& norms() const { return norm_; }
  const Eigen::Map<RowMatrix<Scalar>>& unit() const { return unit_; }
  const ConstRowRef<Scalar>& X() const { return X_; }

 private:
  const ConstRowRef<Scalar>& X_;
  RowMatrix<Scalar> own_;
  Eigen::Map<RowMatrix<Scalar>> unit_{nullptr, 0, 0};
  Vector<Scalar> norm_;
  Vector<Scalar> sq_;
};

// Computes one tile of distances under kernel `Kind` into `out` (rows x cols)
// and appends its near-duplicate pairs (global indices, i < j).
template <MetricKind Kind, class Scalar, MetricKind RowsKind>
void compute_tile(const TileRows<RowsKind, Scalar>& R, Index i0, Index rows, Index j0, Index cols, Scalar* out,
                  std::vector<NearPair>& near) {
  using Row = Eigen::Array<Scalar, 1, Eigen::Dynamic>;
  Eigen::Map<RowMatrix<Scalar>> G(out, rows, cols);
  G.noalias() = R.rows(i0, rows) * R.rows(j0, cols).transpose();
  const bool diagonal = i0 == j0;
  const Vector<Scalar>& sq = R.squared_norms();
  const Scalar fraction = near_duplicate_fraction<Scalar>();
  for (Index r = 0; r < rows; ++r) {
    const Index i = i0 + r;
    const Index c0 = diagonal ? r + 1 : 0;
    const Index len = cols - c0;
    if (diagonal) G(r, r) = Scalar(0);  // the own column, which no loss reads
    if (len <= 0) continue;
    Eigen::Map<Row> g(out + r * cols + c0, len);
    if constexpr (Kind == MetricKind::DotProduct) {
      g = -g;
      continue;
    } else {
      const auto sy = sq.segment(j0 + c0, len).transpose().array();
      g = (sq(i) + sy - Scalar(2) * g).max(Scalar(0));
      // Cancellation: recompute near duplicates from their difference.
      if (any_near_duplicate(g, sq(i), sy, fraction)) {
        for (Index k = 0; k < len; ++k) {
          const Index j = j0 + c0 + k;
          if (g(k) < fraction * (sq(i) + sq(j))) {
            g(k) = (R.row(i) - R.row(j)).squaredNorm();
            near.push_back(NearPair{i, j});
          }
        }
      }
      if constexpr (Kind == MetricKind::Euclidean) {
        correctly_rounded_sqrt(g);
      } else if constexpr (Kind == MetricKind::Cosine) {
        g = (g * Scalar(0.5)).min(Scalar(2));
        // Similarity with a zero vector is 0: distance 1.
        if (sq(i) == Scalar(0)) {
          g.setOnes();
        } else {
          for (Index k = 0; k < len; ++k) {
            if (sq(j0 + c0 + k) == Scalar(0)) g(k) = Scalar(1);
          }
        }
      }
    }
  }
}

// Where a loss's terms are one per pair, the full result carries them only
// while they fit the workspace (they are O(N^2) memory): `terms` itself, sized
// for `count` terms, or null with `terms` emptied.
template <class Scalar>
Vector<Scalar>* pair_terms_within(Vector<Scalar>* terms, Index count, std::size_t workspace_bytes) {
  if (!terms) return nullptr;
  if (static_cast<std::size_t>(count) * sizeof(Scalar) > workspace_bytes) {
    terms->resize(0);
    return nullptr;
  }
  terms->setZero(count);
  return terms;
}

template <class Loss, class = void>
struct uses_symmetric_tiles : std::false_type {};
template <class Loss>
struct uses_symmetric_tiles<Loss, std::void_t<decltype(Loss::symmetric_tiles)>>
    : std::integral_constant<bool, Loss::symmetric_tiles> {};

// A dense loss whose pair weights are known in pass 1 up to the final scalar
// factor (a mean's divisor): its backward runs tile by tile in pass 1.
template <class Loss, class = void>
struct is_single_pass : std::false_type {};
template <class Loss>
struct is_single_pass<Loss, std::void_t<decltype(Loss::single_pass)>>
    : std::integral_constant<bool, Loss::single_pass> {};

// A loss that reads every tile again after pass 1, before finish (refine_tile).
template <class Loss, class = void>
struct has_refine_pass : std::false_type {};
template <class Loss>
struct has_refine_pass<Loss, std::void_t<decltype(Loss::refine_pass)>>
    : std::integral_constant<bool, Loss::refine_pass> {};

template <class Loss, class = void>
struct uses_order_distances : std::false_type {};
template <class Loss>
struct uses_order_distances<Loss, std::void_t<decltype(Loss::order_distances)>>
    : std::integral_constant<bool, Loss::order_distances> {};

// Tile side: at most 256 (a tile and its weights stay in L2), at most what
// the workspace holds, at least 1.
template <class Scalar>
Index tile_side(std::size_t workspace_bytes, Index n) {
  Index side = std::min<Index>(max_tile_side, n);
  while (side > 1 && static_cast<std::size_t>(side) * static_cast<std::size_t>(side) * 2 * sizeof(Scalar) >
                         workspace_bytes) {
    side /= 2;
  }
  return std::max<Index>(side, 1);
}

// The row sums of a tile's weights, evaluated into `out`: left inside a
// diagonal product, Eigen would recompute each sum for every column it scales.
template <class Scalar>
Eigen::Map<Vector<Scalar>> tile_row_sums(const Eigen::Map<RowMatrix<Scalar>>& W, TileRowBuffer<Scalar>& out) {
  Eigen::Map<Vector<Scalar>> sums(out.data(), W.rows());
  sums = W.rowwise().sum();
  return sums;
}

// dZ from one tile's pair weights W (dL/dd_ij of the unordered pairs, zero
// elsewhere), consumed: W becomes the product-form weights.
template <MetricKind Kind, class Scalar, MetricKind RowsKind>
void tile_backward(const TileRows<RowsKind, Scalar>& R, const DistanceTile<Scalar>& t, Scalar* W_data,
                   const std::vector<NearPair>& near, RowMatrix<Scalar>& dZ) {
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
  Eigen::Map<RowMatrix<Scalar>> W(W_data, t.rows, t.cols);
  // Near pairs leave the product and are added from their difference.
  for (const NearPair& p : near) {
    const Index r = p.i - t.i0, c = p.j - t.j0;
    const Scalar g = W(r, c);
    W(r, c) = Scalar(0);
    if (g == Scalar(0)) continue;
    const RowVec diff = R.row(p.i) - R.row(p.j);
    Scalar w = g;  // Cosine: d = |u - v|^2 / 2 on unit rows
    if constexpr (Kind == MetricKind::Euclidean || Kind == MetricKind::SquaredEuclidean) {
      w = difference_weight<Kind>(g, t.data[r * t.cols + c]);
    }
    dZ.row(p.i) += w * diff;
    dZ.row(p.j) -= w * diff;
  }
  for (Index r = 0; r < t.rows; ++r) {
    weight_row<Kind, Scalar>(W_data + r * t.cols, nullptr, t.data + r * t.cols, W_data + r * t.cols, t.cols);
  }
  if (t.diagonal) {
    // The pair (i, j > i) belongs to both rows: make the diagonal tile's weights symmetric.
    for (Index r = 0; r < t.rows; ++r) {
      W(r, r) = Scalar(0);
      for (Index c = r + 1; c < t.cols; ++c) W(c, r) = W(r, c);
    }
  }
  const auto ZI = R.rows(t.i0, t.rows);
  const auto ZJ = R.rows(t.j0, t.cols);
  if constexpr (Kind == MetricKind::Cosine || Kind == MetricKind::DotProduct) {
    dZ.middleRows(t.i0, t.rows).noalias() += W * ZJ;
    if (!t.diagonal) dZ.middleRows(t.j0, t.cols).noalias() += W.transpose() * ZI;
  } else {
    TileRowBuffer<Scalar> sums;
    dZ.middleRows(t.i0, t.rows) += tile_row_sums(W, sums).asDiagonal() * ZI;
    dZ.middleRows(t.i0, t.rows).noalias() -= W * ZJ;
    if (!t.diagonal) {
      // Column sums as a sum of rows: contiguous, vectorised (colwise() on a
      // row-major tile strides through memory one element at a time).
      Eigen::Matrix<Scalar, 1, Eigen::Dynamic> col_sum = W.row(0);
      for (Index r = 1; r < t.rows; ++r) col_sum += W.row(r);
      dZ.middleRows(t.j0, t.cols) += col_sum.transpose().asDiagonal() * ZJ;
      dZ.middleRows(t.j0, t.cols).noalias() -= W.transpose() * ZI;
    }
  }
}

// The tiles (I, J), I <= J, of `blocks` blocks in rounds of tiles that share
// no block: with M = blocks rounded up to odd, round r holds the pairs with
// I + J = r (mod M), a diagonal tile where 2I = r. Every block is in one tile
// of each round (or none); every tile is in exactly one round.
struct TileSchedule {
  std::vector<std::pair<Index, Index>> tiles;  // round after round
  std::vector<std::size_t> round_begin;        // rounds: [round_begin[r], round_begin[r + 1])

  explicit TileSchedule(Index blocks) {
    const Index m = blocks % 2 == 1 ? blocks : blocks + 1;
    for (Index r = 0; r < m; ++r) {
      round_begin.push_back(tiles.size());
      for (Index bi = 0; bi < blocks; ++bi) {
        const Index bj = ((r - bi) % m + m) % m;
        if (bi <= bj && bj < blocks) tiles.emplace_back(bi, bj);
      }
    }
    round_begin.push_back(tiles.size());
  }
  std::size_t rounds() const { return round_begin.size() - 1; }
};

// Threads for the tiles of one round: OpenMP's, when there are tiles to share.
inline int tile_threads(std::size_t tiles_in_round) {
  return tiles_in_round > 1 ? pass_threads() : 1;
}

// What a thread works a tile in: its distances, its pair weights (dense
// backward only) and the near pairs whose distances are recomputed.
template <class Scalar>
struct TileScratch {
  std::vector<Scalar> buffer, weights;
  std::vector<NearPair> near;
};

// One scratch per thread a round may run on.
template <class Scalar>
std::vector<TileScratch<Scalar>> tile_scratch(std::size_t tile_elems, bool with_weights) {
  std::vector<TileScratch<Scalar>> scratch(static_cast<std::size_t>(std::max(1, pass_threads())));
  for (TileScratch<Scalar>& s : scratch) {
    s.buffer.resize(tile_elems);
    if (with_weights) s.weights.resize(tile_elems);
  }
  return scratch;
}

// visit(k, tile, scratch) for every tile k = (I, J) of a schedule (TileSchedule
// or ReferenceTileSchedule), round after round, the tiles of a round in
// parallel; the first exception is rethrown after its round.
template <class Schedule, class Scratch, class Visit>
void for_each_scheduled_tile(const Schedule& schedule, std::vector<Scratch>& scratch, Visit&& visit) {
  for (std::size_t r = 0; r < schedule.rounds(); ++r) {
    const std::ptrdiff_t begin = static_cast<std::ptrdiff_t>(schedule.round_begin[r]);
    const std::ptrdiff_t end = static_cast<std::ptrdiff_t>(schedule.round_begin[r + 1]);
    FirstException error;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(tile_threads(static_cast<std::size_t>(end - begin)))
#endif
    for (std::ptrdiff_t k = begin; k < end; ++k) {
#ifdef _OPENMP
      Scratch& mine = scratch[static_cast<std::size_t>(omp_get_thread_num())];
#else
      Scratch& mine = scratch[0];
#endif
      const std::pair<Index, Index> tile = schedule.tiles[static_cast<std::size_t>(k)];
      error.capture([&] { visit(static_cast<std::size_t>(k), tile, mine); });
    }
    error.rethrow();
  }
}

// The distance tiles a later pass (refine, dense backward) reads again: as
// many kept as the workspace holds (all of them when they fit), the others
// recomputed into the thread's scratch each time. Keeping a tile or
// recomputing it gives the same bits.
template <class Scalar>
class TileStore {
 public:
  // Tiles kept for `tiles` tiles of `tile_elems` under `workspace_bytes`: all
  // when they fit beside one weight tile, else all but room for a recomputed
  // tile and its weights; none when no later pass reads them.
  static std::size_t kept_tiles(bool read_again, std::size_t tiles, std::size_t tile_elems,
                                std::size_t workspace_bytes) {
    if (!read_again) return 0;
    const std::size_t capacity = workspace_bytes / (tile_elems * sizeof(Scalar));
    if (capacity > tiles) return tiles;
    return capacity > 2 ? capacity - 2 : 0;
  }

  // The kept tiles live in `storage` (kept_tiles x tile_elems) when given, a
  // caller's Workspace buffer, else in storage of their own. Either way they
  // start uninitialised: pass 1 writes every kept tile before it is read.
  TileStore(std::size_t kept_tiles, std::size_t tile_elems, Scalar* storage = nullptr)
      : kept_tiles_(kept_tiles), elems_(tile_elems), kept_near_(kept_tiles) {
    if (!storage && kept_tiles > 0) {
      own_.reset(new Scalar[kept_tiles * tile_elems]);
      storage = own_.get();
    }
    kept_ = storage;
  }

  // Slot k's distances and near pairs in the first pass: the kept slot, or the scratch.
  Scalar* distances(std::size_t slot, TileScratch<Scalar>& mine) {
    return slot < kept_tiles_ ? kept_ + slot * elems_ : mine.buffer.data();
  }
  std::vector<NearPair>& near(std::size_t slot, TileScratch<Scalar>& mine) {
    return slot < kept_tiles_ ? kept_near_[slot] : mine.near;
  }
  // Slot k again: kept, or compute(out, near) into the scratch. Returns the
  // distances; *near points at the tile's near pairs.
  template <class Compute>
  const Scalar* again(std::size_t slot, TileScratch<Scalar>& mine, const std::vector<NearPair>*& tile_near,
                      Compute&& compute) const {
    if (slot < kept_tiles_) {
      tile_near = &kept_near_[slot];
      return kept_ + slot * elems_;
    }
    mine.near.clear();
    compute(mine.buffer.data(), mine.near);
    tile_near = &mine.near;
    return mine.buffer.data();
  }

 private:
  std::size_t kept_tiles_;
  std::size_t elems_;
  std::unique_ptr<Scalar[]> own_;
  Scalar* kept_ = nullptr;
  std::vector<std::vector<NearPair>> kept_near_;
};

// Cosine: dU -> dX, each row projected onto its unit row's tangent space and divided by its norm.
template <class Scalar, MetricKind RowsKind>
void unit_rows_backward(const TileRows<RowsKind, Scalar>& rows, RowMatrix<Scalar>& dZ) {
  for (Index i = 0; i < dZ.rows(); ++i) {
    const Scalar norm = rows.norms()(i);
    if (norm > Scalar(0)) {
      const auto u = rows.unit().row(i);
      dZ.row(i) = (dZ.row(i) - u.dot(dZ.row(i)) * u) / norm;
    } else {
      dZ.row(i).setZero();
    }
  }
}

// Runs a symmetric-tile loss over the rows Z under kernel `Kind`; with a
// share, this part's tiles only (engine/tile_share.hpp).
template <MetricKind Kind, class Scalar, class Loss>
Scalar run_tiles(const char* function, const ConstRowRef<Scalar>& Z, std::size_t workspace_bytes, Loss& loss,
                 RowMatrix<Scalar>* dZ, const TileShare<Scalar>* share = nullptr) {
  constexpr bool sparse = Loss::sparse_gradient;
  constexpr MetricKind TileKind = uses_order_distances<Loss>::value ? order_kind<Kind>() : Kind;
  const Index n = Z.rows();
  // The same smallest workspace as the panels: one row of distances (and its gradient).
  plan_panels<Scalar>(function, workspace_bytes, n, dZ && !sparse ? 2 : 1);
  if (dZ) dZ->setZero(n, Z.cols());
  if (n == 0) return loss.template finish<Kind>(static_cast<TileSparseSink<Scalar>*>(nullptr)).value;
  const TileRows<Kind, Scalar> R(Z);
  const Index side = tile_side<Scalar>(workspace_bytes, n);
  const Index blocks = (n + side - 1) / side;
  const std::size_t tile_count = static_cast<std::size_t>(blocks * (blocks + 1) / 2);
  constexpr bool single_pass = is_single_pass<Loss>::value;
  constexpr bool refine = has_refine_pass<Loss>::value;
  static_assert(!(single_pass && refine), "contrastive: a single-pass tile loss has no refine pass");
  constexpr bool shareable = combines_rows<Loss, Scalar>::value && !single_pass && !refine;
  const TileShare<Scalar>* part = shareable ? share : nullptr;
  const TileSchedule schedule(blocks);
  // With a share: this part's tiles, by cost (a diagonal tile is half a product).
  std::size_t own_tiles = tile_count;
  std::vector<std::size_t> slots;
  if (part) {
    std::vector<double> costs;
    for (const std::pair<Index, Index>& b : schedule.tiles) {
      const double rows = static_cast<double>(std::min(side, n - b.first * side));
      const double cols = static_cast<double>(std::min(side, n - b.second * side));
      costs.push_back(b.first == b.second ? rows * (cols + 1) / 2 : rows * cols);
    }
    slots = share_tiles(costs, part->part(), part->parts(), own_tiles);
  }
  const bool second_pass = dZ && !sparse && !single_pass;
  // Keep every tile for the later passes while the triangle (plus one weight tile) fits.
  const std::size_t tile_elems = static_cast<std::size_t>(side * side);
  TileStore<Scalar> store(TileStore<Scalar>::kept_tiles(second_pass || refine, own_tiles, tile_elems, workspace_bytes),
                          tile_elems);
  std::vector<TileScratch<Scalar>> scratch = tile_scratch<Scalar>(tile_elems, dZ && !sparse);
  TileSparseSink<Scalar> sink;

  // visit(slot, i0, rows, j0, cols, scratch) for every tile (of this part's
  // share), the tiles of a round in parallel; slot numbers the tiles visited.
  auto for_each_tile = [&](auto&& visit) {
    for_each_scheduled_tile(schedule, scratch, [&](std::size_t k, std::pair<Index, Index> tile, TileScratch<Scalar>& mine) {
      const std::size_t slot = part ? slots[k] : k;
      if (slot == not_mine) return;
      const Index i0 = tile.first * side, j0 = tile.second * side;
      visit(slot, i0, std::min(side, n - i0), j0, std::min(side, n - j0), mine);
    });
  };
  for_each_tile([&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine) {
    Scalar* out = store.distances(k, mine);
    std::vector<NearPair>& tile_near = store.near(k, mine);
    tile_near.clear();
    compute_tile<TileKind, Scalar>(R, i0, rows, j0, cols, out, tile_near);
    const DistanceTile<Scalar> t{i0, rows, j0, cols, out, i0 == j0};
    loss.tile(t);
    if constexpr (single_pass) {
      if (dZ) {
        std::fill(mine.weights.begin(), mine.weights.begin() + rows * cols, Scalar(0));
        loss.tile_gradient(t, mine.weights.data());
        tile_backward<Kind, Scalar>(R, t, mine.weights.data(), tile_near, *dZ);
      }
    }
  });
  // Tile k again: kept, or recomputed into the thread's buffer.
  auto tile_again = [&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine,
                        const std::vector<NearPair>*& tile_near) {
    const Scalar* tile = store.again(k, mine, tile_near, [&](Scalar* out, std::vector<NearPair>& near) {
      compute_tile<TileKind, Scalar>(R, i0, rows, j0, cols, out, near);
    });
    return DistanceTile<Scalar>{i0, rows, j0, cols, tile, i0 == j0};
  };
  if constexpr (refine) {
    for_each_tile([&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine) {
      const std::vector<NearPair>* tile_near = nullptr;
      loss.template refine_tile<Kind>(tile_again(k, i0, rows, j0, cols, mine, tile_near));
    });
  }
  if constexpr (shareable) {
    if (part) loss.combine_rows(*part);
  }
  const Reduced<Scalar> reduced = loss.template finish<Kind>((dZ && sparse) ? &sink : static_cast<TileSparseSink<Scalar>*>(nullptr));
  if (!dZ) return reduced.value;

  if constexpr (sparse) {
    sparse_backward<Kind, Scalar>(sink.entries, Z, *dZ);
  } else {
    if constexpr (!single_pass) {
      for_each_tile([&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine) {
        const std::vector<NearPair>* tile_near = nullptr;
        const DistanceTile<Scalar> t = tile_again(k, i0, rows, j0, cols, mine, tile_near);
        std::fill(mine.weights.begin(), mine.weights.begin() + rows * cols, Scalar(0));
        loss.tile_gradient(t, mine.weights.data());
        tile_backward<Kind, Scalar>(R, t, mine.weights.data(), *tile_near, *dZ);
      });
    }
    if (part) part->sum(dZ->data(), dZ->size());
    if constexpr (Kind == MetricKind::Cosine) unit_rows_backward(R, *dZ);
  }
  *dZ *= reduced.weight;
  return reduced.value;
}

}  // namespace detail
}  // namespace contrastive
