// Selection miners (batch-hard, TFA semi-hard, PML BatchEasyHardMiner) and the
// pair miner against brute-force loops and PML / TFA reference data.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <array>
#include <limits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_miners {

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

// PML BatchEasyHardMiner written as plain loops over one anchor's row.
template <class S>
Index pick(const RowMatrix<S>& D, const Eigen::VectorXi& labels, Index a, bool positive, bool want_max,
           S lo, S hi, int threshold_kind, S threshold) {  // threshold_kind: 0 none, 1 keep d < t, 2 keep d > t
  Index best = -1;
  for (Index j = 0; j < D.cols(); ++j) {
    if (j == a || (labels(j) == labels(a)) != positive) continue;
    const S d = D(a, j);
    if (d < lo || d > hi) continue;
    if ((threshold_kind == 1 && !(d < threshold)) || (threshold_kind == 2 && !(d > threshold))) continue;
    if (best < 0 || (want_max ? d > D(a, best) : d < D(a, best))) best = j;
  }
  return best;
}

template <class S>
std::vector<Triple> brute_easy_hard(const RowMatrix<S>& D, const Eigen::VectorXi& labels, const EasyHardOptions& o) {
  std::vector<Triple> out;
  const S plo = S(o.positive_min), phi = S(o.positive_max), nlo = S(o.negative_min), nhi = S(o.negative_max);
  const bool pos_max = o.positive != MiningStrategy::Easy, neg_max = o.negative == MiningStrategy::Easy;
  for (Index a = 0; a < D.rows(); ++a) {
    Index p = -1, n = -1;
    if (o.positive == MiningStrategy::SemiHard) {
      n = pick<S>(D, labels, a, false, neg_max, nlo, nhi, 0, S(0));
      if (n >= 0) p = pick<S>(D, labels, a, true, true, plo, phi, 1, D(a, n));
    } else if (o.negative == MiningStrategy::SemiHard) {
      p = pick<S>(D, labels, a, true, pos_max, plo, phi, 0, S(0));
      if (p >= 0) n = pick<S>(D, labels, a, false, false, nlo, nhi, 2, D(a, p));
    } else {
      p = pick<S>(D, labels, a, true, pos_max, plo, phi, 0, S(0));
      n = pick<S>(D, labels, a, false, neg_max, nlo, nhi, 0, S(0));
    }
    if (p >= 0 && n >= 0) out.push_back({a, p, n});
  }
  return out;
}

// TFA: per positive pair, the closest negative farther than the positive, else the farthest negative.
template <class S>
std::vector<Triple> brute_semihard(const RowMatrix<S>& D, const Eigen::VectorXi& labels) {
  std::vector<Triple> out;
  const S inf = std::numeric_limits<S>::infinity();
  for (Index a = 0; a < D.rows(); ++a)
    for (Index p = 0; p < D.rows(); ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      Index n = pick<S>(D, labels, a, false, false, -inf, inf, 2, D(a, p));
      if (n < 0) n = pick<S>(D, labels, a, false, true, -inf, inf, 0, S(0));
      if (n >= 0) out.push_back({a, p, n});
    }
  return out;
}

const MiningStrategy strategies[] = {MiningStrategy::Easy, MiningStrategy::SemiHard, MiningStrategy::Hard};
const char* strategy_name(MiningStrategy s) {
  return s == MiningStrategy::Easy ? "easy" : s == MiningStrategy::SemiHard ? "semihard" : "hard";
}

std::vector<Eigen::VectorXi> layouts() {
  return {class_blocks(4, 5), random_labels(33, 5, 71), random_labels(12, 2, 72), class_blocks(10, 2)};
}

}  // namespace

TEMPLATE_TEST_CASE("selection miners equal brute-force loops", "[mining][selection]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 80;
  for (const Eigen::VectorXi& labels : layouts()) {
    const RowMatrix<S> X = random_embeddings<S>(labels.size(), 4, ++seed);
    const RowMatrix<S> D = pairwise_distance<M>(X);
    INFO("N = " << labels.size());
    EasyHardOptions hard_hard;
    hard_hard.positive = hard_hard.negative = MiningStrategy::Hard;
    const std::vector<Triple> batch_hard = as_vector(mine_batch_hard<M>(X, labels));
    CHECK(batch_hard == brute_easy_hard<S>(D, labels, hard_hard));
    Index with_both = 0;  // anchors with a positive and a negative
    for (Index a = 0; a < labels.size(); ++a) {
      const Index k = (labels.array() == labels(a)).count();
      if (k > 1 && k < labels.size()) ++with_both;
    }
    CHECK(batch_hard.size() == static_cast<std::size_t>(with_both));
    CHECK(as_vector(mine_semihard<M>(X, labels)) == brute_semihard<S>(D, labels));
    for (const MiningStrategy ps : strategies)
      for (const MiningStrategy ns : strategies) {
        EasyHardOptions o;
        o.positive = ps;
        o.negative = ns;
        INFO(strategy_name(ps) << " / " << strategy_name(ns));
        CHECK(as_vector(mine_easy_hard<M>(X, labels, o)) == brute_easy_hard<S>(D, labels, o));
        o.positive_min = 0.3 * double(D.maxCoeff());
        o.negative_max = 0.8 * double(D.maxCoeff());
        CHECK(as_vector(mine_easy_hard<M>(X, labels, o)) == brute_easy_hard<S>(D, labels, o));
      }
  }
}

TEMPLATE_TEST_CASE("mine_pairs returns the pairs with positive contrastive loss", "[mining][pairs]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Eigen::VectorXi labels = random_labels(27, 4, 90);
  const RowMatrix<S> X = random_embeddings<S>(27, 5, 91);
  const RowMatrix<S> D = pairwise_distance<M>(X);
  const double pos_margin = 0.3 * double(D.maxCoeff()), neg_margin = 0.6 * double(D.maxCoeff());
  const Pairs pairs = mine_pairs<M>(X, labels, pos_margin, neg_margin);
  std::vector<std::array<Index, 3>> expected, mined;
  for (Index a = 0; a < 27; ++a)
    for (Index b = 0; b < 27; ++b) {
      if (a == b) continue;
      if (labels(a) == labels(b) && D(a, b) > S(pos_margin)) expected.push_back({a, b, 1});
      if (labels(a) != labels(b) && D(a, b) < S(neg_margin)) expected.push_back({a, b, 0});
    }
  for (Index i = 0; i < pairs.size(); ++i) {
    const std::size_t k = static_cast<std::size_t>(i);
    mined.push_back({pairs.first[k], pairs.second[k], Index(pairs.similar[k])});
  }
  CHECK(mined == expected);
  Index positives = 0;
  for (const auto& t : expected) positives += t[2];
  CHECK(positives > 0);
  CHECK(positives < Index(expected.size()));
}

TEMPLATE_TEST_CASE("selection and pair miners reproduce PML and TFA", "[mining][selection][reference]", float,
                   double) {
  using S = TestType;
  const ReferenceFile ref("mining_selection.txt");
  const RowMatrix<S> X = ref.matrix<S>("X");
  const Eigen::VectorXi labels = ref.labels("labels");
  for (const MiningStrategy ps : strategies)
    for (const MiningStrategy ns : strategies) {
      const std::string name = std::string("easy_hard_") + strategy_name(ps) + "_" + strategy_name(ns);
      INFO(name);
      EasyHardOptions o;
      o.positive = ps;
      o.negative = ns;
      CHECK(as_vector(mine_easy_hard(X, labels, o)) == from_reference(ref.matrix(name)));
    }
  EasyHardOptions ranged;  // PML defaults: easy positive, semi-hard negative
  ranged.positive_min = 0.5;
  ranged.positive_max = 2.5;
  ranged.negative_min = 1.0;
  ranged.negative_max = 3.0;
  CHECK(as_vector(mine_easy_hard(X, labels, ranged)) == from_reference(ref.matrix("easy_hard_ranges")));
  CHECK(as_vector(mine_batch_hard(X, labels)) == from_reference(ref.matrix("batch_hard")));
  CHECK(as_vector(mine_semihard(X, labels)) == from_reference(ref.matrix("tfa_semihard")));

  const Pairs pairs = mine_pairs(X, labels, ref.scalar("pairs_pos_margin"), ref.scalar("pairs_neg_margin"));
  RowMatrix<double> pos(0, 2), neg(0, 2);
  for (Index i = 0; i < pairs.size(); ++i) {
    const std::size_t k = static_cast<std::size_t>(i);
    RowMatrix<double>& m = pairs.similar[k] ? pos : neg;
    m.conservativeResize(m.rows() + 1, 2);
    m.row(m.rows() - 1) << double(pairs.first[k]), double(pairs.second[k]);
  }
  CHECK(pos == ref.matrix("pairs_positive"));
  CHECK(neg == ref.matrix("pairs_negative"));
}

TEMPLATE_TEST_CASE("selection miners: empty sets give empty results, ties go to the lowest index",
                   "[mining][selection]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(8, 3, 95);
  CHECK(mine_batch_hard<M>(RowMatrix<S>(0, 3), Eigen::VectorXi(0)).empty());
  CHECK(mine_semihard<M>(X.topRows(1), Eigen::VectorXi::Zero(1)).empty());
  CHECK(mine_batch_hard<M>(X, Eigen::VectorXi::Zero(8)).empty());  // no negative
  CHECK(mine_semihard<M>(X, Eigen::VectorXi::Zero(8)).empty());
  CHECK(mine_easy_hard<M>(X, Eigen::VectorXi::Zero(8)).empty());
  Eigen::VectorXi unique(8);
  for (int i = 0; i < 8; ++i) unique(i) = i;
  CHECK(mine_batch_hard<M>(X, unique).empty());  // no positive
  CHECK(mine_semihard<M>(X, unique).empty());
  const Pairs only_negative = mine_pairs<M>(X, unique, 0.0, 1e9);
  CHECK(only_negative.size() == 56);
  CHECK(std::count(only_negative.similar.begin(), only_negative.similar.end(), 1) == 0);
  // Coincident points: every distance 0; the lowest index wins every tie, semi-hard falls back.
  RowMatrix<S> same(6, 3);
  same.rowwise() = X.row(0);
  const Eigen::VectorXi labels = class_blocks(2, 3);
  const std::vector<Triple> bh = as_vector(mine_batch_hard<M>(same, labels));
  REQUIRE(bh.size() == 6);
  CHECK(bh[0] == Triple{0, 1, 3});
  CHECK(bh[4] == Triple{4, 3, 0});
  const std::vector<Triple> sh = as_vector(mine_semihard<M>(same, labels));
  REQUIRE(sh.size() == 12);
  CHECK(sh[0] == Triple{0, 1, 3});
}

TEMPLATE_TEST_CASE("selection and pair miners reject bad input", "[mining][selection]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(6, 3, 99);
  const Eigen::VectorXi labels = class_blocks(2, 3);
  REQUIRE_INVALID_ARGUMENT(mine_batch_hard(X, Eigen::VectorXi::Zero(4)), "mine_batch_hard", "labels", "4", "6");
  REQUIRE_INVALID_ARGUMENT(mine_semihard(X, Eigen::VectorXi::Zero(7)), "mine_semihard", "labels");
  REQUIRE_INVALID_ARGUMENT(mine_easy_hard(X, Eigen::VectorXi::Zero(7)), "mine_easy_hard", "labels");
  EasyHardOptions bad_range;
  bad_range.negative_min = 2;
  bad_range.negative_max = 1;
  REQUIRE_INVALID_ARGUMENT(mine_easy_hard(X, labels, bad_range), "mine_easy_hard", "negative_min");
  REQUIRE_INVALID_ARGUMENT(mine_pairs(X, labels, std::nan(""), 1.0), "mine_pairs", "pos_margin");
  REQUIRE_INVALID_ARGUMENT(mine_pairs(X, Eigen::VectorXi::Zero(2), 0.0, 1.0), "mine_pairs", "labels");
  RowMatrix<S> bad = X;
  bad(2, 1) = std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(mine_batch_hard(bad, labels), "mine_batch_hard", "row 2");
}

}  // namespace test_miners
