// Metric values against a brute-force loop, invariants, and every backward
// against finite differences.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"

using namespace contrastive;
using namespace contrastive_test;

namespace test_metrics {

TEMPLATE_TEST_CASE("pairwise_distance matches a brute-force loop", "[metrics]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(23, 11, 1);
  const RowMatrix<S> Y = random_embeddings<S>(17, 11, 2);
  const RowMatrix<S> Dxx = pairwise_distance<M>(X);
  const RowMatrix<S> Dxy = pairwise_distance<M>(X, Y);
  REQUIRE(Dxx.rows() == 23);
  REQUIRE(Dxx.cols() == 23);
  REQUIRE(Dxy.rows() == 23);
  REQUIRE(Dxy.cols() == 17);
  for (Index i = 0; i < X.rows(); ++i) {
    for (Index j = 0; j < X.rows(); ++j) {
      const double expected = i == j ? 0.0 : reference_distance(ref_of<M>(), X.row(i), X.row(j));
      CHECK(double(Dxx(i, j)) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    }
    for (Index j = 0; j < Y.rows(); ++j) {
      const double expected = reference_distance(ref_of<M>(), X.row(i), Y.row(j));
      CHECK(double(Dxy(i, j)) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    }
  }
}

TEMPLATE_TEST_CASE("rowwise_distance matches a brute-force loop", "[metrics]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> A = random_embeddings<S>(19, 7, 3);
  const RowMatrix<S> B = random_embeddings<S>(19, 7, 4);
  const Vector<S> d = rowwise_distance<M>(A, B);
  REQUIRE(d.size() == 19);
  for (Index i = 0; i < A.rows(); ++i) {
    const double expected = reference_distance(ref_of<M>(), A.row(i), B.row(i));
    CHECK(double(d(i)) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
  }
}

TEMPLATE_TEST_CASE("pairwise distances are symmetric, non-negative, zero on the diagonal",
                   "[metrics]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  RowMatrix<S> X = random_embeddings<S>(40, 9, 5);
  X.row(7) = X.row(3);  // a duplicate row
  const RowMatrix<S> D = pairwise_distance<M>(X);
  CHECK((D.array() >= S(0)).all());
  CHECK((D.diagonal().array() == S(0)).all());
  CHECK((D.array() == D.transpose().array()).all());
  CHECK(D(3, 7) == S(0));
  if (std::is_same<M, Cosine>::value) CHECK((D.array() <= S(2)).all());
}

TEMPLATE_TEST_CASE("Euclidean distances satisfy the triangle inequality", "[metrics]", float,
                   double) {
  const RowMatrix<TestType> X = random_embeddings<TestType>(30, 5, 6);
  const RowMatrix<TestType> D = pairwise_distance<Euclidean>(X);
  const double slack = 4 * double(std::numeric_limits<TestType>::epsilon()) * D.maxCoeff();
  for (Index i = 0; i < 30; ++i)
    for (Index j = 0; j < 30; ++j)
      for (Index k = 0; k < 30; ++k) REQUIRE(double(D(i, k)) <= double(D(i, j)) + D(j, k) + slack);
}

TEMPLATE_TEST_CASE("row-major, column-major, Map and block inputs give the same distances",
                   "[metrics]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(12, 6, 7);
  std::vector<S> buffer(X.data(), X.data() + X.size());
  const Eigen::Map<const RowMatrix<S>> mapped(buffer.data(), 12, 6);
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> col_major = X;
  const RowMatrix<S> expected = pairwise_distance(X);
  CHECK(pairwise_distance(mapped) == expected);
  CHECK(pairwise_distance(col_major) == expected);
  const RowMatrix<S> big = random_embeddings<S>(20, 6, 8);
  CHECK(pairwise_distance(big.topRows(12)) == pairwise_distance(RowMatrix<S>(big.topRows(12))));

  // A row-major Map over a caller's buffer is viewed in place, not copied.
  const ConstRowRef<S> view(mapped);
  CHECK(view.data() == buffer.data());
}

// L(X) = sum(C .* D(X)) has dL/dD = C, so backward(C) must be its gradient.
TEMPLATE_TEST_CASE("pairwise backward matches finite differences", "[metrics][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(9, 4, 9);
  const RowMatrix<S> Y = random_embeddings<S>(6, 4, 10);
  const RowMatrix<S> Cxx = random_embeddings<S>(9, 9, 11);
  const RowMatrix<S> Cxy = random_embeddings<S>(9, 6, 12);

  SECTION("symmetric form") {
    const RowMatrix<S> g = pairwise_distance_backward<M>(X, Cxx);
    auto f = [&](const RowMatrix<S>& x) { return (Cxx.array() * pairwise_distance<M>(x).array()).sum(); };
    const auto report = testing::check_gradient(f, X, g);
    INFO(report.summary());
    CHECK(report.passed);
  }
  SECTION("two-set form, both gradients") {
    const PairGradient<S> g = pairwise_distance_backward<M>(X, Y, Cxy);
    auto fx = [&](const RowMatrix<S>& x) { return (Cxy.array() * pairwise_distance<M>(x, Y).array()).sum(); };
    auto fy = [&](const RowMatrix<S>& y) { return (Cxy.array() * pairwise_distance<M>(X, y).array()).sum(); };
    const auto rx = testing::check_gradient(fx, X, g.dX);
    const auto ry = testing::check_gradient(fy, Y, g.dY);
    INFO(rx.summary() << " / " << ry.summary());
    CHECK(rx.passed);
    CHECK(ry.passed);
  }
}

TEMPLATE_TEST_CASE("rowwise backward matches finite differences", "[metrics][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> A = random_embeddings<S>(8, 5, 13);
  const RowMatrix<S> B = random_embeddings<S>(8, 5, 14);
  const Vector<S> c = random_embeddings<S>(8, 1, 15);
  const PairGradient<S> g = rowwise_distance_backward<M>(A, B, c);
  auto fa = [&](const RowMatrix<S>& a) { return c.dot(rowwise_distance<M>(a, B)); };
  auto fb = [&](const RowMatrix<S>& b) { return c.dot(rowwise_distance<M>(A, b)); };
  const auto ra = testing::check_gradient(fa, A, g.dX);
  const auto rb = testing::check_gradient(fb, B, g.dY);
  INFO(ra.summary() << " / " << rb.summary());
  CHECK(ra.passed);
  CHECK(rb.passed);
}

TEMPLATE_TEST_CASE("coincident points: Euclidean gradient is the zero subgradient", "[metrics][edge]",
                   float, double) {
  using S = TestType;
  RowMatrix<S> X = random_embeddings<S>(5, 3, 16);
  X.row(2) = X.row(0);
  RowMatrix<S> C = RowMatrix<S>::Zero(5, 5);
  C(0, 2) = 1;
  C(2, 0) = 1;
  const RowMatrix<S> g = pairwise_distance_backward<Euclidean>(X, C);
  CHECK(g.allFinite());
  CHECK(g.isZero(0));
  const PairGradient<S> rg = rowwise_distance_backward<Euclidean>(X.topRows(1), X.row(2), Vector<S>::Ones(1));
  CHECK(rg.dX.isZero(0));
  CHECK(rg.dY.isZero(0));
}

TEMPLATE_TEST_CASE("zero vectors under Cosine: similarity 0, gradient 0", "[metrics][edge]", float,
                   double) {
  using S = TestType;
  RowMatrix<S> X = random_embeddings<S>(4, 3, 17);
  X.row(1).setZero();
  X.row(3).setZero();
  const RowMatrix<S> D = pairwise_distance<Cosine>(X);
  CHECK(D(1, 0) == S(1));
  CHECK(D(1, 2) == S(1));
  CHECK(D(1, 3) == S(1));  // two zero vectors: similarity 0 as well
  CHECK(D(1, 1) == S(0));
  const RowMatrix<S> g = pairwise_distance_backward<Cosine>(X, RowMatrix<S>::Ones(4, 4));
  CHECK(g.allFinite());
  CHECK(g.row(1).isZero(0));
  CHECK(g.row(3).isZero(0));
  CHECK_FALSE(g.row(0).isZero(0));
  const Vector<S> d = rowwise_distance<Cosine>(X.topRows(2), X.bottomRows(2));  // rows 1 and 3 are zero
  CHECK(d(1) == S(1));
  CHECK(rowwise_distance<Cosine>(X.row(0), X.row(1))(0) == S(1));
  const PairGradient<S> rg = rowwise_distance_backward<Cosine>(X.row(0), X.row(1), Vector<S>::Ones(1));
  CHECK(rg.dX.isZero(0));
  CHECK(rg.dY.isZero(0));
}

TEMPLATE_TEST_CASE("empty inputs give empty outputs", "[metrics][edge]", float, double) {
  using S = TestType;
  const RowMatrix<S> empty(0, 4);
  const RowMatrix<S> X = random_embeddings<S>(3, 4, 18);
  CHECK(pairwise_distance(empty).size() == 0);
  CHECK(pairwise_distance(empty, X).rows() == 0);
  CHECK(pairwise_distance(X, empty).cols() == 0);
  CHECK(rowwise_distance(empty, empty).size() == 0);
  const RowMatrix<S> g = pairwise_distance_backward(empty, RowMatrix<S>(0, 0));
  CHECK(g.rows() == 0);
  CHECK(g.cols() == 4);
}

TEMPLATE_TEST_CASE("Cosine distances of opposite rows stay within [0, 2]", "[metrics][edge]", float,
                   double) {
  using S = TestType;
  // Opposite rows, where rounding can push cos below -1 (the fuzz corpus holds an
  // input that did: tests/fuzz/corpus/fuzz_metrics/cosine-above-2-*).
  RowMatrix<S> X = random_embeddings<S>(64, 7, 19);
  RowMatrix<S> Y = -X * S(3);
  RowMatrix<S> both(128, 7);
  both << X, Y;
  const RowMatrix<S> D = pairwise_distance<Cosine>(both);
  CHECK((D.array() <= S(2)).all());
  CHECK((D.array() >= S(0)).all());
  CHECK((pairwise_distance<Cosine>(X, Y).array() <= S(2)).all());
  CHECK((rowwise_distance<Cosine>(X, Y).array() <= S(2)).all());
}

}  // namespace test_metrics
