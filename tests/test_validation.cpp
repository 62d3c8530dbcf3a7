// Bad input to the metric functions: one test per kind, asserting the message
// names the function, the argument and the sizes or the offending entry; and
// caller-owned outputs are untouched when a call throws.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <cstdint>
#include <limits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_validation {

TEMPLATE_TEST_CASE("mismatched column counts are rejected", "[validation]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(3, 4, 1);
  const RowMatrix<S> Y = random_embeddings<S>(5, 2, 2);
  REQUIRE_INVALID_ARGUMENT(pairwise_distance(X, Y), "contrastive::pairwise_distance", "'X' (3 x 4)",
                           "'Y' (5 x 2)", "same number of columns");
  REQUIRE_INVALID_ARGUMENT(pairwise_distance_backward(X, Y, RowMatrix<S>::Zero(3, 5)),
                           "pairwise_distance_backward", "'X' (3 x 4)", "'Y' (5 x 2)");
}

TEMPLATE_TEST_CASE("mismatched shapes for row-wise distances are rejected", "[validation]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> A = random_embeddings<S>(3, 4, 3);
  const RowMatrix<S> B = random_embeddings<S>(2, 4, 4);
  REQUIRE_INVALID_ARGUMENT(rowwise_distance(A, B), "contrastive::rowwise_distance", "'A' (3 x 4)",
                           "'B' (2 x 4)", "same shape");
  REQUIRE_INVALID_ARGUMENT(rowwise_distance_backward(A, A, Vector<S>::Zero(2)),
                           "rowwise_distance_backward", "'dLdd' has length 2", "3 rows");
}

TEMPLATE_TEST_CASE("zero columns with rows present are rejected", "[validation]", float, double) {
  using S = TestType;
  const RowMatrix<S> X(4, 0);
  REQUIRE_INVALID_ARGUMENT(pairwise_distance(X), "pairwise_distance", "'X'", "4 rows but 0 columns");
  REQUIRE_INVALID_ARGUMENT(rowwise_distance(X, X), "rowwise_distance", "'A'", "0 columns");
}

TEMPLATE_TEST_CASE("NaN and Inf anywhere are rejected with their position", "[validation]", float,
                   double) {
  using S = TestType;
  RowMatrix<S> X = random_embeddings<S>(5, 3, 5);
  X(3, 1) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(pairwise_distance(X), "pairwise_distance", "'X' (5 x 3)", "non-finite",
                           "row 3, column 1");
  RowMatrix<S> Y = random_embeddings<S>(5, 3, 6);
  Y(4, 2) = std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(pairwise_distance(random_embeddings<S>(2, 3, 7), Y), "'Y' (5 x 3)",
                           "inf", "row 4, column 2");
  REQUIRE_INVALID_ARGUMENT(rowwise_distance(Y, Y), "rowwise_distance", "'A'", "row 4, column 2");
}

TEMPLATE_TEST_CASE("a non-finite or wrong-shaped upstream gradient is rejected", "[validation]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(3, 2, 8);
  REQUIRE_INVALID_ARGUMENT(pairwise_distance_backward(X, RowMatrix<S>::Zero(3, 4)),
                           "pairwise_distance_backward", "'dLdD' is 3 x 4", "must be 3 x 3");
  RowMatrix<S> dD = RowMatrix<S>::Zero(3, 3);
  dD(2, 0) = -std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(pairwise_distance_backward(X, dD), "'dLdD'", "row 2, column 0");
  Vector<S> dd = Vector<S>::Zero(3);
  dd(1) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(rowwise_distance_backward(X, X, dd), "'dLdd'", "index 1");
}

TEST_CASE("labels of the wrong length are rejected", "[validation]") {
  const Eigen::VectorXi labels = Eigen::VectorXi::Zero(4);
  REQUIRE_INVALID_ARGUMENT(detail::to_labels("some_loss", "labels", labels, 5),
                           "contrastive::some_loss", "'labels' has length 4", "5 rows");
}

TEST_CASE("non-positive and non-finite scalar options are rejected", "[validation]") {
  REQUIRE_INVALID_ARGUMENT(detail::require_positive("ntxent_loss", "temperature", 0.0),
                           "contrastive::ntxent_loss", "'temperature' must be > 0");
  REQUIRE_INVALID_ARGUMENT(detail::require_positive("ntxent_loss", "temperature", -1.0), "> 0");
  REQUIRE_INVALID_ARGUMENT(
      detail::require_non_negative("f", "margin", std::numeric_limits<double>::quiet_NaN()),
      "'margin' must be finite");
  REQUIRE_INVALID_ARGUMENT(detail::require_non_negative("f", "margin", -0.5), "'margin' must be >= 0");
}

TEST_CASE("a wrong-shaped caller-owned gradient buffer is rejected and left untouched", "[validation]") {
  std::vector<float> buffer(6, 42.0f);
  const Eigen::Map<RowMatrix<float>> out(buffer.data(), 2, 3);
  REQUIRE_INVALID_ARGUMENT(detail::require_gradient_output("f", "grad", out, 3, 3), "'grad' is 2 x 3",
                           "must be 3 x 3");
  CHECK(std::all_of(buffer.begin(), buffer.end(), [](float v) { return v == 42.0f; }));
  RowMatrix<float> resizable(1, 1);
  CHECK_NOTHROW(detail::require_gradient_output("f", "grad", resizable, 3, 3));
}

TEMPLATE_TEST_CASE("rows too large for their squared distances are rejected", "[validation]", float,
                   double) {
  using S = TestType;
  RowMatrix<S> X = random_embeddings<S>(4, 3, 9);
  const S limit = detail::max_embedding_norm<S>();
  X.row(2) << limit, limit, S(0);  // norm sqrt(2) * limit: finite, but its square is not representable
  REQUIRE_INVALID_ARGUMENT(pairwise_distance(X), "pairwise_distance", "'X' (4 x 3) row 2 has norm",
                           "rescale");
  X.row(2) << limit * S(0.99), S(0), S(0);  // just inside: accepted, finite distances
  const RowMatrix<S> D = pairwise_distance(X);
  CHECK(D.allFinite());
  CHECK(pairwise_distance<SquaredEuclidean>(X).allFinite());
  CHECK(double(D(2, 0)) == Approx(double(limit) * 0.99).epsilon(1e-3));
}

TEST_CASE("labels from std::vector, int64 maps and Eigen vectors give the same results", "[validation][labels]") {
  const RowMatrix<double> X = random_embeddings<double>(12, 3, 90);
  const Eigen::VectorXi eigen_labels = random_labels(12, 3, 91);
  const std::vector<int> ints(eigen_labels.data(), eigen_labels.data() + 12);
  const std::vector<std::int64_t> longs(ints.begin(), ints.end());
  const Eigen::Map<const Eigen::Matrix<std::int64_t, Eigen::Dynamic, 1>> mapped(longs.data(), 12);
  const double expected = batch_hard_triplet_loss(X, eigen_labels, value_only);
  CHECK(batch_hard_triplet_loss(X, ints, value_only) == expected);
  CHECK(batch_hard_triplet_loss(X, longs, value_only) == expected);
  CHECK(batch_hard_triplet_loss(X, mapped, value_only) == expected);
  CHECK(supcon_loss(X, ints, 0.1, value_only) == supcon_loss(X, eigen_labels, 0.1, value_only));
  CHECK(ntxent_loss(X, longs, 0.1, value_only) == ntxent_loss(X, eigen_labels, 0.1, value_only));
  CHECK(mine_triplets(X, ints, 0.2, NegativeKind::Hard).size() == mine_triplets(X, eigen_labels, 0.2, NegativeKind::Hard).size());
  CHECK(negative_stats(X, longs, 0.2).hard == negative_stats(X, eigen_labels, 0.2).hard);
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, std::vector<int>(11, 0)), "batch_all_triplet_loss",
                           "'labels' has length 11", "12");
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, Eigen::MatrixXi::Zero(3, 4)), "'labels' must be a vector",
                           "3 x 4");
}

}  // namespace test_validation
