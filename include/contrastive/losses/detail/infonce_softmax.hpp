// Internals shared by the InfoNCE family (ntxent_loss, supcon_loss): the
// temperature check and the evaluation on (X, labels, temperature). An
// anchor's positives are a run of LabelGroups (core/label_groups.hpp); its
// softmax is the online softmin of online_softmin.hpp.
//
// Logits are s_ik = -D_ik / t for a distance D. Under Cosine (D = 1 - cos)
// that is cos / t minus the constant 1 / t, which no softmax or log-sum-exp
// difference can see, so the losses equal their cos / t definitions exactly.
// Working from D keeps the row maximum exact: it is the smallest kept
// distance, and every kept exponent (shift - D_ik) / t is <= 0.
#pragma once

#include "contrastive/core/label_groups.hpp"
#include "contrastive/core/reducer.hpp"
#include "contrastive/core/softplus.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/engine/pairwise_loss.hpp"

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

// The evaluation of an InfoNCE loss on (X, labels, temperature): validation,
// then the engine on the loss's tiles, Tiles<Scalar>(labels, 1 / t, options, tally, terms).
template <class Derived, template <class> class Tiles>
// On a BatchSource (the batch itself) or a PairSource (queries against a reference set).
struct TemperatureLoss {
  static constexpr bool pair_source = true;

  template <class Scalar, class Metric, class Source, class Options>
  static Scalar eval(const Metric& metric, const Source& s, double temperature, const Options& options,
                     std::vector<RowMatrix<Scalar>>* grads, Vector<Scalar>* terms) {
    const char* name = Derived::name;
    require_pair_source<Scalar>(name, metric, s);
    const Scalar inv_t = inverse_temperature<Scalar>(name, temperature);
    Tally<Scalar> tally(name, "options.reduction", options.reduction, s.X.rows(), "the rows of X");
    return run_pairwise_loss<Scalar>(
        name, metric, s, options.workspace_bytes,
        Tiles<Scalar>(s.labels, s.candidate_labels(), inv_t, options, std::move(tally), terms), grads);
  }
};

template <class D>
using enable_if_floating = std::enable_if_t<std::is_floating_point<typename D::Scalar>::value, int>;

}  // namespace detail
}  // namespace contrastive
