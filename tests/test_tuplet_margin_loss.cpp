// tuplet_margin_loss against pytorch-metric-learning 2.8.1 itself
// (tests/reference/data/pml_tuplet_margin.txt), a brute-force loop from PML's
// formula, central finite differences, row panels against the whole matrix,
// the call forms, edge cases and bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/tuplet_margin_loss.hpp>
#include <contrastive/metrics/any_metric.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_tuplet_margin_loss {

namespace {

const double pi = 3.14159265358979323846;

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

// PML TupletMarginLoss._compute_loss written out: per ordered positive pair,
// log(1 + sum_n exp(s (c_an - cos(acos(c_ap) - m)))), then the reduction.
Brute brute_tuplet(const RowMatrix<double>& X, const Eigen::VectorXi& y, double margin_degrees, double scale,
                   Reduction reduction, const std::vector<double>& w) {
  const Index n = X.rows();
  const double m = margin_degrees * pi / 180;
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  double sum = 0;
  long long count = 0, positive = 0;
  bool any_negative = false;
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) any_negative = any_negative || y(i) != y(j);
  if (!any_negative) return out;
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p) {
      if (p == a || y(p) != y(a)) continue;
      const double c = std::clamp(1 - reference_distance(Ref::Cosine, X.row(a), X.row(p)), -1.0, 1.0);
      const double shifted = std::cos(std::acos(c) - m);
      double inner = 1;  // the one
      for (Index q = 0; q < n; ++q) {
        if (y(q) == y(a)) continue;
        inner += std::exp(scale * ((1 - reference_distance(Ref::Cosine, X.row(a), X.row(q))) - shifted));
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

double relative_max(const RowMatrix<double>& got, const RowMatrix<double>& want) {
  const double scale = want.size() ? want.cwiseAbs().maxCoeff() : 0.0;
  const double err = want.size() ? (got - want).cwiseAbs().maxCoeff() : 0.0;
  return scale == 0 ? err : err / scale;
}

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

Worst compare_with_pml() {
  const ReferenceFile ref("pml_tuplet_margin.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  Worst w;
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    TupletMarginOptions o;
    o.margin = ref.scalar(c + "margin");
    o.scale = ref.scalar(c + "scale");
    INFO("case " << k);
    const LossResult<double> got = tuplet_margin_loss(X, labels, o);
    const double want = ref.scalar(c + "value");
    const double ev = want == 0 ? std::abs(got.value) : std::abs(got.value - want) / std::abs(want);
    const double eg = relative_max(got.grad[0], ref.matrix(c + "grad"));
    TupletMarginOptions sum = o;
    sum.reduction = Reduction::Sum;  // PML's unreduced per-pair losses, summed per anchor
    const RowMatrix<double> terms = tuplet_margin_loss(X, labels, sum).terms;
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

TEST_CASE("tuplet_margin_loss reproduces pytorch-metric-learning 2.8.1 TupletMarginLoss", "[tuplet][reference]") {
  compare_with_pml();
}

// Prints the worst relative errors: build/tests/pml_loss_tests "[.pml_report]" -s
TEST_CASE("tuplet_margin_loss: worst relative error against PML", "[.pml_report]") {
  const Worst w = compare_with_pml();
  std::printf("TupletMarginLoss    %-50s value %.2e grad %.2e terms %.2e\n", "CosineSimilarity()", w.value, w.grad,
              w.terms);
}

TEMPLATE_TEST_CASE("tuplet_margin_loss matches a brute-force loop", "[tuplet][brute]", float, double) {
  using S = TestType;
  const Index n = 20;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 301);
  const RowMatrix<double> Xd = X.template cast<double>();
  const Vector<double> weights = random_embeddings<double>(n, 1, 302).cwiseAbs();
  const std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(5, 4), random_labels(n, 4, 303), with_singletons(n),
                                                Eigen::VectorXi::Zero(n)};
  for (const double margin : {5.73, 20.0}) {
    const double scale = margin == 5.73 ? 64.0 : 8.0;
    for (std::size_t layout = 0; layout < layouts.size(); ++layout) {
      for (const Reduction r : all_reductions) {
        for (const bool weighted : {false, true}) {
          TupletMarginOptions o;
          o.margin = margin;
          o.scale = scale;
          o.reduction = weighted ? Reducer(r, weights) : Reducer(r);
          const Brute expected = brute_tuplet(Xd, layouts[layout], margin, scale, r, weighted ? w : ones);
          const LossResult<S> got = tuplet_margin_loss(X, layouts[layout], o);
          INFO("margin " << margin << ", layout " << layout << ", reduction " << int(r) << (weighted ? " weighted" : ""));
          const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 1e-4;
          CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
          REQUIRE(got.terms.size() == n);
          for (Index i = 0; i < n; ++i)
            CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol * scale));
          if (layout < 3) CHECK(expected.value > 0);
        }
      }
    }
  }
}

TEST_CASE("tuplet_margin_loss gradient matches finite differences", "[tuplet][gradient]") {
  const Index n = 12;
  const Vector<double> weights = random_embeddings<double>(n, 1, 312).cwiseAbs();
  unsigned seed = 320;
  for (const Eigen::VectorXi& labels : {class_blocks(4, 3), with_singletons(n), random_labels(n, 3, 313)}) {
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        for (const double scale : {64.0, 8.0}) {
          const RowMatrix<double> X = random_embeddings<double>(n, 5, ++seed);
          TupletMarginOptions o;
          o.scale = scale;
          o.margin = scale == 8.0 ? 30.0 : 5.73;
          o.reduction = weighted ? Reducer(r, weights) : Reducer(r);
          const LossResult<double> res = tuplet_margin_loss(X, labels, o);
          auto f = [&](const RowMatrix<double>& x) { return tuplet_margin_loss(x, labels, o, value_only); };
          const auto report = testing::check_gradient(f, X, res.grad[0]);
          INFO("reduction " << int(r) << (weighted ? " weighted" : "") << ", scale " << scale << ": " << report.summary());
          CHECK(report.passed);
          CHECK_FALSE(res.grad[0].isZero(0));
          // And the brute force's differences: the gradient is of PML's formula.
          const std::vector<double> sw = weighted ? std::vector<double>(weights.data(), weights.data() + n)
                                                  : std::vector<double>(std::size_t(n), 1.0);
          auto g = [&](const RowMatrix<double>& x) { return brute_tuplet(x, labels, o.margin, o.scale, r, sw).value; };
          CHECK(testing::check_gradient(g, X, res.grad[0]).passed);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("tuplet_margin_loss on row panels equals the whole matrix", "[tuplet][engine]", float, double) {
  using S = TestType;
  const Index n = 37;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 331);
  for (const Eigen::VectorXi& labels : {random_labels(n, 5, 332), with_singletons(n)}) {
    TupletMarginOptions whole;
    const LossResult<S> a = tuplet_margin_loss(X, labels, whole);
    TupletMarginOptions panels = whole;
    panels.workspace_bytes = std::size_t(4 * n) * sizeof(S) * 2;  // 4 anchors a panel
    const LossResult<S> b = tuplet_margin_loss(X, labels, panels);
    const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
    CHECK(double(b.value) == Approx(double(a.value)).epsilon(tol));
    CHECK(relative_max(b.grad[0].template cast<double>(), a.grad[0].template cast<double>()) <= tol);
    CHECK(tuplet_margin_loss(X, labels, panels, value_only) == Approx(a.value).epsilon(tol));
  }
}

TEMPLATE_TEST_CASE("tuplet_margin_loss value-only and buffer forms agree with the full call", "[tuplet]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 341);
  const Eigen::VectorXi labels = random_labels(10, 3, 342);
  const TupletMarginOptions o;
  const LossResult<S> full = tuplet_margin_loss(X, labels, o);
  CHECK(tuplet_margin_loss(X, labels, o, value_only) == full.value);
  std::vector<S> buffer(40, S(-7));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
  CHECK(tuplet_margin_loss(X, labels, o, grad) == full.value);
  CHECK(grad == full.grad[0]);
  CHECK(tuplet_margin_loss(X, labels, AnyMetric::from_name("cosine"), o, value_only) == full.value);
  CHECK(tuplet_margin_loss<Cosine>(X, labels) .value == full.value);
}

TEST_CASE("tuplet_margin_loss edge cases and bad arguments", "[tuplet][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 351);
  const Eigen::VectorXi labels = random_labels(6, 2, 352);
  const LossResult<double> one = tuplet_margin_loss(X, Eigen::VectorXi::Zero(6));  // no negatives
  CHECK(one.value == 0);
  CHECK(one.grad[0].isZero(0));
  Eigen::VectorXi distinct(6);
  distinct << 0, 1, 2, 3, 4, 5;
  const LossResult<double> none = tuplet_margin_loss(X, distinct);  // no positives
  CHECK(none.value == 0);
  CHECK(none.grad[0].isZero(0));
  const LossResult<double> empty = tuplet_margin_loss(RowMatrix<double>(0, 3), Eigen::VectorXi(0));
  CHECK(empty.value == 0);
  CHECK(empty.grad[0].rows() == 0);
  CHECK(tuplet_margin_loss(RowMatrix<double>(X.topRows(1)), Eigen::VectorXi::Zero(1), value_only) == 0);
  // A duplicated positive (angle 0): finite value and gradient.
  RowMatrix<double> dup = X;
  dup.row(1) = dup.row(0);
  Eigen::VectorXi pair_labels(6);
  pair_labels << 0, 0, 1, 1, 2, 2;
  const LossResult<double> d = tuplet_margin_loss(dup, pair_labels);
  CHECK(std::isfinite(d.value));
  CHECK(d.grad[0].allFinite());
  TupletMarginOptions o;
  for (const double bad : {0.0, 90.0, -5.0, 120.0, std::numeric_limits<double>::quiet_NaN()}) {
    o = TupletMarginOptions{};
    o.margin = bad;
    REQUIRE_INVALID_ARGUMENT(tuplet_margin_loss(X, labels, o), "tuplet_margin_loss", "options.margin", "(0, 90)");
  }
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::infinity()}) {
    o = TupletMarginOptions{};
    o.scale = bad;
    REQUIRE_INVALID_ARGUMENT(tuplet_margin_loss(X, labels, o), "tuplet_margin_loss", "options.scale");
  }
  REQUIRE_INVALID_ARGUMENT(tuplet_margin_loss(X, labels, Euclidean{}), "tuplet_margin_loss", "metric", "Cosine");
  REQUIRE_INVALID_ARGUMENT(tuplet_margin_loss(X, labels, DotProduct{}, TupletMarginOptions{}, value_only),
                           "tuplet_margin_loss", "metric");
  REQUIRE_INVALID_ARGUMENT(tuplet_margin_loss(X, labels, AnyMetric::from_name("squared_euclidean")),
                           "tuplet_margin_loss", "metric");
  RowMatrix<double> nan = X;
  nan(2, 1) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(tuplet_margin_loss(nan, labels), "tuplet_margin_loss", "'X'");
}

}  // namespace test_tuplet_margin_loss
