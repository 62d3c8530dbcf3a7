// nca_loss against pytorch-metric-learning 2.8.1 itself
// (tests/reference/data/pml_nca.txt), a brute-force loop written from PML's
// source, finite differences, the call forms and bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_distances.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/nca_loss.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_nca_loss {

namespace {

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

// NCALoss.nca_computation: softmax over the row (own entry -inf), same-class mass, rows with mass 0 dropped.
template <class Metric>
Brute brute_nca(const RowMatrix<double>& X, const Eigen::VectorXi& y, const NCAOptions& o, Reduction r,
                const std::vector<double>& w) {
  const Index n = X.rows();
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  if (n <= 1) return out;
  double sum = 0;
  int count = 0, nonzero = 0;
  for (Index i = 0; i < n; ++i) {
    std::vector<double> logits(std::size_t(n), -std::numeric_limits<double>::infinity());
    double m = -std::numeric_limits<double>::infinity();
    for (Index j = 0; j < n; ++j) {
      if (j == i) continue;
      logits[std::size_t(j)] = o.softmax_scale * pml_logit<Metric>(X.row(i), X.row(j));
      m = std::max(m, logits[std::size_t(j)]);
    }
    double total = 0, same = 0;
    for (Index j = 0; j < n; ++j) total += std::exp(logits[std::size_t(j)] - m);
    for (Index j = 0; j < n; ++j)
      if (j != i && y(j) == y(i)) same += std::exp(logits[std::size_t(j)] - m) / total;
    if (same == 0) continue;
    const double term = -std::log(same) * w[std::size_t(i)];
    out.terms[std::size_t(i)] = term;
    sum += term;
    ++count;
    if (term > 0) ++nonzero;
  }
  const int divisor = r == Reduction::Sum ? 1 : r == Reduction::Mean ? count : nonzero;
  out.value = divisor > 0 ? sum / divisor : 0.0;
  return out;
}

Eigen::VectorXi with_singletons(Index n) {
  Eigen::VectorXi l(n);
  for (Index i = 0; i < n; ++i) l(i) = static_cast<int>(i % 3);
  l(2) = 100;
  l(5) = 101;
  return l;
}

const Reduction all_reductions[] = {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero};

Reducer reducer_of(Reduction r, const Vector<double>& w, bool weighted) {
  if (!weighted) return r;
  return Reducer(r, w);
}

template <class Metric>
double scale_of() {
  return std::is_same<Metric, Cosine>::value ? 1.0 : std::is_same<Metric, DotProduct>::value ? 0.5 : 0.4;
}

// Code 4: PML's default LpDistance(power=2) with its normalisation = Cosine at twice the scale.
template <class F>
void with_metric_code(int code, F&& f) {
  if (code == 4) return f(Cosine{}, 2.0);
  with_pml_metric(code, [&](const auto& metric) { f(metric, 1.0); });
}

// |got - want| relative to the largest |want|; where PML's value is the rounding noise of an
// exact 0 (one class: every row's softmax mass is 1, PML's -log(1 - ulp) ~ 1e-16) the scale is
// floored at 1e-6, so the allowed error stays 1e-15 absolute.
template <class A, class B>
double relative_max(const A& got, const B& want) {
  const double scale = want.size() ? want.cwiseAbs().maxCoeff() : 0.0;
  const double err = want.size() ? (got - want).cwiseAbs().maxCoeff() : 0.0;
  return err / std::max(scale, 1e-6);
}

double relative_floored(double got, double want) { return std::abs(got - want) / std::max(std::abs(want), 1e-6); }

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

// worst[code][1]: the single-class cases, where PML's value is the rounding noise of an exact 0.
void compare_with_pml(Worst worst[5][2]) {
  const ReferenceFile ref("pml_nca.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    const int code = int(ref.scalar(c + "distance"));
    with_metric_code(code, [&](const auto& metric, double factor) {
      INFO("case " << k << ", distance " << code);
      NCAOptions o;
      o.softmax_scale = factor * ref.scalar(c + "softmax_scale");
      const LossResult<double> got = nca_loss(X, labels, metric, o);
      const double want_value = ref.scalar(c + "value");
      const RowMatrix<double> want_grad = ref.matrix(c + "grad");
      const Vector<double> want_terms = ref.vector(c + "terms");
      REQUIRE(got.grad[0].rows() == want_grad.rows());
      REQUIRE(got.terms.size() == want_terms.size());
      const double ev = relative_floored(got.value, want_value);
      const double eg = relative_max(got.grad[0], want_grad);
      const double et = relative_max(got.terms, want_terms);
      Worst& w = worst[code][std::abs(want_value) > 1e-6 ? 0 : 1];
      w.value = std::max(w.value, ev);
      w.grad = std::max(w.grad, eg);
      w.terms = std::max(w.terms, et);
      CHECK(ev <= 1e-9);
      CHECK(eg <= 1e-9);
      CHECK(et <= 1e-9);
      if (std::abs(want_value) > 1e-6) CHECK_FALSE(got.grad[0].isZero(0));
    });
  }
}

}  // namespace

TEST_CASE("nca_loss reproduces pytorch-metric-learning 2.8.1 NCALoss", "[nca][reference]") {
  Worst worst[5][2];
  compare_with_pml(worst);
}

// Prints the worst relative errors: build/tests/lifted_nca_tests "[.pml_report]" -s
TEST_CASE("nca_loss: worst relative error against PML", "[.pml_report]") {
  Worst worst[5][2];
  compare_with_pml(worst);
  const char* names[5] = {"CosineSimilarity()", "DotProductSimilarity(normalize_embeddings=False)",
                          "LpDistance(normalize_embeddings=False)", "LpDistance(normalize_embeddings=False, power=2)",
                          "LpDistance(power=2) (default) as Cosine, 2 x scale"};
  for (int tiny = 0; tiny < 2; ++tiny)
    for (int code = 0; code < 5; ++code)
      std::printf("NCALoss %-52s %-22s value %.2e grad %.2e terms %.2e\n", names[code],
                  tiny ? "one class (err / 1e-6)" : "other batches", worst[code][tiny].value, worst[code][tiny].grad,
                  worst[code][tiny].terms);
}

#define NCA_METRIC_CASES                                                                         \
  CONTRASTIVE_ALL_METRIC_CASES, (contrastive_test::Case<float, contrastive::DotProduct>), \
      (contrastive_test::Case<double, contrastive::DotProduct>)

TEMPLATE_TEST_CASE("nca_loss matches a brute-force loop", "[nca][brute]", NCA_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 19;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 301, scale_of<M>());
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(19, 1), random_labels(n, 5, 302), with_singletons(n),
                                                Eigen::VectorXi::Zero(n), Eigen::VectorXi::LinSpaced(n, 0, int(n) - 1)};
  const Vector<double> weights = random_embeddings<double>(n, 1, 303).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  const RowMatrix<double> Xd = X.template cast<double>();
  for (const double scale : {1.0, 5.0}) {
    for (const Eigen::VectorXi& labels : layouts) {
      for (const Reduction r : all_reductions) {
        for (const bool weighted : {false, true}) {
          NCAOptions o;
          o.softmax_scale = scale;
          o.reduction = reducer_of(r, weights, weighted);
          const Brute expected = brute_nca<M>(Xd, labels, o, r, weighted ? w : ones);
          const LossResult<S> got = nca_loss<M>(X, labels, o);
          INFO("scale " << scale << ", reduction " << int(r) << (weighted ? " weighted" : "") << ", labels "
                        << labels.transpose());
          const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 2e-5;
          CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
          REQUIRE(got.terms.size() == n);
          for (Index i = 0; i < n; ++i)
            CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol));
          if (expected.value == 0) CHECK(got.grad[0].isZero(0));
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("nca_loss gradient matches finite differences", "[nca][gradient]", NCA_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  if (!std::is_same<S, double>::value) return;
  const Index n = 12;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 311, scale_of<M>());
  const Vector<double> weights = random_embeddings<double>(n, 1, 312).cwiseAbs();
  for (const Eigen::VectorXi& labels : {with_singletons(n), random_labels(n, 3, 313)}) {
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        NCAOptions o;
        o.softmax_scale = 3;
        o.reduction = reducer_of(r, weights, weighted);
        const LossResult<S> res = nca_loss<M>(X, labels, o);
        auto f = [&](const RowMatrix<S>& x) { return nca_loss<M>(x, labels, o, value_only); };
        const auto report = testing::check_gradient(f, X, res.grad[0]);
        INFO("reduction " << int(r) << (weighted ? " weighted" : "") << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(res.grad[0].isZero(0));
      }
    }
  }
}

TEST_CASE("nca_loss under Mahalanobis: dL/dX and dL/dL match finite differences", "[nca][gradient]") {
  const RowMatrix<double> X = random_embeddings<double>(10, 4, 321, 0.5);
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 322, 0.8);
  const Eigen::VectorXi labels = with_singletons(10);
  auto loss = [&](const RowMatrix<double>& x, const RowMatrix<double>& l) { return nca_loss(x, labels, Mahalanobis(l)); };
  const LossResult<double> res = loss(X, L);
  REQUIRE(res.grad.size() == 2);
  const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return loss(x, L).value; }, X, res.grad[0]);
  const auto rl = testing::check_gradient([&](const RowMatrix<double>& l) { return loss(X, l).value; }, L, res.grad[1]);
  INFO(rx.summary() << "; " << rl.summary());
  CHECK(rx.passed);
  CHECK(rl.passed);
  const RowMatrix<double> Z = X * L.transpose();
  CHECK(res.value == Approx(nca_loss<Euclidean>(Z, labels, value_only)).epsilon(1e-12));
}

TEMPLATE_TEST_CASE("nca_loss: value-only and buffer forms agree with the full call", "[nca]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 331, 0.4);
  const Eigen::VectorXi labels = random_labels(10, 3, 332);
  const NCAOptions options;
  const LossResult<S> full = nca_loss(X, labels, options);
  CHECK(full.value > 0);
  CHECK(nca_loss(X, labels, options, value_only) == full.value);
  std::vector<S> buffer(40, S(-7));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
  CHECK(nca_loss(X, labels, options, grad) == full.value);
  CHECK(grad == full.grad[0]);
  CHECK(nca_loss<Cosine>(X, labels, SquaredEuclidean{}, options, value_only) == full.value);  // the default metric
  std::vector<S> small(36, S(-7));
  Eigen::Map<RowMatrix<S>> wrong(small.data(), 9, 4);
  REQUIRE_INVALID_ARGUMENT(nca_loss(X, labels, options, wrong), "nca_loss", "grad");
  CHECK(std::all_of(small.begin(), small.end(), [](S x) { return x == S(-7); }));
}

TEST_CASE("nca_loss: edge cases", "[nca][edge]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 341, 0.4);
  const LossResult<double> empty = nca_loss(RowMatrix<double>(0, 3), Eigen::VectorXi(0));
  CHECK(empty.value == 0);
  CHECK(empty.grad[0].rows() == 0);
  const LossResult<double> one = nca_loss(RowMatrix<double>(X.topRows(1)), Eigen::VectorXi::Zero(1));
  CHECK(one.value == 0);
  CHECK(one.grad[0].isZero(0));
  // Distinct labels: every row dropped.
  const LossResult<double> d = nca_loss(X, Eigen::VectorXi(Eigen::VectorXi::LinSpaced(6, 0, 5)));
  CHECK(d.value == 0);
  CHECK(d.grad[0].isZero(0));
  // One class: every row's mass is 1, loss 0.
  CHECK(nca_loss(X, Eigen::VectorXi(Eigen::VectorXi::Zero(6)), value_only) == 0);
  // A row whose same-class mass underflows is dropped (PML keeps exp != 0); the others stay.
  RowMatrix<double> F = X;
  F.row(0) = X.row(1) + RowMatrix<double>::Constant(1, 3, 40.0);  // row 0: its class mate 1 is far, row 3 near
  Eigen::VectorXi y(6);
  y << 0, 0, 1, 2, 1, 2;
  F.row(3) = F.row(0) * 1.0001;
  NCAOptions o;
  o.softmax_scale = 10;
  const LossResult<double> u = nca_loss(F, y, o);
  CHECK(u.terms(0) == 0);  // dropped
  CHECK(u.terms(1) == 0);  // dropped too: its only class mate is far
  CHECK(u.terms(2) > 0);
  CHECK(std::isfinite(u.value));
  CHECK(u.grad[0].allFinite());
  // Large scales in float stay finite (every exponent shifted).
  o.softmax_scale = 1000;
  const LossResult<float> f = nca_loss(RowMatrix<float>(X.cast<float>()), Eigen::VectorXi(Eigen::VectorXi::LinSpaced(6, 0, 2)), o);
  CHECK(std::isfinite(f.value));
  CHECK(f.grad[0].allFinite());
}

TEST_CASE("nca_loss rejects bad arguments", "[nca][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 351);
  const Eigen::VectorXi labels = random_labels(6, 2, 352);
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
    NCAOptions o;
    o.softmax_scale = bad;
    REQUIRE_INVALID_ARGUMENT(nca_loss(X, labels, o), "nca_loss", "options.softmax_scale");
  }
  NCAOptions o;
  o.softmax_scale = 1e300;
  REQUIRE_INVALID_ARGUMENT(nca_loss(RowMatrix<float>(X.cast<float>()), labels, o), "nca_loss", "options.softmax_scale");
  o = NCAOptions{};
  o.reduction = Mean(Eigen::VectorXd::Ones(5));
  REQUIRE_INVALID_ARGUMENT(nca_loss(X, labels, o), "nca_loss", "options.reduction");
  REQUIRE_INVALID_ARGUMENT(nca_loss(X, Eigen::VectorXi(5)), "nca_loss", "labels");
}

}  // namespace test_nca_loss
