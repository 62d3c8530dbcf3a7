// Type lists for TEMPLATE_TEST_CASE: every scalar, and every (scalar, metric).
#pragma once

#include <contrastive/contrastive.hpp>

namespace contrastive_test {

template <class S, class M>
struct Case {
  using Scalar = S;
  using Metric = M;
};

}  // namespace contrastive_test

#define CONTRASTIVE_ALL_METRIC_CASES                                          \
  (contrastive_test::Case<float, contrastive::Euclidean>),                   \
      (contrastive_test::Case<double, contrastive::Euclidean>),              \
      (contrastive_test::Case<float, contrastive::SquaredEuclidean>),        \
      (contrastive_test::Case<double, contrastive::SquaredEuclidean>),       \
      (contrastive_test::Case<float, contrastive::Cosine>),                  \
      (contrastive_test::Case<double, contrastive::Cosine>)
