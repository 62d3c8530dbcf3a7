// Cosine distance 1 - cos(x, y), in [0, 2]. A zero vector has similarity 0 with
// everything (distance 1, except the exact zero diagonal) and gradient 0.
#pragma once

#include "contrastive/metrics/gram_metric.hpp"

namespace contrastive {

struct Cosine : detail::GramMetric<detail::MetricKind::Cosine> {
  static constexpr const char* name = "Cosine";
};

}  // namespace contrastive
