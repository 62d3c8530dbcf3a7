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
// The largest batch whose mean-loss gradients finite differences can still
// resolve to the default tolerance: 128 in double; in float a batch loss of
// 128 anchors rounds to a floor above 2e-2 of its (small) gradient entries.
template <class S>
constexpr Index checkable_batch() {
  return sizeof(S) == sizeof(double) ? 128 : 16;
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

// The failures a check must not miss, at a batch size where every entry of a
// mean loss is small (near 1e-3 in double): the sign of a whole gradient, a
// gradient left at zero, a gradient 10% too large, one entry of typical size
// wrong. In float only the smooth loss: a hinge's kinks within reach of the
// float step cannot be told from rounding (see the header), so a correct
// hinge gradient may come out unsettled or off by the tolerance.
// every_variant = false: the correct and the sign-flipped gradient only (a
// costly loss: the other variants are covered on the smooth one).
template <class S, class F>
void check_rejections(const char* loss, const F& f, const RowMatrix<S>& X, const RowMatrix<S>& grad,
                      bool every_variant = true) {
  INFO(loss);
  testing::GradientCheckOptions go;
  go.skip_unsettled = true;  // the wrong gradients are judged as leniently
  const auto check = [&](const RowMatrix<S>& g) { return testing::check_gradient(f, X, g, go); };
  const auto correct = check(grad);
  INFO("correct: " << correct.summary());
  CHECK(correct.passed);
  CHECK(correct.unsettled <= X.size() / 10);

  const auto flipped = check(-grad);
  INFO("sign flipped: " << flipped.summary());
  CHECK_FALSE(flipped.passed);
  CHECK(flipped.norm_error > 1.5);
  if (!every_variant) return;

  const auto zero = check(RowMatrix<S>::Zero(X.rows(), X.cols()));
  INFO("all zero: " << zero.summary());
  CHECK_FALSE(zero.passed);
  CHECK(zero.norm_error == 1.0);

  const auto scaled = check(S(1.1) * grad);
  INFO("scaled by 1.1: " << scaled.summary());
  CHECK_FALSE(scaled.passed);

  RowMatrix<S> one_wrong = grad;
  Index row = 0, col = 0;
  const S typical = std::sqrt(grad.squaredNorm() / S(grad.size()));
  (grad.array().abs() - typical).abs().minCoeff(&row, &col);
  one_wrong(row, col) = 0;
  const auto one = check(one_wrong);
  INFO("entry (" << row << ", " << col << ") zeroed: " << one.summary());
  CHECK_FALSE(one.passed);
  CHECK(one.worst_row == row);
  CHECK(one.worst_col == col);
}

TEMPLATE_TEST_CASE("check_gradient rejects wrong loss gradients whose entries are all small", "[testing]", float,
                   double) {
  using S = TestType;
  const Index n = checkable_batch<S>();
  const Eigen::VectorXi labels = random_labels(n, int(n / 8), 5);
  const RowMatrix<S> X = random_embeddings<S>(n, 4, 6);
  const LossResult<S> nt = ntxent_loss(X, labels, 0.1);
  // Typical entries far below the absolute floor of 1 that hid such errors.
  const auto rms = [](const RowMatrix<S>& g) { return std::sqrt(g.squaredNorm() / S(g.size())); };
  REQUIRE(rms(nt.grad[0]) < S(sizeof(S) == sizeof(double) ? 0.05 : 0.5));
  check_rejections<S>(
      "ntxent", [&](const RowMatrix<S>& x) { return ntxent_loss(x, labels, 0.1, value_only); }, X, nt.grad[0]);
  if (sizeof(S) == sizeof(double)) {
    TripletOptions o;
    o.margin = 0.5;
    const LossResult<S> all = batch_all_triplet_loss(X, labels, o);
    REQUIRE(rms(all.grad[0]) < S(0.01));
    check_rejections<S>(
        "batch_all", [&](const RowMatrix<S>& x) { return batch_all_triplet_loss(x, labels, o, value_only); }, X,
        all.grad[0], /*every_variant=*/false);
  }
}

// Where rounding hides errors of the tolerance's size, the check says so
// instead of passing whatever it is given.
TEST_CASE("check_gradient in float at 128 anchors is inconclusive, never a pass", "[testing]") {
  const Index n = 128;
  const Eigen::VectorXi labels = random_labels(n, 16, 5);
  const RowMatrix<float> X = random_embeddings<float>(n, 4, 6);
  TripletOptions o;
  o.margin = 0.5;
  const LossResult<float> all = batch_all_triplet_loss(X, labels, o);
  const auto f = [&](const RowMatrix<float>& x) { return batch_all_triplet_loss(x, labels, o, value_only); };
  const auto correct = testing::check_gradient(f, X, all.grad[0]);
  INFO(correct.summary());
  CHECK(correct.inconclusive);
  CHECK(correct.resolution > correct.tolerance);
  CHECK_FALSE(correct.passed);
  CHECK_THAT(correct.summary(), ContainsSubstring("INCONCLUSIVE"));
  const RowMatrix<float> flipped = -all.grad[0];
  CHECK_FALSE(testing::check_gradient(f, X, flipped).passed);
  // The same batch in double passes ("rejects wrong loss gradients ..." above).
}

// A semi-hard selection changes wherever two distances of an anchor's row
// cross; at N = 128 the first step crosses such a boundary for some entries.
// The halving step finds a stencil inside the smooth piece.
TEMPLATE_TEST_CASE("check_gradient passes a correct batch-semihard gradient on random data", "[testing]", float,
                   double) {
  using S = TestType;
  const Index n = checkable_batch<S>();
  const Eigen::VectorXi labels = random_labels(n, int(n / 8), 7);
  const RowMatrix<S> X = random_embeddings<S>(n, 4, 8);
  TripletOptions o;
  o.margin = 0.5;
  const LossResult<S> r = batch_semihard_triplet_loss(X, labels, o);
  const auto f = [&](const RowMatrix<S>& x) { return batch_semihard_triplet_loss(x, labels, o, value_only); };
  testing::GradientCheckOptions go;
  go.skip_unsettled = true;
  const auto report = testing::check_gradient(f, X, r.grad[0], go);
  INFO(report.summary());
  CHECK(report.passed);
  CHECK(report.unsettled <= X.size() / 10);
  RowMatrix<S> flipped = r.grad[0];
  flipped.row(3) *= S(-1);
  const auto wrong = testing::check_gradient(f, X, flipped, go);
  INFO(wrong.summary());
  CHECK_FALSE(wrong.passed);
}

TEMPLATE_TEST_CASE("check_gradient reports an entry at a kink as unsettled", "[testing]", float, double) {
  using S = TestType;
  // f = sum |x_ij|: not differentiable where an entry is 0.
  RowMatrix<S> X = random_embeddings<S>(3, 2, 9);
  X(1, 1) = 0;
  const auto f = [](const RowMatrix<S>& x) { return x.array().abs().sum(); };
  const RowMatrix<S> g = X.array().sign();
  const auto report = testing::check_gradient(f, X, g);
  INFO(report.summary());
  CHECK_FALSE(report.passed);
  CHECK(report.unsettled == 1);
  CHECK(report.first_unsettled_row == 1);
  CHECK(report.first_unsettled_col == 1);
  CHECK_THAT(report.summary(), ContainsSubstring("did not settle"));
  testing::GradientCheckOptions skip;
  skip.skip_unsettled = true;
  const auto skipped = testing::check_gradient(f, X, g, skip);
  INFO(skipped.summary());
  CHECK(skipped.passed);
  CHECK(skipped.unsettled == 1);
  CHECK(skipped.max_error < skipped.tolerance);
}

TEST_CASE("check_gradient validates its arguments", "[testing][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(2, 3, 4);
  REQUIRE_INVALID_ARGUMENT(testing::check_gradient(smooth_function<double>, X, RowMatrix<double>(3, 2)),
                           "check_gradient", "'X' (2 x 3)", "'analytic' (3 x 2)");
  testing::GradientCheckOptions options;
  options.relative_step = -1;
  REQUIRE_INVALID_ARGUMENT(testing::check_gradient(smooth_function<double>, X, smooth_gradient<double>(X), options),
                           "relative_step");
  options.relative_step = 0;
  options.tolerance = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(testing::check_gradient(smooth_function<double>, X, smooth_gradient<double>(X), options),
                           "tolerance");
  options.tolerance = 0;
  options.max_halvings = -1;
  REQUIRE_INVALID_ARGUMENT(testing::check_gradient(smooth_function<double>, X, smooth_gradient<double>(X), options),
                           "max_halvings");
}

}  // namespace test_gradient_check
