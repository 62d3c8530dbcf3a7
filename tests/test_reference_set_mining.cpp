// Mining anchors against a separate reference set (memory bank / gallery):
// brute force, block-wise equals one-shot, PML's ref_emb semantics, bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <array>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_reference_set_mining {

namespace {

using Triple = std::array<Index, 3>;

std::vector<Triple> as_vector(const Triplets& t) {
  std::vector<Triple> out;
  for (std::size_t i = 0; i < t.anchor.size(); ++i) out.push_back({t.anchor[i], t.positive[i], t.negative[i]});
  return out;
}

std::vector<Triple> from_reference(const RowMatrix<double>& m) {
  std::vector<Triple> out;
  for (Index i = 0; i < m.rows(); ++i)
    out.push_back({static_cast<Index>(m(i, 0)), static_cast<Index>(m(i, 1)), static_cast<Index>(m(i, 2))});
  return out;
}

template <class S>
bool same_stats(const NegativeStats<S>& a, const NegativeStats<S>& b) {
  return a.hard == b.hard && a.semihard == b.semihard && a.easy == b.easy &&
         a.hard_per_anchor == b.hard_per_anchor && a.semihard_per_anchor == b.semihard_per_anchor &&
         a.easy_per_anchor == b.easy_per_anchor && a.positive_pairs.count == b.positive_pairs.count &&
         a.negative_pairs.count == b.negative_pairs.count && a.positive_pairs.min == b.positive_pairs.min &&
         a.negative_pairs.max == b.negative_pairs.max;
}

bool same_pairs(const Pairs& a, const Pairs& b) {
  return a.first == b.first && a.second == b.second && a.similar == b.similar;
}

}  // namespace

TEMPLATE_TEST_CASE("reference-set mining equals brute force, and block-wise equals one-shot",
                   "[mining][reference_set]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(23, 5, 101);
  const RowMatrix<S> R = random_embeddings<S>(37, 5, 102);
  const Eigen::VectorXi labels = random_labels(23, 4, 103);
  Eigen::VectorXi ref_labels = random_labels(37, 5, 104);  // class 4 only in R
  const RowMatrix<S> D = pairwise_distance<M>(X, R);
  const double margin = 0.3 * double(D.maxCoeff());
  const NegativeKinds kinds = NegativeKind::Hard | NegativeKind::SemiHard;

  // Brute force on the one-shot distances: every reference row of the anchor's label is a positive.
  Index counts[3] = {0, 0, 0};
  std::vector<Triple> expected;
  for (Index a = 0; a < 23; ++a)
    for (Index p = 0; p < 37; ++p) {
      if (ref_labels(p) != labels(a)) continue;
      for (Index n = 0; n < 37; ++n) {
        if (ref_labels(n) == labels(a)) continue;
        const NegativeKind k = classify_negative<S>(D(a, p), D(a, n), margin);
        ++counts[k == NegativeKind::Hard ? 0 : k == NegativeKind::SemiHard ? 1 : 2];
        if (kinds.contains(k)) expected.push_back({a, p, n});
      }
    }
  const ReferenceOptions one_shot;
  const NegativeStats<S> stats = negative_stats<M>(X, labels, R, ref_labels, margin);
  CHECK(stats.hard == counts[0]);
  CHECK(stats.semihard == counts[1]);
  CHECK(stats.easy == counts[2]);
  CHECK(counts[0] > 0);
  CHECK(counts[1] > 0);
  const std::vector<Triple> mined = as_vector(mine_triplets<M>(X, labels, R, ref_labels, margin, kinds));
  CHECK(mined == expected);

  MineOptions capped;
  capped.max_per_anchor = 5;
  capped.seed = 77;
  const Triplets sampled = mine_triplets<M>(X, labels, R, ref_labels, margin, kinds, capped, one_shot);
  const Triplets hard = mine_batch_hard<M>(X, labels, R, ref_labels);
  const Triplets semihard = mine_semihard<M>(X, labels, R, ref_labels);
  const Triplets easy_hard = mine_easy_hard<M>(X, labels, R, ref_labels);
  const Pairs pairs = mine_pairs<M>(X, labels, R, ref_labels, 0.3 * margin, margin);
  CHECK(hard.size() == 23);
  CHECK_FALSE(pairs.empty());

  // Blocks of 1, 4 and 23+ rows, and a block size derived from a tiny memory budget.
  ReferenceOptions by_rows, by_budget;
  by_budget.memory_budget_bytes = 3 * 37 * sizeof(S);  // three rows per block
  REQUIRE(detail::block_rows_for(by_budget, 37, sizeof(S)) == 3);
  for (const Index rows : {Index(1), Index(4), Index(23), Index(100)}) {
    by_rows.block_rows = rows;
    for (const ReferenceOptions& blocks : {by_rows, by_budget}) {
      INFO("block_rows = " << blocks.block_rows << ", budget = " << blocks.memory_budget_bytes);
      CHECK(same_stats(negative_stats<M>(X, labels, R, ref_labels, margin, TieConvention::Library, blocks), stats));
      CHECK(as_vector(mine_triplets<M>(X, labels, R, ref_labels, margin, kinds, MineOptions{}, blocks)) == mined);
      CHECK(as_vector(mine_triplets<M>(X, labels, R, ref_labels, margin, kinds, capped, blocks)) ==
            as_vector(sampled));
      CHECK(as_vector(mine_batch_hard<M>(X, labels, R, ref_labels, blocks)) == as_vector(hard));
      CHECK(as_vector(mine_semihard<M>(X, labels, R, ref_labels, blocks)) == as_vector(semihard));
      CHECK(as_vector(mine_easy_hard<M>(X, labels, R, ref_labels, EasyHardOptions{}, blocks)) ==
            as_vector(easy_hard));
      CHECK(same_pairs(mine_pairs<M>(X, labels, R, ref_labels, 0.3 * margin, margin, blocks), pairs));
    }
  }
}

TEST_CASE("block size follows the memory budget", "[mining][reference_set]") {
  const ReferenceOptions defaults;
  // 2,000 anchors against 200,000 float references: 64 MiB holds 83 rows of distances.
  CHECK(detail::block_rows_for(defaults, 200000, sizeof(float)) == 83);
  CHECK(detail::block_rows_for(defaults, 200000, sizeof(double)) == 41);
  ReferenceOptions tiny;
  tiny.memory_budget_bytes = 1;
  CHECK(detail::block_rows_for(tiny, 1000, sizeof(float)) == 1);  // never below one row
}

TEMPLATE_TEST_CASE("a reference set has no self-exclusion unless asked; R = X with exclusion is the batch",
                   "[mining][reference_set]", float, double) {
  using S = TestType;
  // Integer coordinates: batch and reference distances are exact, so results compare exactly.
  RowMatrix<S> X = random_embeddings<S>(20, 3, 111, 2.0);
  X = X.array().round().matrix();
  const Eigen::VectorXi labels = random_labels(20, 3, 112);
  const double margin = 1.0;
  // Anchors are their own positives at distance 0 in the reference form.
  const NegativeStats<S> batch = negative_stats<SquaredEuclidean>(X, labels, margin);
  const NegativeStats<S> with_self = negative_stats<SquaredEuclidean>(X, labels, X, labels, margin);
  CHECK(with_self.positive_pairs.count == batch.positive_pairs.count + 20);
  CHECK(with_self.positive_pairs.min == S(0));
  CHECK(with_self.triplets() > batch.triplets());
  ReferenceOptions exclude;
  exclude.exclude_same_index = true;
  exclude.block_rows = 3;
  const NegativeStats<S> excluded =
      negative_stats<SquaredEuclidean>(X, labels, X, labels, margin, TieConvention::Library, exclude);
  CHECK(same_stats(excluded, batch));
  const NegativeKinds all = NegativeKinds::all();
  CHECK(as_vector(mine_triplets<SquaredEuclidean>(X, labels, X, labels, margin, all, MineOptions{}, exclude)) ==
        as_vector(mine_triplets<SquaredEuclidean>(X, labels, margin, all)));
  // SquaredEuclidean: exact on integers, so ties are exact in float too.
  CHECK(as_vector(mine_batch_hard<SquaredEuclidean>(X, labels, X, labels, exclude)) ==
        as_vector(mine_batch_hard<SquaredEuclidean>(X, labels)));
  CHECK(as_vector(mine_semihard<SquaredEuclidean>(X, labels, X, labels, exclude)) ==
        as_vector(mine_semihard<SquaredEuclidean>(X, labels)));
  CHECK(same_pairs(mine_pairs<SquaredEuclidean>(X, labels, X, labels, 1.0, 4.0, exclude),
                   mine_pairs<SquaredEuclidean>(X, labels, 1.0, 4.0)));
}

TEST_CASE("reference-set mining reproduces PML's TripletMarginMiner with ref_emb", "[mining][reference_set][reference]") {
  const ReferenceFile ref("mining_reference.txt");
  const RowMatrix<double> X = ref.matrix("X"), R = ref.matrix("R");
  const Eigen::VectorXi labels = ref.labels("labels"), ref_labels = ref.labels("ref_labels");
  const double margin = ref.scalar("margin");
  MineOptions pml;
  pml.convention = TieConvention::PytorchMetricLearning;
  ReferenceOptions blocks;
  blocks.block_rows = 3;
  const std::pair<const char*, NegativeKinds> types[] = {{"pml_hard", NegativeKind::Hard},
                                                         {"pml_semihard", NegativeKind::SemiHard},
                                                         {"pml_easy", NegativeKind::Easy},
                                                         {"pml_all", NegativeKind::Hard | NegativeKind::SemiHard}};
  for (const auto& t : types) {
    INFO(t.first);
    CHECK(as_vector(mine_triplets(X, labels, R, ref_labels, margin, t.second, pml, blocks)) ==
          from_reference(ref.matrix(t.first)));
  }
  const NegativeStats<double> s = negative_stats(X, labels, R, ref_labels, margin, pml.convention, blocks);
  CHECK(double(s.hard) == ref.scalar("pml_hard_count"));
  CHECK(double(s.semihard) == ref.scalar("pml_semihard_count"));
  CHECK(double(s.easy) == ref.scalar("pml_easy_count"));
}

TEMPLATE_TEST_CASE("reference-set mining: empty sets and bad input", "[mining][reference_set]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 121);
  const RowMatrix<S> R = random_embeddings<S>(9, 3, 122);
  const Eigen::VectorXi labels = Eigen::VectorXi::Zero(5);
  const Eigen::VectorXi ref_labels = class_blocks(3, 3);
  // No reference rows, no anchors: nothing, no error.
  const NegativeStats<S> empty_ref = negative_stats(X, labels, RowMatrix<S>(0, 3), Eigen::VectorXi(0), 0.5);
  CHECK(empty_ref.triplets() == 0);
  CHECK(empty_ref.hard_per_anchor.size() == 5);
  CHECK(mine_triplets(X, labels, RowMatrix<S>(0, 3), Eigen::VectorXi(0), 0.5, NegativeKinds::all()).empty());
  CHECK(mine_batch_hard(RowMatrix<S>(0, 3), Eigen::VectorXi(0), R, ref_labels).empty());
  // Reference rows of one other class only: negatives, no positive.
  CHECK(mine_semihard(X, labels, R, Eigen::VectorXi::Constant(9, 7)).empty());
  CHECK(negative_stats(X, labels, R, Eigen::VectorXi::Constant(9, 7), 0.5).negative_pairs.count == 45);

  const double m = 0.5;
  REQUIRE_INVALID_ARGUMENT(negative_stats(X, labels, R, Eigen::VectorXi::Zero(8), m), "negative_stats",
                           "ref_labels", "8", "9");
  REQUIRE_INVALID_ARGUMENT(mine_triplets(X, labels, R, ref_labels, -0.1, NegativeKind::Hard), "mine_triplets",
                           "margin", ">= 0");
  REQUIRE_INVALID_ARGUMENT(mine_batch_hard(X, labels, random_embeddings<S>(9, 4, 1), ref_labels),
                           "mine_batch_hard", "X", "R", "columns");
  ReferenceOptions negative_rows;
  negative_rows.block_rows = -2;
  REQUIRE_INVALID_ARGUMENT(mine_semihard(X, labels, R, ref_labels, negative_rows), "mine_semihard", "block_rows");
  ReferenceOptions exclude;
  exclude.exclude_same_index = true;
  REQUIRE_INVALID_ARGUMENT(mine_pairs(X, labels, R, ref_labels, 0.1, 1.0, exclude), "mine_pairs",
                           "exclude_same_index", "5", "9");
  RowMatrix<S> bad = R;
  bad(6, 0) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(mine_easy_hard(X, labels, bad, ref_labels), "mine_easy_hard", "R", "row 6");
}

}  // namespace test_reference_set_mining
