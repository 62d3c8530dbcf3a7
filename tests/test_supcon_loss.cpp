// supcon_loss against a brute-force loop, finite differences, PyTorch
// reference values (PML SupConLoss written out in torch), edge cases and
// numerical stability at small temperatures.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/supcon_loss.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_supcon_loss {

namespace {

// Logit from the definition: cos / t under Cosine, -d / t under the other metrics.
template <class Metric, class RowA, class RowB>
double brute_logit(const RowA& a, const RowB& b, double t) {
  const double d = reference_distance(ref_of<Metric>(), a, b);
  return (std::is_same<Metric, Cosine>::value ? 1.0 - d : -d) / t;
}

struct BruteSupCon {
  double value = 0;
  std::vector<double> terms;
};

// PML SupConLoss, straight from its definition, in double with a naive log-sum-exp.
template <class Metric, class S>
BruteSupCon brute_supcon(const RowMatrix<S>& X, const Eigen::VectorXi& labels, double t,
                         Reduction reduction) {
  const Index n = X.rows();
  BruteSupCon out;
  out.terms.assign(static_cast<std::size_t>(n), 0.0);
  bool any_pos = false, any_neg = false;
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j)
      if (i != j) (labels(i) == labels(j) ? any_pos : any_neg) = true;
  if (!any_pos || !any_neg) return out;
  double sum = 0;
  int anchors = 0, nonzero = 0;
  for (Index i = 0; i < n; ++i) {
    double denom = 0;
    for (Index k = 0; k < n; ++k)
      if (k != i) denom += std::exp(brute_logit<Metric>(X.row(i), X.row(k), t));
    const double lse = std::log(denom);
    double acc = 0;
    int count = 0;
    for (Index p = 0; p < n; ++p) {
      if (p == i || labels(p) != labels(i)) continue;
      acc += brute_logit<Metric>(X.row(i), X.row(p), t) - lse;
      ++count;
    }
    if (count == 0) continue;
    const double term = -acc / count;
    out.terms[static_cast<std::size_t>(i)] = term;
    sum += term;
    ++anchors;
    if (term > 0) ++nonzero;
  }
  const int divisor = reduction == Reduction::Sum ? 1 : reduction == Reduction::Mean ? anchors : nonzero;
  out.value = divisor > 0 ? sum / divisor : 0.0;
  return out;
}

const Reduction all_reductions[] = {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero};

Eigen::VectorXi with_singletons(Index n) {
  // Classes 0 and 1 repeated, plus rows 3 and 7 in classes of their own.
  Eigen::VectorXi l(n);
  for (Index i = 0; i < n; ++i) l(i) = static_cast<int>(i % 2);
  l(3) = 100;
  l(7) = 101;
  return l;
}

}  // namespace

TEMPLATE_TEST_CASE("supcon_loss matches a brute-force loop", "[supcon]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 24;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 31);
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(6, 4), random_labels(n, 5, 32),
                                                with_singletons(n), class_blocks(12, 2)};
  for (const double t : {0.1, 0.5, 1.0}) {
    for (const Eigen::VectorXi& labels : layouts) {
      for (const Reduction r : all_reductions) {
        const BruteSupCon expected = brute_supcon<M>(X, labels, t, r);
        const LossResult<S> got = supcon_loss<M>(X, labels, t, SupConOptions{r});
        INFO("t = " << t << ", reduction " << static_cast<int>(r) << ", labels " << labels.transpose());
        const double tol = sizeof(S) == sizeof(double) ? 1e-10 : 2e-4;
        CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
        REQUIRE(got.terms.size() == n);
        for (Index i = 0; i < n; ++i)
          CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol));
        REQUIRE(got.grad.size() == 1);
        CHECK(got.grad[0].rows() == n);
        CHECK(got.grad[0].cols() == 6);
      }
    }
  }
}

TEMPLATE_TEST_CASE("supcon_loss gradient matches finite differences", "[supcon][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(12, 5, 33);
  const Eigen::VectorXi labels = with_singletons(12);
  // Non-cosine metrics have distances of a few units: a larger temperature keeps
  // the softmax away from saturation so float differences stay meaningful.
  const double t = std::is_same<M, Cosine>::value ? 0.3 : 2.0;
  for (const Reduction r : all_reductions) {
    const SupConOptions options{r};
    const LossResult<S> res = supcon_loss<M>(X, labels, t, options);
    auto f = [&](const RowMatrix<S>& x) { return supcon_loss<M>(x, labels, t, options, value_only); };
    const auto report = testing::check_gradient(f, X, res.grad[0]);
    INFO(report.summary());
    CHECK(report.passed);
    CHECK_FALSE(res.grad[0].isZero(0));
  }
}

TEMPLATE_TEST_CASE("supcon_loss value-only and buffer forms agree with the full call", "[supcon]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 34);
  const Eigen::VectorXi labels = random_labels(10, 3, 35);
  const SupConOptions options;
  const LossResult<S> full = supcon_loss(X, labels, 0.2, options);
  CHECK(supcon_loss(X, labels, 0.2, options, value_only) == full.value);

  std::vector<S> buffer(40, S(-7));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
  CHECK(supcon_loss(X, labels, 0.2, options, grad) == full.value);
  CHECK(grad == full.grad[0]);

  // Labels through a Map over a std::vector, embeddings through a row-major Map.
  std::vector<long> label_buffer(labels.data(), labels.data() + 10);
  const Eigen::Map<const Eigen::Matrix<long, Eigen::Dynamic, 1>> mapped_labels(label_buffer.data(), 10);
  std::vector<S> x_buffer(X.data(), X.data() + X.size());
  const Eigen::Map<const RowMatrix<S>> mapped_x(x_buffer.data(), 10, 4);
  CHECK(supcon_loss(mapped_x, mapped_labels, 0.2, options).value == full.value);
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> col_major = X;
  CHECK(supcon_loss(col_major, labels, 0.2).grad[0].isApprox(full.grad[0], S(1e-5)));

  std::vector<S> small(36, S(-7));
  Eigen::Map<RowMatrix<S>> wrong(small.data(), 9, 4);
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, 0.2, options, wrong), "contrastive::supcon_loss",
                           "'grad' is 9 x 4", "must be 10 x 4");
  for (const S v : small) CHECK(v == S(-7));
}

TEMPLATE_TEST_CASE("supcon_loss edge cases give finite values and zero gradients for empty sets",
                   "[supcon][edge]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(8, 3, 36);

  SECTION("no positive pair: all labels unique") {
    const LossResult<S> r = supcon_loss(X, class_blocks(8, 1), 0.1);
    CHECK(r.value == S(0));
    CHECK(r.grad[0].isZero(0));
    CHECK(r.terms.isZero(0));
  }
  SECTION("no negative pair: a single class (PML returns zero losses)") {
    for (const Reduction red : all_reductions) {
      const LossResult<S> r = supcon_loss(X, class_blocks(1, 8), 0.1, SupConOptions{red});
      CHECK(r.value == S(0));
      CHECK(r.grad[0].isZero(0));
      CHECK(r.grad[0].rows() == 8);
    }
  }
  SECTION("an anchor without positives contributes nothing, but is a negative for others") {
    Eigen::VectorXi labels = class_blocks(4, 2);
    labels(7) = 9;  // row 7 alone; row 6 now has no positive either
    const LossResult<S> r = supcon_loss(X, labels, 0.5, SupConOptions{Reduction::Mean});
    CHECK(r.terms(6) == S(0));
    CHECK(r.terms(7) == S(0));
    CHECK(double(r.value) == Approx(double(r.terms.head(6).sum()) / 6).epsilon(1e-5));
    CHECK_FALSE(r.grad[0].row(7).isZero(0));  // it appears in others' denominators
  }
  SECTION("N = 1 and N = 0") {
    const LossResult<S> one = supcon_loss(X.topRows(1), class_blocks(1, 1), 0.1);
    CHECK(one.value == S(0));
    CHECK(one.grad[0].isZero(0));
    const RowMatrix<S> empty(0, 3);
    const LossResult<S> none = supcon_loss(empty, Eigen::VectorXi(0), 0.1);
    CHECK(none.value == S(0));
    CHECK(none.grad[0].rows() == 0);
    CHECK(none.grad[0].cols() == 3);
    CHECK(none.terms.size() == 0);
  }
  SECTION("coincident embeddings") {
    RowMatrix<S> Y = X;
    Y.row(1) = Y.row(0);
    Y.row(5) = Y.row(0);  // a coincident negative
    const Eigen::VectorXi labels = class_blocks(4, 2);
    const LossResult<S> r = supcon_loss(Y, labels, 0.1);
    CHECK(std::isfinite(r.value));
    CHECK(r.grad[0].allFinite());
    const BruteSupCon expected = brute_supcon<Cosine>(Y, labels, 0.1, Reduction::MeanNonZero);
    CHECK(double(r.value) == Approx(expected.value).epsilon(1e-4));
    const LossResult<S> all_same = supcon_loss(RowMatrix<S>(X.row(0).replicate(8, 1)), labels, 0.1);
    // Every similarity is 1: term_i = log(N - 1) for every anchor.
    CHECK(double(all_same.value) == Approx(std::log(7.0)).epsilon(1e-5));
    CHECK(all_same.grad[0].allFinite());
    CHECK(all_same.grad[0].norm() < S(1e-3));
  }
  SECTION("zero vectors under Cosine: similarity 0, gradient 0") {
    RowMatrix<S> Y = X;
    Y.row(2).setZero();
    const Eigen::VectorXi labels = class_blocks(4, 2);
    const LossResult<S> r = supcon_loss(Y, labels, 0.2);
    CHECK(r.grad[0].allFinite());
    CHECK(r.grad[0].row(2).isZero(0));
    const BruteSupCon expected = brute_supcon<Cosine>(Y, labels, 0.2, Reduction::MeanNonZero);
    CHECK(double(r.value) == Approx(expected.value).epsilon(1e-5));
  }
  SECTION("inputs scaled by 1e-6 and 1e6: same loss, gradient scaled by 1/scale") {
    const Eigen::VectorXi labels = class_blocks(4, 2);
    const LossResult<S> base = supcon_loss(X, labels, 0.2);
    for (const double scale : {1e-6, 1e6}) {
      const RowMatrix<S> Y = X * S(scale);
      const LossResult<S> r = supcon_loss(Y, labels, 0.2);
      CHECK(std::isfinite(r.value));
      CHECK(r.grad[0].allFinite());
      CHECK(double(r.value) == Approx(double(base.value)).epsilon(1e-4));
      const RowMatrix<S> rescaled = r.grad[0] * S(scale);
      CHECK(rescaled.isApprox(base.grad[0], S(1e-3)));
    }
  }
}

TEST_CASE("supcon_loss at temperature 0.01 is finite in float and matches double", "[supcon][stability]") {
  RowMatrix<double> Xd = random_embeddings<double>(32, 16, 37);
  Xd.rowwise().normalize();
  const RowMatrix<float> Xf = Xd.cast<float>();
  const Eigen::VectorXi labels = class_blocks(8, 4);
  for (const Reduction r : all_reductions) {
    const LossResult<float> f = supcon_loss(Xf, labels, 0.01, SupConOptions{r});
    const LossResult<double> d = supcon_loss(Xf.cast<double>().eval(), labels, 0.01, SupConOptions{r});
    REQUIRE(std::isfinite(f.value));
    REQUIRE(f.grad[0].allFinite());
    CHECK(f.value > 1.0f);  // logits of size 100: a naive exp would overflow float
    // Logits are cos / 0.01: float's relative error on cos becomes ~1e-5 absolute on the loss.
    CHECK(double(f.value) == Approx(d.value).epsilon(1e-4));
    const double gscale = d.grad[0].cwiseAbs().maxCoeff();
    CHECK((f.grad[0].cast<double>() - d.grad[0]).cwiseAbs().maxCoeff() <= 1e-3 * gscale);
    // And the double result agrees with a naive brute force (which double survives).
    CHECK(d.value == Approx(brute_supcon<Cosine>(Xf.cast<double>().eval(), labels, 0.01, r).value).epsilon(1e-9));
  }
}

TEMPLATE_TEST_CASE("supcon_loss rejects bad input", "[supcon][validation]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 38);
  const Eigen::VectorXi labels = class_blocks(5, 1);
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, Eigen::VectorXi::Zero(4), 0.1), "contrastive::supcon_loss",
                           "'labels' has length 4", "5 rows");
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, 0.0), "supcon_loss", "'temperature'", "> 0");
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, -1.0), "supcon_loss", "'temperature'");
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, std::numeric_limits<double>::infinity()),
                           "supcon_loss", "'temperature'", "finite");
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, std::nan("")), "supcon_loss", "'temperature'");
  if (std::is_same<S, float>::value) {
    REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, 1e-40), "supcon_loss", "'temperature'", "too small");
  }
  RowMatrix<S> bad = X;
  bad(2, 1) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(supcon_loss(bad, labels, 0.1), "supcon_loss", "'X' (5 x 3)", "row 2, column 1");
  REQUIRE_INVALID_ARGUMENT(supcon_loss(RowMatrix<S>(5, 0), labels, 0.1), "supcon_loss", "0 columns");
}

// PML SupConLoss written out in torch (float64, autograd): tests/reference/generate_infonce_losses.py.
TEMPLATE_TEST_CASE("supcon_loss reproduces pytorch-metric-learning SupConLoss", "[supcon][reference]",
                   float, double) {
  using S = TestType;
  const ReferenceFile ref("infonce_supcon.txt");
  const int cases = static_cast<int>(ref.scalar("cases"));
  REQUIRE(cases >= 3);
  for (int c = 0; c < cases; ++c) {
    const std::string p = "case" + std::to_string(c) + "_";
    const RowMatrix<S> X = ref.matrix<S>(p + "X");
    const Eigen::VectorXi labels = ref.labels(p + "labels");
    const double t = ref.scalar(p + "temperature");
    const Reduction reduction = ref.scalar(p + "mean_over_positive_anchors") != 0 ? Reduction::Mean
                                                                                  : Reduction::MeanNonZero;
    const LossResult<S> r = supcon_loss(X, labels, t, SupConOptions{reduction});
    const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
    INFO("case " << c << ", t = " << t);
    CHECK(double(r.value) == Approx(ref.scalar(p + "loss")).epsilon(tol).margin(tol));
    const RowMatrix<double> g = ref.matrix<double>(p + "grad");
    const double gscale = std::max(1.0, g.cwiseAbs().maxCoeff());
    const double gtol = sizeof(S) == sizeof(double) ? 1e-10 : 2e-4;
    CHECK((r.grad[0].template cast<double>() - g).cwiseAbs().maxCoeff() <= gtol * gscale);
    const Vector<double> terms = ref.vector<double>(p + "terms");
    CHECK((r.terms.template cast<double>() - terms).cwiseAbs().maxCoeff() <= tol * std::max(1.0, terms.maxCoeff()));
  }
}

}  // namespace test_supcon_loss
