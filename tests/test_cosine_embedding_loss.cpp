// cosine_embedding_loss: torch.nn.CosineEmbeddingLoss semantics, against a
// brute-force loop, finite differences, the call forms, edge cases, bad input
// and PyTorch reference values.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/cosine_embedding_loss.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_cosine_embedding_loss {

namespace {

template <class S>
double brute_cosine_embedding(const RowMatrix<S>& A, const RowMatrix<S>& B, const Eigen::VectorXd& y,
                              double margin, Reduction reduction) {
  double sum = 0;
  int nonzero = 0;
  for (Index i = 0; i < A.rows(); ++i) {
    const double cos = 1.0 - reference_distance(Ref::Cosine, A.row(i), B.row(i));
    const double t = y(i) > 0 ? 1.0 - cos : std::max(0.0, cos - margin);
    sum += t;
    nonzero += t > 0 ? 1 : 0;
  }
  if (reduction == Reduction::Sum) return sum;
  if (reduction == Reduction::Mean) return A.rows() > 0 ? sum / double(A.rows()) : 0.0;
  return nonzero > 0 ? sum / nonzero : 0.0;
}

Eigen::VectorXd random_targets(Index n, unsigned seed) {
  const Eigen::VectorXi bits = random_labels(n, 2, seed);
  return (2 * bits.cast<double>().array() - 1).matrix();
}

}  // namespace

TEMPLATE_TEST_CASE("cosine_embedding_loss matches a brute-force loop", "[cosine_embedding]", float, double) {
  using S = TestType;
  const RowMatrix<S> A = random_embeddings<S>(17, 6, 131);
  const RowMatrix<S> B = random_embeddings<S>(17, 6, 132);
  for (unsigned seed : {133u, 134u}) {
    const Eigen::VectorXd y = random_targets(17, seed);
    for (double margin : {0.0, 0.25, -0.3}) {
      for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
        const LossResult<S> r = cosine_embedding_loss(A, B, y, margin, red);
        CHECK(double(r.value) == Approx(brute_cosine_embedding(A, B, y, margin, red))
                                     .epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
        REQUIRE(r.grad.size() == 2);
        CHECK(r.terms.size() == 17);
      }
    }
  }
  // Integer targets work as well, and the default is margin 0, Mean.
  const Eigen::VectorXi yi = random_targets(17, 135).cast<int>();
  CHECK(double(cosine_embedding_loss(A, B, yi).value) ==
        Approx(brute_cosine_embedding(A, B, yi.cast<double>(), 0.0, Reduction::Mean)).epsilon(value_tolerance<S>()));
}

TEMPLATE_TEST_CASE("cosine_embedding_loss gradient matches finite differences",
                   "[cosine_embedding][gradient]", float, double) {
  using S = TestType;
  const Eigen::VectorXd y = random_targets(9, 141);
  for (double margin : {0.0, 0.2}) {
    // A random point where no negative pair's cosine sits within 2e-2 of the margin.
    RowMatrix<S> A, B;
    double clearance = 0;
    for (unsigned seed = 3000; seed < 3400 && clearance <= 2e-2; seed += 2) {
      A = random_embeddings<S>(9, 4, seed);
      B = random_embeddings<S>(9, 4, seed + 1);
      clearance = std::numeric_limits<double>::infinity();
      for (Index i = 0; i < 9; ++i)
        if (y(i) < 0)
          clearance = std::min(clearance, std::abs(1 - reference_distance(Ref::Cosine, A.row(i), B.row(i)) - margin));
    }
    REQUIRE(clearance > 2e-2);
    for (Reduction red : {Reduction::Mean, Reduction::Sum}) {
      const LossResult<S> r = cosine_embedding_loss(A, B, y, margin, red);
      auto fa = [&](const RowMatrix<S>& a) { return cosine_embedding_loss(a, B, y, margin, red, value_only); };
      auto fb = [&](const RowMatrix<S>& b) { return cosine_embedding_loss(A, b, y, margin, red, value_only); };
      const auto ra = testing::check_gradient(fa, A, r.grad[0]);
      const auto rb = testing::check_gradient(fb, B, r.grad[1]);
      INFO(ra.summary() << " / " << rb.summary());
      CHECK(ra.passed);
      CHECK(rb.passed);
    }
  }
}

TEMPLATE_TEST_CASE("cosine_embedding_loss forms, edge cases and bad input", "[cosine_embedding][edge]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> A = random_embeddings<S>(7, 3, 151);
  const RowMatrix<S> B = random_embeddings<S>(7, 3, 152);
  const Eigen::VectorXd y = random_targets(7, 153);

  SECTION("value-only and buffer forms") {
    const LossResult<S> r = cosine_embedding_loss(A, B, y, 0.1);
    CHECK(cosine_embedding_loss(A, B, y, 0.1, value_only) == r.value);
    CHECK(cosine_embedding_loss(A, B, y, 0.1, Reduction::Mean, value_only) == r.value);
    std::vector<S> b1(21, S(4)), b2(21, S(4));
    Eigen::Map<RowMatrix<S>> g1(b1.data(), 7, 3), g2(b2.data(), 7, 3);
    CHECK(cosine_embedding_loss(A, B, y, 0.1, g1, g2) == r.value);
    CHECK(g1 == r.grad[0]);
    CHECK(g2 == r.grad[1]);
    std::vector<S> small(18, S(9));
    Eigen::Map<RowMatrix<S>> wrong(small.data(), 6, 3);
    REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(A, B, y, 0.1, g1, wrong), "cosine_embedding_loss",
                             "'grad2' is 6 x 3", "must be 7 x 3");
    CHECK(std::all_of(small.begin(), small.end(), [](S v) { return v == S(9); }));
  }
  SECTION("zero vectors: cos = 0, gradient 0 for the zero row and its partner") {
    RowMatrix<S> Z = A;
    Z.row(2).setZero();
    Eigen::VectorXd t = y;
    t(2) = 1;
    const LossResult<S> r = cosine_embedding_loss(Z, B, t, 0.0, Reduction::Sum);
    CHECK(double(r.terms(2)) == 1.0);
    CHECK(r.grad[0].row(2).isZero(0));
    CHECK(r.grad[1].row(2).isZero(0));
    CHECK(r.grad[0].allFinite());
    t(2) = -1;
    CHECK(cosine_embedding_loss(Z, B, t, -0.5, Reduction::Sum).terms(2) == S(0.5));
  }
  SECTION("identical rows, N = 0 and extreme scales") {
    const Eigen::VectorXd ones = Eigen::VectorXd::Ones(7);
    const LossResult<S> same = cosine_embedding_loss(A, A, ones);
    CHECK(double(same.value) == Approx(0.0).margin(value_tolerance<S>()));
    CHECK(same.grad[0].allFinite());
    const LossResult<S> empty = cosine_embedding_loss(RowMatrix<S>(0, 3), RowMatrix<S>(0, 3), Eigen::VectorXd(0));
    CHECK(empty.value == S(0));
    CHECK(empty.grad[0].rows() == 0);
    CHECK(empty.grad[1].cols() == 3);
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> As = (A * S(scale)).eval();
      const RowMatrix<S> Bs = (B * S(scale)).eval();
      const LossResult<S> r = cosine_embedding_loss(As, Bs, y, 0.1);
      CHECK(double(r.value) == Approx(brute_cosine_embedding(A, B, y, 0.1, Reduction::Mean)).epsilon(1e-4));
      CHECK(r.grad[0].allFinite());
    }
  }
  SECTION("bad input") {
    Eigen::VectorXd bad = y;
    bad(4) = 0.5;
    REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(A, B, bad), "contrastive::cosine_embedding_loss",
                             "'target' has 0.5 at index 4", "+1 or -1");
    REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(A, B, y, 1.5), "'margin' must be in [-1, 1]");
    REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(A, B.topRows(6), y), "'X1' (7 x 3)", "'X2' (6 x 3)");
    REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(A, B, y.head(6)), "'target' has length 6", "7 rows");
    RowMatrix<S> nan = A;
    nan(1, 2) = std::numeric_limits<S>::quiet_NaN();
    REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(nan, B, y), "'X1'", "row 1, column 2");
  }
}

TEMPLATE_TEST_CASE("torch.nn.CosineEmbeddingLoss reference values", "[cosine_embedding][reference]",
                   float, double) {
  using S = TestType;
  const ReferenceFile ref("pair_cosine_embedding.txt");
  const RowMatrix<S> A = ref.matrix<S>("X1"), B = ref.matrix<S>("X2");
  const Eigen::VectorXd y = ref.vector("target");
  const double tol = value_tolerance<S>();
  for (int c = 0; c < 3; ++c) {
    const std::string k = std::to_string(c);
    const Reduction red = c == 2 ? Reduction::Sum : Reduction::Mean;
    const LossResult<S> r = cosine_embedding_loss(A, B, y, ref.scalar("margin_" + k), red);
    INFO("case " << c);
    CHECK(double(r.value) == Approx(ref.scalar("value_" + k)).epsilon(tol));
    CHECK(r.grad[0].template cast<double>().isApprox(ref.matrix("grad1_" + k), 10 * tol));
    CHECK(r.grad[1].template cast<double>().isApprox(ref.matrix("grad2_" + k), 10 * tol));
    if (c == 0) CHECK(r.terms.template cast<double>().isApprox(ref.vector("terms_0"), 10 * tol));
  }
}

}  // namespace test_cosine_embedding_loss
