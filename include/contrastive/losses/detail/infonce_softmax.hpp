// Internals shared by the InfoNCE family (ntxent_loss, supcon_loss): the
// temperature check and the label groups (an anchor's positives as a run of
// rows). Their per-anchor softmax is the online softmin of online_softmin.hpp.
//
// Logits are s_ik = -D_ik / t for a distance D. Under Cosine (D = 1 - cos)
// that is cos / t minus the constant 1 / t, which no softmax or log-sum-exp
// difference can see, so the losses equal their cos / t definitions exactly.
// Working from D keeps the row maximum exact: it is the smallest kept
// distance, and every kept exponent (shift - D_ik) / t is <= 0.
#pragma once

#include "contrastive/core/reducer.hpp"
#include "contrastive/core/softplus.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace contrastive {
namespace detail {

// 1 / temperature in the loss's scalar type; a temperature so small that it
// overflows (e.g. 1e-40 for float) would turn every logit into inf or NaN.
template <class Scalar>
Scalar inverse_temperature(const char* function, double temperature) {
  require_positive(function, "temperature", temperature);
  const Scalar inv = static_cast<Scalar>(1.0 / temperature);
  if (!std::isfinite(inv)) {
    fail(function, "argument 'temperature' (" + std::to_string(temperature) +
                       ") is too small: 1 / temperature overflows the embeddings' scalar type");
  }
  return inv;
}

// Rows grouped by label, so an anchor's positives are a contiguous run of
// `order` (ascending row index within a class): O(N log N) once, then O(K)
// per anchor instead of a label comparison over the whole row.
struct LabelGroups {
  std::vector<Index> order;  // rows sorted by (label, row)
  std::vector<Index> first;  // per row: where its class starts in `order`
  std::vector<Index> count;  // per row: its class size (1 = no positive)
  bool any_positive = false;
  bool any_negative = false;

  explicit LabelGroups(const LabelVector& labels) {
    const Index n = labels.size();
    const std::size_t size = static_cast<std::size_t>(n);
    order.resize(size);
    first.resize(size);
    count.resize(size);
    for (Index i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    std::sort(order.begin(), order.end(), [&](Index a, Index b) {
      return labels(a) != labels(b) ? labels(a) < labels(b) : a < b;
    });
    for (Index begin = 0; begin < n;) {
      Index end = begin + 1;
      while (end < n && labels(at(end)) == labels(at(begin))) ++end;
      for (Index k = begin; k < end; ++k) {
        first[static_cast<std::size_t>(at(k))] = begin;
        count[static_cast<std::size_t>(at(k))] = end - begin;
      }
      if (end - begin > 1) any_positive = true;
      if (begin > 0) any_negative = true;
      begin = end;
    }
  }

  Index at(Index k) const { return order[static_cast<std::size_t>(k)]; }
  // The rows sharing row i's label, i included: class_of(i)[0 .. class_size(i)).
  const Index* class_of(Index i) const { return order.data() + first[static_cast<std::size_t>(i)]; }
  Index class_size(Index i) const { return count[static_cast<std::size_t>(i)]; }
};

// The evaluation of an InfoNCE loss on (X, labels, temperature): validation,
// then the engine on the loss's tiles, Tiles<Scalar>(labels, 1 / t, options, tally, terms).
template <class Derived, template <class> class Tiles>
struct TemperatureLoss {
  template <class Scalar, class Metric, class Options>
  static Scalar eval(const Metric& metric, const ConstRowRef<Scalar>& X, const LabelVector& labels,
                     double temperature, const Options& options, std::vector<RowMatrix<Scalar>>* grads,
                     Vector<Scalar>* terms) {
    const char* name = Derived::name;
    require_embeddings<Scalar>(name, "X", X);
    const Scalar inv_t = inverse_temperature<Scalar>(name, temperature);
    metric.check_rows(name, X);
    Tally<Scalar> tally(name, "options.reduction", options.reduction, X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(name, metric, X, options.workspace_bytes,
                                     Tiles<Scalar>(labels, inv_t, options, std::move(tally), terms), grads);
  }
};

template <class D>
using enable_if_floating = std::enable_if_t<std::is_floating_point<typename D::Scalar>::value, int>;

template <class D>
using enable_if_integral = std::enable_if_t<std::is_integral<typename D::Scalar>::value, int>;

}  // namespace detail
}  // namespace contrastive
