// Scalar and matrix types shared by every part of the library.
#pragma once

#include <Eigen/Core>

#include <cstdint>
#include <type_traits>

namespace contrastive {

// Embeddings, gradients and distance matrices are stored row-major: one row
// per sample, so a row is contiguous and a framework's row-major buffer can be
// viewed without a copy.
template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

// A read-only view of embeddings. Row-major inputs (matrices, Maps, row
// blocks) bind without a copy; any other dense expression is evaluated once
// into a row-major temporary, O(N*D) beside the O(N^2*D) work of a loss.
template <class Scalar>
using ConstRowRef = Eigen::Ref<const RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;

// Labels are kept as 64-bit integers whatever integer type the caller uses.
using Label = std::int64_t;
using LabelVector = Eigen::Matrix<Label, Eigen::Dynamic, 1>;

using Index = Eigen::Index;

namespace detail {

template <class Scalar>
struct is_supported_scalar
    : std::integral_constant<bool, std::is_same<Scalar, float>::value ||
                                       std::is_same<Scalar, double>::value> {};

template <class Scalar>
constexpr void check_scalar() {
  static_assert(is_supported_scalar<Scalar>::value,
                "contrastive: embeddings must have Scalar float or double "
                "(convert with .template cast<float>() or .template cast<double>())");
}

template <class DA, class DB>
constexpr void check_same_scalar() {
  static_assert(std::is_same<typename DA::Scalar, typename DB::Scalar>::value,
                "contrastive: all embedding arguments must share one Scalar type (float or double)");
  check_scalar<typename DA::Scalar>();
}

template <class Derived>
using scalar_of = typename Derived::Scalar;

}  // namespace detail
}  // namespace contrastive
