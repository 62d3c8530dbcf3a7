// Labels as the public functions take them: any integer Eigen vector (a
// VectorXi, a Map over a framework's int64 buffer, an expression) or a
// std::vector of integers, converted once to 64-bit labels.
#pragma once

#include "contrastive/core/types.hpp"

#include <cstddef>
#include <type_traits>
#include <vector>

namespace contrastive {

class Labels {
 public:
  template <class D>
  Labels(const Eigen::DenseBase<D>& labels)  // NOLINT(google-explicit-constructor): the point is the conversion
      : rows_(labels.rows()), cols_(labels.cols()), values_(labels.size()) {
    static_assert(std::is_integral<typename D::Scalar>::value,
                  "contrastive: labels must be integers (an integer Eigen vector such as Eigen::VectorXi, "
                  "or a std::vector<int> / std::vector<std::int64_t>)");
    for (Index i = 0; i < labels.size(); ++i) values_(i) = static_cast<Label>(labels.derived().coeff(i));
  }

  template <class T, class Allocator>
  Labels(const std::vector<T, Allocator>& labels)  // NOLINT(google-explicit-constructor)
      : rows_(static_cast<Index>(labels.size())), cols_(1), values_(static_cast<Index>(labels.size())) {
    static_assert(std::is_integral<T>::value, "contrastive: labels must be integers");
    for (std::size_t i = 0; i < labels.size(); ++i) values_(static_cast<Index>(i)) = static_cast<Label>(labels[i]);
  }

  // The shape the caller passed (a label matrix that is not a vector is rejected by the function).
  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index size() const { return values_.size(); }
  const LabelVector& values() const { return values_; }

 private:
  Index rows_, cols_;
  LabelVector values_;
};

}  // namespace contrastive
