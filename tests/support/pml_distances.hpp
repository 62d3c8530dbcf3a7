// PML's distances as the PML reference tests see them: the distance codes the
// generators under tests/reference write (0 CosineSimilarity(),
// 1 DotProductSimilarity(normalize_embeddings=False),
// 2 LpDistance(normalize_embeddings=False), 3 the same with power=2), and PML's
// matrix entries and margin() for the brute-force loops written from its source.
#pragma once

#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/metrics/cosine.hpp>
#include <contrastive/metrics/dot_product.hpp>
#include <contrastive/metrics/euclidean.hpp>
#include <contrastive/metrics/squared_euclidean.hpp>

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace contrastive_test {

// PML's is_inverted: a similarity (Cosine, DotProduct), larger means closer.
template <class Metric>
constexpr bool pml_inverted() {
  return std::is_same<Metric, contrastive::Cosine>::value || std::is_same<Metric, contrastive::DotProduct>::value;
}

// PML's matrix entry: the similarity for Cosine / DotProduct, the distance otherwise.
template <class Metric, class RowA, class RowB>
double pml_mat(const RowA& a, const RowB& b) {
  if constexpr (std::is_same<Metric, contrastive::DotProduct>::value) {
    double s = 0;
    for (Index k = 0; k < a.size(); ++k) s += static_cast<double>(a(k)) * static_cast<double>(b(k));
    return s;
  } else if constexpr (std::is_same<Metric, contrastive::Cosine>::value) {
    return 1.0 - reference_distance(Ref::Cosine, a, b);
  } else {
    return reference_distance(ref_of<Metric>(), a, b);
  }
}

// PML's matrix after its sign flip (softmax logits): the similarity, or minus the distance.
template <class Metric, class RowA, class RowB>
double pml_logit(const RowA& a, const RowB& b) {
  return pml_inverted<Metric>() ? pml_mat<Metric>(a, b) : -pml_mat<Metric>(a, b);
}

// PML's BaseDistance::margin(x, y): y - x for a similarity, x - y for a distance.
template <class Metric>
double pml_margin(double x, double y) {
  return pml_inverted<Metric>() ? y - x : x - y;
}

inline const char* pml_metric_name(int code) {
  switch (code) {
    case 0: return "Cosine";
    case 1: return "DotProduct";
    case 2: return "Euclidean";
    case 3: return "SquaredEuclidean";
    default: return "unknown";
  }
}

// Calls f(metric) with the library metric of a generator's distance code.
template <class F>
void with_pml_metric(int code, F&& f) {
  switch (code) {
    case 0: f(contrastive::Cosine{}); break;
    case 1: f(contrastive::DotProduct{}); break;
    case 2: f(contrastive::Euclidean{}); break;
    case 3: f(contrastive::SquaredEuclidean{}); break;
    default: FAIL("unknown distance code " << code);
  }
}

// Relative error against a reference value (exact zeros compare absolutely at 1e-300).
inline double pml_relative(double got, double want) {
  return std::abs(got - want) / std::max(std::abs(want), 1e-300);
}

// Largest entry error relative to the largest reference entry (absolute when that is 0).
template <class A, class B>
double pml_relative_max(const A& got, const B& want) {
  const double scale = want.size() ? want.cwiseAbs().maxCoeff() : 0.0;
  const double err = want.size() ? (got - want).cwiseAbs().maxCoeff() : 0.0;
  if (scale == 0) return err;
  return err / scale;
}

}  // namespace contrastive_test
