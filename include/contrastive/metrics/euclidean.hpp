// Euclidean distance ||x - y||. Gradient at coincident points is the zero subgradient.
#pragma once

#include "contrastive/metrics/gram_metric.hpp"

namespace contrastive {

struct Euclidean : detail::GramMetric<detail::MetricKind::Euclidean> {
  static constexpr const char* name = "Euclidean";
};

}  // namespace contrastive
