// Input checks shared by every public function. Each check throws
// std::invalid_argument whose message names the function, the argument and
// the sizes or the first offending row, so a caller can act on it. Public
// functions run all their checks before they write anything.
#pragma once

#include "contrastive/core/labels.hpp"
#include "contrastive/core/types.hpp"

#include <cmath>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace contrastive {
namespace detail {

[[noreturn]] inline void fail(const char* function, const std::string& what) {
  throw std::invalid_argument(std::string("contrastive::") + function + ": " + what);
}

inline std::string shape_of(Index rows, Index cols) {
  return std::to_string(rows) + " x " + std::to_string(cols);
}

// No NaN or Inf anywhere in a matrix; the message names the first offending entry.
template <class Scalar>
void require_finite_matrix(const char* function, const char* argument, const ConstRowRef<Scalar>& X) {
  // Any Inf or NaN turns x * 0 into NaN, so one vectorised sum tells whether
  // all is finite (Eigen 3.4's allFinite() is a scalar loop, the dominant cost
  // of the O(N D) losses); the scan for the offending entry runs only then.
  if (!std::isnan((X.array() * Scalar(0)).sum())) return;
  for (Index i = 0; i < X.rows(); ++i) {
    for (Index j = 0; j < X.cols(); ++j) {
      const Scalar v = X(i, j);
      if (!std::isfinite(v)) {
        std::ostringstream msg;
        msg << "argument '" << argument << "' (" << shape_of(X.rows(), X.cols())
            << ") has a non-finite value (" << v << ") at row " << i << ", column " << j;
        fail(function, msg.str());
      }
    }
  }
}

// The largest row norm the library accepts: a quarter of sqrt(max), so squared
// norms, Gram entries and squared distances of any two rows stay finite
// (about 4.6e18 in float, 3.4e153 in double).
template <class Scalar>
Scalar max_embedding_norm() {
  return std::sqrt(std::numeric_limits<Scalar>::max()) / Scalar(4);
}

// Embeddings need at least one column once they have a row, finite values,
// and rows whose squared distances the scalar type can represent.
template <class Scalar>
void require_embeddings(const char* function, const char* argument, const ConstRowRef<Scalar>& X) {
  if (X.rows() > 0 && X.cols() == 0) {
    fail(function, std::string("argument '") + argument + "' has " + std::to_string(X.rows()) +
                       " rows but 0 columns; embeddings need at least one column");
  }
  require_finite_matrix<Scalar>(function, argument, X);
  const Scalar limit = max_embedding_norm<Scalar>();
  // Checked on the squared norms, vectorised; an overflow to Inf fails too.
  if (X.rows() == 0 || X.rowwise().squaredNorm().maxCoeff() <= limit * limit) return;
  for (Index i = 0; i < X.rows(); ++i) {
    const Scalar norm = X.row(i).stableNorm();
    if (!(norm <= limit)) {
      std::ostringstream msg;
      msg << "argument '" << argument << "' (" << shape_of(X.rows(), X.cols()) << ") row " << i
          << " has norm " << norm << ", above " << limit
          << ", the largest whose squared distances this scalar type can represent; rescale the "
             "embeddings or use double";
      fail(function, msg.str());
    }
  }
}

template <class Scalar>
void require_finite_vector(const char* function, const char* argument, const Vector<Scalar>& v) {
  if (v.allFinite()) return;
  for (Index i = 0; i < v.size(); ++i) {
    if (!std::isfinite(v(i))) {
      std::ostringstream msg;
      msg << "argument '" << argument << "' (length " << v.size() << ") has a non-finite value ("
          << v(i) << ") at index " << i;
      fail(function, msg.str());
    }
  }
}

template <class A, class B>
void require_same_shape(const char* function, const char* a_name, const A& a, const char* b_name,
                        const B& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) {
    fail(function, std::string("arguments '") + a_name + "' (" + shape_of(a.rows(), a.cols()) +
                       ") and '" + b_name + "' (" + shape_of(b.rows(), b.cols()) +
                       ") must have the same shape");
  }
}

template <class A, class B>
void require_same_cols(const char* function, const char* a_name, const A& a, const char* b_name,
                       const B& b) {
  if (a.cols() != b.cols() && a.rows() > 0 && b.rows() > 0) {
    fail(function, std::string("arguments '") + a_name + "' (" + shape_of(a.rows(), a.cols()) +
                       ") and '" + b_name + "' (" + shape_of(b.rows(), b.cols()) +
                       ") must have the same number of columns (embedding dimension)");
  }
}

inline void require_length(const char* function, const char* argument, Index length,
                           Index expected, const char* expected_what) {
  if (length != expected) {
    fail(function, std::string("argument '") + argument + "' has length " +
                       std::to_string(length) + " but " + expected_what + " has " +
                       std::to_string(expected) + " rows; one entry per row is needed");
  }
}

// Labels (an integer Eigen vector or std::vector), checked against the row count.
inline LabelVector to_labels(const char* function, const char* argument, const Labels& labels, Index rows,
                             const char* rows_of = "the embedding matrix") {
  if (labels.rows() != 1 && labels.cols() != 1 && labels.size() != 0) {
    fail(function, std::string("argument '") + argument + "' must be a vector, got " +
                       shape_of(labels.rows(), labels.cols()));
  }
  require_length(function, argument, labels.size(), rows, rows_of);
  return labels.values();
}

inline void require_finite_scalar(const char* function, const char* argument, double value) {
  if (!std::isfinite(value)) {
    fail(function, std::string("argument '") + argument + "' must be finite, got " +
                       std::to_string(value));
  }
}

inline void require_positive(const char* function, const char* argument, double value) {
  require_finite_scalar(function, argument, value);
  if (!(value > 0)) {
    fail(function, std::string("argument '") + argument + "' must be > 0, got " +
                       std::to_string(value));
  }
}

inline void require_non_negative(const char* function, const char* argument, double value) {
  require_finite_scalar(function, argument, value);
  if (value < 0) {
    fail(function, std::string("argument '") + argument + "' must be >= 0, got " +
                       std::to_string(value));
  }
}

}  // namespace detail
}  // namespace contrastive
