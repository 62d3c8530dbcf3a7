// Shared test data: seeded random embeddings and labels, brute-force
// reference distances in double, and per-scalar tolerances.
#pragma once

#include <contrastive/contrastive.hpp>

#include <Eigen/Core>

#include <cmath>
#include <random>
#include <vector>

namespace contrastive_test {

using contrastive::Index;
using contrastive::RowMatrix;
using contrastive::Vector;

template <class Scalar>
RowMatrix<Scalar> random_embeddings(Index rows, Index cols, unsigned seed, double scale = 1.0) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix<Scalar> X(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) X(i, j) = static_cast<Scalar>(scale * normal(gen));
  return X;
}

// P classes of K samples each, in order: 0,0,..,1,1,..
inline Eigen::VectorXi class_blocks(int classes, int per_class) {
  Eigen::VectorXi labels(classes * per_class);
  for (int i = 0; i < labels.size(); ++i) labels(i) = i / per_class;
  return labels;
}

// n labels drawn uniformly from [0, classes).
inline Eigen::VectorXi random_labels(Index n, int classes, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<int> pick(0, classes - 1);
  Eigen::VectorXi labels(n);
  for (Index i = 0; i < n; ++i) labels(i) = pick(gen);
  return labels;
}

// Brute-force distance in double between two rows, straight from the definition.
enum class Ref { Euclidean, SquaredEuclidean, Cosine };

template <class RowA, class RowB>
double reference_distance(Ref metric, const RowA& a, const RowB& b) {
  double ab = 0, aa = 0, bb = 0, diff = 0;
  for (Index k = 0; k < a.size(); ++k) {
    const double x = static_cast<double>(a(k)), y = static_cast<double>(b(k));
    ab += x * y;
    aa += x * x;
    bb += y * y;
    diff += (x - y) * (x - y);
  }
  switch (metric) {
    case Ref::Euclidean: return std::sqrt(diff);
    case Ref::SquaredEuclidean: return diff;
    case Ref::Cosine:
      if (aa == 0 || bb == 0) return 1.0;
      return 1.0 - ab / std::sqrt(aa * bb);
  }
  return 0;
}

template <class Metric>
constexpr Ref ref_of() {
  return std::is_same<Metric, contrastive::Euclidean>::value          ? Ref::Euclidean
         : std::is_same<Metric, contrastive::SquaredEuclidean>::value ? Ref::SquaredEuclidean
                                                                      : Ref::Cosine;
}

// Loose enough for float rounding of O(1) values over D ~ 100, tight for double.
template <class Scalar>
constexpr double value_tolerance() {
  return sizeof(Scalar) == sizeof(double) ? 1e-10 : 2e-5;
}

}  // namespace contrastive_test
