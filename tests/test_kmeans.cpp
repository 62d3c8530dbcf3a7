// k-means (evaluation/kmeans.hpp) and the clustering metrics built on it:
// well-separated clusters found exactly, seeded determinism, the k-means++
// and Lloyd steps' invariants, bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/evaluation/clustering_metrics.hpp>
#include <contrastive/evaluation/kmeans.hpp>

#include <cmath>
#include <random>
#include <set>

using namespace contrastive;
using namespace contrastive_test;

namespace test_kmeans {

namespace {

// `classes` tight blobs (spread 0.05) around centers 10 apart, rows shuffled by label.
template <class Scalar>
RowMatrix<Scalar> blobs(const Eigen::VectorXi& labels, int classes, Index dims, unsigned seed) {
  const RowMatrix<double> centers = random_embeddings<double>(classes, dims, seed, 10.0);
  const RowMatrix<double> noise = random_embeddings<double>(labels.size(), dims, seed + 1, 0.05);
  RowMatrix<Scalar> X(labels.size(), dims);
  for (Index i = 0; i < labels.size(); ++i) X.row(i) = (centers.row(labels(i)) + noise.row(i)).template cast<Scalar>();
  return X;
}

}  // namespace

TEMPLATE_TEST_CASE("kmeans: well-separated blobs are recovered exactly (NMI = AMI = 1)", "[kmeans]", float, double) {
  using S = TestType;
  const Eigen::VectorXi y = random_labels(300, 7, 5);
  const RowMatrix<S> X = blobs<S>(y, 7, 6, 11);
  KMeansOptions o;
  o.n_init = 3;
  const KMeansResult<S> r = kmeans(X, 7, o);
  CHECK(normalized_mutual_info(y, r.labels) == Approx(1.0).margin(1e-12));
  CHECK(adjusted_mutual_info(y, r.labels) == Approx(1.0).margin(1e-12));
  // Each center is the mean of its rows; the inertia is the sum of squared distances to them.
  double inertia = 0;
  for (Index j = 0; j < 7; ++j) {
    Eigen::RowVectorXd sum = Eigen::RowVectorXd::Zero(6);
    Index n = 0;
    for (Index i = 0; i < X.rows(); ++i) {
      if (r.labels(i) != j) continue;
      sum += X.row(i).template cast<double>();
      ++n;
    }
    REQUIRE(n > 0);
    CHECK((sum / double(n) - r.centers.row(j).template cast<double>()).norm() < value_tolerance<S>() * 10);
  }
  for (Index i = 0; i < X.rows(); ++i)
    inertia += (X.row(i).template cast<double>() - r.centers.row(r.labels(i)).template cast<double>()).squaredNorm();
  CHECK(r.inertia == Approx(inertia).epsilon(1e-4));
  const ClusteringMetrics c = clustering_metrics(X, y, o);
  CHECK(c.clusters == 7);
  CHECK(c.nmi == Approx(1.0).margin(1e-12));
  CHECK(c.ami == Approx(1.0).margin(1e-12));
}

TEST_CASE("kmeans: a seed gives the same clusters; n_init keeps the lowest inertia", "[kmeans]") {
  const RowMatrix<double> X = random_embeddings<double>(200, 3, 8);
  KMeansOptions o;
  o.seed = 42;
  const KMeansResult<double> a = kmeans(X, 5, o), b = kmeans(X, 5, o);
  CHECK(a.labels == b.labels);
  CHECK(a.centers == b.centers);
  CHECK(a.inertia == b.inertia);
  // Structureless data: different seeds find different local minima; more runs never do worse.
  std::set<double> inertias;
  double best = 1e300;
  for (std::uint64_t s = 0; s < 6; ++s) {
    o.seed = s;
    o.n_init = 1;
    const double inertia = kmeans(X, 5, o).inertia;
    inertias.insert(inertia);
    best = std::min(best, inertia);
  }
  CHECK(inertias.size() > 1);
  o.seed = 0;
  o.n_init = 6;
  const KMeansResult<double> many = kmeans(X, 5, o);
  KMeansOptions one = o;
  one.n_init = 1;
  CHECK(many.inertia <= kmeans(X, 5, one).inertia);
  CHECK(many.iterations >= 1);
  CHECK(many.iterations <= o.max_iterations);
}

TEST_CASE("kmeans: every cluster is used, also with duplicate rows and k = N", "[kmeans]") {
  RowMatrix<double> X(12, 2);
  for (Index i = 0; i < 12; ++i) X.row(i) << double(i % 4), 0.0;  // 4 distinct points, each 3 times
  const KMeansResult<double> r = kmeans(X, 4);
  std::set<Index> used(r.labels.data(), r.labels.data() + r.labels.size());
  CHECK(used.size() == 4);
  CHECK(r.inertia == 0);
  const KMeansResult<double> all = kmeans(X, 12);
  std::set<Index> used_all(all.labels.data(), all.labels.data() + all.labels.size());
  CHECK(used_all.size() >= 4);
  CHECK(all.inertia == 0);
  const KMeansResult<double> single = kmeans(X, 1);
  CHECK((single.centers.row(0) - X.colwise().mean()).norm() < 1e-15);
}

TEST_CASE("kmeans: bad input names the argument", "[kmeans]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 2, 1);
  REQUIRE_INVALID_ARGUMENT(kmeans(X, 0), "contrastive::kmeans", "'clusters'", "1..6");
  REQUIRE_INVALID_ARGUMENT(kmeans(X, 7), "contrastive::kmeans", "'clusters'", "got 7");
  REQUIRE_INVALID_ARGUMENT(kmeans(RowMatrix<double>(0, 2), 1), "'X' is empty");
  KMeansOptions o;
  o.n_init = 0;
  REQUIRE_INVALID_ARGUMENT(kmeans(X, 2, o), "n_init");
  o = {};
  o.tolerance = -1;
  REQUIRE_INVALID_ARGUMENT(kmeans(X, 2, o), "tolerance");
  REQUIRE_INVALID_ARGUMENT(clustering_metrics(X, random_labels(5, 2, 1)), "contrastive::clustering_metrics",
                           "'labels'", "length 5");
}

}  // namespace test_kmeans
