// negative_stats against a brute-force enumeration of every triplet, the
// partition property, PML's TripletMarginMiner counts, edge cases, bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_negative_stats {

namespace {

// Every triplet (a, p, n) enumerated and classified one by one, on the
// library's own distance matrix: the counts must agree exactly.
template <class S>
struct BruteStats {
  Index kinds[3] = {0, 0, 0};  // hard, semi-hard, easy
  std::vector<Index> per_anchor[3];
  Index positive_count = 0, negative_count = 0;
  double positive_sum = 0, negative_sum = 0;
  S positive_min = std::numeric_limits<S>::max(), positive_max = S(0);
  S negative_min = std::numeric_limits<S>::max(), negative_max = S(0);
};

int slot(NegativeKind k) { return k == NegativeKind::Hard ? 0 : k == NegativeKind::SemiHard ? 1 : 2; }

template <class S>
BruteStats<S> brute_stats(const RowMatrix<S>& D, const Eigen::VectorXi& labels, double margin,
                          TieConvention convention) {
  BruteStats<S> b;
  const Index n = D.rows();
  for (auto& v : b.per_anchor) v.assign(static_cast<std::size_t>(n), 0);
  for (Index a = 0; a < n; ++a) {
    for (Index j = 0; j < n; ++j) {
      if (j == a) continue;
      if (labels(j) == labels(a)) {
        ++b.positive_count;
        b.positive_sum += double(D(a, j));
        b.positive_min = std::min(b.positive_min, D(a, j));
        b.positive_max = std::max(b.positive_max, D(a, j));
      } else {
        ++b.negative_count;
        b.negative_sum += double(D(a, j));
        b.negative_min = std::min(b.negative_min, D(a, j));
        b.negative_max = std::max(b.negative_max, D(a, j));
      }
    }
    for (Index p = 0; p < n; ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      for (Index q = 0; q < n; ++q) {
        if (labels(q) == labels(a)) continue;
        const int k = slot(classify_negative<S>(D(a, p), D(a, q), margin, convention));
        ++b.kinds[k];
        ++b.per_anchor[k][static_cast<std::size_t>(a)];
      }
    }
  }
  return b;
}

template <class S>
void require_matches_brute_force(const NegativeStats<S>& s, const BruteStats<S>& b) {
  CHECK(s.hard == b.kinds[0]);
  CHECK(s.semihard == b.kinds[1]);
  CHECK(s.easy == b.kinds[2]);
  CHECK(s.hard_per_anchor == b.per_anchor[0]);
  CHECK(s.semihard_per_anchor == b.per_anchor[1]);
  CHECK(s.easy_per_anchor == b.per_anchor[2]);
  REQUIRE(s.positive_pairs.count == b.positive_count);
  REQUIRE(s.negative_pairs.count == b.negative_count);
  if (b.positive_count > 0) {
    CHECK(s.positive_pairs.min == b.positive_min);
    CHECK(s.positive_pairs.max == b.positive_max);
    CHECK(double(s.positive_pairs.mean) ==
          Approx(b.positive_sum / double(b.positive_count)).epsilon(value_tolerance<S>()));
  }
  if (b.negative_count > 0) {
    CHECK(s.negative_pairs.min == b.negative_min);
    CHECK(s.negative_pairs.max == b.negative_max);
    CHECK(double(s.negative_pairs.mean) ==
          Approx(b.negative_sum / double(b.negative_count)).epsilon(value_tolerance<S>()));
  }
}

// Number of valid triplets from the class sizes alone: sum over anchors of (K_a - 1)(N - K_a).
Index valid_triplets(const Eigen::VectorXi& labels) {
  Index total = 0;
  for (Index a = 0; a < labels.size(); ++a) {
    const Index k = (labels.array() == labels(a)).count();
    total += (k - 1) * (labels.size() - k);
  }
  return total;
}

std::vector<Eigen::VectorXi> label_layouts() {
  Eigen::VectorXi one_positive_each(12);  // pairs: each anchor has exactly one positive
  for (int i = 0; i < 12; ++i) one_positive_each(i) = i / 2;
  Eigen::VectorXi unbalanced(25);
  for (int i = 0; i < 25; ++i) unbalanced(i) = i < 15 ? 0 : (i < 22 ? 1 : i);
  return {class_blocks(4, 6), random_labels(40, 5, 3), random_labels(17, 2, 4), one_positive_each, unbalanced};
}

}  // namespace

TEMPLATE_TEST_CASE("negative_stats equals a brute-force count of every triplet", "[mining][stats]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 20;
  for (const Eigen::VectorXi& labels : label_layouts()) {
    const RowMatrix<S> X = random_embeddings<S>(labels.size(), 6, ++seed);
    const RowMatrix<S> D = pairwise_distance<M>(X);
    // Margins around the typical spread of each metric's distances.
    const double spread = double(D.maxCoeff());
    for (const double margin : {0.05 * spread, 0.3 * spread, 2.0 * spread}) {
      for (const TieConvention convention : {TieConvention::Library, TieConvention::PytorchMetricLearning}) {
        INFO("N = " << labels.size() << ", margin = " << margin);
        const NegativeStats<S> s = negative_stats<M>(X, labels, margin, convention);
        require_matches_brute_force(s, brute_stats<S>(D, labels, margin, convention));
        CHECK(s.triplets() == valid_triplets(labels));
      }
    }
  }
}

TEMPLATE_TEST_CASE("the classes partition the valid triplets; hard and semi-hard are the ones with loss",
                   "[mining][stats]", float, double) {
  using S = TestType;
  const Eigen::VectorXi labels = random_labels(30, 4, 8);
  const RowMatrix<S> X = random_embeddings<S>(30, 5, 9);
  const RowMatrix<S> D = pairwise_distance(X);
  const double margin = 0.7;
  const NegativeStats<S> s = negative_stats(X, labels, margin);
  CHECK(s.hard + s.semihard + s.easy == valid_triplets(labels));
  CHECK(s.hard > 0);
  CHECK(s.semihard > 0);
  CHECK(s.easy > 0);
  Index with_loss = 0;
  for (Index a = 0; a < 30; ++a)
    for (Index p = 0; p < 30; ++p)
      for (Index n = 0; n < 30; ++n)
        if (p != a && labels(p) == labels(a) && labels(n) != labels(a) &&
            D(a, p) - D(a, n) + static_cast<S>(margin) > S(0))
          ++with_loss;
  CHECK(s.hard + s.semihard == with_loss);
  for (Index a = 0; a < 30; ++a) {
    const Index k = (labels.array() == labels(a)).count();
    CHECK(s.triplets_of(a) == (k - 1) * (30 - k));
  }
  CHECK(s.hard_fraction() + s.semihard_fraction() + s.easy_fraction() == Approx(1.0));
  CHECK(s.hard_fraction() == Approx(double(s.hard) / double(s.triplets())));
}

TEMPLATE_TEST_CASE("negative_stats gives PML TripletMarginMiner's counts in its convention",
                   "[mining][stats][reference]", float, double) {
  using S = TestType;
  struct Case {
    const char* file;
    bool squared, cosine;
  };
  for (const Case& c : {Case{"mining_lattice_euclidean.txt", false, false},
                        Case{"mining_lattice_squared.txt", true, false}, Case{"mining_cosine.txt", false, true}}) {
    INFO(c.file);
    const ReferenceFile ref(c.file);
    const RowMatrix<S> X = ref.matrix<S>("X");
    const Eigen::VectorXi labels = ref.labels("labels");
    const double margin = ref.scalar("margin");
    const TieConvention pml = TieConvention::PytorchMetricLearning;
    const NegativeStats<S> s = c.cosine    ? negative_stats<Cosine>(X, labels, margin, pml)
                               : c.squared ? negative_stats<SquaredEuclidean>(X, labels, margin, pml)
                                           : negative_stats<Euclidean>(X, labels, margin, pml);
    CHECK(double(s.hard) == ref.scalar("pml_hard_count"));
    CHECK(double(s.semihard) == ref.scalar("pml_semihard_count"));
    CHECK(double(s.easy) == ref.scalar("pml_easy_count"));
    CHECK(double(s.hard + s.semihard) == ref.scalar("pml_all_count"));
    if (!c.cosine) {
      // Lattice data has exact ties: the library convention must count differently.
      const NegativeStats<S> lib = c.squared ? negative_stats<SquaredEuclidean>(X, labels, margin)
                                             : negative_stats<Euclidean>(X, labels, margin);
      CHECK(lib.hard < s.hard);
      CHECK(lib.easy > s.easy);
      CHECK(lib.triplets() == s.triplets());
    }
  }
}

// Regression: Eigen's default float packet sqrt is not correctly rounded, so
// equal squared distances could become float distances an ulp apart and break
// the lattice's exact ties d(a,n) = d(a,p); the kernel rounds correctly.
TEST_CASE("float Euclidean keeps exact distance ties (PML counts on lattice data)",
          "[mining][stats][reference]") {
  const ReferenceFile ref("mining_lattice_euclidean.txt");
  const NegativeStats<float> s = negative_stats<Euclidean>(ref.matrix<float>("X"), ref.labels("labels"),
                                                           ref.scalar("margin"), TieConvention::PytorchMetricLearning);
  CHECK(double(s.hard) == ref.scalar("pml_hard_count"));
  CHECK(double(s.semihard) == ref.scalar("pml_semihard_count"));
  CHECK(double(s.easy) == ref.scalar("pml_easy_count"));
}

TEMPLATE_TEST_CASE("negative_stats edge cases: empty sets, coincident points, zero vectors, scale",
                   "[mining][stats]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const double margin = 0.2;
  SECTION("N = 0") {
    const RowMatrix<S> X(0, 4);
    const NegativeStats<S> s = negative_stats<M>(X, Eigen::VectorXi(0), margin);
    CHECK(s.triplets() == 0);
    CHECK(s.hard_per_anchor.empty());
    CHECK(s.positive_pairs.count == 0);
    CHECK(s.hard_fraction() == 0.0);
  }
  SECTION("N = 1") {
    const NegativeStats<S> s = negative_stats<M>(random_embeddings<S>(1, 4, 1), Eigen::VectorXi::Zero(1), margin);
    CHECK(s.triplets() == 0);
    CHECK(s.hard_per_anchor.size() == 1);
    CHECK(s.negative_pairs.count == 0);
    CHECK(s.negative_pairs.mean == S(0));
  }
  SECTION("a single class has positives but no negative") {
    const NegativeStats<S> s = negative_stats<M>(random_embeddings<S>(8, 4, 2), Eigen::VectorXi::Zero(8), margin);
    CHECK(s.triplets() == 0);
    CHECK(s.positive_pairs.count == 56);
    CHECK(s.negative_pairs.count == 0);
    CHECK(s.easy_fraction() == 0.0);
  }
  SECTION("all-unique labels: negatives but no positive pair") {
    Eigen::VectorXi labels(9);
    for (int i = 0; i < 9; ++i) labels(i) = 100 + i;
    const NegativeStats<S> s = negative_stats<M>(random_embeddings<S>(9, 4, 3), labels, margin);
    CHECK(s.triplets() == 0);
    CHECK(s.positive_pairs.count == 0);
    CHECK(s.negative_pairs.count == 72);
    CHECK(std::isfinite(double(s.negative_pairs.mean)));
  }
  SECTION("coincident embeddings: every distance 0, all semi-hard (library), all hard (PML)") {
    RowMatrix<S> X(10, 3);
    X.rowwise() = random_embeddings<S>(1, 3, 4).row(0);
    const Eigen::VectorXi labels = class_blocks(2, 5);
    const NegativeStats<S> s = negative_stats<M>(X, labels, margin);
    CHECK(s.semihard == valid_triplets(labels));
    CHECK(s.negative_pairs.max == S(0));
    const NegativeStats<S> pml = negative_stats<M>(X, labels, margin, TieConvention::PytorchMetricLearning);
    CHECK(pml.hard == valid_triplets(labels));
  }
  SECTION("zero vectors") {
    const RowMatrix<S> X = RowMatrix<S>::Zero(6, 3);
    const NegativeStats<S> s = negative_stats<M>(X, class_blocks(2, 3), margin);
    CHECK(s.triplets() == 36);
    // Cosine: similarity 0 with a zero vector, distance 1 everywhere off the diagonal.
    const S off_diagonal = std::is_same<M, Cosine>::value ? S(1) : S(0);
    CHECK(s.positive_pairs.min == off_diagonal);
    CHECK(s.negative_pairs.max == off_diagonal);
    CHECK(s.semihard == 36);
  }
  SECTION("inputs scaled by 1e-6 and 1e6") {
    const Eigen::VectorXi labels = random_labels(20, 3, 5);
    for (const double scale : {1e-6, 1e6}) {
      const RowMatrix<S> X = random_embeddings<S>(20, 4, 6, scale);
      const RowMatrix<S> D = pairwise_distance<M>(X);
      const double m = 0.3 * double(D.maxCoeff());
      const NegativeStats<S> s = negative_stats<M>(X, labels, m);
      CHECK(std::isfinite(double(s.positive_pairs.mean)));
      CHECK(std::isfinite(double(s.negative_pairs.max)));
      require_matches_brute_force(s, brute_stats<S>(D, labels, m, TieConvention::Library));
      if (std::is_same<M, Cosine>::value) {
        // Cosine is scale-invariant: the counts of the unscaled batch.
        const NegativeStats<S> unscaled = negative_stats<M>(random_embeddings<S>(20, 4, 6), labels, m);
        CHECK(s.hard == unscaled.hard);
        CHECK(s.easy == unscaled.easy);
      }
    }
  }
}

TEMPLATE_TEST_CASE("negative_stats rejects bad input", "[mining][stats]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(6, 3, 1);
  REQUIRE_INVALID_ARGUMENT(negative_stats(X, Eigen::VectorXi::Zero(5), 0.2), "negative_stats", "labels", "5",
                           "6");
  REQUIRE_INVALID_ARGUMENT(negative_stats(X, Eigen::VectorXi::Zero(6), -1.0), "negative_stats", "margin", ">= 0");
  REQUIRE_INVALID_ARGUMENT(negative_stats(X, Eigen::VectorXi::Zero(6), std::nan("")), "margin", "finite");
  RowMatrix<S> bad = X;
  bad(4, 2) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(negative_stats(bad, Eigen::VectorXi::Zero(6), 0.2), "negative_stats", "X", "row 4");
}

}  // namespace test_negative_stats
