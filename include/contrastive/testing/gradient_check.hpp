// Central finite differences against an analytic gradient, shipped so users
// can check their own compositions of losses the way our tests check ours.
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>

namespace contrastive {
namespace testing {

struct GradientCheckOptions {
  // Step relative to max(1, |x|); 0 picks cbrt(epsilon) of the scalar type,
  // which balances truncation and rounding error of a central difference.
  double relative_step = 0;
  // Largest accepted error; 0 picks 1e-6 for double and 2e-2 for float.
  double tolerance = 0;
};

// The error of an entry is |analytic - numeric| / max(1, |analytic|, |numeric|):
// relative for large gradients, absolute for small ones.
struct GradientCheckReport {
  bool passed = true;
  double max_error = 0;
  double tolerance = 0;
  Index worst_row = -1;
  Index worst_col = -1;
  double analytic_at_worst = 0;
  double numeric_at_worst = 0;
  Index entries_checked = 0;

  std::string summary() const {
    std::ostringstream s;
    s << (passed ? "gradient check passed" : "gradient check FAILED") << ": max error "
      << max_error << " (tolerance " << tolerance << ") over " << entries_checked << " entries";
    if (worst_row >= 0) {
      s << "; worst at (" << worst_row << ", " << worst_col << "): analytic " << analytic_at_worst
        << ", numeric " << numeric_at_worst;
    }
    return s.str();
  }
};

// f maps a RowMatrix<Scalar> shaped like X to a scalar loss. `analytic` is the
// claimed dL/dX. Costs 2 * X.size() evaluations of f.
template <class F, class DX, class DG>
GradientCheckReport check_gradient(F&& f, const Eigen::MatrixBase<DX>& X,
                                   const Eigen::MatrixBase<DG>& analytic,
                                   const GradientCheckOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "testing::check_gradient";
  detail::require_same_shape(fn, "X", X, "analytic", analytic);
  if (options.relative_step < 0) {
    detail::fail(fn, "option 'relative_step' must be >= 0 (0 = automatic), got " +
                         std::to_string(options.relative_step));
  }
  const double eps = static_cast<double>(std::numeric_limits<Scalar>::epsilon());
  const double step = options.relative_step > 0 ? options.relative_step : std::cbrt(eps);

  GradientCheckReport report;
  report.tolerance = options.tolerance > 0 ? options.tolerance
                                           : (sizeof(Scalar) == sizeof(double) ? 1e-6 : 2e-2);
  RowMatrix<Scalar> x = X;
  for (Index i = 0; i < x.rows(); ++i) {
    for (Index j = 0; j < x.cols(); ++j) {
      const Scalar original = x(i, j);
      const Scalar h = static_cast<Scalar>(step * std::max(1.0, std::abs(double(original))));
      x(i, j) = original + h;
      const double up = static_cast<double>(f(static_cast<const RowMatrix<Scalar>&>(x)));
      x(i, j) = original - h;
      const double down = static_cast<double>(f(static_cast<const RowMatrix<Scalar>&>(x)));
      x(i, j) = original;
      // Divide by the step actually taken, which rounding may have changed.
      const double taken = double(original + h) - double(original - h);
      const double numeric = (up - down) / taken;
      const double a = static_cast<double>(analytic.derived().coeff(i, j));
      const double error =
          std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
      ++report.entries_checked;
      // NaN compares false, so a NaN entry always becomes the (infinite) worst.
      if (report.worst_row < 0 || !(error <= report.max_error)) {
        report.max_error = std::isnan(error) ? std::numeric_limits<double>::infinity() : error;
        report.worst_row = i;
        report.worst_col = j;
        report.analytic_at_worst = a;
        report.numeric_at_worst = numeric;
      }
    }
  }
  report.passed = report.max_error <= report.tolerance;
  return report;
}

}  // namespace testing
}  // namespace contrastive
