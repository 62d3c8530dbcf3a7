// Dot-product similarity s(x, y) = x . y, unnormalised.
//
// A similarity, not a distance: pairwise_distance<DotProduct> and
// rowwise_distance<DotProduct> return s itself. The losses, which are written
// on distances ("closer is smaller"), see d = -s: a triplet's hinge becomes
// [s(a,n) - s(a,p) + margin]+, pytorch-metric-learning's form for
// DotProductSimilarity(normalize_embeddings=False). The anchor's own column is
// never used by a loss.
#pragma once

#include "contrastive/metrics/gram_metric.hpp"

namespace contrastive {

struct DotProduct : detail::GramMetric<detail::MetricKind::DotProduct> {
  static constexpr const char* name = "DotProduct";
};

}  // namespace contrastive
