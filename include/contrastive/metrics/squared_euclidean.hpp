// Squared Euclidean distance ||x - y||^2.
#pragma once

#include "contrastive/metrics/gram_metric.hpp"

namespace contrastive {

struct SquaredEuclidean : detail::GramMetric<detail::MetricKind::SquaredEuclidean> {
  static constexpr const char* name = "SquaredEuclidean";
};

}  // namespace contrastive
