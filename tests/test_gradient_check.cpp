// The shipped finite-difference checker must accept a correct gradient and
// reject one with a single wrong entry.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

using namespace contrastive;
using namespace contrastive_test;

namespace test_gradient_check {

namespace {
// f(X) = sum_ij sin(X_ij) * X_ij^2, gradient cos(x) x^2 + 2 x sin(x).
template <class S>
S smooth_function(const RowMatrix<S>& X) {
  return (X.array().sin() * X.array().square()).sum();
}
template <class S>
RowMatrix<S> smooth_gradient(const RowMatrix<S>& X) {
  return X.array().cos() * X.array().square() + S(2) * X.array() * X.array().sin();
}
}  // namespace

TEMPLATE_TEST_CASE("check_gradient passes a correct gradient", "[testing]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(4, 3, 1);
  const auto report = testing::check_gradient(smooth_function<S>, X, smooth_gradient<S>(X));
  INFO(report.summary());
  CHECK(report.passed);
  CHECK(report.entries_checked == 12);
  CHECK(report.max_error <= report.tolerance);
}

TEMPLATE_TEST_CASE("check_gradient fails a gradient with one wrong entry and locates it", "[testing]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(4, 3, 2);
  RowMatrix<S> wrong = smooth_gradient<S>(X);
  wrong(2, 1) += S(0.1);
  const auto report = testing::check_gradient(smooth_function<S>, X, wrong);
  INFO(report.summary());
  CHECK_FALSE(report.passed);
  CHECK(report.worst_row == 2);
  CHECK(report.worst_col == 1);
  CHECK(report.max_error > 0.01);
  CHECK_THAT(report.summary(), ContainsSubstring("FAILED"));
}

TEST_CASE("check_gradient reports a NaN gradient as failed", "[testing]") {
  const RowMatrix<double> X = random_embeddings<double>(2, 2, 3);
  RowMatrix<double> g = smooth_gradient<double>(X);
  g(1, 0) = std::numeric_limits<double>::quiet_NaN();
  const auto report = testing::check_gradient(smooth_function<double>, X, g);
  CHECK_FALSE(report.passed);
  CHECK(report.worst_row == 1);
  CHECK(report.worst_col == 0);
}

TEST_CASE("check_gradient validates its arguments", "[testing][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(2, 3, 4);
  REQUIRE_INVALID_ARGUMENT(testing::check_gradient(smooth_function<double>, X, RowMatrix<double>(3, 2)),
                           "check_gradient", "'X' (2 x 3)", "'analytic' (3 x 2)");
  testing::GradientCheckOptions options;
  options.relative_step = -1;
  REQUIRE_INVALID_ARGUMENT(testing::check_gradient(smooth_function<double>, X, smooth_gradient<double>(X), options),
                           "relative_step");
}

}  // namespace test_gradient_check
