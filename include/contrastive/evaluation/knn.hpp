// Exact k nearest neighbours of queries Q (N x D) in a reference set R (M x D),
// computed in blocks under a memory budget. This is the k-NN behind
// pytorch-metric-learning's AccuracyCalculator (PML's CustomKNN on a full
// distance matrix, or FaissKNN's IndexFlatL2: both exact), without the N x M
// matrix.
//
// Order: ascending distance under the metric (for DotProduct, descending
// similarity x . y), ties broken by the smaller reference index, so the result
// is one well-defined list. Euclidean ranks on the squared distance (the same
// order without a square root per pair; the returned distances are the
// Euclidean ones, correctly rounded).
//
// Queries inside the reference (KnnOptions::ref_includes_query, PML's argument
// of that name): the queries are the first N rows of R, and query i never
// returns reference row i (its self-match), so at most M - 1 neighbours exist.
// PML asks its k-NN for k + 1 and removes the self index afterwards; the two
// agree except where more than k + 1 references tie at the query's own position.
//
// Blocks: queries in blocks of up to 256 rows; for each, the references in
// tiles of 512 rows, one Gram product per tile whose entries become distances
// bit for bit as the metric's kernel makes them (gram_to_distances: near
// duplicates recomputed from their difference), in one vectorised pass per
// tile row. Each query keeps its best candidates in a buffer of 2k entries,
// compacted to the k nearest (nth_element) when full: an entry enters only if
// it beats the current k-th best, and a run of 16 entries none of which does
// costs one vectorised minimum. A query admits about k ln(M / k) candidates, so
// a small k costs little beyond the product, a large one (k = max_bin_count in
// the retrieval metrics) about as much again (docs/evaluation.md, benchmark).
// Memory beyond the inputs: one tile (query block x reference block
// scalars), the candidate buffers (query block x 2k entries), and for Cosine
// the unit rows of Q and R (a Mahalanobis or Normalized metric transforms Q and
// R once as well). KnnOptions::memory_budget_bytes bounds the tile and the
// buffers (it sets the query block); a budget too small for one query's buffer
// and its row of a tile is rejected. Results are bit for bit the same under any
// budget and query block size.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/metrics/metric_traits.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace contrastive {

using IndexMatrix = Eigen::Matrix<Index, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct KnnOptions {
  // The queries are the first N rows of the reference set; query i skips reference i.
  bool ref_includes_query = false;
  // Bytes for one distance tile and the queries' candidate buffers (inputs not counted).
  std::size_t memory_budget_bytes = std::size_t(256) << 20;
  // Rows per query block; 0 derives it from the budget. Tests force tiny ones.
  Index query_block_rows = 0;
  // References per tile; 0 is the fixed default (512), with which the result does not depend on the
  // budget or the query blocks bit for bit. Another width can change distances in their last bit.
  Index reference_block_rows = 0;
};

// Row i: the k neighbours of query i, nearest first. Distances are the metric's
// (for DotProduct the negated similarity -x . y, so every row is ascending).
template <class Scalar>
struct KnnResult {
  IndexMatrix indices;
  RowMatrix<Scalar> distances;
};

namespace detail {

template <class Scalar>
struct Neighbour {
  Scalar distance;
  Index index;
};

// The order of neighbours (a function object, so that nth_element and sort inline it).
struct Nearer {
  template <class Scalar>
  bool operator()(const Neighbour<Scalar>& a, const Neighbour<Scalar>& b) const {
    // Bitwise, not short-circuit: no branch to mispredict inside nth_element and sort.
    return (a.distance < b.distance) | ((a.distance == b.distance) & (a.index < b.index));
  }
};

// Eigen picks a product kernel by size (coefficient-wise under 20 for rows +
// cols + depth, a GEMV for one row or column), and the kernels round
// differently; tiles of at least this many rows and columns stay on the kernel
// the whole product takes.
constexpr Index knn_min_tile = 20;

struct KnnBlocks {
  Index query_rows;
  Index reference_rows;
};

// References go in tiles of a fixed width: Eigen's product kernel rounds a
// Gram entry according to where its reference row falls in the tile (the
// remainder rows of a tile take other code paths), so a fixed width makes
// every distance, hence every order, independent of the memory budget and of
// the query blocks. The budget sets the query block.
constexpr Index knn_reference_tile = 512;

inline KnnBlocks knn_blocks(const char* function, const KnnOptions& options, Index queries, Index references,
                            Index width, std::size_t scalar_size, std::size_t neighbour_size) {
  const std::size_t per_query = 2 * static_cast<std::size_t>(width) * neighbour_size;
  const std::size_t budget = options.memory_budget_bytes;
  const Index r = std::min(references, options.reference_block_rows > 0 ? options.reference_block_rows
                                                                         : knn_reference_tile);
  const std::size_t per_row = per_query + static_cast<std::size_t>(std::max(r, std::min(references, knn_min_tile))) * scalar_size;
  Index q = options.query_block_rows > 0 ? options.query_block_rows : 256;
  q = std::max<Index>(1, std::min(q, queries));
  if (options.query_block_rows == 0) {
    while (q > 1 && static_cast<std::size_t>(q) * per_row > budget) q /= 2;
  }
  if (static_cast<std::size_t>(q) * per_row > budget) {
    fail(function, "KnnOptions::memory_budget_bytes (" + std::to_string(budget) + ") is too small for " +
                       std::to_string(q) + " queries' candidate buffers of 2 x " + std::to_string(width) +
                       " neighbours and their distances to one tile of " + std::to_string(r) +
                       " references; it needs at least " + std::to_string(static_cast<std::size_t>(q) * per_row));
  }
  return {q, r};
}

// Unit rows (zero rows stay zero) and the indicator of a non-zero row.
template <class Scalar>
void unit_rows(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>& unit, Vector<Scalar>& nonzero) {
  unit.resize(X.rows(), X.cols());
  nonzero.resize(X.rows());
  for (Index i = 0; i < X.rows(); ++i) {
    const Scalar n = X.row(i).norm();
    nonzero(i) = n > Scalar(0) ? Scalar(1) : Scalar(0);
    if (n > Scalar(0)) {
      unit.row(i) = X.row(i) / n;
    } else {
      unit.row(i).setZero();
    }
  }
}

// The blocked exact k-NN on the metric's rows Zq, Zr under kernel kind Kind.
// Calls visit(query, const Neighbour<Scalar>* nearest_first, width) for every
// query in increasing order; distances are the kernel's order distances
// (squared for Euclidean: order_to_distance turns them into distances).
template <MetricKind Kind, class Scalar, class Visit>
void knn_blocked(const char* function, const ConstRowRef<Scalar>& Zq_in, const ConstRowRef<Scalar>& Zr_in,
                 Index width, const KnnOptions& options, Visit&& visit) {
  constexpr MetricKind Order = Kind == MetricKind::Euclidean ? MetricKind::SquaredEuclidean : Kind;
  const Index n = Zq_in.rows();
  const Index m = Zr_in.rows();
  if (n == 0 || width == 0) return;
  RowMatrix<Scalar> q_unit, r_unit;
  Vector<Scalar> sq_q, sq_r;
  if constexpr (Kind == MetricKind::Cosine) {
    unit_rows<Scalar>(Zq_in, q_unit, sq_q);
    unit_rows<Scalar>(Zr_in, r_unit, sq_r);
  }
  const ConstRowRef<Scalar> Zq(Kind == MetricKind::Cosine ? ConstRowRef<Scalar>(q_unit) : Zq_in);
  const ConstRowRef<Scalar> Zr(Kind == MetricKind::Cosine ? ConstRowRef<Scalar>(r_unit) : Zr_in);
  if constexpr (Kind != MetricKind::Cosine) {
    sq_q = Zq.rowwise().squaredNorm();
    sq_r = Zr.rowwise().squaredNorm();
  }
  const KnnBlocks blocks = knn_blocks(function, options, n, m, width, sizeof(Scalar), sizeof(Neighbour<Scalar>));
  const Index q_window = std::min(n, knn_min_tile);
  const Index r_window = std::min(m, knn_min_tile);
  const std::size_t capacity = 2 * static_cast<std::size_t>(width);
  // Each query's candidates: `capacity` entries and one spare slot the branch-free scan writes into.
  std::vector<Neighbour<Scalar>> pool(static_cast<std::size_t>(blocks.query_rows) * (capacity + 1));
  std::vector<std::size_t> count(static_cast<std::size_t>(blocks.query_rows));
  std::vector<Scalar> threshold(static_cast<std::size_t>(blocks.query_rows));
  RowMatrix<Scalar> G;
  Vector<Scalar> sx, sy;
  const Scalar fraction = near_duplicate_fraction<Scalar>();
  std::vector<Scalar> buffer(static_cast<std::size_t>(blocks.reference_rows));
  // Keeps the `width` nearest of b[0, size); returns the width-th distance, the new threshold (later
  // references have larger indices, so a tie with it does not enter).
  const auto compact = [width](Neighbour<Scalar>* b, std::size_t& size) {
    std::nth_element(b, b + (width - 1), b + size, Nearer{});
    size = static_cast<std::size_t>(width);
    return b[width - 1].distance;
  };
  for (Index q0 = 0; q0 < n; q0 += blocks.query_rows) {
    const Index rows = std::min(blocks.query_rows, n - q0);
    const Index qw0 = rows >= q_window ? q0 : std::min(q0, n - q_window);
    const Index qw = std::max(rows, q_window);
    for (Index r = 0; r < rows; ++r) {
      count[static_cast<std::size_t>(r)] = 0;
      threshold[static_cast<std::size_t>(r)] = std::numeric_limits<Scalar>::infinity();
    }
    const ConstRowRef<Scalar> Xq(Zq.middleRows(qw0, qw));
    sx = sq_q.segment(qw0, qw);
    for (Index c0 = 0; c0 < m; c0 += blocks.reference_rows) {
      const Index cols = std::min(blocks.reference_rows, m - c0);
      const Index cw0 = cols >= r_window ? c0 : std::min(c0, m - r_window);
      const Index cw = std::max(cols, r_window);
      const ConstRowRef<Scalar> Xr(Zr.middleRows(cw0, cw));
      sy = sq_r.segment(cw0, cw);
      G.noalias() = Xq * Xr.transpose();
      const bool zero_reference = Kind == MetricKind::Cosine && (sy.array() == Scalar(0)).any();
      for (Index r = 0; r < rows; ++r) {
        const Index query = q0 + r;
        const Index self = options.ref_includes_query ? query : -1;
        const Index lr = q0 - qw0 + r;
        const Scalar* g = G.row(lr).data() + (c0 - cw0);
        const Scalar* syp = sq_r.data() + c0;
        const Scalar sxv = sq_q(query);
        Neighbour<Scalar>* b = pool.data() + static_cast<std::size_t>(r) * (capacity + 1);
        std::size_t& used = count[static_cast<std::size_t>(r)];
        Scalar tau = threshold[static_cast<std::size_t>(r)];
        // The row's distances exactly as gram_to_distances (and Cosine's zero-row rule) makes them,
        // in vectorised passes over the tile row into a buffer, then one comparison per entry.
        const Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>> gc(g, cols), sc(syp, cols);
        Eigen::Map<Eigen::Array<Scalar, Eigen::Dynamic, 1>> v(buffer.data(), cols);
        if constexpr (Order == MetricKind::DotProduct) {
          v = -gc;
        } else {
          v = ((sxv + sc) - Scalar(2) * gc).max(Scalar(0));
          if ((v - fraction * (sxv + sc)).minCoeff() < Scalar(0)) {
            for (Index j = 0; j < cols; ++j) {
              if (v(j) < fraction * (sxv + sc(j))) v(j) = (Zq.row(query) - Zr.row(c0 + j)).squaredNorm();
            }
          }
          if constexpr (Order == MetricKind::Cosine) {
            v = (v * Scalar(0.5)).min(Scalar(2));
            if (sxv == Scalar(0)) v.setOnes();
            if (zero_reference) {
              for (Index j = 0; j < cols; ++j) {
                if (sc(j) == Scalar(0)) v(j) = Scalar(1);
              }
            }
          }
        }
        if (self >= c0 && self < c0 + cols) v(self - c0) = std::numeric_limits<Scalar>::infinity();
        // Chunks with no entry below the threshold cost one vectorised minimum; the others a
        // branch-free scan: every entry is written to the spare slot and kept if below the threshold.
        const Scalar* d = buffer.data();
        constexpr Index chunk = 16;
        for (Index j0 = 0; j0 < cols; j0 += chunk) {
          const Index len = std::min(chunk, cols - j0);
          if (!(v.segment(j0, len).minCoeff() < tau)) continue;
          for (Index j = j0; j < j0 + len; ++j) {
            b[used] = Neighbour<Scalar>{d[j], c0 + j};
            used += d[j] < tau ? 1 : 0;
            if (used == capacity) tau = compact(b, used);
          }
        }
        threshold[static_cast<std::size_t>(r)] = tau;
      }
    }
    for (Index r = 0; r < rows; ++r) {
      Neighbour<Scalar>* b = pool.data() + static_cast<std::size_t>(r) * (capacity + 1);
      std::size_t& used = count[static_cast<std::size_t>(r)];
      if (used > static_cast<std::size_t>(width)) compact(b, used);
      std::sort(b, b + used, Nearer{});
      visit(q0 + r, static_cast<const Neighbour<Scalar>*>(b), static_cast<Index>(used));
    }
  }
}

template <MetricKind Kind, class Scalar>
Scalar order_to_distance(Scalar order) {
  if constexpr (Kind == MetricKind::Euclidean) {
    return static_cast<Scalar>(std::sqrt(static_cast<double>(order)));
  } else {
    return order;
  }
}

// The checks shared by knn and the retrieval metrics.
template <class Scalar>
void require_query_reference(const char* function, const ConstRowRef<Scalar>& Q, const ConstRowRef<Scalar>& R,
                             const KnnOptions& options) {
  require_embeddings<Scalar>(function, "queries", Q);
  require_embeddings<Scalar>(function, "references", R);
  if (Q.rows() == 0) fail(function, "argument 'queries' is empty (0 rows)");
  if (R.rows() == 0) fail(function, "argument 'references' is empty (0 rows)");
  require_same_cols(function, "queries", Q, "references", R);
  if (options.query_block_rows < 0 || options.reference_block_rows < 0) {
    fail(function, "KnnOptions::query_block_rows and reference_block_rows must be >= 0 (0 = from the budget), got " +
                       std::to_string(options.query_block_rows) + " and " +
                       std::to_string(options.reference_block_rows));
  }
  if (options.ref_includes_query) {
    if (R.rows() < Q.rows()) {
      fail(function, "KnnOptions::ref_includes_query needs the queries as the first rows of 'references', but "
                     "'queries' has " + std::to_string(Q.rows()) + " rows and 'references' " +
                         std::to_string(R.rows()));
    }
    if (!(R.topRows(Q.rows()).array() == Q.array()).all()) {
      fail(function, "KnnOptions::ref_includes_query: the first " + std::to_string(Q.rows()) +
                         " rows of 'references' must equal 'queries'");
    }
  }
}

inline Index available_neighbours(Index references, const KnnOptions& options) {
  return references - (options.ref_includes_query ? 1 : 0);
}

inline void require_k(const char* function, const char* argument, Index k, Index available) {
  if (k <= 0) fail(function, std::string("argument '") + argument + "' must be >= 1, got " + std::to_string(k));
  if (k > available) {
    fail(function, std::string("argument '") + argument + "' (" + std::to_string(k) +
                       ") is larger than the number of reference rows a query can return (" +
                       std::to_string(available) + ")");
  }
}

}  // namespace detail

// The k nearest references of every query (N x k indices and distances).
template <class Metric, class DQ, class DR>
KnnResult<typename DQ::Scalar> knn(const Eigen::MatrixBase<DQ>& queries, const Eigen::MatrixBase<DR>& references,
                                   Index k, const Metric& metric, const KnnOptions& options = {}) {
  using Scalar = typename DQ::Scalar;
  detail::check_same_scalar<DQ, DR>();
  detail::check_metric<Metric>();
  const char* fn = "knn";
  const ConstRowRef<Scalar> Q(queries.derived());
  const ConstRowRef<Scalar> R(references.derived());
  detail::require_query_reference<Scalar>(fn, Q, R, options);
  detail::require_k(fn, "k", k, detail::available_neighbours(R.rows(), options));
  metric.template check_rows<Scalar>(fn, Q);
  KnnResult<Scalar> result;
  result.indices.resize(Q.rows(), k);
  result.distances.resize(Q.rows(), k);
  metric.template with_rows<Scalar>(Q, [&](auto kind, const ConstRowRef<Scalar>& Zq) {
    metric.template with_rows<Scalar>(R, [&](auto, const ConstRowRef<Scalar>& Zr) {
      constexpr detail::MetricKind Kind = decltype(kind)::value;
      detail::knn_blocked<Kind, Scalar>(
          fn, Zq, Zr, k, options, [&](Index query, const detail::Neighbour<Scalar>* nearest, Index count) {
            for (Index j = 0; j < count; ++j) {
              result.indices(query, j) = nearest[j].index;
              result.distances(query, j) = detail::order_to_distance<Kind, Scalar>(nearest[j].distance);
            }
          });
    });
  });
  return result;
}

template <class Metric = Euclidean, class DQ, class DR>
KnnResult<typename DQ::Scalar> knn(const Eigen::MatrixBase<DQ>& queries, const Eigen::MatrixBase<DR>& references,
                                   Index k, const KnnOptions& options = {}) {
  return knn(queries, references, k, Metric{}, options);
}

}  // namespace contrastive
