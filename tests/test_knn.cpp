// The blocked exact k-NN (evaluation/knn.hpp): brute force with ties broken by
// index, tiles under tiny budgets equal to one tile, self-match exclusion, bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/evaluation/knn.hpp>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_knn {

namespace {

// Small integer coordinates: every distance (and Gram entry) is exact in float
// and double, and many distances tie.
template <class Scalar>
RowMatrix<Scalar> lattice(Index rows, Index cols, unsigned seed) {
  std::mt19937 gen(seed);
  RowMatrix<Scalar> X(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) X(i, j) = static_cast<Scalar>(static_cast<int>(gen() % 5) - 2);
  return X;
}

enum class Kind { Euclidean, SquaredEuclidean, Dot, Cosine };

// The exact order value in double: squared distance, or minus the dot product, or 1 - cos.
double order_value(Kind kind, const RowMatrix<double>& Q, Index i, const RowMatrix<double>& R, Index j) {
  switch (kind) {
    case Kind::Euclidean:
    case Kind::SquaredEuclidean: return (Q.row(i) - R.row(j)).squaredNorm();
    case Kind::Dot: return -Q.row(i).dot(R.row(j));
    case Kind::Cosine: return reference_distance(Ref::Cosine, Q.row(i), R.row(j));
  }
  return 0;
}

// Brute force: every reference (but the query's own row when `self`), sorted by (value, index).
std::vector<std::vector<Index>> brute_force(Kind kind, const RowMatrix<double>& Q, const RowMatrix<double>& R,
                                            Index k, bool self) {
  std::vector<std::vector<Index>> out;
  for (Index i = 0; i < Q.rows(); ++i) {
    std::vector<Index> ids;
    for (Index j = 0; j < R.rows(); ++j)
      if (!(self && j == i)) ids.push_back(j);
    std::vector<double> v(static_cast<std::size_t>(R.rows()));
    for (Index j = 0; j < R.rows(); ++j) v[static_cast<std::size_t>(j)] = order_value(kind, Q, i, R, j);
    std::stable_sort(ids.begin(), ids.end(),
                     [&](Index a, Index b) { return v[static_cast<std::size_t>(a)] < v[static_cast<std::size_t>(b)]; });
    ids.resize(static_cast<std::size_t>(k));
    out.push_back(ids);
  }
  return out;
}

template <class Metric, class Scalar>
KnnResult<Scalar> run(const RowMatrix<Scalar>& Q, const RowMatrix<Scalar>& R, Index k, KnnOptions o = {}) {
  return knn<Metric>(Q, R, k, o);
}

}  // namespace

TEMPLATE_TEST_CASE("knn: exact order with index tie-break on lattice data (exact ties)", "[knn]", float, double) {
  using S = TestType;
  const RowMatrix<S> Q = lattice<S>(37, 4, 1);
  const RowMatrix<S> R = lattice<S>(301, 4, 2);
  const RowMatrix<double> Qd = Q.template cast<double>(), Rd = R.template cast<double>();
  const Index k = 9;
  for (Kind kind : {Kind::Euclidean, Kind::SquaredEuclidean, Kind::Dot}) {
    INFO("kind " << static_cast<int>(kind));
    KnnResult<S> r = kind == Kind::Euclidean          ? run<Euclidean>(Q, R, k)
                     : kind == Kind::SquaredEuclidean ? run<SquaredEuclidean>(Q, R, k)
                                                      : run<DotProduct>(Q, R, k);
    const auto expected = brute_force(kind, Qd, Rd, k, false);
    for (Index i = 0; i < Q.rows(); ++i) {
      for (Index j = 0; j < k; ++j) {
        REQUIRE(r.indices(i, j) == expected[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
        const double v = order_value(kind, Qd, i, Rd, r.indices(i, j));
        const double d = kind == Kind::Euclidean ? std::sqrt(v) : v;
        REQUIRE(r.distances(i, j) == static_cast<S>(d));
      }
    }
  }
}

TEMPLATE_TEST_CASE("knn: random data, every metric, against brute-force distances in double", "[knn]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> Q = random_embeddings<S>(23, 6, 3);
  const RowMatrix<S> R = random_embeddings<S>(150, 6, 4);
  const RowMatrix<double> Qd = Q.template cast<double>(), Rd = R.template cast<double>();
  const Index k = 12;
  for (Kind kind : {Kind::Euclidean, Kind::SquaredEuclidean, Kind::Dot, Kind::Cosine}) {
    INFO("kind " << static_cast<int>(kind));
    KnnResult<S> r = kind == Kind::Euclidean          ? run<Euclidean>(Q, R, k)
                     : kind == Kind::SquaredEuclidean ? run<SquaredEuclidean>(Q, R, k)
                     : kind == Kind::Dot              ? run<DotProduct>(Q, R, k)
                                                      : run<Cosine>(Q, R, k);
    const auto expected = brute_force(kind, Qd, Rd, k, false);
    for (Index i = 0; i < Q.rows(); ++i) {
      for (Index j = 0; j < k; ++j) {
        // The j-th neighbour's exact value is the j-th smallest one (equal up to float rounding).
        const double got = order_value(kind, Qd, i, Rd, r.indices(i, j));
        const double want = order_value(kind, Qd, i, Rd, expected[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
        REQUIRE(std::abs(got - want) <= value_tolerance<S>() * (1 + std::abs(want)));
        const double d = kind == Kind::Euclidean ? std::sqrt(got) : got;
        REQUIRE(std::abs(static_cast<double>(r.distances(i, j)) - d) <= value_tolerance<S>() * (1 + std::abs(d)));
        if (j > 0) REQUIRE(r.distances(i, j - 1) <= r.distances(i, j));
      }
    }
  }
}

// k in the hundreds to every reference: a query's candidates fill their buffer (4 k) and are compacted
// several times, by a sample quantile and exactly, with many distances equal to the threshold on the
// lattice; 3001 references end in a partial tile and a partial chunk of 16.
TEMPLATE_TEST_CASE("knn: large k, compactions and ties at the threshold, up to every reference", "[knn]", float,
                   double) {
  using S = TestType;
  for (int data = 0; data < 2; ++data) {
    const RowMatrix<S> R = data == 0 ? lattice<S>(3001, 3, 11) : random_embeddings<S>(3001, 4, 11);
    const RowMatrix<S> Qo = data == 0 ? lattice<S>(12, 3, 12) : random_embeddings<S>(12, 4, 12);
    for (bool self : {false, true}) {
      const RowMatrix<S> Q = self ? RowMatrix<S>(R.topRows(12)) : Qo;
      const RowMatrix<double> Qd = Q.template cast<double>(), Rd = R.template cast<double>();
      KnnOptions o;
      o.ref_includes_query = self;
      for (Index k : {Index(300), Index(700), Index(1500), R.rows() - 1, R.rows()}) {
        if (self && k == R.rows()) continue;
        for (Kind kind : {Kind::Euclidean, Kind::SquaredEuclidean, Kind::Dot, Kind::Cosine}) {
          if (data == 0 && kind == Kind::Cosine) continue;  // its float rounding decides lattice ties
          INFO("data " << data << " self " << self << " k " << k << " kind " << static_cast<int>(kind));
          const KnnResult<S> r = kind == Kind::Euclidean          ? run<Euclidean>(Q, R, k, o)
                                 : kind == Kind::SquaredEuclidean ? run<SquaredEuclidean>(Q, R, k, o)
                                 : kind == Kind::Dot              ? run<DotProduct>(Q, R, k, o)
                                                                  : run<Cosine>(Q, R, k, o);
          const auto expected = brute_force(kind, Qd, Rd, k, self);
          for (Index i = 0; i < Q.rows(); ++i) {
            for (Index j = 0; j < k; ++j) {
              const Index want = expected[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)];
              const double got_v = order_value(kind, Qd, i, Rd, r.indices(i, j));
              const double d = kind == Kind::Euclidean ? std::sqrt(got_v) : got_v;
              if (data == 0) {
                // Exact values: the very index (ties by index) and the exact distance.
                REQUIRE(r.indices(i, j) == want);
                REQUIRE(r.distances(i, j) == static_cast<S>(d));
              } else {
                const double want_v = order_value(kind, Qd, i, Rd, want);
                REQUIRE(std::abs(got_v - want_v) <= value_tolerance<S>() * (1 + std::abs(want_v)));
                REQUIRE(std::abs(static_cast<double>(r.distances(i, j)) - d) <= value_tolerance<S>() * (1 + std::abs(d)));
              }
              if (j > 0) {
                REQUIRE(r.distances(i, j - 1) <= r.distances(i, j));
                if (r.distances(i, j - 1) == r.distances(i, j)) REQUIRE(r.indices(i, j - 1) < r.indices(i, j));
              }
            }
          }
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("knn: query blocks and budgets do not change a bit", "[knn]", float, double) {
  using S = TestType;
  for (int data = 0; data < 2; ++data) {
    const RowMatrix<S> Q = data == 0 ? lattice<S>(45, 5, 7) : random_embeddings<S>(45, 5, 7);
    const RowMatrix<S> R = data == 0 ? lattice<S>(1100, 5, 8) : random_embeddings<S>(1100, 5, 8);
    const KnnResult<S> whole = run<Euclidean>(Q, R, 10);
    const KnnResult<S> whole_cos = run<Cosine>(Q, R, 10);
    for (Index qb : {1, 7, 20, 45}) {
      INFO("data " << data << " query block " << qb);
      KnnOptions o;
      o.query_block_rows = qb;
      const KnnResult<S> tiled = run<Euclidean>(Q, R, 10, o);
      CHECK(tiled.indices == whole.indices);
      CHECK(tiled.distances == whole.distances);
      const KnnResult<S> tiled_cos = run<Cosine>(Q, R, 10, o);
      CHECK(tiled_cos.indices == whole_cos.indices);
      CHECK(tiled_cos.distances == whole_cos.distances);
    }
    // A budget for three queries' buffers and tile rows at a time.
    KnnOptions o;
    o.memory_budget_bytes = 3 * (2 * 10 * sizeof(detail::Neighbour<S>) + 512 * sizeof(S));
    const KnnResult<S> small = run<Euclidean>(Q, R, 10, o);
    CHECK(small.indices == whole.indices);
    CHECK(small.distances == whole.distances);
  }
}

TEMPLATE_TEST_CASE("knn: narrow reference tiles on exact (lattice) data equal one tile", "[knn]", float, double) {
  using S = TestType;
  const RowMatrix<S> Q = lattice<S>(30, 5, 17);
  const RowMatrix<S> R = lattice<S>(130, 5, 18);
  const KnnResult<S> whole = run<Euclidean>(Q, R, 10);
  const KnnResult<S> dot = run<DotProduct>(Q, R, 10);
  for (Index rb : {1, 3, 21, 64}) {
    INFO("reference block " << rb);
    KnnOptions o;
    o.reference_block_rows = rb;
    o.query_block_rows = 4;
    CHECK(run<Euclidean>(Q, R, 10, o).indices == whole.indices);
    CHECK(run<Euclidean>(Q, R, 10, o).distances == whole.distances);
    CHECK(run<DotProduct>(Q, R, 10, o).indices == dot.indices);
  }
}

TEST_CASE("knn: queries inside the reference never return themselves", "[knn]") {
  const RowMatrix<double> R = lattice<double>(80, 3, 11);
  const RowMatrix<double> Q = R.topRows(30);
  KnnOptions o;
  o.ref_includes_query = true;
  const KnnResult<double> r = knn(Q, R, 79, o);  // every other reference
  const auto expected = brute_force(Kind::Euclidean, Q, R, 79, true);
  for (Index i = 0; i < Q.rows(); ++i) {
    for (Index j = 0; j < 79; ++j) {
      REQUIRE(r.indices(i, j) != i);
      REQUIRE(r.indices(i, j) == expected[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
    }
  }
  // The lattice has duplicates of some queries: they come first, at distance 0.
  o.query_block_rows = 4;
  o.reference_block_rows = 5;
  CHECK(knn(Q, R, 79, o).indices == r.indices);
}

TEST_CASE("knn: run-time metrics give the compile-time ones' neighbours", "[knn]") {
  const RowMatrix<float> Q = random_embeddings<float>(25, 4, 21);
  const RowMatrix<float> R = random_embeddings<float>(60, 4, 22);
  CHECK(knn(Q, R, 5, AnyMetric::from_name("cosine")).indices == knn<Cosine>(Q, R, 5).indices);
  CHECK(knn(Q, R, 5, AnyMetric::from_name("euclidean")).distances == knn<Euclidean>(Q, R, 5).distances);
  // A column-major input and a row-major Map of the same numbers.
  const Eigen::MatrixXf Qc = Q;
  const Eigen::Map<const RowMatrix<float>> Rm(R.data(), R.rows(), R.cols());
  CHECK(knn(Qc, Rm, 5).indices == knn(Q, R, 5).indices);
}

TEST_CASE("knn: bad input names the argument", "[knn]") {
  const RowMatrix<double> Q = random_embeddings<double>(5, 3, 1);
  const RowMatrix<double> R = random_embeddings<double>(8, 3, 2);
  REQUIRE_INVALID_ARGUMENT(knn(Q, R, 0), "contrastive::knn", "'k'", ">= 1");
  REQUIRE_INVALID_ARGUMENT(knn(Q, R, -2), "contrastive::knn", "'k'");
  REQUIRE_INVALID_ARGUMENT(knn(Q, R, 9), "contrastive::knn", "'k'", "(8)");
  KnnOptions self;
  self.ref_includes_query = true;
  const RowMatrix<double> QR = R.topRows(5);
  REQUIRE_INVALID_ARGUMENT(knn(QR, R, 8, self), "'k'", "(7)");
  REQUIRE_INVALID_ARGUMENT(knn(Q, R, 2, self), "ref_includes_query", "must equal 'queries'");
  REQUIRE_INVALID_ARGUMENT(knn(R, Q, 2, self), "ref_includes_query", "'queries' has 8 rows");
  REQUIRE_INVALID_ARGUMENT(knn(RowMatrix<double>(0, 3), R, 1), "'queries' is empty");
  REQUIRE_INVALID_ARGUMENT(knn(Q, RowMatrix<double>(0, 3), 1), "'references' is empty");
  REQUIRE_INVALID_ARGUMENT(knn(Q, random_embeddings<double>(8, 4, 2), 1), "'queries'", "'references'", "columns");
  KnnOptions tiny;
  tiny.memory_budget_bytes = 10;
  REQUIRE_INVALID_ARGUMENT(knn(Q, R, 2, tiny), "memory_budget_bytes", "too small");
  KnnOptions negative;
  negative.reference_block_rows = -1;
  REQUIRE_INVALID_ARGUMENT(knn(Q, R, 2, negative), "reference_block_rows");
  RowMatrix<double> bad = R;
  bad(3, 1) = std::nan("");
  REQUIRE_INVALID_ARGUMENT(knn(Q, bad, 2), "'references'", "row 3");
}

}  // namespace test_knn
