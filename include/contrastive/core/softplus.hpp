// softplus(x) = log(1 + e^x) without overflow or loss of small values, and its
// derivative, the logistic sigmoid: the soft triplet term and NT-Xent's terms.
#pragma once

#include <cmath>

namespace contrastive {
namespace detail {

template <class Scalar>
struct SoftplusValue {
  Scalar value;
  Scalar slope;  // d softplus / dx = 1 / (1 + e^-x)
};

template <class Scalar>
SoftplusValue<Scalar> softplus_with_slope(Scalar x) {
  if (x > Scalar(0)) {
    const Scalar e = std::exp(-x);
    return {x + std::log1p(e), Scalar(1) / (Scalar(1) + e)};
  }
  const Scalar e = std::exp(x);
  return {std::log1p(e), e / (Scalar(1) + e)};
}

template <class Scalar>
Scalar softplus(Scalar x) {
  return softplus_with_slope(x).value;
}

}  // namespace detail
}  // namespace contrastive
