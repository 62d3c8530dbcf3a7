// batch_semihard_triplet_loss against a brute-force loop, finite differences,
// the three call forms, edge cases, bad input, and TFA reference values.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/batch_semihard_triplet_loss.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_batch_semihard_triplet_loss {

namespace {

struct Brute {
  double value = 0;
  std::vector<double> terms;  // per positive pair of an anchor with a negative, by anchor then positive
  Index pairs = 0;
  Index fallbacks = 0;        // pairs with no farther negative
  double closest_kink = 1e300;
};

// For every ordered positive pair, scan all negatives: the closest one farther
// than the positive, else the farthest (lowest index on ties). Evaluated on
// the distance matrix in the library's scalar, so selections match exactly.
template <class S>
Brute brute_semihard(const RowMatrix<S>& D, const Eigen::VectorXi& labels, const TripletOptions& o) {
  Brute b;
  const Index n = D.rows();
  double sum = 0;
  Index positive = 0;
  for (Index a = 0; a < n; ++a) {
    std::vector<Index> negatives;
    for (Index j = 0; j < n; ++j)
      if (labels(j) != labels(a)) negatives.push_back(j);
    if (negatives.empty()) continue;
    for (Index p = 0; p < n; ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      Index above = -1, farthest = -1;
      for (Index q : negatives) {
        if (D(a, q) > D(a, p) && (above < 0 || D(a, q) < D(a, above))) above = q;
        if (farthest < 0 || D(a, q) > D(a, farthest)) farthest = q;
        // Kinks: a negative crossing d_ap switches the selection.
        b.closest_kink = std::min(b.closest_kink, std::abs(double(D(a, q)) - double(D(a, p))));
        for (Index r : negatives)
          if (r != q) b.closest_kink = std::min(b.closest_kink, std::abs(double(D(a, q)) - double(D(a, r))));
      }
      if (above < 0) ++b.fallbacks;
      const Index chosen = above >= 0 ? above : farthest;
      const double x = double(D(a, p)) - double(D(a, chosen));
      if (!o.soft) b.closest_kink = std::min(b.closest_kink, std::abs(x + o.margin));
      const double term = o.soft ? std::log1p(std::exp(x + o.margin)) : std::max(0.0, x + o.margin);  // soft: softplus(x + margin)
      b.terms.push_back(term);
      sum += term;
      ++b.pairs;
      if (term > 0) ++positive;
    }
  }
  switch (o.reduction.kind()) {
    case Reduction::Sum: b.value = sum; break;
    case Reduction::Mean: b.value = b.pairs ? sum / double(b.pairs) : 0; break;
    case Reduction::MeanNonZero: b.value = positive ? sum / double(positive) : 0; break;
  }
  return b;
}

std::vector<TripletOptions> option_grid() {
  std::vector<TripletOptions> grid;
  for (double margin : {0.0, 0.3, 1.0})
    for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
      TripletOptions o;
      o.margin = margin;
      o.reduction = r;
      grid.push_back(o);
    }
  TripletOptions soft;  // softplus(x + margin): the default margin 1, then 0 (Hermans)
  soft.soft = true;
  grid.push_back(soft);
  soft.margin = 0;
  grid.push_back(soft);
  return grid;
}

std::vector<Eigen::VectorXi> layouts() {
  Eigen::VectorXi dominant = Eigen::VectorXi::Zero(30);  // more positives than negatives
  dominant.tail(5) << 1, 2, 1, 3, 2;
  // Up to 32 positives per anchor on average the loss runs on tiles, beyond on
  // row panels: the last two layouts (about 44 and 35) take the panels.
  return {class_blocks(4, 5), random_labels(30, 5, 31), random_labels(40, 3, 32), random_labels(25, 12, 33),
          dominant, class_blocks(2, 12), random_labels(90, 2, 34), class_blocks(2, 36)};
}

}  // namespace

TEMPLATE_TEST_CASE("batch_semihard_triplet_loss matches a brute-force loop", "[batch_semihard]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 7000;
  Index fallbacks = 0;
  for (const Eigen::VectorXi& labels : layouts()) {
    RowMatrix<S> X = random_embeddings<S>(labels.size(), 5, ++seed);
    X.row(1) *= S(4);  // far from everything: its pairs need the farthest-negative fallback
    const RowMatrix<S> D = pairwise_distance<M>(X);
    for (const TripletOptions& o : option_grid()) {
      INFO("N " << labels.size() << " margin " << o.margin << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
      const Brute b = brute_semihard(D, labels, o);
      fallbacks += b.fallbacks;
      const LossResult<S> r = batch_semihard_triplet_loss<M>(X, labels, o);
      const double tol = 10 * value_tolerance<S>();
      CHECK(double(r.value) == Approx(b.value).epsilon(tol).margin(tol));
      REQUIRE(r.terms.size() == b.pairs);
      for (Index k = 0; k < b.pairs; ++k)
        CHECK(double(r.terms(k)) == Approx(b.terms[std::size_t(k)]).epsilon(tol).margin(tol));
      CHECK(batch_semihard_triplet_loss<M>(X, labels, o, value_only) == r.value);
    }
  }
  CHECK(fallbacks > 0);  // the fallback branch was exercised
}

TEMPLATE_TEST_CASE("batch_semihard_triplet_loss gradient matches finite differences", "[batch_semihard][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const double gap = sizeof(S) == sizeof(float) ? 0.03 : 1e-3;
  // Two layouts: positives the smaller side, and negatives the smaller side.
  Eigen::VectorXi dominant(7);
  dominant << 0, 0, 0, 0, 0, 1, 1;
  for (const Eigen::VectorXi& labels : {class_blocks(3, 2), dominant}) {
    for (const TripletOptions& o : option_grid()) {
      INFO("N " << labels.size() << " margin " << o.margin << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
      bool found = false;
      for (unsigned seed = 8000; seed < 12000 && !found; ++seed) {
        const RowMatrix<S> X = random_embeddings<S>(labels.size(), 3, seed);
        const Brute b = brute_semihard(pairwise_distance<M>(X), labels, o);
        if (b.closest_kink < gap || b.value == 0) continue;
        found = true;
        const LossResult<S> r = batch_semihard_triplet_loss<M>(X, labels, o);
        auto f = [&](const RowMatrix<S>& x) { return batch_semihard_triplet_loss<M>(x, labels, o, value_only); };
        const auto report = testing::check_gradient(f, X, r.grad[0]);
        INFO("seed " << seed << ": " << report.summary());
        CHECK(report.passed);
      }
      REQUIRE(found);
    }
  }
}

TEMPLATE_TEST_CASE("batch_semihard_triplet_loss: ties and the strict 'farther than the positive' rule",
                   "[batch_semihard][ties]", float, double) {
  using S = TestType;
  // Anchor 0 at the origin, positive 1 at distance 1; negative 2 at exactly
  // distance 1 (not farther), negatives 3 and 4 both at distance 2. The second
  // layout adds positives so that anchor 0 has more positives than negatives
  // (the sorted-negatives path); the first sorts the positives.
  RowMatrix<S> small(5, 2);
  small << 0, 0, 1, 0, 0, 1, 2, 0, 0, 2;
  Eigen::VectorXi small_labels(5);
  small_labels << 0, 0, 1, 1, 1;
  RowMatrix<S> large(8, 2);
  large << 0, 0, 1, 0, 0, 1, 2, 0, 0, 2, 3, 0, 0, 3, -3, 0;
  Eigen::VectorXi large_labels(8);
  large_labels << 0, 0, 1, 1, 1, 0, 0, 0;
  for (int layout = 0; layout < 2; ++layout) {
    const RowMatrix<S>& X = layout == 0 ? small : large;
    const Eigen::VectorXi& labels = layout == 0 ? small_labels : large_labels;
    INFO("layout " << layout);
    TripletOptions o;
    o.margin = 1.5;
    o.reduction = Reduction::Sum;
    const LossResult<S> r = batch_semihard_triplet_loss(X, labels, o);
    // Pair (0, 1): n* = 3 (distance 2, lowest index), term 1 - 2 + 1.5 = 0.5.
    REQUIRE(r.terms.size() > 0);
    CHECK(r.terms(0) == S(0.5));
    const RowMatrix<S> D = pairwise_distance(X);
    const Index n = X.rows();
    RowMatrix<S> dD = RowMatrix<S>::Zero(n, n);
    const Brute b = brute_semihard(D, labels, o);
    REQUIRE(r.terms.size() == b.pairs);
    // Rebuild the selection of the brute force as a dL/dD.
    for (Index a = 0; a < n; ++a) {
      for (Index p = 0; p < n; ++p) {
        if (p == a || labels(p) != labels(a)) continue;
        Index above = -1, farthest = -1;
        for (Index q = 0; q < n; ++q) {
          if (labels(q) == labels(a)) continue;
          if (D(a, q) > D(a, p) && (above < 0 || D(a, q) < D(a, above))) above = q;
          if (farthest < 0 || D(a, q) > D(a, farthest)) farthest = q;
        }
        const Index q = above >= 0 ? above : farthest;
        if (D(a, p) - D(a, q) + S(o.margin) > S(0)) {
          dD(a, p) += 1;
          dD(a, q) -= 1;
        }
      }
    }
    CHECK(dD(0, 3) <= S(-1));
    CHECK(dD(0, 2) == S(0));
    CHECK(double(r.value) == Approx(b.value).epsilon(1e-6));
    CHECK((r.grad[0] - pairwise_distance_backward(X, dD)).cwiseAbs().maxCoeff() <= S(1e-5));
  }
}

TEMPLATE_TEST_CASE("batch_semihard_triplet_loss writes the gradient into a caller-owned buffer", "[batch_semihard]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(12, 4, 13001);
  const Eigen::VectorXi labels = class_blocks(3, 4);
  const TripletOptions o;
  const LossResult<S> r = batch_semihard_triplet_loss(X, labels, o);
  std::vector<S> buffer(48, S(7));
  Eigen::Map<RowMatrix<S>> out(buffer.data(), 12, 4);
  CHECK(batch_semihard_triplet_loss(X, labels, o, out) == r.value);
  CHECK(out == r.grad[0]);
  std::vector<S> wrong(36, S(7));
  Eigen::Map<RowMatrix<S>> bad(wrong.data(), 12, 3);
  REQUIRE_INVALID_ARGUMENT(batch_semihard_triplet_loss(X, labels, o, bad), "batch_semihard_triplet_loss", "grad",
                           "12 x 3", "12 x 4");
  CHECK(std::all_of(wrong.begin(), wrong.end(), [](S v) { return v == S(7); }));
}

TEMPLATE_TEST_CASE("batch_semihard_triplet_loss edge cases", "[batch_semihard][edge]", float, double) {
  using S = TestType;
  auto expect_empty = [&](const RowMatrix<S>& X, const Eigen::VectorXi& labels) {
    for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
      TripletOptions o;
      o.reduction = red;
      const LossResult<S> r = batch_semihard_triplet_loss(X, labels, o);
      CHECK(r.value == S(0));
      REQUIRE(r.grad.size() == 1);
      CHECK(r.grad[0].rows() == X.rows());
      CHECK(r.grad[0].cols() == X.cols());
      CHECK(r.grad[0].isZero(0));
      CHECK(r.terms.size() == 0);
    }
  };
  SECTION("all-unique labels: no positive pair") {
    Eigen::VectorXi labels(4);
    labels << 0, 1, 2, 3;
    expect_empty(random_embeddings<S>(4, 3, 13101), labels);
  }
  SECTION("single class: no negative (TFA would give mean d_ap + margin)") {
    expect_empty(random_embeddings<S>(5, 3, 13102), Eigen::VectorXi::Zero(5));
  }
  SECTION("N = 1 and N = 0") {
    expect_empty(random_embeddings<S>(1, 3, 13103), Eigen::VectorXi::Zero(1));
    expect_empty(RowMatrix<S>(0, 3), Eigen::VectorXi(0));
  }
  SECTION("coincident embeddings: no negative is farther, fallback; term = margin, zero subgradient") {
    const RowMatrix<S> X = RowMatrix<S>::Constant(6, 2, S(-1));
    const LossResult<S> r = batch_semihard_triplet_loss(X, class_blocks(2, 3));
    CHECK(r.value == S(1));
    CHECK(r.grad[0].isZero(0));
  }
  SECTION("zero vectors under Cosine") {
    RowMatrix<S> X = random_embeddings<S>(8, 3, 13104);
    X.row(4).setZero();
    const LossResult<S> r = batch_semihard_triplet_loss<Cosine>(X, class_blocks(2, 4));
    CHECK(std::isfinite(r.value));
    CHECK(r.grad[0].allFinite());
    CHECK(r.grad[0].row(4).isZero(0));
  }
  SECTION("inputs scaled by 1e-6 and 1e6") {
    const RowMatrix<S> X = random_embeddings<S>(12, 4, 13105);
    const Eigen::VectorXi labels = class_blocks(3, 4);
    TripletOptions o;
    o.margin = 0;
    o.reduction = Reduction::Sum;
    const LossResult<S> base = batch_semihard_triplet_loss(X, labels, o);
    REQUIRE(base.value > S(0));
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> x = X * S(scale);
      const LossResult<S> r = batch_semihard_triplet_loss(x, labels, o);
      CHECK(double(r.value) == Approx(double(base.value) * scale).epsilon(1e-4));
      CHECK((r.grad[0] - base.grad[0]).cwiseAbs().maxCoeff() <= S(1e-3) * base.grad[0].cwiseAbs().maxCoeff());
      const LossResult<S> rr = batch_semihard_triplet_loss(x, labels);
      CHECK(std::isfinite(rr.value));
      CHECK(rr.grad[0].allFinite());
      const LossResult<S> rc = batch_semihard_triplet_loss<Cosine>(x, labels);
      CHECK(std::isfinite(rc.value));
      CHECK(rc.grad[0].allFinite());
    }
  }
}

TEMPLATE_TEST_CASE("batch_semihard_triplet_loss rejects bad input", "[batch_semihard][errors]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 13201);
  const Eigen::VectorXi labels = random_labels(5, 2, 13202);
  REQUIRE_INVALID_ARGUMENT(batch_semihard_triplet_loss(X, random_labels(3, 2, 1)), "batch_semihard_triplet_loss",
                           "labels", "length 3", "5 rows");
  RowMatrix<S> bad = X;
  bad(0, 0) = -std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(batch_semihard_triplet_loss(bad, labels), "batch_semihard_triplet_loss", "'X'", "row 0");
  TripletOptions o;
  o.margin = std::nan("");
  REQUIRE_INVALID_ARGUMENT(batch_semihard_triplet_loss(X, labels, o), "batch_semihard_triplet_loss", "margin");
  o = TripletOptions{};
  o.swap = true;
  REQUIRE_INVALID_ARGUMENT(batch_semihard_triplet_loss(X, labels, o, value_only), "batch_semihard_triplet_loss",
                           "swap", "not supported");
}

TEST_CASE("batch_semihard_triplet_loss reproduces TFA triplet_semihard_loss", "[batch_semihard][reference]") {
  const ReferenceFile ref("triplet_semihard.txt");
  for (const char* prefix : {"l2", "sq"}) {
    const std::string p(prefix);
    INFO(p);
    TripletOptions o;
    o.margin = ref.scalar(p + "_margin");
    const RowMatrix<double> X = ref.matrix(p + "_X");
    const Eigen::VectorXi labels = ref.labels(p + "_labels");
    const LossResult<double> r = p == "sq" ? batch_semihard_triplet_loss<SquaredEuclidean>(X, labels, o)
                                           : batch_semihard_triplet_loss<Euclidean>(X, labels, o);
    CHECK(r.value == Approx(ref.scalar(p + "_loss")).epsilon(1e-12));
    CHECK((r.grad[0] - ref.matrix(p + "_grad")).cwiseAbs().maxCoeff() < 1e-12);
    const LossResult<float> rf = p == "sq"
                                     ? batch_semihard_triplet_loss<SquaredEuclidean>(X.cast<float>(), labels, o)
                                     : batch_semihard_triplet_loss<Euclidean>(X.cast<float>(), labels, o);
    CHECK(double(rf.value) == Approx(ref.scalar(p + "_loss")).epsilon(1e-4));
  }
}

}  // namespace test_batch_semihard_triplet_loss
