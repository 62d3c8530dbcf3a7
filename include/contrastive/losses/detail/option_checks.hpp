// Checks shared by losses that take angles in degrees or accept one metric
// kind only (pytorch-metric-learning asserts a distance type for some losses).
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/metric_traits.hpp"

#include <cmath>
#include <string>

namespace contrastive {
namespace detail {

constexpr double degrees_to_radians = 3.14159265358979323846 / 180.0;

// An angle option in degrees, strictly inside (0, 90).
inline void require_acute_degrees(const char* function, const char* argument, double degrees) {
  if (!(std::isfinite(degrees) && degrees > 0.0 && degrees < 90.0)) {
    fail(function, std::string("argument '") + argument + "' is " + std::to_string(degrees) +
                       " degrees; it must be in (0, 90)");
  }
}

// The metric's kernel on X must be `Only` (AnyMetric is resolved at run time;
// a transforming metric, Mahalanobis, is its kernel on the transformed rows).
template <MetricKind Only, class Scalar, class Metric>
void require_metric_kind(const char* function, const Metric& metric, const ConstRowRef<Scalar>& X,
                         const char* requirement) {
  const bool ok = metric.template with_rows<Scalar>(
      X, [](auto kind, const ConstRowRef<Scalar>&) { return decltype(kind)::value == Only; });
  if (!ok) fail(function, std::string("argument 'metric' must be ") + requirement);
}

}  // namespace detail
}  // namespace contrastive
