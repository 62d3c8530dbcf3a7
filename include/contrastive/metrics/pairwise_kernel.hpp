// The shared engine behind the three metrics: pairwise distances through one
// Gram product, and their backward through one more product.
//
// Euclidean, SquaredEuclidean and Cosine differ only in how a Gram entry turns
// into a distance, so one kernel serves all three (MetricKind). Gram-trick
// distances cancel catastrophically for near-duplicate rows; those pairs are
// flagged and recomputed from the row difference, in the forward pass and in
// the backward pass alike, so every distance and gradient is accurate to the
// scalar type. On data without near duplicates nothing is flagged.
#pragma once

#include "contrastive/core/types.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace contrastive {
namespace detail {

// DotProduct is a similarity s = x . y; inside the kernel it is the distance
// -s, so that "closer" is "smaller" for every kind.
enum class MetricKind { Euclidean, SquaredEuclidean, Cosine, DotProduct };

// A pair whose Gram-trick distance would lose more than ~1e-4 of its relative
// precision in float. `i` indexes X, `j` indexes Y (X again when symmetric,
// then i < j).
struct NearPair {
  Index i;
  Index j;
};

// Everything the backward pass needs from the forward pass.
template <class Scalar>
struct PairwiseForward {
  RowMatrix<Scalar> distances;  // N x M
  bool symmetric = false;       // Y is X: diagonal is exactly 0, matrix exactly symmetric
  // Cosine only: unit rows (zero rows stay zero) and the row norms.
  RowMatrix<Scalar> x_unit, y_unit;
  Vector<Scalar> x_norm, y_norm;
  std::vector<NearPair> near_pairs;
};

// Pairs whose squared distance is below this fraction of (|x|^2 + |y|^2) are
// recomputed directly. The Gram trick's absolute error on the squared
// distance is about sqrt(D) * eps * (|x|^2 + |y|^2); above the threshold that
// is below 1e-4 of the distance for D up to ~1000 in float.
template <class Scalar>
constexpr Scalar near_duplicate_fraction() {
  return Scalar(1) / Scalar(16);
}

// Transposes go through small square tiles: a tile and its transpose stay in
// registers and L1, where a plain loop reading a column of a row-major N x N
// matrix misses the cache on every element (and, for N a power of two, maps
// every element of the column to the same cache set).
constexpr Index kTile = 8;

inline int pass_threads() {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

// dst.block(j0, i0, cols, rows) = src.block(i0, j0, rows, cols)^T, unrolled for full tiles.
template <class Scalar>
void transpose_tile(const RowMatrix<Scalar>& src, Index i0, Index j0, Index rows, Index cols,
                    RowMatrix<Scalar>& dst) {
  if (rows == kTile && cols == kTile) {
    dst.template block<kTile, kTile>(j0, i0) = src.template block<kTile, kTile>(i0, j0).transpose();
  } else {
    dst.block(j0, i0, cols, rows) = src.block(i0, j0, rows, cols).transpose();
  }
}

// T = A^T for a row-major A, tile by tile, over OpenMP threads when enabled.
template <class Scalar>
void transpose_into(const RowMatrix<Scalar>& A, RowMatrix<Scalar>& T) {
  const Index n = A.rows(), m = A.cols();
  T.resize(m, n);
  const Index tile_rows = (n + kTile - 1) / kTile;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(pass_threads()) if (n >= 256)
#endif
  for (Index t = 0; t < tile_rows; ++t) {
    const Index i0 = t * kTile, rows = std::min(kTile, n - i0);
    for (Index j0 = 0; j0 < m; j0 += kTile) transpose_tile(A, i0, j0, rows, std::min(kTile, m - j0), T);
  }
}

// Copies the strict upper triangle of a square matrix onto its lower triangle.
template <class Scalar>
void mirror_upper(RowMatrix<Scalar>& M) {
  const Index n = M.rows();
  const Index tile_rows = (n + kTile - 1) / kTile;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 8) num_threads(pass_threads()) if (n >= 256)
#endif
  for (Index t = 0; t < tile_rows; ++t) {
    const Index i0 = t * kTile, rows = std::min(kTile, n - i0);
    for (Index i = i0; i < i0 + rows; ++i)
      for (Index j = i0; j < i; ++j) M(i, j) = M(j, i);
    for (Index j0 = i0 + kTile; j0 < n; j0 += kTile) transpose_tile(M, i0, j0, rows, std::min(kTile, n - j0), M);
  }
}

// G = A A^T. One thread: Eigen's rank update (SYRK) computes the upper
// triangle only, half the flops of a general product; Eigen does not thread
// it, so with several threads the upper triangle is cut into blocks computed
// concurrently (SYRK on the diagonal, GEMM off it). Only the upper triangle is
// written; the lower one is left zero.
template <class Scalar>
void symmetric_gram(const ConstRowRef<Scalar>& A, RowMatrix<Scalar>& G) {
  const Index n = A.rows();
  G.setZero(n, n);
  // Eigen's rank update binds a reference to an empty A's null data (UB, found
  // by tests/fuzz/fuzz_metrics); an empty A adds nothing anyway.
  if (n == 0 || A.cols() == 0) return;
  const int threads = pass_threads();
  if (threads <= 1 || n < 512) {
    G.template selfadjointView<Eigen::Upper>().rankUpdate(A);
    return;
  }
  // About 4 blocks per thread per side keeps the triangle's tasks balanced.
  const Index block = std::max<Index>(128, (n + 4 * threads - 1) / (4 * threads));
  const Index blocks = (n + block - 1) / block;
  const Index tasks = blocks * (blocks + 1) / 2;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic) num_threads(threads)
#endif
  for (Index t = 0; t < tasks; ++t) {
    // Task t -> block (bi, bj), bj >= bi, row by row of the upper triangle.
    Index bi = 0, first = 0;
    while (first + (blocks - bi) <= t) first += blocks - bi++;
    const Index bj = bi + (t - first);
    const Index i0 = bi * block, j0 = bj * block;
    const Index rows = std::min(block, n - i0), cols = std::min(block, n - j0);
    auto target = G.block(i0, j0, rows, cols);
    if (bi == bj) {
      target.template selfadjointView<Eigen::Upper>().rankUpdate(A.middleRows(i0, rows));
    } else {
      target.noalias() = A.middleRows(i0, rows) * A.middleRows(j0, cols).transpose();
    }
  }
}

template <class Scalar>
void normalize_rows(const ConstRowRef<Scalar>& X, Eigen::Map<RowMatrix<Scalar>> unit, Vector<Scalar>& norm) {
  norm = X.rowwise().norm();
  for (Index i = 0; i < X.rows(); ++i) {
    // A zero row stays zero: cosine similarity 0 against everything, gradient 0.
    if (norm(i) > Scalar(0)) {
      unit.row(i) = X.row(i) / norm(i);
    } else {
      unit.row(i).setZero();
    }
  }
}

template <class Scalar>
void normalize_rows(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>& unit, Vector<Scalar>& norm) {
  unit.resize(X.rows(), X.cols());
  normalize_rows<Scalar>(X, Eigen::Map<RowMatrix<Scalar>>(unit.data(), X.rows(), X.cols()), norm);
}

// Eigen's float packet sqrt under EIGEN_FAST_MATH (on by default) is an rsqrt
// approximation: not correctly rounded (equal squared distances can differ by
// an ulp, breaking ties) and zero for denormals. Its double sqrt is exact, and
// rounding an exact double square root to float is the correctly rounded float
// square root, so float goes through double, still vectorised.
// Eigen does not vectorise the float -> double cast, so float goes through a
// small double buffer with plain conversion loops, which the compiler does.
template <class ArrayExpr>
void correctly_rounded_sqrt(ArrayExpr&& a) {
  using Scalar = typename std::decay_t<ArrayExpr>::Scalar;
  if constexpr (std::is_same<Scalar, float>::value) {
    constexpr Index chunk = 64;
    float* data = a.data();
    const Index n = a.size();
    double wide[chunk];
    for (Index k0 = 0; k0 < n; k0 += chunk) {
      const Index c = std::min(chunk, n - k0);
      for (Index k = 0; k < c; ++k) wide[k] = static_cast<double>(data[k0 + k]);
      Eigen::Map<Eigen::Array<double, Eigen::Dynamic, 1>> w(wide, c);
      w = w.sqrt();
      for (Index k = 0; k < c; ++k) data[k0 + k] = static_cast<float>(wide[k]);
    }
  } else {
    a = a.sqrt();
  }
}

// Whether any entry of g is below fraction * (sx + sy): one vectorised
// minimum (the sign of a rounded difference is exact) instead of any(), which
// Eigen evaluates one coefficient at a time.
template <class G, class SY, class Scalar>
bool any_near_duplicate(const G& g, Scalar sx, const SY& sy, Scalar fraction) {
  return g.size() > 0 && (g - fraction * (sx + sy)).minCoeff() < Scalar(0);
}

// Turns the Gram matrix G (in place) into distances for rows [0, N) x [0, M).
// sq_x/sq_y are squared row norms (all ones or zeros for Cosine on unit rows).
// Symmetric: only the strict upper triangle of G is read, and the result is
// mirrored onto the lower one.
template <MetricKind Kind, class Scalar>
void gram_to_distances(const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& Y,
                       const Vector<Scalar>& sq_x, const Vector<Scalar>& sq_y, bool symmetric,
                       RowMatrix<Scalar>& G, std::vector<NearPair>& near) {
  const Index n = G.rows();
  const Index m = G.cols();
  const Scalar fraction = near_duplicate_fraction<Scalar>();
  near.clear();
  if constexpr (Kind == MetricKind::DotProduct) {
    // No cancellation to repair: the distance is the negated Gram entry itself.
    G = -G;
    if (symmetric) {
      G.diagonal() = -sq_x;
      mirror_upper(G);
    }
    return;
  }
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 16) num_threads(pass_threads()) if (n >= 256)
#endif
  for (Index i = 0; i < n; ++i) {
    const Index j0 = symmetric ? i + 1 : 0;
    const Index len = m - j0;
    if (len <= 0) continue;
    auto g = G.row(i).segment(j0, len).array();
    auto sy = sq_y.segment(j0, len).transpose().array();
    // Squared distance of unit rows is 2 - 2 cos; for Cosine we keep 1 - cos = half of it.
    g = (sq_x(i) + sy - Scalar(2) * g).max(Scalar(0));
    // Flag near duplicates in a vectorised test first; the scalar scan runs only on rows that have one.
    if (any_near_duplicate(g, sq_x(i), sy, fraction)) {
      for (Index k = 0; k < len; ++k) {
        const Index j = j0 + k;
        if (g(k) < fraction * (sq_x(i) + sq_y(j))) {
          g(k) = (X.row(i) - Y.row(j)).squaredNorm();
#ifdef _OPENMP
#pragma omp critical(contrastive_near_pairs)
#endif
          near.push_back(NearPair{i, j});
        }
      }
    }
    if (Kind == MetricKind::Euclidean) {
      correctly_rounded_sqrt(g);
    } else if (Kind == MetricKind::Cosine) {
      // Rounding can push cos below -1 for opposite rows; 1 - cos stays in [0, 2].
      g = (g * Scalar(0.5)).min(Scalar(2));
    }
  }
  // Threads append in any order; a fixed order keeps the backward's sums reproducible.
  std::sort(near.begin(), near.end(),
            [](const NearPair& a, const NearPair& b) { return a.i != b.i ? a.i < b.i : a.j < b.j; });
  if (symmetric) {
    G.diagonal().setZero();
    mirror_upper(G);
  }
}

template <MetricKind Kind, class Scalar>
PairwiseForward<Scalar> pairwise_forward(const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& Y,
                                         bool symmetric) {
  PairwiseForward<Scalar> f;
  f.symmetric = symmetric;
  RowMatrix<Scalar>& G = f.distances;
  if (Kind == MetricKind::Cosine) {
    normalize_rows<Scalar>(X, f.x_unit, f.x_norm);
    if (!symmetric) normalize_rows<Scalar>(Y, f.y_unit, f.y_norm);
    const ConstRowRef<Scalar> U(f.x_unit);
    const ConstRowRef<Scalar> V(symmetric ? f.x_unit : f.y_unit);
    if (symmetric) {
      symmetric_gram<Scalar>(U, G);
    } else {
      G.noalias() = U * V.transpose();
    }
    // Unit rows have squared norm 1 (zero rows 0), so the kernel sees 2 - 2cos and halves it.
    const Vector<Scalar> sq_x = (f.x_norm.array() > Scalar(0)).template cast<Scalar>();
    const Vector<Scalar> sq_y =
        symmetric ? sq_x : Vector<Scalar>((f.y_norm.array() > Scalar(0)).template cast<Scalar>());
    gram_to_distances<Kind, Scalar>(U, V, sq_x, sq_y, symmetric, G, f.near_pairs);
    // Similarity with a zero vector is 0 by convention, so the distance is 1.
    const Vector<Scalar>& ny = symmetric ? f.x_norm : f.y_norm;
    for (Index i = 0; i < G.rows(); ++i) {
      if (f.x_norm(i) == Scalar(0)) G.row(i).setOnes();
    }
    for (Index j = 0; j < G.cols(); ++j) {
      if (ny(j) == Scalar(0)) G.col(j).setOnes();
    }
    if (symmetric) G.diagonal().setZero();
  } else {
    if (symmetric) {
      symmetric_gram<Scalar>(X, G);
    } else {
      G.noalias() = X * Y.transpose();
    }
    const Vector<Scalar> sq_x = X.rowwise().squaredNorm();
    const Vector<Scalar> sq_y = symmetric ? sq_x : Vector<Scalar>(Y.rowwise().squaredNorm());
    gram_to_distances<Kind, Scalar>(X, Y, sq_x, sq_y, symmetric, G, f.near_pairs);
  }
  return f;
}

// The weight a pair contributes to the row-difference form of the gradient:
// dD_ij/d(x_i) = w_ij * (x_i - y_j) for the two Euclidean kinds.
template <MetricKind Kind, class Scalar>
Scalar difference_weight(Scalar upstream, Scalar distance) {
  if (Kind == MetricKind::SquaredEuclidean) return Scalar(2) * upstream;
  // Zero subgradient at coincident points.
  return distance > Scalar(0) ? upstream / distance : Scalar(0);
}

// One row of the product-form weights from one row of dL/dD (plus the matching
// row of its transpose when symmetric, which may alias w) and of the distances.
// Plain loops through a small local buffer, which the compiler vectorises
// (Eigen 3.4's select is scalar, and w aliasing up_transposed defeats the
// compiler's own overlap check).
template <MetricKind Kind, class Scalar>
void weight_row(const Scalar* up, const Scalar* up_transposed, const Scalar* distance, Scalar* w, Index len) {
  constexpr Index chunk = 64;
  Scalar u[chunk];
  for (Index k0 = 0; k0 < len; k0 += chunk) {
    const Index c = std::min(chunk, len - k0);
    if (up_transposed) {
      for (Index k = 0; k < c; ++k) u[k] = up[k0 + k] + up_transposed[k0 + k];
    } else {
      for (Index k = 0; k < c; ++k) u[k] = up[k0 + k];
    }
    Scalar* out = w + k0;
    if constexpr (Kind == MetricKind::Cosine || Kind == MetricKind::DotProduct) {
      for (Index k = 0; k < c; ++k) out[k] = -u[k];
    } else if constexpr (Kind == MetricKind::SquaredEuclidean) {
      for (Index k = 0; k < c; ++k) out[k] = Scalar(2) * u[k];
    } else {
      // u / d, with the zero subgradient at coincident points; the division never
      // sees a zero. Two loops: a select whose arm is arithmetic stays a branch
      // under trapping math (the default) and does not vectorise; a select of
      // loaded values does.
      const Scalar* d = distance + k0;
      for (Index k = 0; k < c; ++k) {
        const Scalar safe = d[k] > Scalar(0) ? d[k] : Scalar(1);
        out[k] = u[k] / safe;
      }
      for (Index k = 0; k < c; ++k) out[k] = d[k] > Scalar(0) ? out[k] : Scalar(0);
    }
  }
}

// Cosine: dD/dx_i for one pair, from the unit rows, the distance and the norm of x_i.
template <class Scalar, class RowU, class RowV>
void add_cosine_pair_gradient(Scalar upstream, Scalar distance, Scalar norm_u, const RowU& u,
                              const RowV& v, Eigen::Ref<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>,
                                                       0, Eigen::InnerStride<1>> out) {
  if (norm_u == Scalar(0) || upstream == Scalar(0)) return;
  out += (upstream / norm_u) * ((u - v) - distance * u);
}

// Symmetric case: W (dL/dD on entry) becomes the symmetric weight matrix
// w(dD_ij + dD_ji, D_ij) in place, one pass over pairs of mirrored 8 x 8 tiles.
template <MetricKind Kind, class Scalar>
void fold_symmetric_weights(const RowMatrix<Scalar>& D, RowMatrix<Scalar>& W) {
  const Index n = W.rows();
  const Index tile_rows = (n + kTile - 1) / kTile;
  using Tile = Eigen::Matrix<Scalar, kTile, kTile, Eigen::RowMajor>;
#ifdef _OPENMP
#pragma omp parallel for schedule(dynamic, 8) num_threads(pass_threads()) if (n >= 256)
#endif
  for (Index t = 0; t < tile_rows; ++t) {
    const Index i0 = t * kTile, rows = std::min(kTile, n - i0);
    // The diagonal tile: each pair once, written to both places.
    for (Index i = i0; i < i0 + rows; ++i) {
      W(i, i) = Scalar(0);
      for (Index j = i + 1; j < i0 + rows; ++j) {
        const Scalar u = W(i, j) + W(j, i);
        Scalar w;
        weight_row<Kind, Scalar>(&u, nullptr, &D(i, j), &w, 1);
        W(i, j) = w;
        W(j, i) = w;
      }
    }
    for (Index j0 = i0 + kTile; j0 < n; j0 += kTile) {
      const Index cols = std::min(kTile, n - j0);
      if (rows == kTile && cols == kTile) {
        Tile u = W.template block<kTile, kTile>(i0, j0) + W.template block<kTile, kTile>(j0, i0).transpose();
        for (Index r = 0; r < kTile; ++r) {
          weight_row<Kind, Scalar>(u.row(r).data(), nullptr, &D(i0 + r, j0), u.row(r).data(), kTile);
        }
        W.template block<kTile, kTile>(i0, j0) = u;
        W.template block<kTile, kTile>(j0, i0) = u.transpose();
      } else {
        for (Index i = i0; i < i0 + rows; ++i) {
          for (Index j = j0; j < j0 + cols; ++j) {
            const Scalar u = W(i, j) + W(j, i);
            Scalar w;
            weight_row<Kind, Scalar>(&u, nullptr, &D(i, j), &w, 1);
            W(i, j) = w;
            W(j, i) = w;
          }
        }
      }
    }
  }
}

// Backward of the pairwise distances: dX (and dY unless symmetric) from dL/dD,
// which is consumed: W enters as dL/dD and is overwritten with the weights of
// the product form (saving an N x N buffer and a pass). One product per output
// for the far pairs, a direct difference for flagged pairs.
template <MetricKind Kind, class Scalar>
void pairwise_backward_in_place(const PairwiseForward<Scalar>& f, const ConstRowRef<Scalar>& X,
                                const ConstRowRef<Scalar>& Y, RowMatrix<Scalar>& W,
                                RowMatrix<Scalar>& dX, RowMatrix<Scalar>* dY) {
  const Index n = W.rows();
  const Index m = W.cols();
  const RowMatrix<Scalar>& D = f.distances;
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

  // The flagged pairs' upstream gradients, read before W is overwritten.
  std::vector<Scalar> near_up(f.near_pairs.size());
  for (std::size_t k = 0; k < f.near_pairs.size(); ++k) {
    const NearPair& p = f.near_pairs[k];
    near_up[k] = f.symmetric ? W(p.i, p.j) + W(p.j, p.i) : W(p.i, p.j);
  }
  if (f.symmetric) {
    fold_symmetric_weights<Kind, Scalar>(D, W);
  } else {
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(pass_threads()) if (n >= 256)
#endif
    for (Index i = 0; i < n; ++i) {
      weight_row<Kind, Scalar>(W.row(i).data(), nullptr, D.row(i).data(), W.row(i).data(), m);
    }
  }
  // Flagged pairs leave the product and are added from their exact difference below.
  for (const NearPair& p : f.near_pairs) {
    W(p.i, p.j) = Scalar(0);
    if (f.symmetric) W(p.j, p.i) = Scalar(0);
  }

  if (Kind == MetricKind::Cosine) {
    const RowMatrix<Scalar>& U = f.x_unit;
    const RowMatrix<Scalar>& V = f.symmetric ? f.x_unit : f.y_unit;
    const Vector<Scalar>& ny = f.symmetric ? f.x_norm : f.y_norm;
    // Gradient with respect to the unit rows, then projected onto each row's tangent space.
    RowMatrix<Scalar> dU;
    dU.noalias() = W * V;
    auto project = [](const RowMatrix<Scalar>& unit, const Vector<Scalar>& norm,
                      RowMatrix<Scalar>& g) {
      for (Index i = 0; i < g.rows(); ++i) {
        if (norm(i) > Scalar(0)) {
          g.row(i) = (g.row(i) - unit.row(i).dot(g.row(i)) * unit.row(i)) / norm(i);
        } else {
          g.row(i).setZero();
        }
      }
    };
    project(U, f.x_norm, dU);
    dX = std::move(dU);
    if (dY) {
      RowMatrix<Scalar> dV;
      dV.noalias() = W.transpose() * U;
      project(V, ny, dV);
      *dY = std::move(dV);
    }
    for (const NearPair& p : f.near_pairs) {
      const Scalar d = D(p.i, p.j);
      const Scalar up = near_up[static_cast<std::size_t>(&p - f.near_pairs.data())];
      add_cosine_pair_gradient<Scalar>(up, d, f.x_norm(p.i), U.row(p.i), V.row(p.j), dX.row(p.i));
      if (f.symmetric) {
        add_cosine_pair_gradient<Scalar>(up, d, f.x_norm(p.j), U.row(p.j), U.row(p.i), dX.row(p.j));
      } else if (dY) {
        add_cosine_pair_gradient<Scalar>(up, d, ny(p.j), V.row(p.j), U.row(p.i), dY->row(p.j));
      }
    }
    return;
  }

  if constexpr (Kind == MetricKind::DotProduct) {
    // d = -x . y: dX = W Y with W = -dL/dD (folded when symmetric), dY = W^T X.
    dX.noalias() = W * Y;
    if (dY) dY->noalias() = W.transpose() * X;
    return;
  }

  // Euclidean kinds: dX_i = sum_j W_ij (x_i - y_j) = (rowsum W)_i x_i - (W Y)_i.
  const Vector<Scalar> row_sum = W.rowwise().sum();
  dX = row_sum.asDiagonal() * X;
  dX.noalias() -= W * Y;
  if (dY) {
    const Vector<Scalar> col_sum = W.colwise().sum().transpose();
    *dY = col_sum.asDiagonal() * Y;
    dY->noalias() -= W.transpose() * X;
  }
  for (const NearPair& p : f.near_pairs) {
    const Scalar up = near_up[static_cast<std::size_t>(&p - f.near_pairs.data())];
    const Scalar w = difference_weight<Kind>(up, D(p.i, p.j));
    if (w == Scalar(0)) continue;
    const RowVec diff = X.row(p.i) - Y.row(p.j);
    dX.row(p.i) += w * diff;
    if (f.symmetric) {
      dX.row(p.j) -= w * diff;
    } else if (dY) {
      dY->row(p.j) -= w * diff;
    }
  }
}

// Backward of the pairwise distances from a dL/dD the caller keeps.
template <MetricKind Kind, class Scalar>
void pairwise_backward(const PairwiseForward<Scalar>& f, const ConstRowRef<Scalar>& X,
                       const ConstRowRef<Scalar>& Y, const RowMatrix<Scalar>& dD,
                       RowMatrix<Scalar>& dX, RowMatrix<Scalar>* dY) {
  RowMatrix<Scalar> W = dD;
  pairwise_backward_in_place<Kind, Scalar>(f, X, Y, W, dX, dY);
}

// Row-wise (paired) distances between row i of A and row i of B, computed directly.
template <MetricKind Kind, class Scalar>
Vector<Scalar> rowwise_forward(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B) {
  Vector<Scalar> d(A.rows());
  for (Index i = 0; i < A.rows(); ++i) {
    if (Kind == MetricKind::DotProduct) {
      d(i) = -A.row(i).dot(B.row(i));
    } else if (Kind == MetricKind::Cosine) {
      const Scalar na = A.row(i).norm();
      const Scalar nb = B.row(i).norm();
      // 1 - cos = |u - v|^2 / 2 keeps full relative precision for nearly parallel rows.
      d(i) = (na > Scalar(0) && nb > Scalar(0))
                 ? std::min(Scalar(2), Scalar(0.5) * (A.row(i) / na - B.row(i) / nb).squaredNorm())
                 : Scalar(1);
    } else {
      const Scalar s = (A.row(i) - B.row(i)).squaredNorm();
      d(i) = Kind == MetricKind::Euclidean ? std::sqrt(s) : s;
    }
  }
  return d;
}

template <MetricKind Kind, class Scalar>
void rowwise_backward(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B,
                      const Vector<Scalar>& d, const Vector<Scalar>& dd, RowMatrix<Scalar>& dA,
                      RowMatrix<Scalar>& dB) {
  dA.setZero(A.rows(), A.cols());
  dB.setZero(B.rows(), B.cols());
  for (Index i = 0; i < A.rows(); ++i) {
    if (dd(i) == Scalar(0)) continue;
    if (Kind == MetricKind::DotProduct) {
      dA.row(i) = -dd(i) * B.row(i);
      dB.row(i) = -dd(i) * A.row(i);
    } else if (Kind == MetricKind::Cosine) {
      const Scalar na = A.row(i).norm();
      const Scalar nb = B.row(i).norm();
      if (na == Scalar(0) || nb == Scalar(0)) continue;
      const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> u = A.row(i) / na;
      const Eigen::Matrix<Scalar, 1, Eigen::Dynamic> v = B.row(i) / nb;
      add_cosine_pair_gradient<Scalar>(dd(i), d(i), na, u, v, dA.row(i));
      add_cosine_pair_gradient<Scalar>(dd(i), d(i), nb, v, u, dB.row(i));
    } else {
      const Scalar w = difference_weight<Kind>(dd(i), d(i));
      dA.row(i) = w * (A.row(i) - B.row(i));
      dB.row(i) = -dA.row(i);
    }
  }
}

}  // namespace detail
}  // namespace contrastive
