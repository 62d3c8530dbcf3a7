// Central finite differences against an analytic gradient, shipped so users
// can check their own compositions of losses the way our tests check ours.
//
// What makes a check trustworthy, and how this one gets there:
// - Errors are measured against the size of the gradient, not against 1. An
//   entry's error is |analytic - numeric| / max(|analytic|, |numeric|, rms, floor),
//   where rms is the root-mean-square entry of the larger of the two
//   gradients (the norm scaled to one entry). A gradient of a mean over 128
//   anchors has entries near 1e-3; a sign flip or an all-zero gradient is an
//   error of 2 or 1 on those entries, never a pass. The whole-gradient error
//   ||analytic - numeric|| / max(||analytic||, ||numeric||) must pass too.
// - Rounding: a loss evaluated in Scalar is off by some multiple of eps * |f|
//   (large in float for a batch loss: thousands of terms), so a central
//   difference with step h is off by that over h. The checker measures this
//   floor instead of guessing it: from the disagreement between the steps h
//   and h / 2 over all entries (extrapolated differences, whose truncation
//   error is negligible), a low quantile so that kinks do not move it.
//   `resolution` is the floor relative to the rms entry; above the tolerance
//   the differences cannot see an error of the tolerance's size and the
//   check is inconclusive (fails, and says so): check in double, or in float
//   at a smaller batch.
// - Losses with kinks (hinges, a max, a semi-hard selection) are smooth only
//   between them. Where the steps h and h / 2 disagree beyond the floor, the
//   stencil has crossed a kink and the step keeps halving until two
//   successive steps agree. A kink at x itself fools every central
//   difference; it shows as a gap between the forward and backward
//   differences that does not shrink with the step. An entry that never
//   settles is reported as unsettled and fails the check, unless the caller
//   asked to skip such entries (`skip_unsettled`).
#pragma once

#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

namespace contrastive {
namespace testing {

struct GradientCheckOptions {
  // First step, relative to max(1, |x|); 0 picks 1e-4 for double and 1e-2 for
  // float. The differences are extrapolated (truncation O(h^4)), so the step
  // can be large enough to keep rounding (O(eps / h)) low; larger still, it
  // would cross more kinks of a batch loss than halving can sort out.
  double relative_step = 0;
  // Largest accepted error; 0 picks 1e-6 for double and 2e-2 for float.
  double tolerance = 0;
  // How often the step may halve before an entry counts as unsettled.
  int max_halvings = 16;
  // Leave unsettled entries (a kink within every step tried) out of the
  // verdict instead of failing on them; they are still counted and located.
  bool skip_unsettled = false;
};

struct GradientCheckReport {
  bool passed = true;
  // Largest entry error (see the header comment) and the whole-gradient error.
  double max_error = 0;
  double norm_error = 0;
  double tolerance = 0;
  // The rounding floor of the differences relative to the rms entry: errors
  // below it cannot be seen. Above the tolerance the check is inconclusive.
  double resolution = 0;
  bool inconclusive = false;
  Index worst_row = -1;
  Index worst_col = -1;
  double analytic_at_worst = 0;
  double numeric_at_worst = 0;
  Index entries_checked = 0;
  // Entries whose differences did not settle as the step halved.
  Index unsettled = 0;
  Index first_unsettled_row = -1;
  Index first_unsettled_col = -1;

  std::string summary() const {
    std::ostringstream s;
    s << (passed ? "gradient check passed" : "gradient check FAILED") << ": max entry error " << max_error
      << ", norm error " << norm_error << " (tolerance " << tolerance << ", resolution " << resolution
      << ") over " << entries_checked - unsettled << " settled entries";
    if (worst_row >= 0) {
      s << "; worst at (" << worst_row << ", " << worst_col << "): analytic " << analytic_at_worst
        << ", numeric " << numeric_at_worst;
    }
    if (inconclusive) {
      s << "; INCONCLUSIVE: the finite differences' rounding floor is " << resolution
        << " of the typical entry, above the tolerance (check in double, or at a smaller batch)";
    }
    if (unsettled > 0) {
      s << "; " << unsettled << " entries did not settle as the step halved (a kink within the step, or "
        << "rounding noise above the tolerance: check in double), first at (" << first_unsettled_row << ", "
        << first_unsettled_col << ")" << (passed ? ", skipped" : "");
    }
    return s.str();
  }
};

// f maps a RowMatrix<Scalar> shaped like X to a scalar loss. `analytic` is the
// claimed dL/dX. Costs 1 + 6 * X.size() evaluations of f, plus 2 per halving
// where the differences have not settled.
template <class F, class DX, class DG>
GradientCheckReport check_gradient(F&& f, const Eigen::MatrixBase<DX>& X,
                                   const Eigen::MatrixBase<DG>& analytic,
                                   const GradientCheckOptions& options = {}) {
  using Scalar = typename DX::Scalar;
  detail::check_scalar<Scalar>();
  const char* fn = "testing::check_gradient";
  detail::require_same_shape(fn, "X", X, "analytic", analytic);
  if (!(options.relative_step >= 0)) {
    detail::fail(fn, "option 'relative_step' must be >= 0 (0 = automatic), got " +
                         std::to_string(options.relative_step));
  }
  if (!(options.tolerance >= 0)) {
    detail::fail(fn, "option 'tolerance' must be >= 0 (0 = automatic), got " + std::to_string(options.tolerance));
  }
  if (options.max_halvings < 0) {
    detail::fail(fn, "option 'max_halvings' must be >= 0, got " + std::to_string(options.max_halvings));
  }
  const double eps = static_cast<double>(std::numeric_limits<Scalar>::epsilon());
  const double first_step = options.relative_step > 0 ? options.relative_step
                                                   : (sizeof(Scalar) == sizeof(double) ? 1e-4 : 1e-2);

  GradientCheckReport report;
  report.tolerance = options.tolerance > 0 ? options.tolerance : (sizeof(Scalar) == sizeof(double) ? 1e-6 : 2e-2);
  const double tol = report.tolerance;
  const Index rows = X.rows(), cols = X.cols();
  const Index count = rows * cols;
  report.entries_checked = count;
  if (count == 0) return report;

  RowMatrix<Scalar> x = X;
  const double f0 = static_cast<double>(f(static_cast<const RowMatrix<Scalar>&>(x)));
  // Central difference along entry (i, j) with step `h`, divided by the step
  // actually taken (rounding may change it), and the gap between the two
  // one-sided differences, (f(x+h) - 2 f(x) + f(x-h)) / h: h f'' where f is
  // smooth, the jump of the slope where a kink sits at x itself.
  struct Difference {
    double slope;
    double gap;
  };
  const auto central = [&](Index i, Index j, double h) {
    const Scalar original = x(i, j);
    const Scalar up_at = static_cast<Scalar>(double(original) + h);
    const Scalar down_at = static_cast<Scalar>(double(original) - h);
    x(i, j) = up_at;
    const double up = static_cast<double>(f(static_cast<const RowMatrix<Scalar>&>(x)));
    x(i, j) = down_at;
    const double down = static_cast<double>(f(static_cast<const RowMatrix<Scalar>&>(x)));
    x(i, j) = original;
    const double taken = double(up_at) - double(down_at);
    return Difference{(up - down) / taken, 2 * (up - 2 * f0 + down) / taken};
  };

  // A level: the central differences with steps h and h / 2 combined by
  // Richardson extrapolation, (4 c(h/2) - c(h)) / 3, whose truncation error is
  // O(h^4) instead of O(h^2); what is left is rounding, and kinks.
  struct Level {
    double h;  // the smaller step
    Difference coarse, fine;
    double slope() const { return (4 * fine.slope - coarse.slope) / 3; }
  };
  const auto next_level = [&](Index i, Index j, const Level& level) {
    return Level{level.h / 2, level.fine, central(i, j, level.h / 2)};
  };

  // Pass 1: two levels for every entry (steps h0, h0 / 2, h0 / 4), so the
  // scale of the gradient and the rounding floor are known before any entry
  // is judged.
  const std::size_t n = static_cast<std::size_t>(count);
  std::vector<Level> first(n), second(n);
  std::vector<double> disagreement(n);
  double analytic_squares = 0, numeric_squares = 0;
  for (Index i = 0; i < rows; ++i) {
    for (Index j = 0; j < cols; ++j) {
      const std::size_t k = static_cast<std::size_t>(i * cols + j);
      const double h0 = first_step * std::max(1.0, std::abs(double(x(i, j))));
      first[k] = Level{h0 / 2, central(i, j, h0), central(i, j, h0 / 2)};
      second[k] = next_level(i, j, first[k]);
      // Rounding error scales as 1 / h: times the step it is comparable across entries.
      disagreement[k] = std::abs(first[k].slope() - second[k].slope()) * second[k].h;
      const double a = static_cast<double>(analytic.derived().coeff(i, j));
      analytic_squares += a * a;
      numeric_squares += second[k].slope() * second[k].slope();
    }
  }
  const auto rms = [count](double sum_of_squares) { return std::sqrt(sum_of_squares / double(count)); };
  const double typical = std::max(rms(analytic_squares), rms(numeric_squares));
  // The floor at step h: 16 times the lower quintile of the disagreement (the
  // largest of ~1000 normal deviates is ~13 lower quintiles), never below the
  // eps * |f| / h of two evaluations. Entries whose stencil crosses a kink
  // disagree by more; they may be most of the entries without moving the quintile.
  const std::ptrdiff_t quintile = std::ptrdiff_t(n / 5);
  std::nth_element(disagreement.begin(), disagreement.begin() + quintile, disagreement.end());
  const double low_disagreement = std::isfinite(disagreement[std::size_t(quintile)]) ? disagreement[std::size_t(quintile)] : 0.0;
  const double floor_times_step = std::max(16 * low_disagreement, 2 * eps * std::abs(f0));
  const auto floor_at = [floor_times_step](double h) { return floor_times_step / h; };

  // Pass 2: settle each entry, then judge it.
  double difference_squares = 0, settled_analytic = 0, settled_numeric = 0;
  for (Index i = 0; i < rows; ++i) {
    for (Index j = 0; j < cols; ++j) {
      const std::size_t k = static_cast<std::size_t>(i * cols + j);
      Level previous = first[k], current = second[k];
      // Settled: two successive levels agree, and the one-sided gap is either
      // negligible or shrinking with the step (as h f'' does; a kink at x
      // keeps it constant).
      const auto settled_now = [&]() {
        const double scale = std::max({std::abs(previous.slope()), std::abs(current.slope()), typical});
        const double negligible = std::max(tol / 4 * scale, floor_at(current.h));
        const bool slopes_agree = std::abs(previous.slope() - current.slope()) <= negligible;
        const double gap = std::abs(current.fine.gap);
        const bool smooth_at_x = gap <= 2 * negligible || gap <= 0.75 * std::abs(current.coarse.gap);
        return slopes_agree && smooth_at_x;
      };
      bool settled = settled_now();
      // Halve while a smaller step can still resolve the tolerance.
      for (int halving = 0; !settled && halving < options.max_halvings &&
                            floor_at(current.h / 2) <= tol * std::max(typical, std::abs(current.slope()));
           ++halving) {
        previous = current;
        current = next_level(i, j, current);
        settled = settled_now();
      }
      const double h = current.h;
      const double a = static_cast<double>(analytic.derived().coeff(i, j));
      const double numeric = current.slope();
      if (!settled && std::isfinite(a) && std::isfinite(numeric)) {
        if (report.unsettled++ == 0) {
          report.first_unsettled_row = i;
          report.first_unsettled_col = j;
        }
        continue;
      }
      const double difference = std::abs(a - numeric);
      const double scale = std::max({std::abs(a), std::abs(numeric), typical, floor_at(h)});
      double error = difference == 0 ? 0.0 : difference / scale;
      // NaN compares false, so a NaN entry always becomes the (infinite) worst.
      if (!(error == error) || std::isinf(a) || std::isinf(numeric)) error = std::numeric_limits<double>::infinity();
      difference_squares += difference * difference;
      settled_analytic += a * a;
      settled_numeric += numeric * numeric;
      if (report.worst_row < 0 || error > report.max_error) {
        report.max_error = error;
        report.worst_row = i;
        report.worst_col = j;
        report.analytic_at_worst = a;
        report.numeric_at_worst = numeric;
      }
    }
  }
  const double norm = std::sqrt(std::max(settled_analytic, settled_numeric));
  report.norm_error = difference_squares == 0 ? 0.0 : std::sqrt(difference_squares) / norm;
  if (!(report.norm_error <= std::numeric_limits<double>::max())) {
    report.norm_error = std::numeric_limits<double>::infinity();
  }
  const double first_floor = floor_at(first_step / 4);
  report.resolution = typical > 0 ? first_floor / typical : (first_floor > 0 ? 1.0 : 0.0);
  report.inconclusive = report.resolution > tol;
  report.passed = !report.inconclusive && report.max_error <= tol && report.norm_error <= tol &&
                  report.unsettled < count && (report.unsettled == 0 || options.skip_unsettled);
  return report;
}

}  // namespace testing
}  // namespace contrastive
