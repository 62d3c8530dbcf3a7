// k-means clustering of the rows of X (N x D) into k clusters, seeded and
// deterministic: the clustering behind the NMI / AMI of
// pytorch-metric-learning's AccuracyCalculator (which calls faiss's k-means;
// this one follows scikit-learn's KMeans(init="k-means++", algorithm="lloyd")
// instead, whose steps are documented, but draws its own random numbers, so
// the clusters are not scikit-learn's).
//
// Each of n_init runs:
//   1. Greedy k-means++ seeding (Arthur and Vassilvitskii 2007, as
//      scikit-learn): the first center is a uniformly drawn row; each next
//      one is the best of 2 + floor(ln k) rows drawn with probability
//      proportional to their squared distance to the nearest center so far,
//      "best" meaning the smallest total squared distance once it is added.
//   2. Lloyd iterations: assign every row to its nearest center (squared
//      Euclidean, ties to the lower center index), move each center to the mean
//      of its rows; a center left without rows takes the row farthest from its
//      own center (the farthest first when several are empty). Stop when no
//      assignment changes, when the centers move by at most tolerance x (the
//      mean of the per-column variances of X) in total squared distance (then
//      one last assignment), or after max_iterations.
// The run with the smallest inertia (sum of squared distances of the rows to
// their centers) wins, the first on a tie. Random numbers: std::mt19937_64 from
// (seed, run), mapped to doubles and indices portably, so a seed gives the same
// clusters with every compiler and standard library. Arithmetic: distances in
// the input's scalar type through one Gram product per block of rows, means in
// double.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/mining/detail/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace contrastive {

struct KMeansOptions {
  int n_init = 1;            // runs from different seedings; the lowest inertia wins
  int max_iterations = 300;  // Lloyd iterations per run
  double tolerance = 1e-4;   // relative to the mean per-column variance of X
  std::uint64_t seed = 0;
};

template <class Scalar>
struct KMeansResult {
  RowMatrix<Scalar> centers;                     // k x D
  Eigen::Matrix<Index, Eigen::Dynamic, 1> labels;  // N: each row's cluster, 0..k-1
  double inertia = 0;
  int iterations = 0;                            // Lloyd iterations of the winning run
};

namespace detail {

inline double uniform_unit(std::mt19937_64& gen) {
  return static_cast<double>(gen() >> 11) * (1.0 / 9007199254740992.0);  // [0, 1), 53 bits
}

// Squared distances of every row of X to every center (N x k), in row blocks.
template <class Scalar>
void squared_distances_to(const ConstRowRef<Scalar>& X, const Vector<Scalar>& sq_x, const RowMatrix<Scalar>& C,
                          RowMatrix<Scalar>& out) {
  const Vector<Scalar> sq_c = C.rowwise().squaredNorm();
  out.noalias() = X * C.transpose();
  for (Index i = 0; i < X.rows(); ++i) {
    out.row(i) = ((sq_x(i) + sq_c.transpose().array()) - Scalar(2) * out.row(i).array()).max(Scalar(0)).matrix();
  }
}

template <class Scalar>
RowMatrix<Scalar> kmeans_plus_plus(const ConstRowRef<Scalar>& X, const Vector<Scalar>& sq_x, Index k,
                                   std::mt19937_64& gen) {
  const Index n = X.rows();
  RowMatrix<Scalar> centers(k, X.cols());
  const Index trials = 2 + static_cast<Index>(std::log(static_cast<double>(k)));
  Index first = static_cast<Index>(uniform_index(gen, static_cast<std::uint64_t>(n)));
  centers.row(0) = X.row(first);
  RowMatrix<Scalar> d;
  squared_distances_to<Scalar>(X, sq_x, RowMatrix<Scalar>(centers.topRows(1)), d);
  std::vector<double> closest(static_cast<std::size_t>(n)), cumulative(static_cast<std::size_t>(n));
  for (Index i = 0; i < n; ++i) closest[static_cast<std::size_t>(i)] = static_cast<double>(d(i, 0));
  RowMatrix<Scalar> candidates(trials, X.cols());
  std::vector<Index> ids(static_cast<std::size_t>(trials));
  for (Index c = 1; c < k; ++c) {
    double pot = 0;
    for (Index i = 0; i < n; ++i) {
      pot += closest[static_cast<std::size_t>(i)];
      cumulative[static_cast<std::size_t>(i)] = pot;
    }
    for (Index t = 0; t < trials; ++t) {
      const double r = uniform_unit(gen) * pot;
      const Index at = static_cast<Index>(std::lower_bound(cumulative.begin(), cumulative.end(), r) - cumulative.begin());
      ids[static_cast<std::size_t>(t)] = std::min(at, n - 1);
      candidates.row(t) = X.row(ids[static_cast<std::size_t>(t)]);
    }
    squared_distances_to<Scalar>(X, sq_x, candidates, d);
    Index best = 0;
    double best_pot = std::numeric_limits<double>::infinity();
    for (Index t = 0; t < trials; ++t) {
      double p = 0;
      for (Index i = 0; i < n; ++i) p += std::min(closest[static_cast<std::size_t>(i)], static_cast<double>(d(i, t)));
      if (p < best_pot) {
        best_pot = p;
        best = t;
      }
    }
    centers.row(c) = candidates.row(best);
    for (Index i = 0; i < n; ++i) {
      closest[static_cast<std::size_t>(i)] = std::min(closest[static_cast<std::size_t>(i)], static_cast<double>(d(i, best)));
    }
  }
  return centers;
}

// Assigns rows to their nearest centers; returns the inertia and whether any label changed.
template <class Scalar>
bool assign(const ConstRowRef<Scalar>& X, const Vector<Scalar>& sq_x, const RowMatrix<Scalar>& C,
            Eigen::Matrix<Index, Eigen::Dynamic, 1>& labels, std::vector<double>& own, double& inertia) {
  constexpr Index block = 4096;
  RowMatrix<Scalar> d;
  bool changed = false;
  inertia = 0;
  for (Index start = 0; start < X.rows(); start += block) {
    const Index rows = std::min(block, X.rows() - start);
    const ConstRowRef<Scalar> Xb(X.middleRows(start, rows));
    const Vector<Scalar> sqb = sq_x.segment(start, rows);
    squared_distances_to<Scalar>(Xb, sqb, C, d);
    for (Index r = 0; r < rows; ++r) {
      Index j = 0;
      d.row(r).minCoeff(&j);  // the first minimum: ties to the lower index
      const Index i = start + r;
      if (labels(i) != j) changed = true;
      labels(i) = j;
      // The row's own squared distance from its difference: the Gram trick cancels for near rows.
      own[static_cast<std::size_t>(i)] = (X.row(i) - C.row(j)).template cast<double>().squaredNorm();
      inertia += own[static_cast<std::size_t>(i)];
    }
  }
  return changed;
}

template <class Scalar>
KMeansResult<Scalar> lloyd(const ConstRowRef<Scalar>& X, const Vector<Scalar>& sq_x, RowMatrix<Scalar> centers,
                           const KMeansOptions& options, double tolerance) {
  const Index n = X.rows(), k = centers.rows();
  KMeansResult<Scalar> r;
  r.labels = Eigen::Matrix<Index, Eigen::Dynamic, 1>::Constant(n, -1);
  std::vector<double> own(static_cast<std::size_t>(n));
  Eigen::MatrixXd sums(k, X.cols());
  std::vector<Index> sizes(static_cast<std::size_t>(k));
  std::vector<Index> order(static_cast<std::size_t>(n));
  bool changed = assign<Scalar>(X, sq_x, centers, r.labels, own, r.inertia);
  for (r.iterations = 1; r.iterations <= options.max_iterations; ++r.iterations) {
    sums.setZero();
    std::fill(sizes.begin(), sizes.end(), 0);
    for (Index i = 0; i < n; ++i) {
      sums.row(r.labels(i)) += X.row(i).template cast<double>();
      ++sizes[static_cast<std::size_t>(r.labels(i))];
    }
    // Empty clusters take the rows farthest from their centers, the farthest first.
    std::vector<Index> empty;
    for (Index j = 0; j < k; ++j) {
      if (sizes[static_cast<std::size_t>(j)] == 0) empty.push_back(j);
    }
    if (!empty.empty()) {
      for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
      std::stable_sort(order.begin(), order.end(), [&](Index a, Index b) {
        return own[static_cast<std::size_t>(a)] > own[static_cast<std::size_t>(b)];
      });
      for (std::size_t e = 0; e < empty.size() && e < order.size(); ++e) {
        const Index i = order[e];
        const Index from = r.labels(i);
        if (sizes[static_cast<std::size_t>(from)] <= 1) continue;
        sums.row(from) -= X.row(i).template cast<double>();
        --sizes[static_cast<std::size_t>(from)];
        sums.row(empty[e]) = X.row(i).template cast<double>();
        sizes[static_cast<std::size_t>(empty[e])] = 1;
      }
    }
    double shift = 0;
    for (Index j = 0; j < k; ++j) {
      if (sizes[static_cast<std::size_t>(j)] == 0) continue;
      const Eigen::RowVectorXd mean = sums.row(j) / static_cast<double>(sizes[static_cast<std::size_t>(j)]);
      shift += (mean - centers.row(j).template cast<double>()).squaredNorm();
      centers.row(j) = mean.template cast<Scalar>();
    }
    changed = assign<Scalar>(X, sq_x, centers, r.labels, own, r.inertia);
    if (!changed || shift <= tolerance) break;
  }
  r.iterations = std::min(r.iterations, options.max_iterations);
  r.centers = std::move(centers);
  return r;
}

}  // namespace detail

template <class DX>
KMeansResult<typename DX::Scalar> kmeans(const Eigen::MatrixBase<DX>& X_in, Index clusters,
                                         const KMeansOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "kmeans";
  const ConstRowRef<Scalar> X(X_in.derived());
  detail::require_embeddings<Scalar>(fn, "X", X);
  if (X.rows() == 0) detail::fail(fn, "argument 'X' is empty (0 rows)");
  if (clusters <= 0 || clusters > X.rows()) {
    detail::fail(fn, "argument 'clusters' must be in 1.." + std::to_string(X.rows()) + " (the rows of X), got " +
                         std::to_string(clusters));
  }
  if (options.n_init < 1) detail::fail(fn, "KMeansOptions::n_init must be >= 1, got " + std::to_string(options.n_init));
  if (options.max_iterations < 1) {
    detail::fail(fn, "KMeansOptions::max_iterations must be >= 1, got " + std::to_string(options.max_iterations));
  }
  detail::require_non_negative(fn, "KMeansOptions::tolerance", options.tolerance);
  // Centered rows (as scikit-learn): Gram-trick distances are accurate near the origin.
  const Eigen::RowVectorXd mean = X.template cast<double>().colwise().mean();
  const RowMatrix<Scalar> Xc_rows = (X.template cast<double>().rowwise() - mean).template cast<Scalar>();
  const ConstRowRef<Scalar> Xc(Xc_rows);
  const double variance = Xc.template cast<double>().array().square().colwise().sum().mean() /
                          static_cast<double>(X.rows());
  const double tolerance = options.tolerance * variance;
  const Vector<Scalar> sq_x = Xc.rowwise().squaredNorm();
  KMeansResult<Scalar> best;
  for (int run = 0; run < options.n_init; ++run) {
    std::mt19937_64 gen(detail::mix_seed(options.seed ^ detail::mix_seed(static_cast<std::uint64_t>(run))));
    RowMatrix<Scalar> centers = detail::kmeans_plus_plus<Scalar>(Xc, sq_x, clusters, gen);
    KMeansResult<Scalar> r = detail::lloyd<Scalar>(Xc, sq_x, std::move(centers), options, tolerance);
    if (run == 0 || r.inertia < best.inertia) best = std::move(r);
  }
  best.centers = (best.centers.template cast<double>().rowwise() + mean).template cast<Scalar>();
  return best;
}

}  // namespace contrastive
