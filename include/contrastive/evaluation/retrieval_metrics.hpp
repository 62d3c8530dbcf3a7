// Retrieval metrics of queries against a labelled reference set, as
// pytorch-metric-learning's AccuracyCalculator(...).get_accuracy(query,
// query_labels, reference, reference_labels, ref_includes_query) computes them
// (avg_of_avgs off by default, equality of labels), from the exact k-NN of
// knn.hpp streamed query block by query block: no N x k list is kept.
//
// For a query q with label y:
//   R_q      the number of reference rows labelled y, minus one when the
//            queries are inside the reference (the query itself). A query with
//            R_q = 0 ("lone": no same-label reference) is left out of every
//            mean, as in PML; the count of those is reported.
//   k        the k-NN width: PML's k = "max_bin_count" by default here (the
//            largest R_q + self over the query labels), or every reference
//            (PML's k = None), or a fixed k (Neighbours::Fixed).
//   s_i      1 if the i-th neighbour (i = 1..k) is labelled y, else 0.
//   precision@1          s_1
//   R-precision          (s_1 + ... + s_r) / r,  r = min(R_q, k)
//   MAP@R                (1 / R_q) sum_{i <= r} s_i P_i,  P_i = (s_1 + ... + s_i) / i
//                        (divided by R_q even when R_q > k, as PML does)
//   MAP (at k)           (1 / R_q) sum_{i <= k} s_i P_i     (PML's mean_average_precision)
//   mean reciprocal rank 1 / (first i <= k with s_i = 1), 0 if none
//   recall@j             1 if some s_i = 1 with i <= j (the "Recall@K" of the
//                        retrieval papers; recall@1 = precision@1), for each
//                        j in RetrievalOptions::recall_at; j may exceed k.
// Each metric is the mean over the non-lone queries, or with avg_of_avgs the
// mean over query labels of the per-label means. With k = max_bin_count or
// every reference, R-precision and MAP@R are exact (r = R_q); PML warns when a
// fixed k is below the max bin count. MRR and MAP depend on k.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/evaluation/knn.hpp"
#include "contrastive/metrics/euclidean.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

namespace contrastive {

struct RetrievalOptions {
  enum class Neighbours { MaxBinCount, AllReferences, Fixed };
  Neighbours neighbours = Neighbours::MaxBinCount;
  Index k = 0;                     // the width with Neighbours::Fixed
  std::vector<Index> recall_at = {1};
  bool avg_of_avgs = false;        // PML's avg_of_avgs
  KnnOptions knn;                  // ref_includes_query, memory budget, blocks
};

struct RetrievalMetrics {
  double precision_at_1 = 0;
  double r_precision = 0;
  double mean_average_precision_at_r = 0;
  double mean_average_precision = 0;
  double mean_reciprocal_rank = 0;
  std::vector<double> recall_at;   // one per RetrievalOptions::recall_at
  Index k = 0;                     // the k-NN width used
  Index queries = 0;               // queries in the means
  Index lone_queries = 0;          // queries with no same-label reference (left out; all NaN if none remain)
};

namespace detail {

// Per-label running sums of the metrics, for the plain and the per-label mean.
struct RetrievalTally {
  static constexpr int fixed_metrics = 5;
  Index metrics_per_query;
  std::vector<double> sums;        // label-major: label c's metric t at c * metrics_per_query + t
  std::vector<Index> counts;

  RetrievalTally(Index labels, Index recalls)
      : metrics_per_query(fixed_metrics + recalls),
        sums(static_cast<std::size_t>(labels * (fixed_metrics + recalls)), 0.0),
        counts(static_cast<std::size_t>(labels), 0) {}

  double* row(Index label) { return sums.data() + label * metrics_per_query; }

  std::vector<double> means(bool avg_of_avgs) const {
    std::vector<double> out(static_cast<std::size_t>(metrics_per_query), 0.0);
    Index total = 0, labels_seen = 0;
    for (std::size_t c = 0; c < counts.size(); ++c) {
      if (counts[c] == 0) continue;
      total += counts[c];
      ++labels_seen;
      for (Index t = 0; t < metrics_per_query; ++t) {
        const double s = sums[c * static_cast<std::size_t>(metrics_per_query) + static_cast<std::size_t>(t)];
        out[static_cast<std::size_t>(t)] += avg_of_avgs ? s / static_cast<double>(counts[c]) : s;
      }
    }
    const double divisor = avg_of_avgs ? static_cast<double>(labels_seen) : static_cast<double>(total);
    for (double& v : out) v = total == 0 ? std::numeric_limits<double>::quiet_NaN() : v / divisor;
    return out;
  }
};

// The sorted distinct query labels and, for each, its reference count.
struct LabelCounts {
  std::vector<Label> labels;
  std::vector<Index> reference_counts;

  Index find(Label y) const {
    return static_cast<Index>(std::lower_bound(labels.begin(), labels.end(), y) - labels.begin());
  }
};

inline LabelCounts label_counts(const LabelVector& query_labels, const LabelVector& reference_labels) {
  LabelCounts c;
  c.labels.assign(query_labels.data(), query_labels.data() + query_labels.size());
  std::sort(c.labels.begin(), c.labels.end());
  c.labels.erase(std::unique(c.labels.begin(), c.labels.end()), c.labels.end());
  std::vector<Label> refs(reference_labels.data(), reference_labels.data() + reference_labels.size());
  std::sort(refs.begin(), refs.end());
  c.reference_counts.resize(c.labels.size());
  for (std::size_t i = 0; i < c.labels.size(); ++i) {
    const auto range = std::equal_range(refs.begin(), refs.end(), c.labels[i]);
    c.reference_counts[i] = static_cast<Index>(range.second - range.first);
  }
  return c;
}

// One query's metrics from its neighbours' same-label flags (nearest first).
// out: precision@1, R-precision, MAP@R, MAP, MRR, then recall@j for each j.
inline void query_metrics(const unsigned char* same, Index width, Index k, Index r_q,
                          const std::vector<Index>& recall_at, double* out) {
  const Index r = std::min(r_q, k);
  Index hits = 0, first = -1;
  double ap_r = 0, ap = 0, hits_r = 0;
  for (Index i = 0; i < k; ++i) {
    if (!same[i]) continue;
    ++hits;
    if (first < 0) first = i;
    const double precision = static_cast<double>(hits) / static_cast<double>(i + 1);
    ap += precision;
    if (i < r) {
      ap_r += precision;
      hits_r += 1;
    }
  }
  out[0] += same[0] ? 1.0 : 0.0;
  out[1] += hits_r / static_cast<double>(r);
  out[2] += ap_r / static_cast<double>(r_q);
  out[3] += ap / static_cast<double>(r_q);
  out[4] += first < 0 ? 0.0 : 1.0 / static_cast<double>(first + 1);
  for (std::size_t t = 0; t < recall_at.size(); ++t) {
    const Index j = std::min(recall_at[t], width);
    out[5 + t] += std::find(same, same + j, static_cast<unsigned char>(1)) != same + j ? 1.0 : 0.0;
  }
}

}  // namespace detail

// Queries (N x D, labels of length N) against references (M x D, labels of length M).
template <class Metric, class DQ, class DR>
RetrievalMetrics retrieval_metrics(const Eigen::MatrixBase<DQ>& queries, const Labels& query_labels,
                                   const Eigen::MatrixBase<DR>& references, const Labels& reference_labels,
                                   const Metric& metric, const RetrievalOptions& options = {}) {
  using Scalar = typename DQ::Scalar;
  detail::check_same_scalar<DQ, DR>();
  detail::check_metric<Metric>();
  const char* fn = "retrieval_metrics";
  const ConstRowRef<Scalar> Q(queries.derived());
  const ConstRowRef<Scalar> R(references.derived());
  detail::require_query_reference<Scalar>(fn, Q, R, options.knn);
  metric.template check_rows<Scalar>(fn, Q);
  const LabelVector yq = detail::to_labels(fn, "query_labels", query_labels, Q.rows(), "'queries'");
  const LabelVector yr = detail::to_labels(fn, "reference_labels", reference_labels, R.rows(), "'references'");
  const bool self = options.knn.ref_includes_query;
  if (self && !(yr.head(yq.size()).array() == yq.array()).all()) {
    detail::fail(fn, "KnnOptions::ref_includes_query: the first " + std::to_string(yq.size()) +
                         " entries of 'reference_labels' must equal 'query_labels'");
  }
  const Index available = detail::available_neighbours(R.rows(), options.knn);
  for (Index j : options.recall_at) detail::require_k(fn, "RetrievalOptions::recall_at", j, available);
  const detail::LabelCounts counts = detail::label_counts(yq, yr);
  const Index self_count = self ? 1 : 0;
  const Index max_bin = *std::max_element(counts.reference_counts.begin(), counts.reference_counts.end());
  Index k = 0;
  switch (options.neighbours) {
    case RetrievalOptions::Neighbours::MaxBinCount: k = max_bin - self_count; break;
    case RetrievalOptions::Neighbours::AllReferences: k = available; break;
    case RetrievalOptions::Neighbours::Fixed:
      detail::require_k(fn, "RetrievalOptions::k", options.k, available);
      k = options.k;
      break;
  }
  RetrievalMetrics result;
  result.k = k;
  const Index recalls = static_cast<Index>(options.recall_at.size());
  Index width = k;
  for (Index j : options.recall_at) width = std::max(width, j);
  detail::RetrievalTally tally(static_cast<Index>(counts.labels.size()), recalls);
  std::vector<Index> query_class(static_cast<std::size_t>(yq.size()));
  for (Index i = 0; i < yq.size(); ++i) {
    const Index c = counts.find(yq(i));
    query_class[static_cast<std::size_t>(i)] = c;
    if (counts.reference_counts[static_cast<std::size_t>(c)] - self_count <= 0) ++result.lone_queries;
  }
  std::vector<unsigned char> same(static_cast<std::size_t>(width));
  if (k > 0 && result.lone_queries < yq.size()) {
    metric.template with_rows<Scalar>(Q, [&](auto kind, const ConstRowRef<Scalar>& Zq) {
      metric.template with_rows<Scalar>(R, [&](auto, const ConstRowRef<Scalar>& Zr) {
        constexpr detail::MetricKind Kind = decltype(kind)::value;
        detail::knn_blocked<Kind, Scalar>(
            fn, Zq, Zr, width, options.knn, [&](Index query, const detail::Neighbour<Scalar>* nearest, Index) {
              const Index c = query_class[static_cast<std::size_t>(query)];
              const Index r_q = counts.reference_counts[static_cast<std::size_t>(c)] - self_count;
              if (r_q <= 0) return;
              for (Index j = 0; j < width; ++j) {
                same[static_cast<std::size_t>(j)] = yr(nearest[j].index) == yq(query) ? 1 : 0;
              }
              detail::query_metrics(same.data(), width, k, r_q, options.recall_at, tally.row(c));
              ++tally.counts[static_cast<std::size_t>(c)];
            });
      });
    });
  }
  const std::vector<double> means = tally.means(options.avg_of_avgs);
  result.queries = yq.size() - result.lone_queries;
  result.precision_at_1 = means[0];
  result.r_precision = means[1];
  result.mean_average_precision_at_r = means[2];
  result.mean_average_precision = means[3];
  result.mean_reciprocal_rank = means[4];
  result.recall_at.assign(means.begin() + 5, means.end());
  return result;
}

template <class Metric = Euclidean, class DQ, class DR>
RetrievalMetrics retrieval_metrics(const Eigen::MatrixBase<DQ>& queries, const Labels& query_labels,
                                   const Eigen::MatrixBase<DR>& references, const Labels& reference_labels,
                                   const RetrievalOptions& options = {}) {
  return retrieval_metrics(queries, query_labels, references, reference_labels, Metric{}, options);
}

// A set against itself (PML's get_accuracy(query, query_labels) with no
// reference): every row is a query, the references are the same rows, and
// each query's own row is excluded (ref_includes_query is set).
template <class Metric = Euclidean, class DX>
RetrievalMetrics retrieval_metrics(const Eigen::MatrixBase<DX>& X, const Labels& labels,
                                   RetrievalOptions options = {}, const Metric& metric = Metric{}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const ConstRowRef<Scalar> x(X.derived());
  detail::require_embeddings<Scalar>("retrieval_metrics", "X", x);
  detail::to_labels("retrieval_metrics", "labels", labels, x.rows(), "'X'");
  options.knn.ref_includes_query = true;
  return retrieval_metrics(x, labels, x, labels, metric, options);
}

}  // namespace contrastive
