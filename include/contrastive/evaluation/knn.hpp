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
// tile row. Each query keeps its candidates (distance, index) in two arrays in
// increasing index order, so that a tie in distance is decided by position and
// selecting and sorting never compare indices. A tile row is filtered against
// the query's threshold (the k-th best distance so far, or a bound of it): with
// AVX-512, the 16-entry chunks holding an admitted entry are marked branch-free
// and only those compress their entries into the buffer; elsewhere a chunk
// with none costs one vectorised minimum. A full buffer (4k entries) is cut to
// the entries below a strided sample's quantile (about 1.3k of them, no
// selection over the buffer), or exactly to the k nearest when that keeps too
// few (ties) or too many; the k found are sorted once, by a stable radix sort
// of their distances' bits. A query admits about k ln(M / k) candidates
// (docs/evaluation.md, benchmark: k = 1067 of 100,000 costs 1.7x the product).
// Memory beyond the inputs: one tile (query block x reference block
// scalars), the candidate buffers (query block x (4k + 16) entries of a scalar
// and an index; 2k + 16 when the budget is tight), one query's selection
// scratch, and for Cosine the unit rows of Q and R (a Mahalanobis or Normalized
// metric transforms Q and R once as well). KnnOptions::memory_budget_bytes
// bounds the tile and the buffers (it sets the query block and the buffer
// size); a budget too small for one query's smallest buffer and its row of a
// tile is rejected. Results are bit for bit the same under any budget and
// query block size.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/metrics/metric_traits.hpp"
#include "contrastive/metrics/pairwise_kernel.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

// The AVX-512 filter uses GCC / Clang builtins (popcount, count trailing zeros) besides the intrinsics.
#if defined(__AVX512F__) && (defined(__GNUC__) || defined(__clang__))
#define CONTRASTIVE_KNN_AVX512 1
#include <immintrin.h>
#endif

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

// The filter goes over a tile row in chunks of this many entries (one AVX-512 register of floats).
constexpr std::size_t knn_chunk = 16;

// Candidates a query collects before it selects its `width` best: 4 x width amortises one selection
// over 3 x width admissions; never more than the references themselves.
inline std::size_t knn_capacity(Index width, Index references) {
  const std::size_t w = static_cast<std::size_t>(width);
  return std::max(w, std::min(4 * w, static_cast<std::size_t>(references)));
}

struct KnnBlocks {
  Index query_rows;
  Index reference_rows;
  std::size_t capacity;  // candidates per query before a selection (knn_capacity, or 2 x width under a tight budget)
};

// References go in tiles of a fixed width: Eigen's product kernel rounds a
// Gram entry according to where its reference row falls in the tile (the
// remainder rows of a tile take other code paths), so a fixed width makes
// every distance, hence every order, independent of the memory budget and of
// the query blocks. The budget sets the query block and the candidate capacity
// (neither changes a result).
constexpr Index knn_reference_tile = 512;

inline KnnBlocks knn_blocks(const char* function, const KnnOptions& options, Index queries, Index references,
                            Index width, std::size_t scalar_size, std::size_t entry_size) {
  const std::size_t budget = options.memory_budget_bytes;
  const Index r = std::min(references, options.reference_block_rows > 0 ? options.reference_block_rows
                                                                         : knn_reference_tile);
  const std::size_t row_bytes = static_cast<std::size_t>(std::max(r, std::min(references, knn_min_tile))) * scalar_size;
  const auto per_row = [&](std::size_t capacity) { return (capacity + knn_chunk) * entry_size + row_bytes; };
  const std::size_t w = static_cast<std::size_t>(width);
  const std::size_t full = knn_capacity(width, references);
  const std::size_t least = std::min(full, std::max(w, std::min(2 * w, static_cast<std::size_t>(references))));
  Index q = 1;
  for (const std::size_t capacity : {full, least}) {
    q = options.query_block_rows > 0 ? options.query_block_rows : 256;
    q = std::max<Index>(1, std::min(q, queries));
    if (options.query_block_rows == 0) {
      while (q > 1 && static_cast<std::size_t>(q) * per_row(capacity) > budget) q /= 2;
    }
    if (static_cast<std::size_t>(q) * per_row(capacity) <= budget) return {q, r, capacity};
  }
  fail(function, "KnnOptions::memory_budget_bytes (" + std::to_string(budget) + ") is too small for " +
                     std::to_string(q) + " queries' candidate buffers of " + std::to_string(least + knn_chunk) +
                     " neighbours and their distances to one tile of " + std::to_string(r) +
                     " references; it needs at least " + std::to_string(static_cast<std::size_t>(q) * per_row(least)));
}

// The key whose unsigned order is the distance order: -0 and +0 map to one key (they compare equal,
// so their tie goes to the index, as Nearer does); negative values are reflected below the positive.
template <class Scalar>
auto order_key(Scalar d) {
  using Key = std::conditional_t<sizeof(Scalar) == 4, std::uint32_t, std::uint64_t>;
  static_assert(sizeof(Key) == sizeof(Scalar), "order_key: a float or a double");
  const Scalar canonical = d + Scalar(0);
  Key u;
  std::memcpy(&u, &canonical, sizeof u);
  const Key sign = Key(1) << (8 * sizeof(Key) - 1);
  return (u & sign) != 0 ? static_cast<Key>(~u) : static_cast<Key>(u | sign);
}

// Moves the entries of (d, i)[0, used) below t to the front, in order; returns their count. In place:
// an entry is written at or before its own slot.
template <class Scalar>
std::size_t keep_below(Scalar* d, Index* i, std::size_t used, Scalar t) {
  std::size_t out = 0, j = 0;
#if defined(CONTRASTIVE_KNN_AVX512)
  // 16 at a time: compress the admitted distances and indices into registers, store them whole (the
  // slots past `out` that this overwrites are at or before j + 15, already read).
  if constexpr (std::is_same_v<Scalar, float> && sizeof(Index) == 8) {
    const __m512 tv = _mm512_set1_ps(t);
    for (; j + knn_chunk <= used; j += knn_chunk) {
      const __m512 x = _mm512_loadu_ps(d + j);
      const __m512i lo_i = _mm512_loadu_si512(i + j);
      const __m512i hi_i = _mm512_loadu_si512(i + j + 8);
      const __mmask16 in = _mm512_cmp_ps_mask(x, tv, _CMP_LT_OQ);
      const __mmask8 lo = static_cast<__mmask8>(in & 0xFFu);
      const __mmask8 hi = static_cast<__mmask8>(in >> 8);
      const unsigned n_lo = static_cast<unsigned>(__builtin_popcount(lo));
      _mm512_storeu_ps(d + out, _mm512_maskz_compress_ps(in, x));
      _mm512_storeu_si512(i + out, _mm512_maskz_compress_epi64(lo, lo_i));
      _mm512_storeu_si512(i + out + n_lo, _mm512_maskz_compress_epi64(hi, hi_i));
      out += static_cast<std::size_t>(__builtin_popcount(in));
    }
  }
#endif
  for (; j < used; ++j) {
    d[out] = d[j];
    i[out] = i[j];
    out += d[j] < t ? 1 : 0;
  }
  return out;
}

// Selection and the final order of one query's candidates, which are kept in increasing index order:
// a tie in distance is then decided by position, so selecting and sorting on the distance alone
// (stably) gives Nearer's (distance, index) order without comparing indices.
template <class Scalar>
class KnnSelect {
 public:
  using Key = decltype(order_key(Scalar(0)));

  explicit KnnSelect(std::size_t capacity)
      : scratch_(capacity + knn_chunk), keys_(capacity), keys2_(capacity), perm_(capacity), perm2_(capacity),
        out_(capacity) {}

  // Keeps at least the `width` nearest of (d, i)[0, used), in index order, and returns the new threshold t:
  // every dropped entry and every later reference at distance >= t has `width` kept ones before it. t is
  // first the quantile of a strided sample that leaves about 1.3 x width entries below it (one counting
  // and one filtering pass, no selection over the buffer); if that keeps fewer than `width` (ties, an
  // unlucky sample) or leaves too little room, the exact width-th distance (exact_compact).
  Scalar compact(Scalar* d, Index* i, std::size_t& used, Index width) {
    const std::size_t w = static_cast<std::size_t>(width);
    constexpr std::size_t samples = 256;
    if (used >= 4 * samples && 2 * w < used) {
      const std::size_t step = used / samples;
      for (std::size_t s = 0; s < samples; ++s) scratch_[s] = d[s * step];
      const std::size_t rank = std::min(samples - 1, (13 * w * samples) / (10 * used));
      std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(rank),
                       scratch_.begin() + static_cast<std::ptrdiff_t>(samples));
      const Scalar t = scratch_[rank];
      std::size_t below = 0;
      for (std::size_t j = 0; j < used; ++j) below += d[j] < t ? 1 : 0;
      if (below >= w && below <= (used + w) / 2) {
        used = keep_below(d, i, used, t);
        return t;
      }
    }
    return exact_compact(d, i, used, width);
  }

  // Keeps exactly the `width` nearest of (d, i)[0, used) in index order (a stable filter: all below the
  // width-th distance t, then the first of those equal to it); returns t (a later reference equal to t
  // has a larger index than every kept one, so it does not enter).
  Scalar exact_compact(Scalar* d, Index* i, std::size_t& used, Index width) {
    const std::size_t w = static_cast<std::size_t>(width);
    std::copy(d, d + used, scratch_.begin());
    std::nth_element(scratch_.begin(), scratch_.begin() + static_cast<std::ptrdiff_t>(w - 1),
                     scratch_.begin() + static_cast<std::ptrdiff_t>(used));
    const Scalar t = scratch_[w - 1];
    std::size_t below = 0;
    for (std::size_t j = 0; j < used; ++j) below += d[j] < t ? 1 : 0;
    std::size_t ties = w - below, out = 0;
    for (std::size_t j = 0; j < used; ++j) {
      const bool equal = d[j] == t;
      const bool keep = (d[j] < t) | (equal & (ties > 0));
      ties -= (equal & (ties > 0)) ? 1 : 0;
      d[out] = d[j];
      i[out] = i[j];
      out += keep ? 1 : 0;
    }
    used = w;
    return t;
  }

  // The candidates nearest first: an LSD radix sort of the order keys, 8 bits a pass (stable, so ties
  // stay in index order); a pass whose digit is the same for every key is skipped.
  const Neighbour<Scalar>* sorted(const Scalar* d, const Index* i, std::size_t used) {
    constexpr int digits = static_cast<int>(sizeof(Key));
    std::vector<std::array<std::uint32_t, 256>>& hist = hist_;
    hist.assign(static_cast<std::size_t>(digits), std::array<std::uint32_t, 256>{});
    for (std::size_t j = 0; j < used; ++j) {
      const Key key = order_key(d[j]);
      keys_[j] = key;
      perm_[j] = static_cast<std::uint32_t>(j);
      for (int p = 0; p < digits; ++p) ++hist[static_cast<std::size_t>(p)][(key >> (8 * p)) & 0xFF];
    }
    Key* k_in = keys_.data();
    Key* k_out = keys2_.data();
    std::uint32_t* p_in = perm_.data();
    std::uint32_t* p_out = perm2_.data();
    for (int p = 0; p < digits; ++p) {
      std::array<std::uint32_t, 256>& h = hist[static_cast<std::size_t>(p)];
      if (used == 0 || h[(k_in[0] >> (8 * p)) & 0xFF] == used) continue;
      std::uint32_t sum = 0;
      for (std::uint32_t& c : h) {
        const std::uint32_t c0 = c;
        c = sum;
        sum += c0;
      }
      for (std::size_t j = 0; j < used; ++j) {
        const std::uint32_t at = h[(k_in[j] >> (8 * p)) & 0xFF]++;
        k_out[at] = k_in[j];
        p_out[at] = p_in[j];
      }
      std::swap(k_in, k_out);
      std::swap(p_in, p_out);
    }
    for (std::size_t j = 0; j < used; ++j) out_[j] = Neighbour<Scalar>{d[p_in[j]], i[p_in[j]]};
    return out_.data();
  }

 private:
  std::vector<Scalar> scratch_;
  std::vector<Key> keys_, keys2_;
  std::vector<std::uint32_t> perm_, perm2_;
  std::vector<Neighbour<Scalar>> out_;
  std::vector<std::array<std::uint32_t, 256>> hist_;
};

// Appends the entries of d[0, cols) (reference c0 + j) below the threshold tau to the candidates (bd, bi),
// chunk by chunk, and calls compact() (which returns the new threshold) once they reach `capacity`.
// Returns the threshold. The chunk's spare slots past `used` are overwritten freely.
template <class Scalar, class Compact>
Scalar knn_filter(const Scalar* d, Index cols, Index c0, Scalar tau, Scalar* bd, Index* bi, std::size_t& count,
                  std::size_t capacity, Compact&& compact) {
  const Index chunk = static_cast<Index>(knn_chunk);
  // The count in a local: through the reference it would be reloaded after every store of an index
  // (std::size_t may alias Index), a store-forwarding chain per chunk. compact() works on `count`.
  std::size_t used = count;
#if defined(CONTRASTIVE_KNN_AVX512)
  // A chunk in one register: a masked compare, then the admitted distances and their indices
  // compressed to the front of registers and stored whole (the spare slots take the rest).
  if constexpr (std::is_same_v<Scalar, float> && sizeof(Index) == 8) {
    __m512 t = _mm512_set1_ps(tau);
    const __m512i lanes_lo = _mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0);
    const __m512i eight = _mm512_set1_epi64(8);
    // Up to 64 chunks at a time: a branch-free pass marks the chunks with an entry below the
    // threshold, then only those are visited (no mispredicted test per chunk).
    for (Index g0 = 0; g0 < cols; g0 += 64 * chunk) {
      const Index glen = std::min(64 * chunk, cols - g0);
      const Index chunks = (glen + chunk - 1) / chunk;
      std::uint64_t marked = 0;
      for (Index c = 0; c < chunks; ++c) {
        const Index j0 = g0 + c * chunk;
        const Index len = std::min(chunk, cols - j0);
        const __mmask16 lanes = static_cast<__mmask16>(len == chunk ? 0xFFFFu : (1u << len) - 1u);
        const __mmask16 in = _mm512_mask_cmp_ps_mask(lanes, _mm512_maskz_loadu_ps(lanes, d + j0), t, _CMP_LT_OQ);
        marked |= static_cast<std::uint64_t>(in != 0) << c;
      }
      while (marked != 0) {
        const Index j0 = g0 + static_cast<Index>(__builtin_ctzll(marked)) * chunk;
        marked &= marked - 1;
        const Index len = std::min(chunk, cols - j0);
        const __mmask16 lanes = static_cast<__mmask16>(len == chunk ? 0xFFFFu : (1u << len) - 1u);
        const __m512 x = _mm512_maskz_loadu_ps(lanes, d + j0);
        // Against the current threshold: a compaction in this group may have lowered it.
        const __mmask16 in = _mm512_mask_cmp_ps_mask(lanes, x, t, _CMP_LT_OQ);
        const __mmask8 lo = static_cast<__mmask8>(in & 0xFFu);
        const __mmask8 hi = static_cast<__mmask8>(in >> 8);
        const __m512i base = _mm512_add_epi64(_mm512_set1_epi64(static_cast<long long>(c0 + j0)), lanes_lo);
        const unsigned n_lo = static_cast<unsigned>(__builtin_popcount(lo));
        _mm512_mask_compressstoreu_ps(bd + used, in, x);
        _mm512_mask_compressstoreu_epi64(bi + used, lo, base);
        _mm512_mask_compressstoreu_epi64(bi + used + n_lo, hi, _mm512_add_epi64(base, eight));
        used += static_cast<std::size_t>(__builtin_popcount(in));
        if (used >= capacity) {
          count = used;
          tau = compact();
          used = count;
          t = _mm512_set1_ps(tau);
        }
      }
    }
    count = used;
    return tau;
  }
#endif
  // Portable: a chunk with no entry below the threshold costs one vectorised minimum; the others a
  // branch-free scan (every entry written to the next slot, counted if below the threshold).
  for (Index j0 = 0; j0 < cols; j0 += chunk) {
    const Index len = std::min(chunk, cols - j0);
    if (!(Eigen::Map<const Eigen::Array<Scalar, Eigen::Dynamic, 1>>(d + j0, len).minCoeff() < tau)) continue;
    for (Index j = j0; j < j0 + len; ++j) {
      bd[used] = d[j];
      bi[used] = c0 + j;
      used += d[j] < tau ? 1 : 0;
    }
    if (used >= capacity) {
      count = used;
      tau = compact();
      used = count;
    }
  }
  count = used;
  return tau;
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
  const KnnBlocks blocks = knn_blocks(function, options, n, m, width, sizeof(Scalar), sizeof(Scalar) + sizeof(Index));
  const Index q_window = std::min(n, knn_min_tile);
  const Index r_window = std::min(m, knn_min_tile);
  const std::size_t capacity = blocks.capacity;
  // Each query's candidates as two arrays (distances, indices) in increasing index order: `capacity`
  // entries plus the spare slots a whole chunk of the filter writes into before it is counted.
  const std::size_t stride = capacity + knn_chunk;
  std::vector<Scalar> pool_d(static_cast<std::size_t>(blocks.query_rows) * stride);
  std::vector<Index> pool_i(static_cast<std::size_t>(blocks.query_rows) * stride);
  std::vector<std::size_t> count(static_cast<std::size_t>(blocks.query_rows));
  std::vector<Scalar> threshold(static_cast<std::size_t>(blocks.query_rows));
  KnnSelect<Scalar> select(capacity);
  RowMatrix<Scalar> G;
  Vector<Scalar> sx, sy;
  const Scalar fraction = near_duplicate_fraction<Scalar>();
  std::vector<Scalar> buffer(static_cast<std::size_t>(blocks.reference_rows) + knn_chunk);
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
        Scalar* bd = pool_d.data() + static_cast<std::size_t>(r) * stride;
        Index* bi = pool_i.data() + static_cast<std::size_t>(r) * stride;
        std::size_t& used = count[static_cast<std::size_t>(r)];
        threshold[static_cast<std::size_t>(r)] =
            knn_filter(buffer.data(), cols, c0, threshold[static_cast<std::size_t>(r)], bd, bi, used, capacity,
                       [&] { return select.compact(bd, bi, used, width); });
      }
    }
    for (Index r = 0; r < rows; ++r) {
      Scalar* bd = pool_d.data() + static_cast<std::size_t>(r) * stride;
      Index* bi = pool_i.data() + static_cast<std::size_t>(r) * stride;
      std::size_t& used = count[static_cast<std::size_t>(r)];
      if (used > static_cast<std::size_t>(width)) select.compact(bd, bi, used, width);
      if (used > static_cast<std::size_t>(width)) select.exact_compact(bd, bi, used, width);
      visit(q0 + r, select.sorted(bd, bi, used), static_cast<Index>(used));
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
