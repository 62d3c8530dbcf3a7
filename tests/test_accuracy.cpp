// The Gram trick cancels for near-duplicate rows; the metrics recompute those
// pairs directly. Every float Euclidean distance, down to pairs 1e-6 apart
// relative to their norms, must be within 1e-4 relative error of the exact
// distance of the same float inputs (computed in double).
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <random>

using namespace contrastive;
using namespace contrastive_test;

namespace test_accuracy {

namespace {

// Rows in groups around random centres of norm ~ `centre_scale`, each group's
// members offset by a relative separation drawn log-uniformly in [1e-7, 1].
RowMatrix<float> near_duplicate_batch(Index groups, Index per_group, Index dim, unsigned seed,
                                      double centre_scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> log_sep(-7, 0);
  RowMatrix<float> X(groups * per_group, dim);
  for (Index g = 0; g < groups; ++g) {
    Eigen::VectorXd centre(dim);
    for (Index k = 0; k < dim; ++k) centre(k) = centre_scale * normal(gen);
    for (Index m = 0; m < per_group; ++m) {
      const double sep = std::pow(10.0, log_sep(gen)) * centre.norm() / std::sqrt(double(dim));
      for (Index k = 0; k < dim; ++k)
        X(g * per_group + m, k) = static_cast<float>(centre(k) + sep * normal(gen));
    }
  }
  return X;
}

double worst_relative_error(const RowMatrix<float>& D, const RowMatrix<float>& X,
                            const RowMatrix<float>& Y, Ref metric) {
  double worst = 0;
  for (Index i = 0; i < D.rows(); ++i)
    for (Index j = 0; j < D.cols(); ++j) {
      const double exact = reference_distance(metric, X.row(i), Y.row(j));
      if (exact == 0) {
        REQUIRE(D(i, j) == 0.0f);
        continue;
      }
      worst = std::max(worst, std::abs(double(D(i, j)) - exact) / exact);
    }
  return worst;
}

}  // namespace

TEST_CASE("float Euclidean distances of near duplicates are accurate to 1e-4", "[accuracy]") {
  for (double scale : {1e-3, 1.0, 1e3}) {
    for (Index dim : {3, 64, 512}) {
      // Split each group between X and Y so the two-set form sees near duplicates too.
      const RowMatrix<float> B = near_duplicate_batch(6, 13, dim, 11, scale);
      RowMatrix<float> X(6 * 8, dim), Y(6 * 5, dim);
      for (Index i = 0, nx = 0, ny = 0; i < B.rows(); ++i) {
        if (i % 13 < 8) X.row(nx++) = B.row(i); else Y.row(ny++) = B.row(i);
      }
      const double sym = worst_relative_error(pairwise_distance<Euclidean>(X), X, X, Ref::Euclidean);
      const double cross = worst_relative_error(pairwise_distance<Euclidean>(X, Y), X, Y, Ref::Euclidean);
      INFO("scale " << scale << ", dim " << dim << ": worst relative error " << sym << " / " << cross);
      CHECK(sym <= 1e-4);
      CHECK(cross <= 1e-4);
    }
  }
}

TEST_CASE("a pair 1e-6 apart relative to its norm keeps its distance in float", "[accuracy]") {
  RowMatrix<float> X = random_embeddings<float>(4, 32, 13, 100.0);
  const Eigen::RowVectorXf direction = random_embeddings<float>(1, 32, 14).row(0).normalized();
  X.row(1) = X.row(0) + 1e-6f * X.row(0).norm() * direction;
  const RowMatrix<float> D = pairwise_distance<Euclidean>(X);
  const double exact = reference_distance(Ref::Euclidean, X.row(0), X.row(1));
  REQUIRE(exact > 0);
  CHECK(std::abs(D(0, 1) - exact) / exact <= 1e-4);
  const RowMatrix<float> D2 = pairwise_distance<SquaredEuclidean>(X);
  const double exact2 = reference_distance(Ref::SquaredEuclidean, X.row(0), X.row(1));
  CHECK(std::abs(D2(0, 1) - exact2) / exact2 <= 2e-4);
}

TEST_CASE("near-duplicate gradients are accurate in float", "[accuracy][gradient]") {
  // The backward's product form cancels for near duplicates as the forward
  // does; compare the float gradient against the same computation in double.
  for (double rel : {1e-6, 1e-4, 1e-2}) {
    RowMatrix<float> X = random_embeddings<float>(3, 16, 15, 10.0);
    const Eigen::RowVectorXf direction = random_embeddings<float>(1, 16, 16).row(0).normalized();
    X.row(1) = X.row(0) + float(rel) * X.row(0).norm() * direction;
    RowMatrix<float> dD = RowMatrix<float>::Zero(3, 3);
    dD(0, 1) = 1;
    dD(1, 2) = 0.5f;
    const RowMatrix<double> Xd = X.cast<double>();
    const RowMatrix<double> dDd = dD.cast<double>();
    const RowMatrix<double> expected = pairwise_distance_backward<Euclidean>(Xd, dDd);
    const RowMatrix<float> got = pairwise_distance_backward<Euclidean>(X, dD);
    const double err = (got.cast<double>() - expected).norm() / expected.norm();
    INFO("relative separation " << rel << ": gradient relative error " << err);
    CHECK(err <= 1e-4);
    const RowMatrix<double> expected_cos = pairwise_distance_backward<Cosine>(Xd, dDd);
    const RowMatrix<float> got_cos = pairwise_distance_backward<Cosine>(X, dD);
    const double err_cos = (got_cos.cast<double>() - expected_cos).norm() / expected_cos.norm();
    INFO("cosine gradient relative error " << err_cos);
    CHECK(err_cos <= 1e-3);
  }
}

TEST_CASE("random data flags no pair for recomputation", "[accuracy]") {
  // The fix-up must cost nothing on data without near duplicates.
  const RowMatrix<float> X = random_embeddings<float>(200, 64, 17);
  const ConstRowRef<float> x(X);
  const auto forward = Euclidean::pairwise<float>(x, x, true);
  CHECK(forward.near_pairs.empty());
}

}  // namespace test_accuracy
