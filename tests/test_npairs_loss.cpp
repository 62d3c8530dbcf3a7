// npairs_loss against pytorch-metric-learning 2.8.1 itself
// (tests/reference/data/pml_npairs.txt), a brute-force loop written from PML's
// source, finite differences, the call forms and bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_distances.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/npairs_loss.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_npairs_loss {

namespace {

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

// PML: the ordered positive pairs row-major, np.unique(labels[a], return_index=True), then
// CrossEntropyLoss(sim_mat, arange) per pair.
template <class Metric>
Brute brute_npairs(const RowMatrix<double>& X, const Eigen::VectorXi& y, Reduction r, const std::vector<double>& w) {
  const Index n = X.rows();
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  std::map<int, std::pair<Index, Index>> first;  // label -> its first ordered positive pair
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p)
      if (a != p && y(a) == y(p) && !first.count(y(a))) first[y(a)] = {a, p};
  std::vector<Index> A, P;
  for (const auto& kv : first) {
    A.push_back(kv.second.first);
    P.push_back(kv.second.second);
  }
  const std::size_t K = A.size();
  double sum = 0;
  int nonzero = 0;
  for (std::size_t k = 0; k < K; ++k) {
    double m = -std::numeric_limits<double>::infinity();
    std::vector<double> logits(K);
    for (std::size_t j = 0; j < K; ++j) {
      logits[j] = pml_logit<Metric>(X.row(A[k]), X.row(P[j]));
      m = std::max(m, logits[j]);
    }
    double s = 0;
    for (const double l : logits) s += std::exp(l - m);
    const double term = (m + std::log(s) - logits[k]) * w[std::size_t(A[k])];
    out.terms[std::size_t(A[k])] = term;
    sum += term;
    if (term > 0) ++nonzero;
  }
  const int divisor = r == Reduction::Sum ? 1 : r == Reduction::Mean ? int(K) : nonzero;
  out.value = divisor > 0 ? sum / divisor : 0.0;
  return out;
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

// Code 0: NPairsLoss()'s default DotProductSimilarity() with its normalisation, i.e. Cosine.

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

void compare_with_pml(Worst worst[4]) {
  const ReferenceFile ref("pml_npairs.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    const int code = int(ref.scalar(c + "distance"));
    with_pml_metric(code, [&](const auto& metric) {
      INFO("case " << k << ", distance " << code);
      const LossResult<double> got = npairs_loss(X, labels, metric);
      const double want_value = ref.scalar(c + "value");
      const RowMatrix<double> want_grad = ref.matrix(c + "grad");
      const Vector<double> want_terms = ref.vector(c + "terms");
      REQUIRE(got.grad[0].rows() == want_grad.rows());
      REQUIRE(got.terms.size() == want_terms.size());
      const double ev = want_value == 0 ? std::abs(got.value) : pml_relative(got.value, want_value);
      const double eg = pml_relative_max(got.grad[0], want_grad);
      const double et = pml_relative_max(got.terms, want_terms);
      Worst& w = worst[code];
      w.value = std::max(w.value, ev);
      w.grad = std::max(w.grad, eg);
      w.terms = std::max(w.terms, et);
      CHECK(ev <= 1e-9);
      CHECK(eg <= 1e-9);
      CHECK(et <= 1e-9);
      if (want_value != 0) CHECK_FALSE(got.grad[0].isZero(0));
    });
  }
}

}  // namespace

TEST_CASE("npairs_loss reproduces pytorch-metric-learning 2.8.1 NPairsLoss", "[npairs][reference]") {
  Worst worst[4];
  compare_with_pml(worst);
}

// Prints the worst relative errors: build/tests/lifted_nca_tests "[.pml_report]" -s
TEST_CASE("npairs_loss: worst relative error against PML", "[.pml_report]") {
  Worst worst[4];
  compare_with_pml(worst);
  const char* names[4] = {"DotProductSimilarity() (default) as Cosine", "DotProductSimilarity(normalize_embeddings=False)",
                          "LpDistance(normalize_embeddings=False)", "LpDistance(normalize_embeddings=False, power=2)"};
  for (int code = 0; code < 4; ++code)
    std::printf("NPairsLoss %-50s value %.2e grad %.2e terms %.2e\n", names[code], worst[code].value, worst[code].grad,
                worst[code].terms);
}

#define NPAIRS_METRIC_CASES                                                                      \
  CONTRASTIVE_ALL_METRIC_CASES, (contrastive_test::Case<float, contrastive::DotProduct>), \
      (contrastive_test::Case<double, contrastive::DotProduct>)

TEMPLATE_TEST_CASE("npairs_loss matches a brute-force loop", "[npairs][brute]", NPAIRS_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 19;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 401, scale_of<M>());
  Eigen::VectorXi skewed(n);
  for (Index i = 0; i < n; ++i) skewed(i) = i < 9 ? 7 : int(i);  // one big class, the rest singletons
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(19, 1), random_labels(n, 5, 402), random_labels(n, 12, 403),
                                                skewed, Eigen::VectorXi::Zero(n)};
  const Vector<double> weights = random_embeddings<double>(n, 1, 404).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  const RowMatrix<double> Xd = X.template cast<double>();
  for (const Eigen::VectorXi& labels : layouts) {
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        NPairsOptions o;
        o.reduction = reducer_of(r, weights, weighted);
        const Brute expected = brute_npairs<M>(Xd, labels, r, weighted ? w : ones);
        const LossResult<S> got = npairs_loss<M>(X, labels, o);
        INFO("reduction " << int(r) << (weighted ? " weighted" : "") << ", labels " << labels.transpose());
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

TEMPLATE_TEST_CASE("npairs_loss gradient matches finite differences", "[npairs][gradient]", NPAIRS_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  if (!std::is_same<S, double>::value) return;
  const Index n = 13;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 411, scale_of<M>());
  const Vector<double> weights = random_embeddings<double>(n, 1, 412).cwiseAbs();
  Eigen::VectorXi twos(n);  // classes of two rows (and a singleton): every row in a pair
  for (Index i = 0; i < n; ++i) twos(i) = int(i / 2);
  for (const Eigen::VectorXi& labels : {random_labels(n, 4, 413), twos}) {
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        NPairsOptions o;
        o.reduction = reducer_of(r, weights, weighted);
        const LossResult<S> res = npairs_loss<M>(X, labels, o);
        auto f = [&](const RowMatrix<S>& x) { return npairs_loss<M>(x, labels, o, value_only); };
        const auto report = testing::check_gradient(f, X, res.grad[0]);
        INFO("reduction " << int(r) << (weighted ? " weighted" : "") << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(res.grad[0].isZero(0));
      }
    }
  }
}

TEST_CASE("npairs_loss: tiny workspaces tile the gathered rows and equal the whole block", "[npairs][engine]") {
  const Index n = 40;
  const RowMatrix<double> X = random_embeddings<double>(n, 5, 421);
  const Eigen::VectorXi labels = random_labels(n, 15, 422);
  const LossResult<double> whole = npairs_loss(X, labels);
  for (const std::size_t budget : {std::size_t(4096), std::size_t(1024), std::size_t(600)}) {
    NPairsOptions o;
    o.workspace_bytes = budget;
    const LossResult<double> tiled = npairs_loss(X, labels, o);
    INFO("workspace " << budget);
    CHECK(tiled.value == Approx(whole.value).epsilon(1e-13));
    CHECK(pml_relative_max(tiled.grad[0], whole.grad[0]) <= 1e-13);
  }
}

TEST_CASE("npairs_loss under Mahalanobis: dL/dX and dL/dL match finite differences", "[npairs][gradient]") {
  const RowMatrix<double> X = random_embeddings<double>(12, 4, 431, 0.5);
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 432, 0.8);
  const Eigen::VectorXi labels = random_labels(12, 4, 433);
  auto loss = [&](const RowMatrix<double>& x, const RowMatrix<double>& l) { return npairs_loss(x, labels, Mahalanobis(l)); };
  const LossResult<double> res = loss(X, L);
  REQUIRE(res.grad.size() == 2);
  const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return loss(x, L).value; }, X, res.grad[0]);
  const auto rl = testing::check_gradient([&](const RowMatrix<double>& l) { return loss(X, l).value; }, L, res.grad[1]);
  INFO(rx.summary() << "; " << rl.summary());
  CHECK(rx.passed);
  CHECK(rl.passed);
  const RowMatrix<double> Z = X * L.transpose();
  CHECK(res.value == Approx(npairs_loss<Euclidean>(Z, labels, value_only)).epsilon(1e-12));
}

TEMPLATE_TEST_CASE("npairs_loss: value-only and buffer forms agree with the full call", "[npairs]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 441);
  const Eigen::VectorXi labels = random_labels(10, 3, 442);
  const NPairsOptions options;
  const LossResult<S> full = npairs_loss(X, labels, options);
  CHECK(full.value > 0);
  CHECK(npairs_loss(X, labels, options, value_only) == full.value);
  std::vector<S> buffer(40, S(-7));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
  CHECK(npairs_loss(X, labels, options, grad) == full.value);
  CHECK(grad == full.grad[0]);
  CHECK(npairs_loss<Euclidean>(X, labels, Cosine{}, options, value_only) == full.value);  // the default metric
  std::vector<S> small(36, S(-7));
  Eigen::Map<RowMatrix<S>> wrong(small.data(), 9, 4);
  REQUIRE_INVALID_ARGUMENT(npairs_loss(X, labels, options, wrong), "npairs_loss", "grad");
  CHECK(std::all_of(small.begin(), small.end(), [](S x) { return x == S(-7); }));
}

TEST_CASE("npairs_loss: edge cases and bad input", "[npairs][edge][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 451);
  const LossResult<double> empty = npairs_loss(RowMatrix<double>(0, 3), Eigen::VectorXi(0));
  CHECK(empty.value == 0);
  CHECK(empty.grad[0].rows() == 0);
  // No class with two rows, and one pair only: loss 0, zero gradient.
  for (const Eigen::VectorXi& labels : {Eigen::VectorXi(Eigen::VectorXi::LinSpaced(6, 0, 5)),
                                        Eigen::VectorXi(Eigen::VectorXi::Zero(6))}) {
    const LossResult<double> r = npairs_loss(X, labels);
    CHECK(r.value == 0);
    CHECK(r.grad[0].isZero(0));
  }
  // Rows past a class's first two take no part.
  Eigen::VectorXi labels(6);
  labels << 0, 1, 0, 1, 0, 1;
  const LossResult<double> r = npairs_loss(X, labels);
  CHECK(r.grad[0].row(4).isZero(0));
  CHECK(r.grad[0].row(5).isZero(0));
  CHECK_FALSE(r.grad[0].row(0).isZero(0));
  NPairsOptions o;
  o.reduction = Mean(Eigen::VectorXd::Ones(5));
  REQUIRE_INVALID_ARGUMENT(npairs_loss(X, labels, o), "npairs_loss", "options.reduction");
  REQUIRE_INVALID_ARGUMENT(npairs_loss(X, Eigen::VectorXi(5)), "npairs_loss", "labels");
  RowMatrix<double> bad = X;
  bad(0, 0) = std::nan("");
  REQUIRE_INVALID_ARGUMENT(npairs_loss(bad, labels), "npairs_loss", "X");
}

}  // namespace test_npairs_loss
