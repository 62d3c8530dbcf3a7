// The negative classifier: the decided rule, its boundaries under both tie
// conventions, the absolute form, the kinds set, and bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <type_traits>

using namespace contrastive;
using namespace contrastive_test;

namespace test_negative_kind {

TEMPLATE_TEST_CASE("classify_negative follows the decided rule at and around its boundaries",
                   "[mining][classifier]", float, double) {
  using S = TestType;
  const double m = 0.5;
  // Library: hard d_an < d_ap; semi-hard d_ap <= d_an < d_ap + m; easy d_an >= d_ap + m.
  CHECK(classify_negative<S>(S(1), S(0.75), m) == NegativeKind::Hard);
  CHECK(classify_negative<S>(S(1), S(1), m) == NegativeKind::SemiHard);  // tie with the positive
  CHECK(classify_negative<S>(S(1), S(1.25), m) == NegativeKind::SemiHard);
  CHECK(classify_negative<S>(S(1), S(1.5), m) == NegativeKind::Easy);  // exactly d_ap + m
  CHECK(classify_negative<S>(S(1), S(2), m) == NegativeKind::Easy);
  CHECK(classify_negative<S>(S(0), S(0), m) == NegativeKind::SemiHard);
  // PML TripletMarginMiner: hard d_an - d_ap <= 0; semi-hard 0 < . <= m; easy > m.
  const TieConvention pml = TieConvention::PytorchMetricLearning;
  CHECK(classify_negative<S>(S(1), S(0.75), m, pml) == NegativeKind::Hard);
  CHECK(classify_negative<S>(S(1), S(1), m, pml) == NegativeKind::Hard);
  CHECK(classify_negative<S>(S(1), S(1.25), m, pml) == NegativeKind::SemiHard);
  CHECK(classify_negative<S>(S(1), S(1.5), m, pml) == NegativeKind::SemiHard);
  CHECK(classify_negative<S>(S(1), S(2), m, pml) == NegativeKind::Easy);
  CHECK(classify_negative<S>(S(0), S(0), m, pml) == NegativeKind::Hard);
}

TEMPLATE_TEST_CASE("every negative is in one class, and hard or semi-hard exactly when the hinge is positive",
                   "[mining][classifier]", float, double) {
  using S = TestType;
  std::mt19937 gen(11);
  std::uniform_real_distribution<double> uniform(0.0, 3.0);
  int counts[3] = {0, 0, 0};
  for (int t = 0; t < 20000; ++t) {
    const S d_ap = static_cast<S>(uniform(gen)), d_an = static_cast<S>(uniform(gen));
    const double margin = 0.05 + uniform(gen) / 3;
    const NegativeKind kind = classify_negative<S>(d_ap, d_an, margin);
    const NegativeKinds violating = NegativeKind::Hard | NegativeKind::SemiHard;
    const double hinge = double(d_ap) - double(d_an) + double(static_cast<S>(margin));
    // Away from the boundary (rounding), the hinge decides.
    if (std::abs(hinge) > 1e-5) CHECK((hinge > 0) == violating.contains(kind));
    if (std::abs(double(d_an) - double(d_ap)) > 1e-5) CHECK((kind == NegativeKind::Hard) == (d_an < d_ap));
    // The two conventions differ only on the boundaries.
    if (std::abs(hinge) > 1e-5 && std::abs(double(d_an) - double(d_ap)) > 1e-5)
      CHECK(classify_negative<S>(d_ap, d_an, margin, TieConvention::PytorchMetricLearning) == kind);
    ++counts[kind == NegativeKind::Hard ? 0 : kind == NegativeKind::SemiHard ? 1 : 2];
  }
  CHECK(counts[0] > 0);
  CHECK(counts[1] > 0);
  CHECK(counts[2] > 0);
}

TEMPLATE_TEST_CASE("the classifier agrees with the losses' hinge bit for bit when distances dwarf the margin",
                   "[mining][classifier]", float, double) {
  using S = TestType;
  // At 1e7 (float) or 1e17 (double) one ulp is >= 1 while the margin is 0.1:
  // d_ap + m rounds to d_ap, yet a tie still has hinge (d_ap - d_an) + m = m > 0.
  const S big = std::is_same<S, float>::value ? S(1e7) : S(1e17);
  const S next = std::nextafter(big, std::numeric_limits<S>::infinity());
  CHECK(classify_negative<S>(big, big, 0.1) == NegativeKind::SemiHard);
  CHECK(classify_negative<S>(big, next, 0.1) == NegativeKind::Easy);
  CHECK(classify_negative<S>(next, big, 0.1) == NegativeKind::Hard);

  // Random pairs a few ulps apart at every scale: hard or semi-hard exactly
  // when the term the triplet losses compute is positive.
  std::mt19937 gen(5);
  std::uniform_int_distribution<int> ulps(-4, 4);
  const NegativeKinds violating = NegativeKind::Hard | NegativeKind::SemiHard;
  for (const double scale : {1e-3, 1.0, 1e4, 1e7, 1e12, 1e17, 1e30}) {
    for (const double margin : {1e-3, 0.1, 1.0}) {
      for (int t = 0; t < 200; ++t) {
        const S d_ap = static_cast<S>(scale);
        S d_an = d_ap;
        for (int k = ulps(gen); k != 0; k += k > 0 ? -1 : 1)
          d_an = std::nextafter(d_an, k > 0 ? std::numeric_limits<S>::infinity() : S(0));
        const S m = static_cast<S>(margin);
        const bool active = detail::triplet_term<S>(d_ap, d_an, m, false).value > S(0);
        CHECK(violating.contains(classify_negative<S>(d_ap, d_an, margin)) == active);
      }
    }
  }
}

TEST_CASE("negative_stats, mine_triplets and batch_all_triplet_loss agree on a tie far beyond the margin",
          "[mining][classifier]") {
  // Anchor 0 at the origin; its positive (row 1) and negative (row 2) are both 1e7 away.
  RowMatrix<float> X(3, 1);
  X << 0.0f, 1e7f, -1e7f;
  const Eigen::VectorXi labels = (Eigen::VectorXi(3) << 0, 0, 1).finished();
  const double margin = 0.1;
  const NegativeStats<float> stats = negative_stats(X, labels, margin);
  CHECK(stats.semihard == 1);  // (0, 1, 2): hinge 0.1
  CHECK(stats.easy == 1);      // (1, 0, 2): d_an = 2e7
  CHECK(stats.hard == 0);
  const Triplets mined = mine_triplets(X, labels, margin, NegativeKind::Hard | NegativeKind::SemiHard);
  REQUIRE(mined.size() == 1);
  CHECK(mined.anchor[0] == 0);
  CHECK(mined.negative[0] == 2);
  TripletOptions options;
  options.margin = margin;
  options.reduction = Reduction::Sum;
  CHECK(batch_all_triplet_loss(X, labels, options).value == Approx(0.1f));
}

TEMPLATE_TEST_CASE("classify_negative_absolute uses the contrastive pair margins", "[mining][classifier]", float,
                   double) {
  using S = TestType;
  CHECK(classify_negative_absolute<S>(S(0.1), 0.25, 1.0) == NegativeKind::Hard);
  CHECK(classify_negative_absolute<S>(S(0.25), 0.25, 1.0) == NegativeKind::SemiHard);
  CHECK(classify_negative_absolute<S>(S(0.75), 0.25, 1.0) == NegativeKind::SemiHard);
  CHECK(classify_negative_absolute<S>(S(1.0), 0.25, 1.0) == NegativeKind::Easy);
  CHECK(classify_negative_absolute<S>(S(3.0), 0.25, 1.0) == NegativeKind::Easy);
  // Equal margins: no semi-hard band.
  CHECK(classify_negative_absolute<S>(S(0.5), 0.5, 0.5) == NegativeKind::Easy);
  CHECK(classify_negative_absolute<S>(S(0.4), 0.5, 0.5) == NegativeKind::Hard);
  REQUIRE_INVALID_ARGUMENT(classify_negative_absolute<S>(S(1), 1.0, 0.5), "classify_negative_absolute",
                           "pos_margin", "neg_margin");
  REQUIRE_INVALID_ARGUMENT(classify_negative_absolute<S>(S(1), std::nan(""), 0.5), "pos_margin");
  REQUIRE_INVALID_ARGUMENT(classify_negative_absolute<S>(std::numeric_limits<S>::infinity(), 0.0, 0.5), "d_an");
}

TEMPLATE_TEST_CASE("classify_negative rejects a negative margin and non-finite distances",
                   "[mining][classifier]", float, double) {
  using S = TestType;
  REQUIRE_INVALID_ARGUMENT(classify_negative<S>(S(1), S(2), -0.5), "classify_negative", "margin", "-0.5", ">= 0");
  REQUIRE_INVALID_ARGUMENT(classify_negative<S>(S(1), S(2), std::nan("")), "margin");
  REQUIRE_INVALID_ARGUMENT(classify_negative<S>(std::numeric_limits<S>::quiet_NaN(), S(2), 0.5), "d_ap");
  REQUIRE_INVALID_ARGUMENT(classify_negative<S>(S(1), std::numeric_limits<S>::infinity(), 0.5), "d_an");
}

TEST_CASE("NegativeKinds is a set built with operator|", "[mining][classifier]") {
  const NegativeKinds hard_semi = NegativeKind::Hard | NegativeKind::SemiHard;
  CHECK(hard_semi.contains(NegativeKind::Hard));
  CHECK(hard_semi.contains(NegativeKind::SemiHard));
  CHECK_FALSE(hard_semi.contains(NegativeKind::Easy));
  CHECK(NegativeKinds::none().empty());
  CHECK_FALSE(NegativeKinds(NegativeKind::Easy).empty());
  CHECK((hard_semi | NegativeKind::Easy) == NegativeKinds::all());
  CHECK(hard_semi == NegativeKinds::with_loss());
  CHECK(hard_semi != NegativeKinds::all());
  CHECK(std::string(to_string(NegativeKind::SemiHard)) == "semi-hard");
}

TEMPLATE_TEST_CASE("margin 0 is one rule for the losses, the classifier, the miner and the counter",
                   "[mining][classifier]", float, double) {
  using S = TestType;
  // With m = 0 nothing is semi-hard: a negative is hard (closer than the positive) or easy.
  for (const TieConvention c : {TieConvention::Library, TieConvention::PytorchMetricLearning}) {
    CHECK(classify_negative<S>(S(2), S(1), 0.0, c) == NegativeKind::Hard);
    CHECK(classify_negative<S>(S(1), S(2), 0.0, c) == NegativeKind::Easy);
  }
  const RowMatrix<S> X = random_embeddings<S>(12, 3, 5);
  const Eigen::VectorXi labels = random_labels(12, 3, 6);
  TripletOptions o;
  o.margin = 0;
  o.reduction = Reduction::Sum;
  const NegativeStats stats = negative_stats(X, labels, 0.0);
  CHECK(stats.semihard == 0);
  CHECK(stats.hard > 0);
  CHECK(mine_triplets(X, labels, 0.0, NegativeKind::SemiHard).empty());
  // The triplets with loss at margin 0 are exactly the hard ones.
  const Triplets hard = mine_triplets(X, labels, 0.0, NegativeKinds::with_loss());
  CHECK(hard.size() == stats.hard);
  const double all = static_cast<double>(batch_all_triplet_loss(X, labels, o, value_only));
  const double mined = static_cast<double>(triplet_margin_loss(X, hard, o, value_only));
  CHECK(all > 0);
  CHECK(std::abs(mined - all) <= (sizeof(S) == sizeof(double) ? 1e-12 : 1e-5) * all);
}

}  // namespace test_negative_kind
