// Held-out scores of a set of embeddings, from the library's evaluation
// functions (contrastive/evaluation/): every sample is a query against all the
// others (leave-one-out, pytorch-metric-learning's AccuracyCalculator with no
// separate reference set), plus the NMI of a seeded k-means with one cluster
// per digit.
#pragma once

#include <contrastive/contrastive.hpp>

namespace digits {

struct Scores {
  double recall_at_1 = 0;  // 1-nearest-neighbour accuracy (PML's precision_at_1)
  double map_at_r = 0;     // PML's mean_average_precision_at_r
  double nmi = 0;          // k-means NMI (10 clusters)
};

// Recall@1 alone: the per-epoch number.
template <class Metric, class Derived>
double recall_at_1(const Eigen::MatrixBase<Derived>& embeddings, const contrastive::LabelVector& labels) {
  if (embeddings.rows() < 2) return 0.0;
  return contrastive::retrieval_metrics<Metric>(embeddings, labels).precision_at_1;
}

template <class Metric, class Derived>
Scores held_out_scores(const Eigen::MatrixBase<Derived>& embeddings, const contrastive::LabelVector& labels,
                       unsigned seed) {
  Scores s;
  const contrastive::RetrievalMetrics r = contrastive::retrieval_metrics<Metric>(embeddings, labels);
  s.recall_at_1 = r.precision_at_1;
  s.map_at_r = r.mean_average_precision_at_r;
  contrastive::KMeansOptions k;
  k.seed = seed;
  k.n_init = 3;
  s.nmi = contrastive::clustering_metrics(embeddings, labels, k).nmi;
  return s;
}

}  // namespace digits
