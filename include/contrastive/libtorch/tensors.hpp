// libtorch adapter, part 1: torch::Tensor arguments seen by the library.
//
// Every tensor argument is checked before any work, each failure a
// std::invalid_argument("contrastive::<function>: ...") naming the argument:
//   - it must be a dense (strided) CPU tensor: a CUDA tensor is refused with
//     the advice to move it with .cpu() (the library computes on the CPU);
//   - embeddings and learnable parameters are float32 or float64, embeddings
//     2-D (N x D); all embedding arguments of one call share one dtype;
//   - labels (and pair flags, indices) are 1-D integer tensors (int64, int32, ...).
// Floating tensors are seen through an Eigen::Map, without a copy when the
// rows are contiguous (any row stride: a column slice x.narrow(1, 0, k) is
// viewed in place); any other layout (a transpose, a column step) is copied
// once into a contiguous tensor. Labels are copied into the library's 64-bit
// labels (O(N), beside the loss's O(N^2 D)).
//
// Nothing here depends on autograd; autograd_function.hpp builds on it.
#pragma once

#include "contrastive/core/index_sets.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <torch/types.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

namespace contrastive {
namespace libtorch {

// What the miners return and the index forms of the losses take, as
// pytorch-metric-learning's miners do: int64 index tensors.
using TripletIndices = std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>;        // anchors, positives, negatives
using PairIndices = std::tuple<torch::Tensor, torch::Tensor, torch::Tensor, torch::Tensor>;  // a1, p, a2, n

namespace detail {

using contrastive::detail::fail;

inline std::string sizes_of(const torch::Tensor& t) {
  std::string s = "[";
  for (std::int64_t d = 0; d < t.dim(); ++d) s += (d > 0 ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

inline std::string dtype_name(const torch::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

// A defined, dense CPU tensor.
inline void require_cpu_tensor(const char* function, const char* argument, const torch::Tensor& t) {
  if (!t.defined()) fail(function, std::string("argument '") + argument + "' is an undefined tensor");
  if (!t.device().is_cpu()) {
    const std::string device = t.device().str();
    fail(function, std::string("argument '") + argument + "' is on device " + device +
                       (t.is_cuda() ? " (a CUDA tensor)" : "") +
                       "; the library computes on the CPU: move it with .cpu() (the gradient then "
                       "flows back to the " + device + " tensor through the copy)");
  }
  if (t.layout() != torch::kStrided) {
    fail(function, std::string("argument '") + argument +
                       "' is a sparse tensor; pass a dense one (.to_dense())");
  }
}

inline void require_dims(const char* function, const char* argument, const torch::Tensor& t, std::int64_t dims,
                         const char* what) {
  if (t.dim() != dims) {
    fail(function, std::string("argument '") + argument + "' must be a " + std::to_string(dims) + "-D tensor (" +
                       what + "), got " + std::to_string(t.dim()) + "-D " + sizes_of(t));
  }
}

inline bool is_float_or_double(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat || t.scalar_type() == torch::kDouble;
}

inline void require_floating(const char* function, const char* argument, const torch::Tensor& t) {
  if (!is_float_or_double(t)) {
    fail(function, std::string("argument '") + argument + "' has dtype " + dtype_name(t) +
                       "; expected float32 or float64 (convert with .to(torch::kFloat) or .to(torch::kDouble))");
  }
}

// Embeddings: a 2-D float32 / float64 CPU tensor, N x D.
inline void require_embedding_tensor(const char* function, const char* argument, const torch::Tensor& t) {
  require_cpu_tensor(function, argument, t);
  require_floating(function, argument, t);
  require_dims(function, argument, t, 2, "N x D, one row per sample");
}

// Every embedding argument of a call has the first one's dtype.
inline void require_same_dtype(const char* function, const char* a_name, const torch::Tensor& a, const char* b_name,
                               const torch::Tensor& b) {
  if (a.scalar_type() != b.scalar_type()) {
    fail(function, std::string("arguments '") + a_name + "' (" + dtype_name(a) + ") and '" + b_name + "' (" +
                       dtype_name(b) + ") must have the same dtype");
  }
}

inline bool is_integer_dtype(const torch::Tensor& t) {
  return c10::isIntegralType(t.scalar_type(), /*includeBool=*/false);
}

// A 1-D integer CPU tensor (int64, int32, int16, int8, uint8; bool too when
// allow_bool, for pair flags) as the library's 64-bit labels.
inline LabelVector integer_vector(const char* function, const char* argument, const torch::Tensor& t,
                                  bool allow_bool = false) {
  require_cpu_tensor(function, argument, t);
  const bool ok = is_integer_dtype(t) || (allow_bool && t.scalar_type() == torch::kBool);
  if (!ok) {
    fail(function, std::string("argument '") + argument + "' has dtype " + dtype_name(t) + "; expected an integer tensor (int64 or int32" +
                       (allow_bool ? ", or bool" : "") + ")");
  }
  require_dims(function, argument, t, 1, "one entry per row");
  const torch::Tensor values = t.scalar_type() == torch::kLong ? t.contiguous() : t.to(torch::kLong).contiguous();
  return Eigen::Map<const LabelVector>(values.data_ptr<std::int64_t>(), values.size(0));
}

// A 1-D numeric CPU tensor (targets, scores) as doubles.
inline Vector<double> double_vector(const char* function, const char* argument, const torch::Tensor& t) {
  require_cpu_tensor(function, argument, t);
  if (!(c10::isIntegralType(t.scalar_type(), false) || c10::isFloatingType(t.scalar_type()))) {
    fail(function, std::string("argument '") + argument + "' has dtype " + dtype_name(t) +
                       "; expected a real-valued (floating or integer) tensor");
  }
  require_dims(function, argument, t, 1, "one entry per row");
  const torch::Tensor values = t.to(torch::kDouble).contiguous();
  return Eigen::Map<const Vector<double>>(values.data_ptr<double>(), values.size(0));
}

template <class Scalar>
constexpr torch::ScalarType dtype_of() {
  return std::is_same<Scalar, float>::value ? torch::kFloat : torch::kDouble;
}

// A floating tensor of up to 2 dimensions as a row-major Eigen matrix of
// Scalar: 2-D as is, 1-D (k) as k x 1, 0-D as 1 x 1.
template <class Scalar>
using MatrixMap = Eigen::Map<const RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;

template <class Scalar>
class MatrixView {
 public:
  explicit MatrixView(const torch::Tensor& t)
      : holder_(prepare(t)),
        map_(holder_.data_ptr<Scalar>(), holder_.size(0), holder_.size(1), Eigen::OuterStride<>(outer_stride(holder_))) {}
  MatrixView(const MatrixView&) = delete;
  MatrixView& operator=(const MatrixView&) = delete;

  const MatrixMap<Scalar>& map() const { return map_; }
  // The data's owner: the argument itself when viewed in place, else its copy.
  const torch::Tensor& tensor() const { return holder_; }

 private:
  // Rows contiguous (any row stride) are viewed in place; anything else is copied once.
  static torch::Tensor prepare(const torch::Tensor& t) {
    torch::Tensor m = t.dim() == 2 ? t : t.reshape({t.numel(), 1});
    if (m.scalar_type() != dtype_of<Scalar>()) m = m.to(dtype_of<Scalar>());
    const std::int64_t rows = m.size(0), cols = m.size(1);
    const bool in_place = (cols <= 1 || m.stride(1) == 1) && (rows <= 1 || m.stride(0) >= cols);
    return in_place ? m : m.contiguous();
  }
  static Index outer_stride(const torch::Tensor& m) {
    return m.size(0) <= 1 ? std::max<Index>(m.size(1), 1) : std::max<Index>(m.stride(0), 1);
  }

  torch::Tensor holder_;
  MatrixMap<Scalar> map_;
};

// The views of every tensor input of one call, in order.
template <class Scalar>
class MatrixViews {
 public:
  explicit MatrixViews(const std::vector<torch::Tensor>& tensors) {
    views_.reserve(tensors.size());
    for (const torch::Tensor& t : tensors) views_.push_back(std::make_unique<MatrixView<Scalar>>(t));
  }
  explicit MatrixViews(at::TensorList tensors) {
    views_.reserve(tensors.size());
    for (const torch::Tensor& t : tensors) views_.push_back(std::make_unique<MatrixView<Scalar>>(t));
  }
  const MatrixMap<Scalar>& operator[](std::size_t k) const { return views_[k]->map(); }
  std::size_t size() const { return views_.size(); }

 private:
  std::vector<std::unique_ptr<MatrixView<Scalar>>> views_;
};

// Runs f(Scalar{}) for the dtype of `t`, float32 or float64 (checked before).
template <class F>
decltype(auto) with_scalar(const torch::Tensor& t, F&& f) {
  if (t.scalar_type() == torch::kFloat) return f(float{});
  return f(double{});
}

// A library matrix as a tensor of `dtype`, without a copy: the tensor owns the matrix.
template <class Scalar>
torch::Tensor to_tensor(RowMatrix<Scalar>&& m) {
  const std::vector<std::int64_t> sizes{static_cast<std::int64_t>(m.rows()), static_cast<std::int64_t>(m.cols())};
  if (m.size() == 0) return torch::zeros(sizes, torch::dtype(dtype_of<Scalar>()));
  auto owner = std::make_unique<RowMatrix<Scalar>>(std::move(m));
  Scalar* data = owner->data();
  torch::Tensor t = torch::from_blob(
      data, sizes, [matrix = owner.get()](void*) { delete matrix; }, torch::dtype(dtype_of<Scalar>()));
  owner.release();  // now owned by the tensor's deleter
  return t;
}

// A 1-D index tensor (int64) from a vector of row indices.
inline torch::Tensor index_tensor(const std::vector<Index>& indices) {
  torch::Tensor t = torch::empty({static_cast<std::int64_t>(indices.size())}, torch::dtype(torch::kLong));
  std::int64_t* out = t.data_ptr<std::int64_t>();
  for (std::size_t k = 0; k < indices.size(); ++k) out[k] = static_cast<std::int64_t>(indices[k]);
  return t;
}

inline std::vector<Index> index_vector(const char* function, const char* argument, const torch::Tensor& t) {
  const LabelVector v = integer_vector(function, argument, t);
  return std::vector<Index>(v.data(), v.data() + v.size());
}

inline void require_same_length(const char* function, const char* what, const std::vector<std::size_t>& lengths) {
  for (const std::size_t n : lengths) {
    if (n != lengths[0]) {
      std::string all;
      for (const std::size_t m : lengths) all += (all.empty() ? "" : ", ") + std::to_string(m);
      fail(function, std::string("argument '") + what + "' has index tensors of lengths " + all +
                         "; they must have the same length");
    }
  }
}

}  // namespace detail

// Index tensors <-> the library's index sets (core/index_sets.hpp).
inline TripletIndices to_tensors(const Triplets& t) {
  return {detail::index_tensor(t.anchor), detail::index_tensor(t.positive), detail::index_tensor(t.negative)};
}

// PML's pair tuple: (a1, p) the positive pairs, (a2, n) the negative pairs, each in mining order.
inline PairIndices to_tensors(const Pairs& pairs) {
  std::vector<Index> a1, p, a2, n;
  for (std::size_t k = 0; k < pairs.first.size(); ++k) {
    if (pairs.similar[k] != 0) {
      a1.push_back(pairs.first[k]);
      p.push_back(pairs.second[k]);
    } else {
      a2.push_back(pairs.first[k]);
      n.push_back(pairs.second[k]);
    }
  }
  return {detail::index_tensor(a1), detail::index_tensor(p), detail::index_tensor(a2), detail::index_tensor(n)};
}

inline Triplets to_triplets(const TripletIndices& indices, const char* function = "to_triplets") {
  Triplets t;
  t.anchor = detail::index_vector(function, "triplets (anchors)", std::get<0>(indices));
  t.positive = detail::index_vector(function, "triplets (positives)", std::get<1>(indices));
  t.negative = detail::index_vector(function, "triplets (negatives)", std::get<2>(indices));
  detail::require_same_length(function, "triplets", {t.anchor.size(), t.positive.size(), t.negative.size()});
  return t;
}

// The positive pairs first, then the negative ones.
inline Pairs to_pairs(const PairIndices& indices, const char* function = "to_pairs") {
  const std::vector<Index> a1 = detail::index_vector(function, "pairs (a1)", std::get<0>(indices));
  const std::vector<Index> p = detail::index_vector(function, "pairs (p)", std::get<1>(indices));
  const std::vector<Index> a2 = detail::index_vector(function, "pairs (a2)", std::get<2>(indices));
  const std::vector<Index> n = detail::index_vector(function, "pairs (n)", std::get<3>(indices));
  detail::require_same_length(function, "pairs (a1, p)", {a1.size(), p.size()});
  detail::require_same_length(function, "pairs (a2, n)", {a2.size(), n.size()});
  Pairs pairs;
  for (std::size_t k = 0; k < a1.size(); ++k) pairs.add(a1[k], p[k], true);
  for (std::size_t k = 0; k < a2.size(); ++k) pairs.add(a2[k], n[k], false);
  return pairs;
}

}  // namespace libtorch
}  // namespace contrastive
