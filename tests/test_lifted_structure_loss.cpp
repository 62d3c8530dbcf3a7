// lifted_structure_loss and generalized_lifted_structure_loss against
// pytorch-metric-learning 2.8.1 itself (tests/reference/data/pml_lifted.txt),
// brute-force loops written from PML's source, finite differences, the call
// forms and bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_distances.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/lifted_structure_loss.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_lifted_structure_loss {

namespace {

double log_sum_exp(const std::vector<double>& v) {
  if (v.empty()) return 0;  // PML's logsumexp on an all-false mask
  const double m = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (const double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

double reduce(Reduction r, double sum, int count, int nonzero) {
  const int divisor = r == Reduction::Sum ? 1 : r == Reduction::Mean ? count : nonzero;
  return divisor > 0 ? sum / divisor : 0.0;
}

// LiftedStructureLoss._compute_loss on PML's get_all_pairs_indices, then the reduction.
template <class Metric>
Brute brute_lifted(const RowMatrix<double>& X, const Eigen::VectorXi& y, const LiftedStructureOptions& o, Reduction r,
                   const std::vector<double>& w) {
  const Index n = X.rows();
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  bool any_negative = false;
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) any_negative = any_negative || y(i) != y(j);
  if (!any_negative) return out;
  double sum = 0;
  int count = 0, nonzero = 0;
  for (Index a = 0; a < n; ++a) {
    for (Index p = 0; p < n; ++p) {
      if (p == a || y(p) != y(a)) continue;
      std::vector<double> neg;  // the ordered negative pairs whose anchor is a or p
      for (Index a2 = 0; a2 < n; ++a2) {
        if (a2 != a && a2 != p) continue;
        for (Index nn = 0; nn < n; ++nn) {
          if (y(nn) != y(a2)) neg.push_back(pml_margin<Metric>(o.neg_margin, pml_mat<Metric>(X.row(a2), X.row(nn))));
        }
      }
      const double z = log_sum_exp(neg) + pml_margin<Metric>(pml_mat<Metric>(X.row(a), X.row(p)), o.pos_margin);
      const double term = std::pow(std::max(z, 0.0), 2) / 2 * w[std::size_t(a)];
      out.terms[std::size_t(a)] += term;
      sum += term;
      ++count;
      if (term > 0) ++nonzero;
    }
  }
  out.value = reduce(r, sum, count, nonzero);
  return out;
}

// GeneralizedLiftedStructureLoss._compute_loss, then the reduction over all rows.
template <class Metric>
Brute brute_generalized(const RowMatrix<double>& X, const Eigen::VectorXi& y, const LiftedStructureOptions& o,
                        Reduction r, const std::vector<double>& w) {
  const Index n = X.rows();
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  double sum = 0;
  int nonzero = 0;
  for (Index i = 0; i < n; ++i) {
    std::vector<double> pos, neg;
    for (Index j = 0; j < n; ++j) {
      const double mat = pml_mat<Metric>(X.row(i), X.row(j));
      if (y(i) == y(j)) {
        if (i != j) pos.push_back(pml_margin<Metric>(mat, o.pos_margin));
      } else {
        neg.push_back(pml_margin<Metric>(o.neg_margin, mat));
      }
    }
    const double term = std::max(log_sum_exp(pos) + log_sum_exp(neg), 0.0) * w[std::size_t(i)];
    out.terms[std::size_t(i)] = term;
    sum += term;
    if (term > 0) ++nonzero;
  }
  out.value = reduce(r, sum, int(n), nonzero);
  return out;
}

template <class Metric, class S, class... Tail>
auto call(bool generalized, const RowMatrix<S>& X, const Eigen::VectorXi& y, const Tail&... tail) {
  return generalized ? generalized_lifted_structure_loss<Metric>(X, y, tail...)
                     : lifted_structure_loss<Metric>(X, y, tail...);
}

template <class Metric>
Brute brute(bool generalized, const RowMatrix<double>& X, const Eigen::VectorXi& y, const LiftedStructureOptions& o,
            Reduction r, const std::vector<double>& w) {
  return generalized ? brute_generalized<Metric>(X, y, o, r, w) : brute_lifted<Metric>(X, y, o, r, w);
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


struct Worst {
  double value = 0, grad = 0, terms = 0;
};

// Every case of pml_lifted.txt; the worst errors per distance code and loss.
void compare_with_pml(Worst worst[4][2]) {
  const ReferenceFile ref("pml_lifted.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    const int code = int(ref.scalar(c + "distance"));
    const bool generalized = ref.scalar(c + "generalized") != 0;
    LiftedStructureOptions o;
    o.neg_margin = ref.scalar(c + "neg_margin");
    o.pos_margin = ref.scalar(c + "pos_margin");
    with_pml_metric(code, [&](const auto& metric) {
      using M = std::decay_t<decltype(metric)>;
      INFO("case " << k << ", distance " << code << (generalized ? ", generalized" : ", lifted"));
      const LossResult<double> got = call<M>(generalized, X, labels, o);
      const double want_value = ref.scalar(c + "value");
      const RowMatrix<double> want_grad = ref.matrix(c + "grad");
      const Vector<double> want_terms = ref.vector(c + "terms");
      Worst& w = worst[code][generalized ? 1 : 0];
      const double ev = want_value == 0 ? std::abs(got.value) : pml_relative(got.value, want_value);
      REQUIRE(got.grad[0].rows() == want_grad.rows());
      REQUIRE(got.terms.size() == want_terms.size());
      const double eg = pml_relative_max(got.grad[0], want_grad);
      const double et = pml_relative_max(got.terms, want_terms);
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

TEST_CASE("lifted_structure_loss and generalized_lifted_structure_loss reproduce pytorch-metric-learning 2.8.1",
          "[lifted][reference]") {
  Worst worst[4][2];
  compare_with_pml(worst);
}

// Prints the worst relative errors: build/tests/lifted_nca_tests "[.pml_report]" -s
TEST_CASE("lifted_structure_loss: worst relative error against PML", "[.pml_report]") {
  Worst worst[4][2];
  compare_with_pml(worst);
  const char* names[4] = {"CosineSimilarity()", "DotProductSimilarity(normalize_embeddings=False)",
                          "LpDistance(normalize_embeddings=False)", "LpDistance(normalize_embeddings=False, power=2)"};
  for (int g = 0; g < 2; ++g)
    for (int code = 0; code < 4; ++code)
      std::printf("%-31s %-50s value %.2e grad %.2e terms %.2e\n",
                  g ? "GeneralizedLiftedStructureLoss" : "LiftedStructureLoss", names[code], worst[code][g].value,
                  worst[code][g].grad, worst[code][g].terms);
}

#define LIFTED_METRIC_CASES                                                                      \
  CONTRASTIVE_ALL_METRIC_CASES, (contrastive_test::Case<float, contrastive::DotProduct>), \
      (contrastive_test::Case<double, contrastive::DotProduct>)

TEMPLATE_TEST_CASE("lifted structure losses match a brute-force loop", "[lifted][brute]", LIFTED_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 19;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 201, scale_of<M>());
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(19, 1), random_labels(n, 5, 202), with_singletons(n),
                                                Eigen::VectorXi::Zero(n), Eigen::VectorXi::LinSpaced(n, 0, int(n) - 1)};
  const Vector<double> weights = random_embeddings<double>(n, 1, 203).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  LiftedStructureOptions other;
  other.neg_margin = pml_inverted<M>() ? 0.2 : 2.0;
  other.pos_margin = pml_inverted<M>() ? 0.9 : 0.5;
  const RowMatrix<double> Xd = X.template cast<double>();
  for (const bool generalized : {false, true}) {
    for (const LiftedStructureOptions& base : {LiftedStructureOptions{}, other}) {
      for (const Eigen::VectorXi& labels : layouts) {
        for (const Reduction r : all_reductions) {
          for (const bool weighted : {false, true}) {
            LiftedStructureOptions o = base;
            o.reduction = reducer_of(r, weights, weighted);
            const Brute expected = brute<M>(generalized, Xd, labels, o, r, weighted ? w : ones);
            const LossResult<S> got = call<M>(generalized, X, labels, o);
            INFO((generalized ? "generalized" : "lifted") << ", margins " << o.neg_margin << " " << o.pos_margin
                                                          << ", reduction " << int(r) << (weighted ? " weighted" : "")
                                                          << ", labels " << labels.transpose());
            const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 2e-5;
            CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
            REQUIRE(got.terms.size() == n);
            for (Index i = 0; i < n; ++i)
              CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol));
            REQUIRE(got.grad.size() == 1);
            CHECK(got.grad[0].rows() == n);
            if (expected.value == 0) CHECK(got.grad[0].isZero(0));
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("lifted structure losses: gradient matches finite differences", "[lifted][gradient]",
                   LIFTED_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  if (!std::is_same<S, double>::value) return;  // finite differences in double
  const Index n = 12;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 211, scale_of<M>());
  const Vector<double> weights = random_embeddings<double>(n, 1, 212).cwiseAbs();
  for (const Eigen::VectorXi& labels : {with_singletons(n), random_labels(n, 3, 213)}) {
    for (const bool generalized : {false, true}) {
      for (const Reduction r : all_reductions) {
        for (const bool weighted : {false, true}) {
          LiftedStructureOptions o;
          o.reduction = reducer_of(r, weights, weighted);
          const LossResult<S> res = call<M>(generalized, X, labels, o);
          auto f = [&](const RowMatrix<S>& x) { return call<M>(generalized, x, labels, o, value_only); };
          const auto report = testing::check_gradient(f, X, res.grad[0]);
          INFO((generalized ? "generalized" : "lifted") << ", reduction " << int(r) << (weighted ? " weighted" : "")
                                                        << ": " << report.summary());
          CHECK(report.passed);
          CHECK_FALSE(res.grad[0].isZero(0));
        }
      }
    }
  }
}

TEST_CASE("lifted structure losses under Mahalanobis: dL/dX and dL/dL match finite differences",
          "[lifted][gradient]") {
  const RowMatrix<double> X = random_embeddings<double>(10, 4, 221, 0.3);
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 222, 0.8);
  const Eigen::VectorXi labels = with_singletons(10);
  for (const bool generalized : {false, true}) {
    INFO((generalized ? "generalized" : "lifted"));
    auto loss = [&](const RowMatrix<double>& x, const RowMatrix<double>& l) {
      return generalized ? generalized_lifted_structure_loss(x, labels, Mahalanobis(l))
                         : lifted_structure_loss(x, labels, Mahalanobis(l));
    };
    const LossResult<double> res = loss(X, L);
    REQUIRE(res.grad.size() == 2);
    const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return loss(x, L).value; }, X, res.grad[0]);
    const auto rl = testing::check_gradient([&](const RowMatrix<double>& l) { return loss(X, l).value; }, L, res.grad[1]);
    INFO(rx.summary() << "; " << rl.summary());
    CHECK(rx.passed);
    CHECK(rl.passed);
    const RowMatrix<double> Z = X * L.transpose();
    CHECK(res.value == Approx(call<Euclidean>(generalized, Z, labels, value_only)).epsilon(1e-12));
  }
}

TEMPLATE_TEST_CASE("lifted structure losses: value-only and buffer forms agree with the full call", "[lifted]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 231, 0.4);
  const Eigen::VectorXi labels = random_labels(10, 3, 232);
  const LiftedStructureOptions options;
  for (const bool generalized : {false, true}) {
    const char* name = generalized ? "generalized_lifted_structure_loss" : "lifted_structure_loss";
    const LossResult<S> full = call<Euclidean>(generalized, X, labels, options);
    CHECK(full.value > 0);
    CHECK(call<Euclidean>(generalized, X, labels, options, value_only) == full.value);
    std::vector<S> buffer(40, S(-7));
    Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
    CHECK(call<Euclidean>(generalized, X, labels, options, grad) == full.value);
    CHECK(grad == full.grad[0]);
    // The default metric is Euclidean; a metric value is the template form.
    CHECK(call<Cosine>(generalized, X, labels, Euclidean{}, options, value_only) == full.value);
    std::vector<S> small(36, S(-7));
    Eigen::Map<RowMatrix<S>> wrong(small.data(), 9, 4);
    REQUIRE_INVALID_ARGUMENT(call<Euclidean>(generalized, X, labels, options, wrong), name, "grad");
    CHECK(std::all_of(small.begin(), small.end(), [](S x) { return x == S(-7); }));
  }
}

TEST_CASE("lifted structure losses: edge cases", "[lifted][edge]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 241, 0.4);
  for (const bool generalized : {false, true}) {
    INFO((generalized ? "generalized" : "lifted"));
    const LossResult<double> empty = call<Euclidean>(generalized, RowMatrix<double>(0, 3), Eigen::VectorXi(0));
    CHECK(empty.value == 0);
    CHECK(empty.grad[0].rows() == 0);
    const LossResult<double> one = call<Euclidean>(generalized, RowMatrix<double>(X.topRows(1)), Eigen::VectorXi::Zero(1));
    CHECK(one.value == 0);
    CHECK(one.grad[0].isZero(0));
    // Distinct labels: no positive pair. Lifted: loss 0; generalized: the negatives' part.
    const Eigen::VectorXi distinct = Eigen::VectorXi::LinSpaced(6, 0, 5);
    const LossResult<double> d = call<Euclidean>(generalized, X, distinct);
    if (generalized) {
      CHECK(d.value > 0);
    } else {
      CHECK(d.value == 0);
      CHECK(d.grad[0].isZero(0));
    }
    // A zero row under Cosine: finite, and no gradient for it.
    RowMatrix<double> Z = X;
    Z.row(2).setZero();
    const LossResult<double> z = call<Cosine>(generalized, Z, Eigen::VectorXi(Eigen::VectorXi::LinSpaced(6, 0, 2)));
    CHECK(std::isfinite(z.value));
    CHECK(z.grad[0].row(2).isZero(0));
  }
  // Far-apart negatives in float: every exponent shifted, nothing overflows.
  RowMatrix<double> F = random_embeddings<double>(12, 4, 242, 0.05);
  for (Index i = 0; i < 12; ++i) F(i, i % 4) += 30.0;
  const Eigen::VectorXi labels = random_labels(12, 4, 243);
  for (const bool generalized : {false, true}) {
    LiftedStructureOptions o;
    o.neg_margin = 100;
    const LossResult<double> d = call<SquaredEuclidean>(generalized, F, labels, o);
    const LossResult<float> f = call<SquaredEuclidean>(generalized, RowMatrix<float>(F.cast<float>()), labels, o);
    REQUIRE(std::isfinite(f.value));
    REQUIRE(f.grad[0].allFinite());
    CHECK(double(f.value) == Approx(d.value).epsilon(1e-4));
  }
}

TEST_CASE("lifted structure losses reject bad arguments", "[lifted][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 251);
  const Eigen::VectorXi labels = random_labels(6, 2, 252);
  for (const bool generalized : {false, true}) {
    const char* name = generalized ? "generalized_lifted_structure_loss" : "lifted_structure_loss";
    for (const double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
      LiftedStructureOptions o;
      o.neg_margin = bad;
      REQUIRE_INVALID_ARGUMENT(call<Euclidean>(generalized, X, labels, o), name, "options.neg_margin");
      o = LiftedStructureOptions{};
      o.pos_margin = bad;
      REQUIRE_INVALID_ARGUMENT(call<Euclidean>(generalized, X, labels, o), name, "options.pos_margin");
    }
    LiftedStructureOptions o;
    o.reduction = Mean(Eigen::VectorXd::Ones(5));
    REQUIRE_INVALID_ARGUMENT(call<Euclidean>(generalized, X, labels, o), name, "options.reduction");
    REQUIRE_INVALID_ARGUMENT(call<Euclidean>(generalized, X, Eigen::VectorXi(5)), name, "labels");
    RowMatrix<double> bad = X;
    bad(1, 1) = std::nan("");
    REQUIRE_INVALID_ARGUMENT(call<Euclidean>(generalized, bad, labels), name, "X");
  }
}

}  // namespace test_lifted_structure_loss
