// A metric chosen at run time, e.g. from a configuration string:
//
//   contrastive::AnyMetric metric = contrastive::AnyMetric::from_name(config["metric"]);
//   auto r = contrastive::batch_hard_triplet_loss(X, labels, metric, options);
//
// It holds one of the metric types and forwards to it, so a call with an
// AnyMetric gives exactly the result of the same call with the metric it holds.
#pragma once

#include "contrastive/core/validation.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/dot_product.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/metrics/mahalanobis.hpp"
#include "contrastive/metrics/metric_traits.hpp"
#include "contrastive/metrics/normalized.hpp"
#include "contrastive/metrics/squared_euclidean.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace contrastive {

class AnyMetric : public detail::MetricTag {
 public:
  using Variant = std::variant<Euclidean, SquaredEuclidean, Cosine, DotProduct, Mahalanobis, Normalized<Euclidean>,
                               Normalized<SquaredEuclidean>, Normalized<DotProduct>, Normalized<Mahalanobis>>;

  AnyMetric() = default;  // Euclidean
  template <class M, class = std::enable_if_t<std::is_constructible<Variant, M>::value>>
  AnyMetric(M metric) : metric_(std::move(metric)) {}  // NOLINT: implicit, as a variant is

  // "euclidean", "squared_euclidean", "cosine" or "dot_product", optionally
  // prefixed "normalized_" (unit rows, PML's normalize_embeddings=True;
  // normalized_cosine is cosine itself). Case and '-' vs '_' do not matter. A Mahalanobis
  // metric needs its L: construct it (and wrap it in Normalized for unit rows).
  static AnyMetric from_name(const std::string& name) {
    std::string key;
    for (const char c : name) key += c == '-' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key == "euclidean") return Euclidean{};
    if (key == "squared_euclidean") return SquaredEuclidean{};
    if (key == "cosine") return Cosine{};
    if (key == "dot_product") return DotProduct{};
    if (key == "normalized_euclidean") return Normalized<Euclidean>{};
    if (key == "normalized_squared_euclidean") return Normalized<SquaredEuclidean>{};
    if (key == "normalized_dot_product") return Normalized<DotProduct>{};
    if (key == "normalized_cosine") return Cosine{};
    detail::fail("AnyMetric::from_name", "argument 'name' is \"" + name +
                                             "\"; expected one of euclidean, squared_euclidean, cosine, "
                                             "dot_product, each optionally prefixed normalized_ (a Mahalanobis "
                                             "metric is constructed from its L)");
  }

  const Variant& variant() const { return metric_; }
  const char* name() const {
    return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::name; }, metric_);
  }

  int parameter_blocks() const {
    return std::visit([](const auto& m) { return m.parameter_blocks(); }, metric_);
  }
  std::pair<Index, Index> parameter_shape(int k) const {
    return std::visit([k](const auto& m) { return m.parameter_shape(k); }, metric_);
  }
  template <class Scalar>
  void check_rows(const char* function, const ConstRowRef<Scalar>& X) const {
    std::visit([&](const auto& m) { m.template check_rows<Scalar>(function, X); }, metric_);
  }

  template <class Scalar, class F>
  decltype(auto) with_rows(const ConstRowRef<Scalar>& X, F&& f) const {
    return std::visit([&](const auto& m) -> decltype(auto) { return m.template with_rows<Scalar>(X, f); },
                      metric_);
  }

  template <class Scalar>
  void rows_backward(const ConstRowRef<Scalar>& X, RowMatrix<Scalar>&& dZ,
                     std::vector<RowMatrix<Scalar>>& grads) const {
    std::visit([&](const auto& m) { m.template rows_backward<Scalar>(X, std::move(dZ), grads); }, metric_);
  }

 private:
  Variant metric_;
};

}  // namespace contrastive
