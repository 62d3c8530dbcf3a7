// NMI and AMI of a k-means clustering of labelled embeddings, as
// pytorch-metric-learning's AccuracyCalculator computes them: k-means with as
// many clusters as there are distinct labels, then
// normalized_mutual_info(labels, clusters) and adjusted_mutual_info(labels,
// clusters) (scikit-learn's definitions, mutual_information.hpp). PML clusters
// with faiss; here the clustering is kmeans.hpp (seeded, deterministic), so the
// scores are those of a different, reproducible clustering.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/evaluation/kmeans.hpp"
#include "contrastive/evaluation/mutual_information.hpp"

#include <algorithm>
#include <vector>

namespace contrastive {

struct ClusteringMetrics {
  double nmi = 0;
  double ami = 0;
  Index clusters = 0;  // the number of distinct labels
  Eigen::Matrix<Index, Eigen::Dynamic, 1> assignments;  // each row's k-means cluster
};

template <class DX>
ClusteringMetrics clustering_metrics(const Eigen::MatrixBase<DX>& X_in, const Labels& labels,
                                     const KMeansOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "clustering_metrics";
  const ConstRowRef<Scalar> X(X_in.derived());
  detail::require_embeddings<Scalar>(fn, "X", X);
  if (X.rows() == 0) detail::fail(fn, "argument 'X' is empty (0 rows)");
  const LabelVector y = detail::to_labels(fn, "labels", labels, X.rows());
  std::vector<Label> distinct(y.data(), y.data() + y.size());
  std::sort(distinct.begin(), distinct.end());
  ClusteringMetrics m;
  m.clusters = static_cast<Index>(std::unique(distinct.begin(), distinct.end()) - distinct.begin());
  m.assignments = kmeans(X, m.clusters, options).labels;
  m.nmi = normalized_mutual_info(y, m.assignments);
  m.ami = adjusted_mutual_info(y, m.assignments);
  return m;
}

}  // namespace contrastive
