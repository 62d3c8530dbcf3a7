// similarity_regression_loss: squared error of each pair's similarity against a
// score; against a brute-force loop for every metric, finite differences, the
// call forms, edge cases, bad input and sentence-transformers CosineSimilarityLoss
// reference values from PyTorch.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/similarity_regression_loss.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_similarity_regression_loss {

namespace {

// The documented similarity of each metric, from the brute-force distance.
double brute_similarity(Ref metric, double d) { return metric == Ref::Cosine ? 1.0 - d : 1.0 / (1.0 + d); }

template <class S>
double brute_regression(Ref metric, const RowMatrix<S>& A, const RowMatrix<S>& B, const Eigen::VectorXd& t,
                        Reduction reduction, std::vector<double>* terms = nullptr) {
  double sum = 0;
  int nonzero = 0;
  for (Index i = 0; i < A.rows(); ++i) {
    const double r = brute_similarity(metric, reference_distance(metric, A.row(i), B.row(i))) - t(i);
    sum += r * r;
    nonzero += r != 0 ? 1 : 0;
    if (terms) terms->push_back(r * r);
  }
  if (reduction == Reduction::Sum) return sum;
  if (reduction == Reduction::Mean) return A.rows() > 0 ? sum / double(A.rows()) : 0.0;
  return nonzero > 0 ? sum / nonzero : 0.0;
}

Eigen::VectorXd random_scores(Index n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  Eigen::VectorXd s(n);
  for (Index i = 0; i < n; ++i) s(i) = u(gen);
  return s;
}

}  // namespace

TEMPLATE_TEST_CASE("similarity_regression_loss matches a brute-force loop", "[similarity_regression]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> A = random_embeddings<S>(15, 6, 161, 0.4);
  const RowMatrix<S> B = random_embeddings<S>(15, 6, 162, 0.4);
  const Eigen::VectorXd t = random_scores(15, 163);
  for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
    std::vector<double> terms;
    const double expected = brute_regression(ref_of<M>(), A, B, t, red, &terms);
    const LossResult<S> r = similarity_regression_loss<M>(A, B, t, red);
    CHECK(double(r.value) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    REQUIRE(r.terms.size() == 15);
    for (Index i = 0; i < 15; ++i)
      CHECK(double(r.terms(i)) == Approx(terms[std::size_t(i)]).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
  }
  CHECK(similarity_regression_loss<M>(A, B, t).value == similarity_regression_loss<M>(A, B, t, Reduction::Mean).value);
}

TEMPLATE_TEST_CASE("similarity_regression_loss gradient matches finite differences",
                   "[similarity_regression][gradient]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> A = random_embeddings<S>(8, 4, 171, 0.4);
  const RowMatrix<S> B = random_embeddings<S>(8, 4, 172, 0.4);
  const Eigen::VectorXd t = random_scores(8, 173);
  for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
    const LossResult<S> r = similarity_regression_loss<M>(A, B, t, red);
    auto fa = [&](const RowMatrix<S>& a) { return similarity_regression_loss<M>(a, B, t, red, value_only); };
    auto fb = [&](const RowMatrix<S>& b) { return similarity_regression_loss<M>(A, b, t, red, value_only); };
    const auto ra = testing::check_gradient(fa, A, r.grad[0]);
    const auto rb = testing::check_gradient(fb, B, r.grad[1]);
    INFO(ra.summary() << " / " << rb.summary());
    CHECK(ra.passed);
    CHECK(rb.passed);
  }
}

TEMPLATE_TEST_CASE("similarity_regression_loss forms, edge cases and bad input",
                   "[similarity_regression][edge]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> A = random_embeddings<S>(6, 3, 181, 0.4);
  const RowMatrix<S> B = random_embeddings<S>(6, 3, 182, 0.4);
  const Eigen::VectorXd t = random_scores(6, 183);

  SECTION("value-only and buffer forms") {
    const LossResult<S> r = similarity_regression_loss<M>(A, B, t);
    CHECK(similarity_regression_loss<M>(A, B, t, value_only) == r.value);
    std::vector<S> b1(18, S(2)), b2(18, S(2));
    Eigen::Map<RowMatrix<S>> g1(b1.data(), 6, 3), g2(b2.data(), 6, 3);
    CHECK(similarity_regression_loss<M>(A, B, t, g1, g2) == r.value);
    CHECK(g1 == r.grad[0]);
    CHECK(g2 == r.grad[1]);
    std::vector<S> small(15, S(9));
    Eigen::Map<RowMatrix<S>> wrong(small.data(), 5, 3);
    REQUIRE_INVALID_ARGUMENT(similarity_regression_loss<M>(A, B, t, wrong, g2),
                             "contrastive::similarity_regression_loss", "'grad' is 5 x 3", "must be 6 x 3");
    CHECK(std::all_of(small.begin(), small.end(), [](S v) { return v == S(9); }));
  }
  SECTION("identical rows, zero vectors, N = 0, extreme scales") {
    // Identical rows have similarity 1 for every metric: target 1 gives loss 0 and zero gradient.
    const LossResult<S> same = similarity_regression_loss<M>(A, A, Eigen::VectorXd::Ones(6));
    CHECK(double(same.value) == Approx(0.0).margin(value_tolerance<S>()));
    CHECK(same.grad[0].allFinite());
    CHECK(double(same.grad[0].cwiseAbs().maxCoeff()) <= value_tolerance<S>());
    RowMatrix<S> Z = A;
    Z.row(1).setZero();
    const LossResult<S> z = similarity_regression_loss<M>(Z, B, t);
    CHECK(z.grad[0].allFinite());
    if (std::is_same<M, Cosine>::value) {
      CHECK(double(z.terms(1)) == Approx(t(1) * t(1)).epsilon(value_tolerance<S>()));  // cos = 0
      CHECK(z.grad[0].row(1).isZero(0));
      CHECK(z.grad[1].row(1).isZero(0));
    }
    const LossResult<S> empty = similarity_regression_loss<M>(RowMatrix<S>(0, 3), RowMatrix<S>(0, 3), Eigen::VectorXd(0));
    CHECK(empty.value == S(0));
    CHECK(empty.grad[0].rows() == 0);
    CHECK(empty.grad[1].cols() == 3);
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> As = random_embeddings<S>(6, 3, 184, scale);
      const RowMatrix<S> Bs = random_embeddings<S>(6, 3, 185, scale);
      const LossResult<S> r = similarity_regression_loss<M>(As, Bs, t);
      CHECK(std::isfinite(r.value));
      CHECK(r.grad[0].allFinite());
      CHECK(double(r.value) == Approx(brute_regression(ref_of<M>(), As, Bs, t, Reduction::Mean)).epsilon(1e-3).margin(1e-6));
    }
  }
  SECTION("bad input") {
    Eigen::VectorXd bad = t;
    bad(3) = std::numeric_limits<double>::infinity();
    REQUIRE_INVALID_ARGUMENT(similarity_regression_loss<M>(A, B, bad), "contrastive::similarity_regression_loss",
                             "'target'", "index 3");
    REQUIRE_INVALID_ARGUMENT(similarity_regression_loss<M>(A, B, t.head(5)), "'target' has length 5", "6 rows");
    REQUIRE_INVALID_ARGUMENT(similarity_regression_loss<M>(A, B.leftCols(2), t), "'X1' (6 x 3)", "'X2' (6 x 2)");
  }
}

TEMPLATE_TEST_CASE("sentence-transformers CosineSimilarityLoss reference values",
                   "[similarity_regression][reference]", float, double) {
  using S = TestType;
  const ReferenceFile ref("pair_cosine_similarity.txt");
  const LossResult<S> r = similarity_regression_loss<Cosine>(ref.matrix<S>("U"), ref.matrix<S>("V"), ref.vector("score"));
  const double tol = value_tolerance<S>();
  CHECK(double(r.value) == Approx(ref.scalar("value")).epsilon(tol));
  CHECK(r.grad[0].template cast<double>().isApprox(ref.matrix("grad1"), 10 * tol));
  CHECK(r.grad[1].template cast<double>().isApprox(ref.matrix("grad2"), 10 * tol));
}

}  // namespace test_similarity_regression_loss
