// vicreg_loss against pytorch-metric-learning 2.8.1 itself
// (tests/reference/data/pml_vicreg.txt), a plain loop over the formula,
// central finite differences away from the variance hinge's kink, the call
// forms, a Mahalanobis metric, edge cases and bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/vicreg_loss.hpp>
#include <contrastive/metrics/any_metric.hpp>
#include <contrastive/metrics/mahalanobis.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_vicreg_loss {

namespace {

struct Brute {
  double value = 0;
  double parts[4] = {0, 0, 0, 0};
  double closest_kink = 1e300;  // smallest |1 - std| over the columns of both views
};

// One view's variance and covariance parts, by loops.
void brute_view(const RowMatrix<double>& Z, double eps, double& variance, double& covariance, double& kink) {
  const Index n = Z.rows(), d = Z.cols();
  std::vector<double> mean(std::size_t(d), 0.0);
  for (Index k = 0; k < d; ++k) {
    for (Index i = 0; i < n; ++i) mean[std::size_t(k)] += Z(i, k);
    mean[std::size_t(k)] /= double(n);
  }
  auto cov = [&](Index a, Index b) {
    double s = 0;
    for (Index i = 0; i < n; ++i) s += (Z(i, a) - mean[std::size_t(a)]) * (Z(i, b) - mean[std::size_t(b)]);
    return s / double(n - 1);
  };
  variance = 0;
  covariance = 0;
  for (Index a = 0; a < d; ++a) {
    const double sd = std::sqrt(cov(a, a) + eps);
    kink = std::min(kink, std::abs(1 - sd));
    variance += std::max(0.0, 1 - sd) / 2;
    for (Index b = 0; b < d; ++b)
      if (a != b) covariance += cov(a, b) * cov(a, b);
  }
  variance /= double(d);
  covariance /= double(d);
}

Brute brute_vicreg(const RowMatrix<double>& X, const RowMatrix<double>& Y, const VICRegOptions& o) {
  Brute b;
  const Index n = X.rows(), d = X.cols();
  double inv = 0;
  for (Index i = 0; i < n; ++i) {
    double row = 0;
    for (Index k = 0; k < d; ++k) row += (X(i, k) - Y(i, k)) * (X(i, k) - Y(i, k));
    inv += row / double(d);
  }
  inv /= double(n);
  double vx, cx, vy, cy;
  brute_view(X, o.eps, vx, cx, b.closest_kink);
  brute_view(Y, o.eps, vy, cy, b.closest_kink);
  b.parts[0] = o.invariance_lambda * inv;
  b.parts[1] = o.variance_mu * vx;
  b.parts[2] = o.variance_mu * vy;
  b.parts[3] = o.covariance_v * (cx + cy);
  b.value = b.parts[0] + b.parts[1] + b.parts[2] + b.parts[3];
  return b;
}

// Columns of unequal spread (0.3 to 1.8): some standard deviations below 1, some above.
template <class S>
RowMatrix<S> spread_rows(Index n, Index d, unsigned seed) {
  RowMatrix<S> X = random_embeddings<S>(n, d, seed);
  const RowMatrix<S> g = random_embeddings<S>(n, d, seed + 1);
  for (Index k = 0; k < d; ++k) {
    const double scale = 0.3 + 1.5 * double(k) / double(std::max<Index>(d - 1, 1));
    // random_embeddings' rows are unit-length; rescale each column to a standard deviation of about `scale`.
    X.col(k) = g.col(k) * S(scale * std::sqrt(double(d)));
  }
  return X;
}

double relative_max(const RowMatrix<double>& got, const RowMatrix<double>& want) {
  const double scale = want.cwiseAbs().maxCoeff();
  const double err = (got - want).cwiseAbs().maxCoeff();
  return scale == 0 ? err : err / scale;
}

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

Worst compare_with_pml() {
  const ReferenceFile ref("pml_vicreg.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  Worst w;
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X"), Y = ref.matrix(c + "Y");
    VICRegOptions o;
    o.invariance_lambda = ref.scalar(c + "lambda");
    o.variance_mu = ref.scalar(c + "mu");
    o.covariance_v = ref.scalar(c + "nu");
    o.eps = ref.scalar(c + "eps");
    INFO("case " << k);
    const LossResult<double> got = vicreg_loss(X, Y, o);
    const double want = ref.scalar(c + "value");
    const double ev = std::abs(got.value - want) / std::abs(want);
    const double eg =
        std::max(relative_max(got.grad[0], ref.matrix(c + "grad")), relative_max(got.grad[1], ref.matrix(c + "grad2")));
    const double et = relative_max(RowMatrix<double>(got.terms), RowMatrix<double>(ref.vector(c + "terms")));
    CHECK(ev <= 1e-9);
    CHECK(eg <= 1e-9);
    CHECK(et <= 1e-9);
    w.value = std::max(w.value, ev);
    w.grad = std::max(w.grad, eg);
    w.terms = std::max(w.terms, et);
  }
  return w;
}

}  // namespace

TEST_CASE("vicreg_loss reproduces pytorch-metric-learning 2.8.1 VICRegLoss", "[vicreg][reference]") {
  compare_with_pml();
}

// Prints the worst relative errors: build/tests/pml_loss_tests "[.pml_report]" -s
TEST_CASE("vicreg_loss: worst relative error against PML", "[.pml_report]") {
  const Worst w = compare_with_pml();
  std::printf("VICRegLoss          %-50s value %.2e grad %.2e terms %.2e\n", "(no distance)", w.value, w.grad, w.terms);
}

TEMPLATE_TEST_CASE("vicreg_loss matches a plain loop", "[vicreg][brute]", float, double) {
  using S = TestType;
  for (const Index n : {Index(2), Index(9), Index(40)}) {
    const RowMatrix<S> X = spread_rows<S>(n, 6, 501 + unsigned(n));
    const RowMatrix<S> Y = X + S(0.3) * spread_rows<S>(n, 6, 601 + unsigned(n));
    for (const VICRegOptions& o : {VICRegOptions{}, VICRegOptions{1.0, 3.0, 0.5, 1e-2}, VICRegOptions{0.0, 0.0, 2.0, 1e-4}}) {
      const Brute b = brute_vicreg(X.template cast<double>(), Y.template cast<double>(), o);
      const LossResult<S> got = vicreg_loss(X, Y, o);
      INFO("N " << n << ", lambda " << o.invariance_lambda);
      const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
      CHECK(double(got.value) == Approx(b.value).epsilon(tol).margin(tol));
      REQUIRE(got.terms.size() == 4);
      for (int k = 0; k < 4; ++k) CHECK(double(got.terms(k)) == Approx(b.parts[k]).epsilon(tol).margin(tol));
      CHECK(vicreg_loss(X, Y, o, value_only) == got.value);
    }
  }
}

TEST_CASE("vicreg_loss gradient matches finite differences", "[vicreg][gradient]") {
  const double gap = 1e-3;  // keep every column's std away from the hinge's kink at 1
  int checked = 0;
  for (unsigned seed = 700; seed < 760 && checked < 6; ++seed) {
    const Index n = 6 + Index(seed % 5);
    const RowMatrix<double> X = spread_rows<double>(n, 5, seed);
    const RowMatrix<double> Y = X + 0.4 * spread_rows<double>(n, 5, seed + 100);
    for (const VICRegOptions& o : {VICRegOptions{}, VICRegOptions{1.0, 3.0, 0.5, 1e-2}}) {
      if (brute_vicreg(X, Y, o).closest_kink < gap) continue;
      ++checked;
      const LossResult<double> r = vicreg_loss(X, Y, o);
      auto fx = [&](const RowMatrix<double>& x) { return vicreg_loss(x, Y, o, value_only); };
      auto fy = [&](const RowMatrix<double>& y) { return vicreg_loss(X, y, o, value_only); };
      const auto rx = testing::check_gradient(fx, X, r.grad[0]);
      const auto ry = testing::check_gradient(fy, Y, r.grad[1]);
      INFO("seed " << seed << ": " << rx.summary() << " / " << ry.summary());
      CHECK(rx.passed);
      CHECK(ry.passed);
      // Against the plain loop's differences too: the gradient is of the formula.
      auto bx = [&](const RowMatrix<double>& x) { return brute_vicreg(x, Y, o).value; };
      CHECK(testing::check_gradient(bx, X, r.grad[0]).passed);
    }
  }
  CHECK(checked >= 6);
}

TEST_CASE("vicreg_loss call forms, Mahalanobis, edge cases and bad input", "[vicreg][validation]") {
  const RowMatrix<double> X = spread_rows<double>(7, 4, 801);
  const RowMatrix<double> Y = X + 0.2 * spread_rows<double>(7, 4, 802);
  const LossResult<double> full = vicreg_loss(X, Y);
  RowMatrix<double> g1(7, 4), g2(7, 4);
  CHECK(vicreg_loss(X, Y, VICRegOptions{}, g1, g2) == full.value);
  CHECK(g1 == full.grad[0]);
  CHECK(g2 == full.grad[1]);
  CHECK(vicreg_loss(X, Y, AnyMetric::from_name("squared_euclidean"), VICRegOptions{}, value_only) == full.value);
  // Mahalanobis(L, squared): the loss on the rows L z, and dL/dL.
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 803);
  const LossResult<double> m = vicreg_loss(X, Y, Mahalanobis(L, true));
  CHECK(m.value == Approx(vicreg_loss(RowMatrix<double>(X * L.transpose()), RowMatrix<double>(Y * L.transpose()),
                                      value_only))
                       .epsilon(1e-12));
  REQUIRE(m.grad.size() == 3);
  auto fx = [&](const RowMatrix<double>& x) { return vicreg_loss(x, Y, Mahalanobis(L, true), value_only); };
  CHECK(testing::check_gradient(fx, X, m.grad[0]).passed);
  auto fl = [&](const RowMatrix<double>& l) { return vicreg_loss(X, Y, Mahalanobis(l, true), value_only); };
  CHECK(testing::check_gradient(fl, L, m.grad[2]).passed);
  // Identical views: no invariance part.
  CHECK(vicreg_loss(X, X).terms(0) == 0);
  REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, RowMatrix<double>(Y.topRows(6))), "vicreg_loss", "Z2");
  REQUIRE_INVALID_ARGUMENT(vicreg_loss(RowMatrix<double>(X.topRows(1)), RowMatrix<double>(Y.topRows(1))), "vicreg_loss",
                           "'Z'", "at least 2");
  for (const double bad : {-1.0, std::numeric_limits<double>::quiet_NaN()}) {
    VICRegOptions o;
    o.invariance_lambda = bad;
    REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, Y, o), "vicreg_loss", "options.invariance_lambda");
    o = VICRegOptions{};
    o.variance_mu = bad;
    REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, Y, o), "vicreg_loss", "options.variance_mu");
    o = VICRegOptions{};
    o.covariance_v = bad;
    REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, Y, o), "vicreg_loss", "options.covariance_v");
  }
  VICRegOptions o;
  o.eps = 0;
  REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, Y, o), "vicreg_loss", "options.eps");
  REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, Y, Euclidean{}), "vicreg_loss", "metric", "SquaredEuclidean");
  REQUIRE_INVALID_ARGUMENT(vicreg_loss(X, Y, Cosine{}, VICRegOptions{}, value_only), "vicreg_loss", "metric");
  RowMatrix<double> nan = X;
  nan(1, 1) = std::numeric_limits<double>::infinity();
  REQUIRE_INVALID_ARGUMENT(vicreg_loss(nan, Y), "vicreg_loss", "'Z'");
}

}  // namespace test_vicreg_loss
