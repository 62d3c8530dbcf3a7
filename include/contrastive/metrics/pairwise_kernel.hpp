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
#include <vector>

namespace contrastive {
namespace detail {

enum class MetricKind { Euclidean, SquaredEuclidean, Cosine };

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

template <class Scalar>
void normalize_rows(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>& unit, Vector<Scalar>& norm) {
  norm = X.rowwise().norm();
  unit.resize(X.rows(), X.cols());
  for (Index i = 0; i < X.rows(); ++i) {
    // A zero row stays zero: cosine similarity 0 against everything, gradient 0.
    if (norm(i) > Scalar(0)) {
      unit.row(i) = X.row(i) / norm(i);
    } else {
      unit.row(i).setZero();
    }
  }
}

// Turns the Gram matrix G (in place) into distances for rows [0, N) x [0, M).
// sq_x/sq_y are squared row norms (all ones or zeros for Cosine on unit rows).
template <MetricKind Kind, class Scalar>
void gram_to_distances(const ConstRowRef<Scalar>& X, const ConstRowRef<Scalar>& Y,
                       const Vector<Scalar>& sq_x, const Vector<Scalar>& sq_y, bool symmetric,
                       RowMatrix<Scalar>& G, std::vector<NearPair>& near) {
  const Index n = G.rows();
  const Index m = G.cols();
  const Scalar fraction = near_duplicate_fraction<Scalar>();
  near.clear();
  for (Index i = 0; i < n; ++i) {
    const Index j0 = symmetric ? i + 1 : 0;
    const Index len = m - j0;
    if (len <= 0) continue;
    auto g = G.row(i).segment(j0, len).array();
    auto sy = sq_y.segment(j0, len).transpose().array();
    // Squared distance of unit rows is 2 - 2 cos; for Cosine we keep 1 - cos = half of it.
    g = (sq_x(i) + sy - Scalar(2) * g).max(Scalar(0));
    // Flag near duplicates in a vectorised test first; the scalar scan runs only on rows that have one.
    if ((g < fraction * (sq_x(i) + sy)).any()) {
      for (Index k = 0; k < len; ++k) {
        const Index j = j0 + k;
        if (g(k) < fraction * (sq_x(i) + sq_y(j))) {
          g(k) = (X.row(i) - Y.row(j)).squaredNorm();
          near.push_back(NearPair{i, j});
        }
      }
    }
    if (Kind == MetricKind::Euclidean) {
      g = g.sqrt();
    } else if (Kind == MetricKind::Cosine) {
      g *= Scalar(0.5);
    }
  }
  if (symmetric) {
    for (Index i = 0; i < n; ++i) {
      G(i, i) = Scalar(0);
      for (Index j = 0; j < i; ++j) G(i, j) = G(j, i);
    }
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
    G.noalias() = U * V.transpose();
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
    G.noalias() = X * Y.transpose();
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

// Cosine: dD/dx_i for one pair, from the unit rows, the distance and the norm of x_i.
template <class Scalar, class RowU, class RowV>
void add_cosine_pair_gradient(Scalar upstream, Scalar distance, Scalar norm_u, const RowU& u,
                              const RowV& v, Eigen::Ref<Eigen::Matrix<Scalar, 1, Eigen::Dynamic>,
                                                       0, Eigen::InnerStride<1>> out) {
  if (norm_u == Scalar(0) || upstream == Scalar(0)) return;
  out += (upstream / norm_u) * ((u - v) - distance * u);
}

// Backward of the pairwise distances: dX (and dY unless symmetric) from dL/dD.
// One product per output for the far pairs, a direct difference for flagged pairs.
template <MetricKind Kind, class Scalar>
void pairwise_backward(const PairwiseForward<Scalar>& f, const ConstRowRef<Scalar>& X,
                       const ConstRowRef<Scalar>& Y, const RowMatrix<Scalar>& dD,
                       RowMatrix<Scalar>& dX, RowMatrix<Scalar>* dY) {
  const Index n = dD.rows();
  const Index m = dD.cols();
  const RowMatrix<Scalar>& D = f.distances;
  using RowVec = Eigen::Matrix<Scalar, 1, Eigen::Dynamic>;

  // W holds the weights of the product form; symmetric inputs fold dD and dD^T together.
  RowMatrix<Scalar> W(n, m);
  if (Kind == MetricKind::Cosine) {
    if (f.symmetric) {
      W = -(dD + dD.transpose());
    } else {
      W = -dD;
    }
  } else {
    if (f.symmetric) {
      for (Index i = 0; i < n; ++i) {
        for (Index j = 0; j < m; ++j) {
          W(i, j) = difference_weight<Kind>(dD(i, j) + dD(j, i), D(i, j));
        }
      }
    } else {
      for (Index i = 0; i < n; ++i) {
        for (Index j = 0; j < m; ++j) W(i, j) = difference_weight<Kind>(dD(i, j), D(i, j));
      }
    }
  }
  if (f.symmetric) W.diagonal().setZero();
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
      const Scalar up = f.symmetric ? dD(p.i, p.j) + dD(p.j, p.i) : dD(p.i, p.j);
      add_cosine_pair_gradient<Scalar>(up, d, f.x_norm(p.i), U.row(p.i), V.row(p.j), dX.row(p.i));
      if (f.symmetric) {
        add_cosine_pair_gradient<Scalar>(up, d, f.x_norm(p.j), U.row(p.j), U.row(p.i), dX.row(p.j));
      } else if (dY) {
        add_cosine_pair_gradient<Scalar>(up, d, ny(p.j), V.row(p.j), U.row(p.i), dY->row(p.j));
      }
    }
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
    const Scalar up = f.symmetric ? dD(p.i, p.j) + dD(p.j, p.i) : dD(p.i, p.j);
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

// Row-wise (paired) distances between row i of A and row i of B, computed directly.
template <MetricKind Kind, class Scalar>
Vector<Scalar> rowwise_forward(const ConstRowRef<Scalar>& A, const ConstRowRef<Scalar>& B) {
  Vector<Scalar> d(A.rows());
  for (Index i = 0; i < A.rows(); ++i) {
    if (Kind == MetricKind::Cosine) {
      const Scalar na = A.row(i).norm();
      const Scalar nb = B.row(i).norm();
      // 1 - cos = |u - v|^2 / 2 keeps full relative precision for nearly parallel rows.
      d(i) = (na > Scalar(0) && nb > Scalar(0))
                 ? Scalar(0.5) * (A.row(i) / na - B.row(i) / nb).squaredNorm()
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
    if (Kind == MetricKind::Cosine) {
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
