// Rectangular tiles: queries Q (the anchors, N rows) against a reference set R
// (the candidates, M rows), for a batch loss evaluated against a gallery, a
// memory or a global batch.
//
// The same tile losses as the symmetric engine (engine/tiles.hpp) run here:
// a tile is flagged `reference`, and a loss then updates the state of its rows
// (the queries) and skips its column update, since the columns are no anchors.
// The pair weights a loss writes in tile_gradient give dL/dQ through the rows
// and dL/dR through the columns of the same tile product.
//
//   pass 1   loss.tile(t)                   row state only
//   refine   loss.refine_tile<Kind>(t)      as for symmetric tiles
//   finish   loss.finish<Kind>(sparse_sink) entries (query, reference, dL/dd, d)
//   pass 2   loss.tile_gradient(t, W)       dQ_I += rowsum(W) Q_I - W R_J,
//                                           dR_J += colsum(W) R_J - W^T Q_I
//
// Self pairs: when query i is reference row (i + self_offset) mod M (R = X, a
// rank's rows inside a gathered global batch, a batch written into a ring
// buffer across its end), that pair is no pair. A tile holding
// self pairs is handed to the loss as one-row tiles around them, so no loss
// needs to know about the exclusion.
//
// Threads (OpenMP): round r holds the tiles (I, J) with J - I = r (mod
// max(query blocks, reference blocks)); no two tiles of a round share a query
// block or a reference block, so row state, dQ and dR are written by one tile
// at a time, and every query meets its tiles in the same order on any number
// of threads.
//
// Cost: one N x M x D product forward (plus the tiles the workspace cannot
// keep for pass 2, recomputed), one product backward for dQ and one more for dR, only when asked.
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/engine/tiles.hpp"
#include "contrastive/engine/workspace.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// No query is a reference row.
constexpr Index no_self_pairs = -1;

// Distances of query rows [i0, i0 + rows) to reference rows [j0, j0 + cols)
// under kernel `Kind`, with their near-duplicate pairs (query i, reference j).
template <MetricKind Kind, class Scalar, MetricKind RowsKind>
void compute_reference_tile(const TileRows<RowsKind, Scalar>& Q, const TileRows<RowsKind, Scalar>& R, Index i0,
                            Index rows, Index j0, Index cols, Scalar* out, std::vector<NearPair>& near) {
  using Row = Eigen::Array<Scalar, 1, Eigen::Dynamic>;
  Eigen::Map<RowMatrix<Scalar>> G(out, rows, cols);
  G.noalias() = Q.rows(i0, rows) * R.rows(j0, cols).transpose();
  const Vector<Scalar>& sq = Q.squared_norms();
  const Vector<Scalar>& sr = R.squared_norms();
  const Scalar fraction = near_duplicate_fraction<Scalar>();
  for (Index r = 0; r < rows; ++r) {
    const Index i = i0 + r;
    Eigen::Map<Row> g(out + r * cols, cols);
    if constexpr (Kind == MetricKind::DotProduct) {
      g = -g;
    } else {
      const auto sy = sr.segment(j0, cols).transpose().array();
      g = (sq(i) + sy - Scalar(2) * g).max(Scalar(0));
      if (any_near_duplicate(g, sq(i), sy, fraction)) {
        for (Index k = 0; k < cols; ++k) {
          const Index j = j0 + k;
          if (g(k) < fraction * (sq(i) + sr(j))) {
            g(k) = (Q.row(i) - R.row(j)).squaredNorm();
            near.push_back(NearPair{i, j});
          }
        }
      }
      if constexpr (Kind == MetricKind::Euclidean) {
        correctly_rounded_sqrt(g);
      } else if constexpr (Kind == MetricKind::Cosine) {
        g = (g * Scalar(0.5)).min(Scalar(2));
        if (sq(i) == Scalar(0)) {
          g.setOnes();
        } else {
          for (Index k = 0; k < cols; ++k) {
            if (sr(j0 + k) == Scalar(0)) g(k) = Scalar(1);
          }
        }
      }
    }
  }
}

// Hands a reference tile to `use(tile, row_offset_into_buffers)`: whole, or,
// when it holds self pairs, as one-row tiles around them. The offset locates
// a one-row tile's entries in the full tile's buffers (distances, weights).
template <class Scalar, class Use>
void visit_reference_tile(const DistanceTile<Scalar>& t, Index self_offset, Index m, Use&& use) {
  // Local column of query i's self pair (outside [0, cols) when not in this tile).
  auto self_of = [&](Index i) { return (i + self_offset) % m - t.j0; };
  bool has_self = false;
  for (Index r = 0; r < t.rows && self_offset != no_self_pairs && !has_self; ++r) {
    const Index c = self_of(t.i0 + r);
    has_self = c >= 0 && c < t.cols;
  }
  if (!has_self) {
    use(t, Index(0));
    return;
  }
  for (Index r = 0; r < t.rows; ++r) {
    const Index i = t.i0 + r;
    const Index self = self_of(i);
    const Index base = r * t.cols;
    if (self < 0 || self >= t.cols) {
      use(DistanceTile<Scalar>{i, 1, t.j0, t.cols, t.data + base, false, true}, base);
      continue;
    }
    if (self > 0) use(DistanceTile<Scalar>{i, 1, t.j0, self, t.data + base, false, true}, base);
    if (self + 1 < t.cols) {
      use(DistanceTile<Scalar>{i, 1, t.j0 + self + 1, t.cols - self - 1, t.data + base + self + 1, false, true},
          base + self + 1);
    }
  }
}

// dQ (and dR when given) from one reference tile's pair weights W (consumed).
template <MetricKind Kind, class Scalar, MetricKind RowsKind>
void reference_tile_backward(const TileRows<RowsKind, Scalar>& Q, const TileRows<RowsKind, Scalar>& R,
                             const DistanceTile<Scalar>& t, Scalar* W_data, const std::vector<NearPair>& near,
                             RowMatrix<Scalar>& dQ, RowMatrix<Scalar>* dR) {
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
  Eigen::Map<RowMatrix<Scalar>> W(W_data, t.rows, t.cols);
  for (const NearPair& p : near) {
    const Index r = p.i - t.i0, c = p.j - t.j0;
    const Scalar g = W(r, c);
    W(r, c) = Scalar(0);
    if (g == Scalar(0)) continue;
    const RowVec diff = Q.row(p.i) - R.row(p.j);
    Scalar w = g;  // Cosine: d = |u - v|^2 / 2 on unit rows
    if constexpr (Kind == MetricKind::Euclidean || Kind == MetricKind::SquaredEuclidean) {
      w = difference_weight<Kind>(g, t.data[r * t.cols + c]);
    }
    dQ.row(p.i) += w * diff;
    if (dR) dR->row(p.j) -= w * diff;
  }
  for (Index r = 0; r < t.rows; ++r) {
    weight_row<Kind, Scalar>(W_data + r * t.cols, nullptr, t.data + r * t.cols, W_data + r * t.cols, t.cols);
  }
  const auto QI = Q.rows(t.i0, t.rows);
  const auto RJ = R.rows(t.j0, t.cols);
  if constexpr (Kind == MetricKind::Cosine || Kind == MetricKind::DotProduct) {
    dQ.middleRows(t.i0, t.rows).noalias() += W * RJ;
    if (dR) dR->middleRows(t.j0, t.cols).noalias() += W.transpose() * QI;
  } else {
    TileRowBuffer<Scalar> sums;
    dQ.middleRows(t.i0, t.rows) += tile_row_sums(W, sums).asDiagonal() * QI;
    dQ.middleRows(t.i0, t.rows).noalias() -= W * RJ;
    if (dR) {
      // Column sums as a sum of rows: contiguous, vectorised.
      Eigen::Matrix<Scalar, 1, Eigen::Dynamic> col_sum = W.row(0);
      for (Index r = 1; r < t.rows; ++r) col_sum += W.row(r);
      dR->middleRows(t.j0, t.cols) += col_sum.transpose().asDiagonal() * RJ;
      dR->middleRows(t.j0, t.cols).noalias() -= W.transpose() * QI;
    }
  }
}

// dQ (and dR) from (query, reference, dL/dd, d) entries.
template <MetricKind Kind, class Scalar>
void sparse_reference_backward(const std::vector<GradientEntry<Scalar>>& entries, const ConstRowRef<Scalar>& Q,
                               const ConstRowRef<Scalar>& R, RowMatrix<Scalar>& dQ, RowMatrix<Scalar>* dR) {
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;
  if constexpr (Kind == MetricKind::Cosine) {
    RowMatrix<Scalar> UQ, UR;
    Vector<Scalar> nq, nr;
    normalize_rows<Scalar>(Q, UQ, nq);
    normalize_rows<Scalar>(R, UR, nr);
    for (const GradientEntry<Scalar>& e : entries) {
      add_cosine_pair_gradient<Scalar>(e.g, e.d, nq(e.i), UQ.row(e.i), UR.row(e.j), dQ.row(e.i));
      if (dR) add_cosine_pair_gradient<Scalar>(e.g, e.d, nr(e.j), UR.row(e.j), UQ.row(e.i), dR->row(e.j));
    }
  } else if constexpr (Kind == MetricKind::DotProduct) {
    for (const GradientEntry<Scalar>& e : entries) {
      dQ.row(e.i) -= e.g * R.row(e.j);
      if (dR) dR->row(e.j) -= e.g * Q.row(e.i);
    }
  } else {
    for (const GradientEntry<Scalar>& e : entries) {
      const Scalar w = difference_weight<Kind>(e.g, e.d);
      if (w == Scalar(0)) continue;
      const RowVec diff = Q.row(e.i) - R.row(e.j);
      dQ.row(e.i) += w * diff;
      if (dR) dR->row(e.j) -= w * diff;
    }
  }
}

// Tiles (I, J) of a query-blocks x reference-blocks grid in rounds of tiles
// that share no block: round r holds J - I = r (mod max(blocks)).
struct ReferenceTileSchedule {
  std::vector<std::pair<Index, Index>> tiles;
  std::vector<std::size_t> round_begin;

  ReferenceTileSchedule(Index query_blocks, Index reference_blocks) {
    const Index m = std::max(query_blocks, reference_blocks);
    for (Index r = 0; r < m; ++r) {
      round_begin.push_back(tiles.size());
      if (query_blocks <= reference_blocks) {
        for (Index bi = 0; bi < query_blocks; ++bi) tiles.emplace_back(bi, (bi + r) % m);
      } else {
        for (Index bj = 0; bj < reference_blocks; ++bj) tiles.emplace_back(((bj - r) % m + m) % m, bj);
      }
    }
    round_begin.push_back(tiles.size());
  }
  std::size_t rounds() const { return round_begin.size() - 1; }
};

// Runs a tile loss over queries Zq against references Zr under kernel `Kind`.
// dZr may be null while dZq is not: no reference gradient (a memory's rows).
// workspace: the caller's buffers for the kept tiles and R's unit rows, or null.
template <MetricKind Kind, class Scalar, class Loss>
Scalar run_reference_tiles(const char* function, const ConstRowRef<Scalar>& Zq, const ConstRowRef<Scalar>& Zr,
                           Index self_offset, std::size_t workspace_bytes, Loss& loss, RowMatrix<Scalar>* dZq,
                           RowMatrix<Scalar>* dZr, Workspace* workspace = nullptr) {
  constexpr bool sparse = Loss::sparse_gradient;
  constexpr MetricKind TileKind = uses_order_distances<Loss>::value ? order_kind<Kind>() : Kind;
  constexpr bool single_pass = is_single_pass<Loss>::value;
  constexpr bool refine = has_refine_pass<Loss>::value;
  static_assert(!(single_pass && refine), "contrastive: a single-pass tile loss has no refine pass");
  const Index n = Zq.rows(), m = Zr.rows();
  if (!dZq) dZr = nullptr;
  plan_panels<Scalar>(function, workspace_bytes, m, dZq && !sparse ? 2 : 1);
  if (dZq) dZq->setZero(n, Zq.cols());
  if (dZr) dZr->setZero(m, Zr.cols());
  if (n == 0 || m == 0) return loss.template finish<Kind>(static_cast<TileSparseSink<Scalar>*>(nullptr)).value;
  Scalar* r_unit = Kind == MetricKind::Cosine && workspace
                       ? workspace->buffer<Scalar>(Workspace::Use::ReferenceUnitRows,
                                                   static_cast<std::size_t>(Zr.size()))
                       : nullptr;
  const TileRows<Kind, Scalar> Q(Zq), R(Zr, r_unit);
  const Index side = tile_side<Scalar>(workspace_bytes, std::max(n, m));
  const Index qblocks = (n + side - 1) / side, rblocks = (m + side - 1) / side;
  const std::size_t tile_count = static_cast<std::size_t>(qblocks * rblocks);
  const std::size_t tile_elems = static_cast<std::size_t>(side * side);
  const bool second_pass = dZq && !sparse && !single_pass;
  const std::size_t kept = TileStore<Scalar>::kept_tiles(second_pass || refine, tile_count, tile_elems, workspace_bytes);
  TileStore<Scalar> store(kept, tile_elems,
                          workspace && kept > 0
                              ? workspace->buffer<Scalar>(Workspace::Use::KeptTiles, kept * tile_elems)
                              : nullptr);
  std::vector<TileScratch<Scalar>> scratch = tile_scratch<Scalar>(tile_elems, dZq && !sparse);
  TileSparseSink<Scalar> sink;
  const ReferenceTileSchedule schedule(qblocks, rblocks);

  // visit(slot, i0, rows, j0, cols, scratch) for every tile, the tiles of a round in parallel;
  // tiles are kept in grid order (slot), whatever the round.
  auto for_each_tile = [&](auto&& visit) {
    for_each_scheduled_tile(schedule, scratch, [&](std::size_t, std::pair<Index, Index> tile, TileScratch<Scalar>& mine) {
      const Index i0 = tile.first * side, j0 = tile.second * side;
      const std::size_t slot = static_cast<std::size_t>(tile.first * rblocks + tile.second);
      visit(slot, i0, std::min(side, n - i0), j0, std::min(side, m - j0), mine);
    });
  };

  // The pair weights of a tile, one-row pieces around self pairs included, then its backward.
  auto backward = [&](const DistanceTile<Scalar>& t, const std::vector<NearPair>& tile_near, TileScratch<Scalar>& mine) {
    if constexpr (!sparse) {
      std::fill(mine.weights.begin(), mine.weights.begin() + t.rows * t.cols, Scalar(0));
      visit_reference_tile(t, self_offset, m, [&](const DistanceTile<Scalar>& piece, Index at) {
        loss.tile_gradient(piece, mine.weights.data() + at);
      });
      reference_tile_backward<Kind, Scalar>(Q, R, t, mine.weights.data(), tile_near, *dZq, dZr);
    }
  };

  for_each_tile([&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine) {
    Scalar* out = store.distances(k, mine);
    std::vector<NearPair>& tile_near = store.near(k, mine);
    tile_near.clear();
    compute_reference_tile<TileKind, Scalar>(Q, R, i0, rows, j0, cols, out, tile_near);
    const DistanceTile<Scalar> t{i0, rows, j0, cols, out, false, true};
    visit_reference_tile(t, self_offset, m, [&](const DistanceTile<Scalar>& piece, Index) { loss.tile(piece); });
    if constexpr (single_pass) {
      if (dZq) backward(t, tile_near, mine);
    }
  });
  auto tile_again = [&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine,
                        const std::vector<NearPair>*& tile_near) {
    const Scalar* tile = store.again(k, mine, tile_near, [&](Scalar* out, std::vector<NearPair>& near) {
      compute_reference_tile<TileKind, Scalar>(Q, R, i0, rows, j0, cols, out, near);
    });
    return DistanceTile<Scalar>{i0, rows, j0, cols, tile, false, true};
  };
  if constexpr (refine) {
    for_each_tile([&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine) {
      const std::vector<NearPair>* tile_near = nullptr;
      const DistanceTile<Scalar> t = tile_again(k, i0, rows, j0, cols, mine, tile_near);
      visit_reference_tile(t, self_offset, m,
                           [&](const DistanceTile<Scalar>& piece, Index) { loss.template refine_tile<Kind>(piece); });
    });
  }
  const Reduced<Scalar> reduced =
      loss.template finish<Kind>((dZq && sparse) ? &sink : static_cast<TileSparseSink<Scalar>*>(nullptr));
  if (!dZq) return reduced.value;

  if constexpr (sparse) {
    sparse_reference_backward<Kind, Scalar>(sink.entries, Zq, Zr, *dZq, dZr);
  } else {
    if constexpr (!single_pass) {
      for_each_tile([&](std::size_t k, Index i0, Index rows, Index j0, Index cols, TileScratch<Scalar>& mine) {
        const std::vector<NearPair>* tile_near = nullptr;
        const DistanceTile<Scalar> t = tile_again(k, i0, rows, j0, cols, mine, tile_near);
        backward(t, *tile_near, mine);
      });
    }
    if constexpr (Kind == MetricKind::Cosine) {
      unit_rows_backward(Q, *dZq);
      if (dZr) unit_rows_backward(R, *dZr);
    }
  }
  *dZq *= reduced.weight;
  if (dZr) *dZr *= reduced.weight;
  return reduced.value;
}

}  // namespace detail
}  // namespace contrastive
