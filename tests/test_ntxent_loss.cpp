// ntxent_loss (SimCLR two-view form and PML's labelled form) against
// brute-force loops, finite differences, PyTorch reference values, edge cases
// and numerical stability at small temperatures.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/ntxent_loss.hpp>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_ntxent_loss {

namespace {

template <class Metric, class RowA, class RowB>
double brute_logit(const RowA& a, const RowB& b, double t) {
  const double d = reference_distance(ref_of<Metric>(), a, b);
  return (std::is_same<Metric, Cosine>::value ? 1.0 - d : -d) / t;
}

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

double reduce_brute(const std::vector<double>& terms, Reduction reduction) {
  double sum = 0;
  int nonzero = 0;
  for (const double v : terms) {
    sum += v;
    if (v > 0) ++nonzero;
  }
  const int divisor = reduction == Reduction::Sum ? 1
                      : reduction == Reduction::Mean ? static_cast<int>(terms.size())
                                                     : nonzero;
  return divisor > 0 ? sum / divisor : 0.0;
}

// SimCLR, from the paper: term_i = -s_{i,pos} + log sum_{k != i} exp(s_ik) over z = [v1; v2].
template <class Metric, class S>
Brute brute_simclr(const RowMatrix<S>& v1, const RowMatrix<S>& v2, double t, Reduction reduction) {
  const Index n = v1.rows();
  RowMatrix<S> z(2 * n, v1.cols());
  z << v1, v2;
  Brute out;
  for (Index i = 0; i < 2 * n; ++i) {
    const Index pos = i < n ? i + n : i - n;
    double denom = 0;
    for (Index k = 0; k < 2 * n; ++k)
      if (k != i) denom += std::exp(brute_logit<Metric>(z.row(i), z.row(k), t));
    out.terms.push_back(-brute_logit<Metric>(z.row(i), z.row(pos), t) + std::log(denom));
  }
  out.value = reduce_brute(out.terms, reduction);
  return out;
}

// PML NTXentLoss: one term per ordered positive pair, denominator = that positive + the negatives.
template <class Metric, class S>
Brute brute_pml(const RowMatrix<S>& X, const Eigen::VectorXi& labels, double t, Reduction reduction) {
  const Index n = X.rows();
  Brute out;
  for (Index a = 0; a < n; ++a) {
    for (Index p = 0; p < n; ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      const double sp = brute_logit<Metric>(X.row(a), X.row(p), t);
      double denom = std::exp(sp);
      for (Index k = 0; k < n; ++k)
        if (labels(k) != labels(a)) denom += std::exp(brute_logit<Metric>(X.row(a), X.row(k), t));
      out.terms.push_back(std::log(denom) - sp);
    }
  }
  out.value = reduce_brute(out.terms, reduction);
  return out;
}

const Reduction all_reductions[] = {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero};

template <class S>
double tolerance() {
  return sizeof(S) == sizeof(double) ? 1e-10 : 2e-4;
}

}  // namespace

TEMPLATE_TEST_CASE("ntxent_loss (two views) matches a brute-force loop", "[ntxent]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 10;
  const RowMatrix<S> v1 = random_embeddings<S>(n, 6, 41);
  const RowMatrix<S> v2 = v1 + random_embeddings<S>(n, 6, 42) * S(0.5);
  for (const double t : {0.1, 0.5, 1.0}) {
    for (const Reduction r : all_reductions) {
      const Brute expected = brute_simclr<M>(v1, v2, t, r);
      const LossResult<S> got = ntxent_loss<M>(v1, v2, t, NTXentOptions{r});
      INFO("t = " << t << ", reduction " << static_cast<int>(r));
      bool clear = true;  // as in the labelled test below
      for (const double v : expected.terms) clear = clear && v > 1e-6;
      if (r != Reduction::MeanNonZero || clear)
        CHECK(double(got.value) == Approx(expected.value).epsilon(tolerance<S>()).margin(tolerance<S>()));
      REQUIRE(got.terms.size() == 2 * n);
      for (Index i = 0; i < 2 * n; ++i)
        CHECK(double(got.terms(i)) ==
              Approx(expected.terms[std::size_t(i)]).epsilon(tolerance<S>()).margin(tolerance<S>()));
      REQUIRE(got.grad.size() == 2);
      CHECK(got.grad[0].rows() == n);
      CHECK(got.grad[1].rows() == n);
      CHECK(got.grad[1].cols() == 6);
    }
  }
}

TEMPLATE_TEST_CASE("ntxent_loss (labels) matches a brute-force loop", "[ntxent]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 24;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 43);
  Eigen::VectorXi singletons = class_blocks(6, 4);
  singletons(0) = 50;
  singletons(23) = 51;
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(6, 4), random_labels(n, 4, 44),
                                                singletons, class_blocks(12, 2)};
  for (const double t : {0.1, 0.5}) {
    for (const Eigen::VectorXi& labels : layouts) {
      for (const Reduction r : all_reductions) {
        const Brute expected = brute_pml<M>(X, labels, t, r);
        const LossResult<S> got = ntxent_loss<M>(X, labels, t, NTXentOptions{r});
        INFO("t = " << t << ", reduction " << static_cast<int>(r) << ", labels " << labels.transpose());
        // Which terms are "non-zero" is decided by rounding once a term is below
        // ~1e-16 (the brute force's log(exp(s_p) + tiny) - s_p); compare
        // MeanNonZero only when every term is clearly positive.
        bool clear = true;
        for (const double v : expected.terms) clear = clear && v > 1e-6;
        if (r != Reduction::MeanNonZero || clear)
          CHECK(double(got.value) == Approx(expected.value).epsilon(tolerance<S>()).margin(tolerance<S>()));
        REQUIRE(got.terms.size() == static_cast<Index>(expected.terms.size()));
        for (Index i = 0; i < got.terms.size(); ++i)
          CHECK(double(got.terms(i)) ==
                Approx(expected.terms[std::size_t(i)]).epsilon(tolerance<S>()).margin(tolerance<S>()));
      }
    }
  }
}

TEMPLATE_TEST_CASE("ntxent_loss: two views equal labels [0..N-1, 0..N-1] on the stacked views",
                   "[ntxent]", float, double) {
  using S = TestType;
  const RowMatrix<S> v1 = random_embeddings<S>(7, 4, 45);
  const RowMatrix<S> v2 = random_embeddings<S>(7, 4, 46);
  RowMatrix<S> z(14, 4);
  z << v1, v2;
  Eigen::VectorXi labels(14);
  for (int i = 0; i < 7; ++i) labels(i) = labels(i + 7) = i;
  const LossResult<S> views = ntxent_loss(v1, v2, 0.3);
  const LossResult<S> labelled = ntxent_loss(z, labels, 0.3);
  CHECK(double(views.value) == Approx(double(labelled.value)).epsilon(1e-6));
  CHECK(views.terms.isApprox(labelled.terms, S(1e-5)));
  CHECK(views.grad[0].isApprox(labelled.grad[0].topRows(7), S(1e-5)));
  CHECK(views.grad[1].isApprox(labelled.grad[0].bottomRows(7), S(1e-5)));
}

TEMPLATE_TEST_CASE("ntxent_loss gradients match finite differences", "[ntxent][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const double t = std::is_same<M, Cosine>::value ? 0.3 : 2.0;
  for (const Reduction r : all_reductions) {
    const NTXentOptions options{r};
    const RowMatrix<S> v1 = random_embeddings<S>(6, 4, 47);
    const RowMatrix<S> v2 = random_embeddings<S>(6, 4, 48);
    const LossResult<S> res = ntxent_loss<M>(v1, v2, t, options);
    auto f1 = [&](const RowMatrix<S>& x) { return ntxent_loss<M>(x, v2, t, options, value_only); };
    auto f2 = [&](const RowMatrix<S>& x) { return ntxent_loss<M>(v1, x, t, options, value_only); };
    const auto r1 = testing::check_gradient(f1, v1, res.grad[0]);
    const auto r2 = testing::check_gradient(f2, v2, res.grad[1]);
    INFO(r1.summary() << " / " << r2.summary());
    CHECK(r1.passed);
    CHECK(r2.passed);

    const RowMatrix<S> X = random_embeddings<S>(12, 4, 49);
    Eigen::VectorXi labels = class_blocks(4, 3);
    labels(11) = 7;  // an anchor without positives
    const LossResult<S> lres = ntxent_loss<M>(X, labels, t, options);
    auto fl = [&](const RowMatrix<S>& x) { return ntxent_loss<M>(x, labels, t, options, value_only); };
    const auto rl = testing::check_gradient(fl, X, lres.grad[0]);
    INFO(rl.summary());
    CHECK(rl.passed);
    CHECK_FALSE(lres.grad[0].row(11).isZero(0));  // still a negative of the others
  }
}

TEMPLATE_TEST_CASE("ntxent_loss value-only and buffer forms agree with the full call", "[ntxent]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> v1 = random_embeddings<S>(5, 3, 50);
  const RowMatrix<S> v2 = random_embeddings<S>(5, 3, 51);
  const NTXentOptions options;
  const LossResult<S> full = ntxent_loss(v1, v2, 0.2, options);
  CHECK(ntxent_loss(v1, v2, 0.2, options, value_only) == full.value);

  std::vector<S> b1(15, S(-7)), b2(15, S(-7));
  Eigen::Map<RowMatrix<S>> g1(b1.data(), 5, 3), g2(b2.data(), 5, 3);
  CHECK(ntxent_loss(v1, v2, 0.2, options, g1, g2) == full.value);
  CHECK(g1 == full.grad[0]);
  CHECK(g2 == full.grad[1]);

  // Views through row-major Maps over std::vector, and a column-major copy.
  std::vector<S> x1(v1.data(), v1.data() + 15), x2(v2.data(), v2.data() + 15);
  const Eigen::Map<const RowMatrix<S>> m1(x1.data(), 5, 3), m2(x2.data(), 5, 3);
  CHECK(ntxent_loss(m1, m2, 0.2).value == full.value);
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> c2 = v2;
  CHECK(ntxent_loss(v1, c2, 0.2).grad[1].isApprox(full.grad[1], S(1e-5)));

  std::vector<S> small(12, S(-7)), ok(15, S(-7));
  Eigen::Map<RowMatrix<S>> wrong(small.data(), 4, 3), right(ok.data(), 5, 3);
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, v2, 0.2, options, right, wrong), "contrastive::ntxent_loss",
                           "'grad2' is 4 x 3", "must be 5 x 3");
  for (const S v : small) CHECK(v == S(-7));
  for (const S v : ok) CHECK(v == S(-7));

  // Labelled form.
  const RowMatrix<S> X = random_embeddings<S>(9, 3, 52);
  const Eigen::VectorXi labels = random_labels(9, 3, 53);
  const LossResult<S> lfull = ntxent_loss(X, labels, 0.2, options);
  CHECK(ntxent_loss(X, labels, 0.2, options, value_only) == lfull.value);
  std::vector<S> lb(27, S(-7));
  Eigen::Map<RowMatrix<S>> lg(lb.data(), 9, 3);
  CHECK(ntxent_loss(X, labels, 0.2, options, lg) == lfull.value);
  CHECK(lg == lfull.grad[0]);
  std::vector<S> lsmall(24, S(-7));
  Eigen::Map<RowMatrix<S>> lwrong(lsmall.data(), 8, 3);
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(X, labels, 0.2, options, lwrong), "ntxent_loss", "'grad' is 8 x 3",
                           "must be 9 x 3");
  for (const S v : lsmall) CHECK(v == S(-7));
}

TEMPLATE_TEST_CASE("ntxent_loss edge cases give finite values and zero gradients for empty sets",
                   "[ntxent][edge]", float, double) {
  using S = TestType;
  const RowMatrix<S> v1 = random_embeddings<S>(6, 3, 54);
  const RowMatrix<S> v2 = random_embeddings<S>(6, 3, 55);

  SECTION("N = 1 view pair: no negatives, loss 0") {
    const LossResult<S> r = ntxent_loss(v1.topRows(1), v2.topRows(1), 0.1);
    CHECK(r.value == S(0));
    CHECK(r.grad[0].isZero(0));
    CHECK(r.grad[1].isZero(0));
    CHECK(r.terms.size() == 2);
  }
  SECTION("N = 0") {
    const RowMatrix<S> empty(0, 3);
    const LossResult<S> r = ntxent_loss(empty, empty, 0.1);
    CHECK(r.value == S(0));
    CHECK(r.grad[0].rows() == 0);
    CHECK(r.grad[0].cols() == 3);
    CHECK(r.grad[1].cols() == 3);
    const LossResult<S> l = ntxent_loss(empty, Eigen::VectorXi(0), 0.1);
    CHECK(l.value == S(0));
    CHECK(l.grad[0].cols() == 3);
  }
  SECTION("labels: no positive pair, or no negative pair") {
    for (const Reduction red : all_reductions) {
      const LossResult<S> unique = ntxent_loss(v1, class_blocks(6, 1), 0.1, NTXentOptions{red});
      CHECK(unique.value == S(0));
      CHECK(unique.grad[0].isZero(0));
      CHECK(unique.terms.size() == 0);
      const LossResult<S> single = ntxent_loss(v1, class_blocks(1, 6), 0.1, NTXentOptions{red});
      CHECK(single.value == S(0));
      CHECK(single.grad[0].isZero(0));
      CHECK(single.terms.size() == 30);
    }
  }
  SECTION("coincident embeddings") {
    const LossResult<S> same = ntxent_loss(v1, v1, 0.1);  // every positive pair coincides
    CHECK(std::isfinite(same.value));
    CHECK(same.grad[0].allFinite());
    const Brute expected = brute_simclr<Cosine>(v1, v1, 0.1, Reduction::Mean);
    CHECK(double(same.value) == Approx(expected.value).epsilon(1e-4));
    const RowMatrix<S> all_same = v1.row(0).replicate(6, 1);
    const LossResult<S> r = ntxent_loss(all_same, all_same, 0.1);
    // Every similarity equal: term_i = log(2N - 1).
    CHECK(double(r.value) == Approx(std::log(11.0)).epsilon(1e-5));
    CHECK(r.grad[0].allFinite());
    CHECK(r.grad[0].norm() < S(1e-3));
  }
  SECTION("zero vectors under Cosine: similarity 0, gradient 0") {
    RowMatrix<S> a = v1;
    a.row(2).setZero();
    const LossResult<S> r = ntxent_loss(a, v2, 0.2);
    CHECK(r.grad[0].allFinite());
    CHECK(r.grad[1].allFinite());
    CHECK(r.grad[0].row(2).isZero(0));
    CHECK(double(r.value) == Approx(brute_simclr<Cosine>(a, v2, 0.2, Reduction::Mean).value).epsilon(1e-5));
  }
  SECTION("inputs scaled by 1e-6 and 1e6: same loss, gradient scaled by 1/scale") {
    const LossResult<S> base = ntxent_loss(v1, v2, 0.2);
    for (const double scale : {1e-6, 1e6}) {
      const RowMatrix<S> a = v1 * S(scale), b = v2 * S(scale);
      const LossResult<S> r = ntxent_loss(a, b, 0.2);
      CHECK(std::isfinite(r.value));
      CHECK(double(r.value) == Approx(double(base.value)).epsilon(1e-4));
      CHECK((r.grad[0] * S(scale)).isApprox(base.grad[0], S(1e-3)));
      CHECK((r.grad[1] * S(scale)).isApprox(base.grad[1], S(1e-3)));
    }
  }
}

TEST_CASE("ntxent_loss at temperature 0.01 is finite in float and matches double", "[ntxent][stability]") {
  RowMatrix<double> v1 = random_embeddings<double>(16, 16, 56);
  // Weakly correlated views: positive and negative logits 10s apart, a loss of order 10.
  RowMatrix<double> v2 = 0.5 * v1 + random_embeddings<double>(16, 16, 57);
  v1.rowwise().normalize();
  v2.rowwise().normalize();
  const RowMatrix<float> f1 = v1.cast<float>(), f2 = v2.cast<float>();
  const RowMatrix<double> d1 = f1.cast<double>(), d2 = f2.cast<double>();
  const LossResult<float> f = ntxent_loss(f1, f2, 0.01);
  const LossResult<double> d = ntxent_loss(d1, d2, 0.01);
  REQUIRE(std::isfinite(f.value));
  REQUIRE(f.grad[0].allFinite());
  REQUIRE(f.grad[1].allFinite());
  CHECK(f.value > 1.0f);
  CHECK(double(f.value) == Approx(d.value).epsilon(1e-4).margin(1e-4));
  for (int k = 0; k < 2; ++k) {
    const double gscale = d.grad[std::size_t(k)].cwiseAbs().maxCoeff();
    CHECK((f.grad[std::size_t(k)].cast<double>() - d.grad[std::size_t(k)]).cwiseAbs().maxCoeff() <=
          1e-3 * gscale);
  }
  CHECK(d.value == Approx(brute_simclr<Cosine>(d1, d2, 0.01, Reduction::Mean).value).epsilon(1e-9));

  // Far-apart logits: 1 / 0.01 apart; a naive exp(100) in float still fits, exp(200) would not.
  RowMatrix<float> opposite(2, 2);
  opposite << 1, 0, 0, 1;
  const RowMatrix<float> flipped = -opposite;
  const LossResult<float> r = ntxent_loss(opposite, flipped, 0.005);
  CHECK(std::isfinite(r.value));
  CHECK(r.grad[0].allFinite());
}

TEMPLATE_TEST_CASE("ntxent_loss rejects bad input", "[ntxent][validation]", float, double) {
  using S = TestType;
  const RowMatrix<S> v1 = random_embeddings<S>(4, 3, 58);
  const RowMatrix<S> v2 = random_embeddings<S>(5, 3, 59);
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, v2, 0.1), "contrastive::ntxent_loss", "'view1' (4 x 3)",
                           "'view2' (5 x 3)", "same shape");
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, v1, 0.0), "ntxent_loss", "'temperature'", "> 0");
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, v1, -0.5), "ntxent_loss", "'temperature'");
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, v1, std::numeric_limits<double>::quiet_NaN()), "ntxent_loss",
                           "'temperature'", "finite");
  if (std::is_same<S, float>::value) {
    REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, v1, 1e-40), "ntxent_loss", "too small");
  }
  RowMatrix<S> bad = v2.topRows(4);
  bad(3, 0) = std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, bad, 0.1), "ntxent_loss", "'view2' (4 x 3)", "row 3, column 0");
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v2, Eigen::VectorXi::Zero(3), 0.1), "ntxent_loss",
                           "'labels' has length 3", "5 rows");
  // Floating labels select the two-view form: the error says so.
  const Vector<S> float_labels = Vector<S>::Zero(4);
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v1, float_labels, 0.1), "ntxent_loss", "'view2' is 4 x 1",
                           "integer labels");
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(v2, Eigen::VectorXi::Zero(5), 0.0), "ntxent_loss", "'temperature'");
}

namespace {

void check_close(double got, double expected, double tol) {
  CHECK(got == Approx(expected).epsilon(tol).margin(tol));
}

template <class S>
void check_matrix(const RowMatrix<S>& got, const RowMatrix<double>& expected, double tol) {
  REQUIRE(got.rows() == expected.rows());
  REQUIRE(got.cols() == expected.cols());
  const double scale = std::max(1.0, expected.cwiseAbs().maxCoeff());
  CHECK((got.template cast<double>() - expected).cwiseAbs().maxCoeff() <= tol * scale);
}

}  // namespace

// SimCLR NT-Xent through PyTorch's F.cross_entropy: tests/reference/generate_infonce_losses.py.
TEMPLATE_TEST_CASE("ntxent_loss reproduces SimCLR NT-Xent (PyTorch cross_entropy)", "[ntxent][reference]",
                   float, double) {
  using S = TestType;
  const ReferenceFile ref("infonce_ntxent_views.txt");
  const int cases = static_cast<int>(ref.scalar("cases"));
  REQUIRE(cases >= 2);
  const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
  const double gtol = sizeof(S) == sizeof(double) ? 1e-10 : 2e-4;
  for (int c = 0; c < cases; ++c) {
    const std::string p = "case" + std::to_string(c) + "_";
    const RowMatrix<S> v1 = ref.matrix<S>(p + "view1"), v2 = ref.matrix<S>(p + "view2");
    const LossResult<S> r = ntxent_loss(v1, v2, ref.scalar(p + "temperature"));
    INFO("case " << c);
    check_close(double(r.value), ref.scalar(p + "loss"), tol);
    check_matrix<S>(r.grad[0], ref.matrix<double>(p + "grad_view1"), gtol);
    check_matrix<S>(r.grad[1], ref.matrix<double>(p + "grad_view2"), gtol);
    const Vector<double> terms = ref.vector<double>(p + "terms");
    REQUIRE(r.terms.size() == terms.size());
    CHECK((r.terms.template cast<double>() - terms).cwiseAbs().maxCoeff() <= tol * std::max(1.0, terms.maxCoeff()));
  }
}

// pytorch-metric-learning NTXentLoss written out in torch.
TEMPLATE_TEST_CASE("ntxent_loss with labels reproduces pytorch-metric-learning NTXentLoss",
                   "[ntxent][reference]", float, double) {
  using S = TestType;
  const ReferenceFile ref("infonce_ntxent_pml.txt");
  const int cases = static_cast<int>(ref.scalar("cases"));
  REQUIRE(cases >= 2);
  const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
  const double gtol = sizeof(S) == sizeof(double) ? 1e-10 : 2e-4;
  for (int c = 0; c < cases; ++c) {
    const std::string p = "case" + std::to_string(c) + "_";
    const RowMatrix<S> X = ref.matrix<S>(p + "X");
    const LossResult<S> r = ntxent_loss(X, ref.labels(p + "labels"), ref.scalar(p + "temperature"));
    INFO("case " << c);
    check_close(double(r.value), ref.scalar(p + "loss"), tol);
    check_matrix<S>(r.grad[0], ref.matrix<double>(p + "grad"), gtol);
    const Vector<double> terms = ref.vector<double>(p + "terms");
    REQUIRE(r.terms.size() == terms.size());
    CHECK((r.terms.template cast<double>() - terms).cwiseAbs().maxCoeff() <= tol * std::max(1.0, terms.maxCoeff()));
  }
}

}  // namespace test_ntxent_loss
