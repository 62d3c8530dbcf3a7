// angular_loss against pytorch-metric-learning 2.8.1 itself
// (tests/reference/data/pml_angular.txt), a brute-force loop from PML's
// formula, central finite differences, chunked against unchunked scores, the
// call forms, edge cases and bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/angular_loss.hpp>
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

namespace test_angular_loss {

namespace {

const double pi = 3.14159265358979323846;

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

// PML AngularLoss.compute_loss written out: anchors and positives normalised,
// negatives raw; per ordered positive pair log(1 + sum_n exp(f)), then the reduction.
Brute brute_angular(const RowMatrix<double>& X, const Eigen::VectorXi& y, double alpha_degrees, Reduction reduction,
                    const std::vector<double>& w) {
  const Index n = X.rows();
  const double t2 = std::pow(std::tan(alpha_degrees * pi / 180), 2);
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  double sum = 0;
  long long count = 0, positive = 0;
  bool any_negative = false;
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) any_negative = any_negative || y(i) != y(j);
  if (!any_negative) return out;
  auto unit = [&](Index i) -> Eigen::RowVectorXd {
    const double norm = X.row(i).norm();
    return norm > 0 ? Eigen::RowVectorXd(X.row(i) / norm) : Eigen::RowVectorXd(X.row(i));
  };
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p) {
      if (p == a || y(p) != y(a)) continue;
      const Eigen::RowVectorXd ua = unit(a), up = unit(p);
      double inner = 1;  // the one
      for (Index q = 0; q < n; ++q) {
        if (y(q) == y(a)) continue;
        inner += std::exp(4 * t2 * (ua + up).dot(X.row(q)) - 2 * (1 + t2) * ua.dot(up));
      }
      const double term = w[std::size_t(a)] * std::log(inner);
      out.terms[std::size_t(a)] += term;
      sum += term;
      ++count;
      if (term > 0) ++positive;
    }
  const long long divisor = reduction == Reduction::Sum ? 1 : reduction == Reduction::Mean ? count : positive;
  out.value = divisor > 0 ? sum / double(divisor) : 0.0;
  return out;
}

Eigen::VectorXi with_singletons(Index n) {
  Eigen::VectorXi l(n);
  for (Index i = 0; i < n; ++i) l(i) = static_cast<int>(i % 3);
  l(2) = 100;
  l(5) = 101;
  return l;
}

// Rows of unequal norms (0.5 to 1.5): the negatives' norms matter.
template <class S>
RowMatrix<S> uneven_rows(Index n, Index d, unsigned seed) {
  RowMatrix<S> X = random_embeddings<S>(n, d, seed);
  const Vector<double> r = random_embeddings<double>(n, 1, seed + 1000);
  for (Index i = 0; i < n; ++i) {
    const S norm = X.row(i).norm();
    if (norm > S(0)) X.row(i) *= S((1.0 + 0.5 * std::tanh(r(i))) / double(norm));
  }
  return X;
}

double relative_max(const RowMatrix<double>& got, const RowMatrix<double>& want) {
  const double scale = want.size() ? want.cwiseAbs().maxCoeff() : 0.0;
  const double err = want.size() ? (got - want).cwiseAbs().maxCoeff() : 0.0;
  return scale == 0 ? err : err / scale;
}

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

Worst compare_with_pml() {
  const ReferenceFile ref("pml_angular.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  Worst w;
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    AngularOptions o;
    o.alpha = ref.scalar(c + "alpha");
    INFO("case " << k);
    const LossResult<double> got = angular_loss(X, labels, o);
    const double want = ref.scalar(c + "value");
    const double ev = want == 0 ? std::abs(got.value) : std::abs(got.value - want) / std::abs(want);
    const double eg = relative_max(got.grad[0], ref.matrix(c + "grad"));
    AngularOptions sum = o;
    sum.reduction = Reduction::Sum;
    const RowMatrix<double> terms = angular_loss(X, labels, sum).terms;
    const double et = relative_max(terms, RowMatrix<double>(ref.vector(c + "terms")));
    CHECK(ev <= 1e-9);
    CHECK(eg <= 1e-9);
    CHECK(et <= 1e-9);
    if (want != 0) CHECK_FALSE(got.grad[0].isZero(0));
    w.value = std::max(w.value, ev);
    w.grad = std::max(w.grad, eg);
    w.terms = std::max(w.terms, et);
  }
  return w;
}

const Reduction all_reductions[] = {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero};

}  // namespace

TEST_CASE("angular_loss reproduces pytorch-metric-learning 2.8.1 AngularLoss", "[angular][reference]") {
  compare_with_pml();
}

// Prints the worst relative errors: build/tests/pml_loss_tests "[.pml_report]" -s
TEST_CASE("angular_loss: worst relative error against PML", "[.pml_report]") {
  const Worst w = compare_with_pml();
  std::printf("AngularLoss         %-50s value %.2e grad %.2e terms %.2e\n",
              "LpDistance(p=2, power=1, normalize_embeddings=True)", w.value, w.grad, w.terms);
}

TEMPLATE_TEST_CASE("angular_loss matches a brute-force loop", "[angular][brute]", float, double) {
  using S = TestType;
  const Index n = 20;
  const RowMatrix<S> X = uneven_rows<S>(n, 6, 401);
  const RowMatrix<double> Xd = X.template cast<double>();
  const Vector<double> weights = random_embeddings<double>(n, 1, 402).cwiseAbs();
  const std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(5, 4), random_labels(n, 4, 403), with_singletons(n),
                                                Eigen::VectorXi::Zero(n)};
  for (const double alpha : {40.0, 25.0, 60.0}) {
    for (std::size_t layout = 0; layout < layouts.size(); ++layout) {
      for (const Reduction r : all_reductions) {
        for (const bool weighted : {false, true}) {
          AngularOptions o;
          o.alpha = alpha;
          o.reduction = weighted ? Reducer(r, weights) : Reducer(r);
          const Brute expected = brute_angular(Xd, layouts[layout], alpha, r, weighted ? w : ones);
          const LossResult<S> got = angular_loss(X, layouts[layout], o);
          INFO("alpha " << alpha << ", layout " << layout << ", reduction " << int(r) << (weighted ? " weighted" : ""));
          const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 1e-4;
          CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
          REQUIRE(got.terms.size() == n);
          for (Index i = 0; i < n; ++i)
            CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol));
          if (layout < 3) CHECK(expected.value > 0);
        }
      }
    }
  }
}

TEST_CASE("angular_loss gradient matches finite differences", "[angular][gradient]") {
  const Index n = 12;
  const Vector<double> weights = random_embeddings<double>(n, 1, 412).cwiseAbs();
  unsigned seed = 420;
  for (const Eigen::VectorXi& labels : {class_blocks(4, 3), with_singletons(n), random_labels(n, 3, 413)}) {
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        for (const double alpha : {40.0, 25.0}) {
          const RowMatrix<double> X = uneven_rows<double>(n, 5, ++seed);
          AngularOptions o;
          o.alpha = alpha;
          o.reduction = weighted ? Reducer(r, weights) : Reducer(r);
          const LossResult<double> res = angular_loss(X, labels, o);
          auto f = [&](const RowMatrix<double>& x) { return angular_loss(x, labels, o, value_only); };
          const auto report = testing::check_gradient(f, X, res.grad[0]);
          INFO("reduction " << int(r) << (weighted ? " weighted" : "") << ", alpha " << alpha << ": " << report.summary());
          CHECK(report.passed);
          CHECK_FALSE(res.grad[0].isZero(0));
          const std::vector<double> sw = weighted ? std::vector<double>(weights.data(), weights.data() + n)
                                                  : std::vector<double>(std::size_t(n), 1.0);
          auto g = [&](const RowMatrix<double>& x) { return brute_angular(x, labels, alpha, r, sw).value; };
          CHECK(testing::check_gradient(g, X, res.grad[0]).passed);
        }
      }
    }
  }
  // Through a Mahalanobis metric: the loss on the rows L x, with dL/dL.
  const RowMatrix<double> X = uneven_rows<double>(n, 4, 430);
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 431);
  const Eigen::VectorXi labels = class_blocks(4, 3);
  const LossResult<double> res = angular_loss(X, labels, Mahalanobis(L));
  const RowMatrix<double> LX = X * L.transpose();
  CHECK(res.value == Approx(angular_loss(LX, labels, value_only)).epsilon(1e-12));
  auto f = [&](const RowMatrix<double>& x) { return angular_loss(x, labels, Mahalanobis(L), value_only); };
  CHECK(testing::check_gradient(f, X, res.grad[0]).passed);
}

TEST_CASE("angular_loss with a class of 20 rows (380 ordered pairs) beside small ones", "[angular][engine]") {
  const Index n = 26;
  Eigen::VectorXi labels = Eigen::VectorXi::Zero(n);  // a class of 20: 380 ordered pairs
  for (Index i = 20; i < n; ++i) labels(i) = int(1 + i % 3);
  const RowMatrix<double> X = uneven_rows<double>(n, 4, 445);
  for (const Reduction r : all_reductions) {
    AngularOptions o;
    o.reduction = r;
    const LossResult<double> got = angular_loss(X, labels, o);
    const std::vector<double> ones(std::size_t(n), 1.0);
    CHECK(got.value == Approx(brute_angular(X, labels, o.alpha, r, ones).value).epsilon(1e-12));
    auto g = [&](const RowMatrix<double>& x) { return brute_angular(x, labels, o.alpha, r, ones).value; };
    const auto report = testing::check_gradient(g, X, got.grad[0]);
    INFO(report.summary());
    CHECK(report.passed);
  }
}

TEMPLATE_TEST_CASE("angular_loss in one-class panels and column chunks equals one panel", "[angular][engine]", float, double) {
  using S = TestType;
  const Index n = 37;
  const RowMatrix<S> X = uneven_rows<S>(n, 5, 441);
  for (const Eigen::VectorXi& labels : {random_labels(n, 3, 442), with_singletons(n)}) {
    AngularOptions whole;
    const LossResult<S> a = angular_loss(X, labels, whole);
    for (const std::size_t bytes : {sizeof(S), std::size_t(3 * n) * sizeof(S)}) {  // one column, a few columns a chunk
      AngularOptions chunked = whole;
      chunked.workspace_bytes = bytes;
      const LossResult<S> b = angular_loss(X, labels, chunked);
      const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
      CHECK(double(b.value) == Approx(double(a.value)).epsilon(tol));
      CHECK(relative_max(b.grad[0].template cast<double>(), a.grad[0].template cast<double>()) <= tol);
    }
  }
}

TEMPLATE_TEST_CASE("angular_loss value-only and buffer forms agree with the full call", "[angular]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = uneven_rows<S>(10, 4, 451);
  const Eigen::VectorXi labels = random_labels(10, 3, 452);
  const AngularOptions o;
  const LossResult<S> full = angular_loss(X, labels, o);
  CHECK(angular_loss(X, labels, o, value_only) == full.value);
  std::vector<S> buffer(40, S(-7));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
  CHECK(angular_loss(X, labels, o, grad) == full.value);
  CHECK(grad == full.grad[0]);
  CHECK(angular_loss(X, labels, AnyMetric::from_name("euclidean"), o, value_only) == full.value);
}

TEST_CASE("angular_loss edge cases and bad arguments", "[angular][validation]") {
  const RowMatrix<double> X = uneven_rows<double>(6, 3, 461);
  const Eigen::VectorXi labels = random_labels(6, 2, 462);
  const LossResult<double> one = angular_loss(X, Eigen::VectorXi::Zero(6));
  CHECK(one.value == 0);
  CHECK(one.grad[0].isZero(0));
  Eigen::VectorXi distinct(6);
  distinct << 0, 1, 2, 3, 4, 5;
  const LossResult<double> none = angular_loss(X, distinct);
  CHECK(none.value == 0);
  CHECK(none.grad[0].isZero(0));
  const LossResult<double> empty = angular_loss(RowMatrix<double>(0, 3), Eigen::VectorXi(0));
  CHECK(empty.value == 0);
  CHECK(empty.grad[0].rows() == 0);
  // A zero row: normalised to zero as F.normalize, finite everywhere.
  RowMatrix<double> zero = X;
  zero.row(0).setZero();
  const LossResult<double> z = angular_loss(zero, labels);
  CHECK(std::isfinite(z.value));
  CHECK(z.grad[0].allFinite());
  AngularOptions o;
  for (const double bad : {0.0, 90.0, -5.0, 135.0, std::numeric_limits<double>::infinity()}) {
    o.alpha = bad;
    REQUIRE_INVALID_ARGUMENT(angular_loss(X, labels, o), "angular_loss", "options.alpha", "(0, 90)");
  }
  REQUIRE_INVALID_ARGUMENT(angular_loss(X, labels, Cosine{}), "angular_loss", "metric", "Euclidean");
  REQUIRE_INVALID_ARGUMENT(angular_loss(X, labels, SquaredEuclidean{}, AngularOptions{}, value_only), "angular_loss",
                           "metric");
  REQUIRE_INVALID_ARGUMENT(angular_loss(X, labels, AnyMetric::from_name("dot_product")), "angular_loss", "metric");
  RowMatrix<double> nan = X;
  nan(2, 1) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(angular_loss(nan, labels), "angular_loss", "'X'");
}

}  // namespace test_angular_loss
