// mine_triplets against a brute-force enumeration, PML TripletMarginMiner's
// triplet sets, seeded sampling under a cap, empty results and bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <algorithm>
#include <limits>
#include <array>
#include <contrastive/losses/triplet_margin_loss.hpp>

#include <map>
#include <set>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_mine_triplets {

namespace {

using Triple = std::array<Index, 3>;

std::vector<Triple> as_vector(const Triplets& t) {
  REQUIRE(t.anchor.size() == t.positive.size());
  REQUIRE(t.anchor.size() == t.negative.size());
  std::vector<Triple> out;
  for (std::size_t i = 0; i < t.anchor.size(); ++i) out.push_back({t.anchor[i], t.positive[i], t.negative[i]});
  return out;
}

// All triplets of the requested kinds, enumerated in (a, p, n) order on the library's distances.
template <class S>
std::vector<Triple> brute_triplets(const RowMatrix<S>& D, const Eigen::VectorXi& labels, double margin,
                                   NegativeKinds kinds, TieConvention convention) {
  std::vector<Triple> out;
  for (Index a = 0; a < D.rows(); ++a)
    for (Index p = 0; p < D.rows(); ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      for (Index n = 0; n < D.rows(); ++n)
        if (labels(n) != labels(a) && kinds.contains(classify_negative<S>(D(a, p), D(a, n), margin, convention)))
          out.push_back({a, p, n});
    }
  return out;
}

std::vector<Triple> from_reference(const RowMatrix<double>& m) {
  std::vector<Triple> out;
  for (Index i = 0; i < m.rows(); ++i)
    out.push_back({static_cast<Index>(m(i, 0)), static_cast<Index>(m(i, 1)), static_cast<Index>(m(i, 2))});
  return out;
}

const NegativeKinds every_kind_set[] = {
    NegativeKind::Hard,
    NegativeKind::SemiHard,
    NegativeKind::Easy,
    NegativeKind::Hard | NegativeKind::SemiHard,
    NegativeKind::Hard | NegativeKind::Easy,
    NegativeKind::SemiHard | NegativeKind::Easy,
    NegativeKinds::all(),
};

}  // namespace

TEMPLATE_TEST_CASE("mine_triplets returns exactly the brute-force triplets of the requested kinds",
                   "[mining][triplets]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 40;
  for (const Eigen::VectorXi& labels :
       {class_blocks(4, 5), random_labels(31, 4, 41), random_labels(16, 2, 42), class_blocks(8, 2)}) {
    const RowMatrix<S> X = random_embeddings<S>(labels.size(), 5, ++seed);
    const RowMatrix<S> D = pairwise_distance<M>(X);
    const double margin = 0.25 * double(D.maxCoeff());
    for (const TieConvention convention : {TieConvention::Library, TieConvention::PytorchMetricLearning}) {
      std::size_t all = 0, parts = 0;
      for (const NegativeKinds kinds : every_kind_set) {
        INFO("N = " << labels.size() << ", kinds = " << int(kinds.bits()));
        MineOptions options;
        options.convention = convention;
        const std::vector<Triple> mined = as_vector(mine_triplets<M>(X, labels, margin, kinds, options));
        const std::vector<Triple> expected = brute_triplets<S>(D, labels, margin, kinds, convention);
        CHECK(mined == expected);  // same set, same (a, p, n) order
        if (kinds == NegativeKinds::all()) all = mined.size();
        if (kinds.bits() == 1 || kinds.bits() == 2 || kinds.bits() == 4) parts += mined.size();
      }
      CHECK(parts == all);
      CHECK(all > 0);
    }
  }
}

TEMPLATE_TEST_CASE("mine_triplets reproduces PML TripletMarginMiner's triplets", "[mining][triplets][reference]",
                   float, double) {
  using S = TestType;
  struct Case {
    const char* file;
    int metric;  // 0 Euclidean, 1 SquaredEuclidean, 2 Cosine
  };
  for (const Case& c : {Case{"mining_lattice_euclidean.txt", 0}, Case{"mining_lattice_squared.txt", 1},
                        Case{"mining_cosine.txt", 2}}) {
    INFO(c.file);
    const ReferenceFile ref(c.file);
    const RowMatrix<S> X = ref.matrix<S>("X");
    const Eigen::VectorXi labels = ref.labels("labels");
    const double margin = ref.scalar("margin");
    MineOptions pml;
    pml.convention = TieConvention::PytorchMetricLearning;
    const std::pair<const char*, NegativeKinds> types[] = {{"pml_hard", NegativeKind::Hard},
                                                           {"pml_semihard", NegativeKind::SemiHard},
                                                           {"pml_easy", NegativeKind::Easy},
                                                           {"pml_all", NegativeKind::Hard | NegativeKind::SemiHard}};
    for (const auto& t : types) {
      INFO(t.first);
      const Triplets mined = c.metric == 0   ? mine_triplets<Euclidean>(X, labels, margin, t.second, pml)
                             : c.metric == 1 ? mine_triplets<SquaredEuclidean>(X, labels, margin, t.second, pml)
                                             : mine_triplets<Cosine>(X, labels, margin, t.second, pml);
      CHECK(as_vector(mined) == from_reference(ref.matrix(t.first)));
    }
  }
}

TEMPLATE_TEST_CASE("capped mining samples reproducibly, within the cap, from the full set", "[mining][triplets]",
                   float, double) {
  using S = TestType;
  const Eigen::VectorXi labels = random_labels(36, 4, 50);
  const RowMatrix<S> X = random_embeddings<S>(36, 6, 51);
  const double margin = 1.0;
  const NegativeKinds kinds = NegativeKind::Hard | NegativeKind::SemiHard;
  const std::vector<Triple> full = as_vector(mine_triplets(X, labels, margin, kinds));
  std::map<Index, Index> full_per_anchor;
  for (const Triple& t : full) ++full_per_anchor[t[0]];
  // The median count as the cap: some anchors are capped, others keep everything.
  std::vector<Index> counts;
  for (const auto& kv : full_per_anchor) counts.push_back(kv.second);
  std::sort(counts.begin(), counts.end());
  const Index cap = counts[counts.size() / 2];
  REQUIRE(cap > 1);
  MineOptions options;
  options.max_per_anchor = cap;
  options.seed = 1234;
  const Triplets a = mine_triplets(X, labels, margin, kinds, options);
  const Triplets b = mine_triplets(X, labels, margin, kinds, options);
  CHECK(as_vector(a) == as_vector(b));
  options.seed = 1235;
  const Triplets other_seed = mine_triplets(X, labels, margin, kinds, options);
  CHECK(as_vector(other_seed) != as_vector(a));

  const std::vector<Triple> sampled = as_vector(a);
  CHECK(std::is_sorted(sampled.begin(), sampled.end()));
  CHECK(std::adjacent_find(sampled.begin(), sampled.end()) == sampled.end());  // distinct
  const std::set<Triple> full_set(full.begin(), full.end());
  std::map<Index, Index> per_anchor;
  for (const Triple& t : sampled) {
    CHECK(full_set.count(t) == 1);
    ++per_anchor[t[0]];
  }
  bool some_capped = false, some_whole = false;
  for (const auto& kv : full_per_anchor) {
    // An anchor keeps min(cap, what it has).
    CHECK(per_anchor[kv.first] == std::min<Index>(cap, kv.second));
    some_capped = some_capped || kv.second > cap;
    some_whole = some_whole || kv.second <= cap;
  }
  CHECK(some_capped);
  CHECK(some_whole);
  // A cap at least as large as any anchor's count changes nothing.
  options.max_per_anchor = 1000000;
  CHECK(as_vector(mine_triplets(X, labels, margin, kinds, options)) == full);
}

TEST_CASE("capped sampling is uniform over an anchor's triplets", "[mining][triplets]") {
  // One anchor (row 0) with 3 positives and 4 negatives, all easy at a tiny margin: 12 triplets.
  Eigen::VectorXi labels(8);
  labels << 0, 0, 0, 0, 1, 1, 1, 1;
  RowMatrix<double> X = RowMatrix<double>::Zero(8, 2);
  for (Index i = 1; i < 4; ++i) X(i, 0) = 0.1 * double(i);
  for (Index i = 4; i < 8; ++i) X(i, 1) = 10.0 + double(i);
  std::map<Triple, int> hits;
  const int draws = 6000;
  for (int s = 0; s < draws; ++s) {
    MineOptions options;
    options.max_per_anchor = 3;
    options.seed = static_cast<std::uint64_t>(s);
    for (const Triple& t : as_vector(mine_triplets(X, labels, 0.01, NegativeKind::Easy, options)))
      if (t[0] == 0) ++hits[t];
  }
  REQUIRE(hits.size() == 12);
  // Each triplet is kept with probability 3/12: 1500 of 6000 draws, sd ~ 34.
  for (const auto& kv : hits) CHECK(std::abs(kv.second - 1500) < 200);
}

TEMPLATE_TEST_CASE("mine_triplets: empty results are empty, bad input throws", "[mining][triplets]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 3, 60);
  const Eigen::VectorXi labels = class_blocks(2, 5);
  CHECK(mine_triplets(RowMatrix<S>(0, 3), Eigen::VectorXi(0), 0.5, NegativeKinds::all()).empty());
  CHECK(mine_triplets(random_embeddings<S>(1, 3, 1), Eigen::VectorXi::Zero(1), 0.5, NegativeKinds::all()).empty());
  CHECK(mine_triplets(X, Eigen::VectorXi::Zero(10), 0.5, NegativeKinds::all()).empty());  // single class
  Eigen::VectorXi unique(10);
  for (int i = 0; i < 10; ++i) unique(i) = i;
  CHECK(mine_triplets(X, unique, 0.5, NegativeKinds::all()).empty());  // no positive pair
  // Coincident points: every negative ties with its positive: semi-hard, never easy.
  RowMatrix<S> same(6, 3);
  same.rowwise() = X.row(0);
  CHECK(mine_triplets(same, class_blocks(2, 3), 0.5, NegativeKind::Easy).empty());
  CHECK(mine_triplets(same, class_blocks(2, 3), 0.5, NegativeKind::SemiHard).size() == 36);
  // Far apart classes at a small margin: nothing hard.
  RowMatrix<S> far = X;
  far.bottomRows(5).array() += S(100);
  CHECK(mine_triplets(far, labels, 0.5, NegativeKind::Hard | NegativeKind::SemiHard).empty());

  REQUIRE_INVALID_ARGUMENT(mine_triplets(X, Eigen::VectorXi::Zero(9), 0.5, NegativeKind::Hard), "mine_triplets",
                           "labels", "9", "10");
  // Margin 0 is valid, as for the losses (nothing is semi-hard); below 0 or non-finite is not.
  CHECK(mine_triplets(X, labels, 0.0, NegativeKind::SemiHard).empty());
  REQUIRE_INVALID_ARGUMENT(mine_triplets(X, labels, -0.1, NegativeKind::Hard), "mine_triplets", "margin", ">= 0");
  REQUIRE_INVALID_ARGUMENT(mine_triplets(X, labels, std::numeric_limits<double>::infinity(), NegativeKind::Hard),
                           "margin", "finite");
  REQUIRE_INVALID_ARGUMENT(mine_triplets(X, labels, 0.5, NegativeKinds::none()), "mine_triplets", "kinds");
  MineOptions negative_cap;
  negative_cap.max_per_anchor = -1;
  REQUIRE_INVALID_ARGUMENT(mine_triplets(X, labels, 0.5, NegativeKind::Hard, negative_cap), "max_per_anchor");
}

TEMPLATE_TEST_CASE("mined triplets feed triplet_margin_loss: the easy ones carry no loss", "[mining][triplets]",
                   float, double) {
  using S = TestType;
  const Eigen::VectorXi labels = random_labels(24, 3, 70);
  const RowMatrix<S> X = random_embeddings<S>(24, 4, 71);
  TripletOptions options;
  options.margin = 0.8;
  options.reduction = Reduction::Sum;
  const Triplets all = mine_triplets(X, labels, options.margin, NegativeKinds::all());
  const Triplets violating = mine_triplets(X, labels, options.margin, NegativeKind::Hard | NegativeKind::SemiHard);
  const Triplets easy = mine_triplets(X, labels, options.margin, NegativeKind::Easy);
  REQUIRE(violating.size() > 0);
  REQUIRE(easy.size() > 0);
  const S total = triplet_margin_loss(X, all, options, value_only);
  CHECK(total > S(0));
  CHECK(double(triplet_margin_loss(X, violating, options, value_only)) ==
        Approx(double(total)).epsilon(value_tolerance<S>()));
  CHECK(double(triplet_margin_loss(X, easy, options, value_only)) == Approx(0.0).margin(value_tolerance<S>()));
  // Every violating triplet has a positive term.
  const LossResult<S> result = triplet_margin_loss(X, violating, options);
  CHECK((result.terms.array() > S(0)).count() == violating.size());
}

}  // namespace test_mine_triplets
