// Recall@1 of a set of embeddings: the fraction of samples whose nearest
// other sample (leave-one-out, under the chosen metric) has the same label,
// i.e. 1-nearest-neighbour accuracy within the set.
#pragma once

#include <contrastive/contrastive.hpp>

#include <limits>

namespace digits {

template <class Metric, class Derived>
double recall_at_1(const Eigen::MatrixBase<Derived>& embeddings, const contrastive::LabelVector& labels) {
  using Scalar = typename Derived::Scalar;
  contrastive::RowMatrix<Scalar> D = contrastive::pairwise_distance<Metric>(embeddings);
  const contrastive::Index n = D.rows();
  if (n < 2) return 0.0;
  D.diagonal().setConstant(std::numeric_limits<Scalar>::infinity());  // a sample is not its own neighbour
  contrastive::Index hits = 0;
  for (contrastive::Index i = 0; i < n; ++i) {
    contrastive::Index nearest = 0;
    D.row(i).minCoeff(&nearest);
    if (labels(nearest) == labels(i)) ++hits;
  }
  return static_cast<double>(hits) / static_cast<double>(n);
}

}  // namespace digits
