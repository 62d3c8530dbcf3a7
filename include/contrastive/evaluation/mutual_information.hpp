// Agreement of two labelings of the same N samples (a clustering against the
// classes): normalized and adjusted mutual information, as scikit-learn's
// normalized_mutual_info_score and adjusted_mutual_info_score with
// average_method="arithmetic" (their default), which pytorch-metric-learning's
// AccuracyCalculator reports as NMI and AMI of its k-means clusters.
//
// With n_ij the contingency table (samples in class i and cluster j), a_i and
// b_j its row and column sums, natural logarithms:
//   MI  = sum_ij n_ij / N log(N n_ij / (a_i b_j))            (clipped at 0)
//   H_U = -sum_i a_i / N log(a_i / N),  H_V likewise
//   NMI = MI / ((H_U + H_V) / 2)                            (0 when MI = 0)
//   EMI = the expected MI of two random labelings with the same a and b
//         (hypergeometric model of Vinh, Epps and Bailey 2010)
//   AMI = (MI - EMI) / ((H_U + H_V) / 2 - EMI), the denominator kept at least
//         machine epsilon away from 0 with its sign
// Both are 1 when each labeling has one class, as scikit-learn defines them;
// empty labelings are rejected (scikit-learn returns 1). Label values are arbitrary integers. EMI costs
// O(sum_ij min(a_i, b_j)) terms of lgamma.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// Dense ids 0..K-1 of arbitrary labels (in increasing label order), and K.
inline std::pair<std::vector<Index>, Index> dense_ids(const LabelVector& y) {
  std::vector<Label> values(y.data(), y.data() + y.size());
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  std::vector<Index> ids(static_cast<std::size_t>(y.size()));
  for (Index i = 0; i < y.size(); ++i) {
    ids[static_cast<std::size_t>(i)] =
        static_cast<Index>(std::lower_bound(values.begin(), values.end(), y(i)) - values.begin());
  }
  return {std::move(ids), static_cast<Index>(values.size())};
}

struct Contingency {
  Index n = 0, rows = 0, cols = 0;
  std::vector<double> table;  // rows x cols, row-major
  std::vector<double> a, b;   // row and column sums
};

inline Contingency contingency(const LabelVector& u, const LabelVector& v) {
  const auto [iu, ru] = dense_ids(u);
  const auto [iv, cv] = dense_ids(v);
  Contingency c;
  c.n = u.size();
  c.rows = ru;
  c.cols = cv;
  c.table.assign(static_cast<std::size_t>(ru * cv), 0.0);
  c.a.assign(static_cast<std::size_t>(ru), 0.0);
  c.b.assign(static_cast<std::size_t>(cv), 0.0);
  for (std::size_t s = 0; s < iu.size(); ++s) {
    c.table[static_cast<std::size_t>(iu[s] * cv + iv[s])] += 1;
    c.a[static_cast<std::size_t>(iu[s])] += 1;
    c.b[static_cast<std::size_t>(iv[s])] += 1;
  }
  return c;
}

inline double entropy_of(const std::vector<double>& counts, double n) {
  if (counts.size() == 1) return 0.0;
  double h = 0;
  for (double c : counts) {
    if (c > 0) h -= c / n * (std::log(c) - std::log(n));
  }
  return h;
}

inline double mutual_information_of(const Contingency& c) {
  const double n = static_cast<double>(c.n);
  double mi = 0;
  for (Index i = 0; i < c.rows; ++i) {
    for (Index j = 0; j < c.cols; ++j) {
      const double nij = c.table[static_cast<std::size_t>(i * c.cols + j)];
      if (nij == 0) continue;
      const double ai = c.a[static_cast<std::size_t>(i)], bj = c.b[static_cast<std::size_t>(j)];
      // As scikit-learn sums it: terms below machine epsilon in magnitude count as 0.
      const double p = nij / n;
      const double term = p * (std::log(nij) - std::log(n)) + p * (std::log(n) + std::log(n) - std::log(ai) - std::log(bj));
      if (std::abs(term) >= std::numeric_limits<double>::epsilon()) mi += term;
    }
  }
  return std::max(mi, 0.0);
}

// Expected mutual information under the hypergeometric model.
inline double expected_mutual_information(const Contingency& c) {
  const double n = static_cast<double>(c.n);
  const double lg_n = std::lgamma(n + 1);
  double emi = 0;
  for (double ai : c.a) {
    for (double bj : c.b) {
      const double start = std::max(1.0, ai + bj - n);
      const double end = std::min(ai, bj);
      const double fixed = std::lgamma(ai + 1) + std::lgamma(bj + 1) + std::lgamma(n - ai + 1) +
                           std::lgamma(n - bj + 1) - lg_n;
      for (double nij = start; nij <= end; nij += 1) {
        const double log_p = fixed - std::lgamma(nij + 1) - std::lgamma(ai - nij + 1) - std::lgamma(bj - nij + 1) -
                             std::lgamma(n - ai - bj + nij + 1);
        const double term = nij / n * (std::log(n) + std::log(nij) - std::log(ai) - std::log(bj));
        emi += term * std::exp(log_p);
      }
    }
  }
  return emi;
}

inline Contingency mutual_information_inputs(const char* function, const Labels& labels_true,
                                             const Labels& labels_pred) {
  const LabelVector u = to_labels(function, "labels_true", labels_true, labels_true.size(), "itself");
  if (u.size() == 0) fail(function, "argument 'labels_true' is empty");
  const LabelVector v = to_labels(function, "labels_pred", labels_pred, u.size(), "'labels_true'");
  return contingency(u, v);
}

}  // namespace detail

// sklearn.metrics.normalized_mutual_info_score(labels_true, labels_pred).
inline double normalized_mutual_info(const Labels& labels_true, const Labels& labels_pred) {
  const detail::Contingency c = detail::mutual_information_inputs("normalized_mutual_info", labels_true, labels_pred);
  if (c.rows == c.cols && c.rows <= 1) return 1.0;
  const double mi = detail::mutual_information_of(c);
  if (mi == 0) return 0.0;
  const double n = static_cast<double>(c.n);
  return mi / ((detail::entropy_of(c.a, n) + detail::entropy_of(c.b, n)) / 2);
}

// sklearn.metrics.adjusted_mutual_info_score(labels_true, labels_pred).
inline double adjusted_mutual_info(const Labels& labels_true, const Labels& labels_pred) {
  const detail::Contingency c = detail::mutual_information_inputs("adjusted_mutual_info", labels_true, labels_pred);
  if (c.rows == c.cols && c.rows <= 1) return 1.0;
  const double mi = detail::mutual_information_of(c);
  const double emi = detail::expected_mutual_information(c);
  const double n = static_cast<double>(c.n);
  const double normalizer = (detail::entropy_of(c.a, n) + detail::entropy_of(c.b, n)) / 2;
  double denominator = normalizer - emi;
  const double eps = std::numeric_limits<double>::epsilon();
  denominator = denominator < 0 ? std::min(denominator, -eps) : std::max(denominator, eps);
  return (mi - emi) / denominator;
}

}  // namespace contrastive
