// batch_hard_triplet_loss against a brute-force loop, finite differences, the
// three call forms, edge cases, bad input, and TFA / PML reference values.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_soft_triplet.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/batch_hard_triplet_loss.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_batch_hard_triplet_loss {

namespace {

struct Brute {
  double value = 0;
  std::vector<double> terms;        // 0 for skipped anchors
  std::vector<Index> positive, negative;  // -1 for skipped anchors
  double closest_kink = 1e300;      // |hinge|, and gaps to the runner-up positive / negative
};

// Straight from the definition, in double on reference distances; ties and
// runner-ups are measured so gradient checks can stay away from them.
template <class S>
Brute brute_hard(Ref metric, const RowMatrix<S>& X, const Eigen::VectorXi& labels, const TripletOptions& o) {
  Brute b;
  const Index n = X.rows();
  double sum = 0;
  Index count = 0, positive = 0;
  for (Index a = 0; a < n; ++a) {
    Index p = -1, q = -1;
    double dp = 0, dn = 0;
    std::vector<double> pos, neg;
    for (Index j = 0; j < n; ++j) {
      const double d = reference_distance(metric, X.row(a), X.row(j));
      if (labels(j) != labels(a)) {
        neg.push_back(d);
        if (q < 0 || d < dn) q = j, dn = d;
      } else if (j != a) {
        pos.push_back(d);
        if (p < 0 || d > dp) p = j, dp = d;
      }
    }
    b.positive.push_back(p);
    b.negative.push_back(q);
    if (p < 0 || q < 0) {
      b.terms.push_back(0);
      continue;
    }
    std::sort(pos.begin(), pos.end());
    std::sort(neg.begin(), neg.end());
    if (pos.size() > 1) b.closest_kink = std::min(b.closest_kink, pos[pos.size() - 1] - pos[pos.size() - 2]);
    if (neg.size() > 1) b.closest_kink = std::min(b.closest_kink, neg[1] - neg[0]);
    const double x = dp - dn;
    if (!o.soft) b.closest_kink = std::min(b.closest_kink, std::abs(x + o.margin));
    const double term = o.soft ? std::log1p(std::exp(x + o.margin)) : std::max(0.0, x + o.margin);
    b.terms.push_back(term);
    sum += term;
    ++count;
    if (term > 0) ++positive;
  }
  switch (o.reduction.kind()) {
    case Reduction::Sum: b.value = sum; break;
    case Reduction::Mean: b.value = count ? sum / double(count) : 0; break;
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
  // soft: softplus(d_ap - d_an + margin); the default margin 1, then 0 (Hermans) and 0.3.
  TripletOptions soft;
  soft.soft = true;
  grid.push_back(soft);
  soft.margin = 0;
  soft.reduction = Reduction::Sum;
  grid.push_back(soft);
  soft.margin = 0.3;
  soft.reduction = Reduction::MeanNonZero;
  grid.push_back(soft);
  return grid;
}

std::vector<Eigen::VectorXi> layouts() {
  Eigen::VectorXi with_singletons = class_blocks(5, 3);
  with_singletons(0) = 7;  // a class of one: no positive
  with_singletons(14) = 8;
  return {class_blocks(4, 5), random_labels(30, 5, 21), random_labels(40, 3, 22), random_labels(25, 12, 23),
          with_singletons};
}

}  // namespace

TEMPLATE_TEST_CASE("batch_hard_triplet_loss matches a brute-force loop", "[batch_hard]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 5000;
  for (const Eigen::VectorXi& labels : layouts()) {
    const RowMatrix<S> X = random_embeddings<S>(labels.size(), 6, ++seed);
    for (const TripletOptions& o : option_grid()) {
      INFO("N " << labels.size() << " margin " << o.margin << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
      const Brute b = brute_hard(ref_of<M>(), X, labels, o);
      const LossResult<S> r = batch_hard_triplet_loss<M>(X, labels, o);
      const double tol = 10 * value_tolerance<S>();
      CHECK(double(r.value) == Approx(b.value).epsilon(tol).margin(tol));
      REQUIRE(r.terms.size() == labels.size());
      for (Index a = 0; a < labels.size(); ++a)
        CHECK(double(r.terms(a)) == Approx(b.terms[std::size_t(a)]).epsilon(tol).margin(tol));
      CHECK(batch_hard_triplet_loss<M>(X, labels, o, value_only) == r.value);
    }
  }
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss gradient matches finite differences", "[batch_hard][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const double gap = sizeof(S) == sizeof(float) ? 0.03 : 1e-3;
  for (const TripletOptions& o : option_grid()) {
    INFO("margin " << o.margin << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
    Eigen::VectorXi labels = class_blocks(3, 3);
    labels(8) = 5;  // a singleton anchor, skipped
    bool found = false;
    for (unsigned seed = 6000; seed < 8000 && !found; ++seed) {
      const RowMatrix<S> X = random_embeddings<S>(9, 3, seed);
      const Brute b = brute_hard(ref_of<M>(), X, labels, o);
      if (b.closest_kink < gap || b.value == 0) continue;
      found = true;
      const LossResult<S> r = batch_hard_triplet_loss<M>(X, labels, o);
      auto f = [&](const RowMatrix<S>& x) { return batch_hard_triplet_loss<M>(x, labels, o, value_only); };
      const auto report = testing::check_gradient(f, X, r.grad[0]);
      INFO("seed " << seed << ": " << report.summary());
      CHECK(report.passed);
    }
    REQUIRE(found);
  }
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss breaks ties towards the lowest index", "[batch_hard][ties]", float,
                   double) {
  using S = TestType;
  // Anchor 0 at the origin; positives 1, 2 both at distance 2; negatives 3, 4 both at distance 1.
  RowMatrix<S> X(5, 2);
  X << 0, 0, 2, 0, 0, 2, 1, 0, 0, 1;
  Eigen::VectorXi labels(5);
  labels << 0, 0, 0, 1, 1;
  TripletOptions o;
  o.reduction = Reduction::Sum;
  const LossResult<S> r = batch_hard_triplet_loss(X, labels, o);
  // Gradient of anchor 0's term alone (via the distance matrix): +e(0,1) - e(0,3).
  RowMatrix<S> dD = RowMatrix<S>::Zero(5, 5);
  const RowMatrix<S> D = pairwise_distance(X);
  for (Index a = 0; a < 5; ++a) {
    Index p = -1, q = -1;
    for (Index j = 0; j < 5; ++j) {
      if (labels(j) != labels(a)) {
        if (q < 0 || D(a, j) < D(a, q)) q = j;
      } else if (j != a && (p < 0 || D(a, j) > D(a, p))) {
        p = j;
      }
    }
    if (D(a, p) - D(a, q) + S(1) > S(0)) {
      dD(a, p) += 1;
      dD(a, q) -= 1;
    }
  }
  CHECK(dD(0, 1) == S(1));
  CHECK(dD(0, 3) == S(-1));
  const RowMatrix<S> expected = pairwise_distance_backward(X, dD);
  CHECK((r.grad[0] - expected).cwiseAbs().maxCoeff() <= S(1e-6));
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss writes the gradient into a caller-owned buffer", "[batch_hard]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(12, 4, 9001);
  const Eigen::VectorXi labels = class_blocks(3, 4);
  const TripletOptions o;
  const LossResult<S> r = batch_hard_triplet_loss(X, labels, o);
  std::vector<S> buffer(48, S(7));
  Eigen::Map<RowMatrix<S>> out(buffer.data(), 12, 4);
  CHECK(batch_hard_triplet_loss(X, labels, o, out) == r.value);
  CHECK(out == r.grad[0]);
  std::vector<S> wrong(52, S(7));
  Eigen::Map<RowMatrix<S>> bad(wrong.data(), 13, 4);
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, labels, o, bad), "batch_hard_triplet_loss", "grad", "13 x 4",
                           "12 x 4");
  CHECK(std::all_of(wrong.begin(), wrong.end(), [](S v) { return v == S(7); }));
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss edge cases", "[batch_hard][edge]", float, double) {
  using S = TestType;
  auto expect_empty = [&](const RowMatrix<S>& X, const Eigen::VectorXi& labels) {
    for (bool soft : {false, true})
      for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
        TripletOptions o;
        o.soft = soft;
        o.reduction = red;
        const LossResult<S> r = batch_hard_triplet_loss(X, labels, o);
        CHECK(r.value == S(0));
        REQUIRE(r.grad.size() == 1);
        CHECK(r.grad[0].rows() == X.rows());
        CHECK(r.grad[0].cols() == X.cols());
        CHECK(r.grad[0].isZero(0));
        CHECK(r.terms.size() == X.rows());
      }
  };
  SECTION("all-unique labels: no positive") {
    Eigen::VectorXi labels(5);
    labels << 4, 3, 2, 1, 0;
    expect_empty(random_embeddings<S>(5, 3, 9101), labels);
  }
  SECTION("single class: no negative") { expect_empty(random_embeddings<S>(5, 3, 9102), Eigen::VectorXi::Ones(5)); }
  SECTION("N = 1 and N = 0") {
    expect_empty(random_embeddings<S>(1, 3, 9103), Eigen::VectorXi::Zero(1));
    expect_empty(RowMatrix<S>(0, 3), Eigen::VectorXi(0));
  }
  SECTION("coincident embeddings: term = margin (soft: softplus(margin)), zero subgradient") {
    const RowMatrix<S> X = RowMatrix<S>::Constant(6, 3, S(0.5));
    const LossResult<S> r = batch_hard_triplet_loss(X, class_blocks(2, 3));
    CHECK(r.value == S(1));
    CHECK(r.grad[0].isZero(0));
    TripletOptions soft;
    soft.soft = true;  // margin 1: softplus(1)
    const LossResult<S> rs = batch_hard_triplet_loss(X, class_blocks(2, 3), soft);
    CHECK(double(rs.value) == Approx(std::log1p(std::exp(1.0))).epsilon(1e-6));
    CHECK(rs.grad[0].isZero(0));
    soft.margin = 0;  // Hermans: log 2
    const LossResult<S> r0 = batch_hard_triplet_loss(X, class_blocks(2, 3), soft);
    CHECK(double(r0.value) == Approx(std::log(2.0)).epsilon(1e-6));
    CHECK(r0.grad[0].isZero(0));
  }
  SECTION("zero vectors under Cosine") {
    RowMatrix<S> X = random_embeddings<S>(8, 3, 9104);
    X.row(2).setZero();
    const LossResult<S> r = batch_hard_triplet_loss<Cosine>(X, class_blocks(2, 4));
    CHECK(std::isfinite(r.value));
    CHECK(r.grad[0].allFinite());
    CHECK(r.grad[0].row(2).isZero(0));
  }
  SECTION("inputs scaled by 1e-6 and 1e6") {
    const RowMatrix<S> X = random_embeddings<S>(12, 4, 9105);
    const Eigen::VectorXi labels = class_blocks(3, 4);
    TripletOptions o;
    o.margin = 0;
    o.reduction = Reduction::Sum;
    const LossResult<S> base = batch_hard_triplet_loss(X, labels, o);
    REQUIRE(base.value > S(0));
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> x = X * S(scale);
      const LossResult<S> r = batch_hard_triplet_loss(x, labels, o);
      CHECK(double(r.value) == Approx(double(base.value) * scale).epsilon(1e-4));
      CHECK((r.grad[0] - base.grad[0]).cwiseAbs().maxCoeff() <= S(1e-3) * base.grad[0].cwiseAbs().maxCoeff());
      TripletOptions soft;
      soft.soft = true;
      for (const TripletOptions& opt : {TripletOptions{}, soft}) {
        const LossResult<S> rr = batch_hard_triplet_loss(x, labels, opt);
        CHECK(std::isfinite(rr.value));
        CHECK(rr.grad[0].allFinite());
        const LossResult<S> rc = batch_hard_triplet_loss<Cosine>(x, labels, opt);
        CHECK(std::isfinite(rc.value));
        CHECK(rc.grad[0].allFinite());
      }
    }
  }
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss rejects bad input", "[batch_hard][errors]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 9201);
  const Eigen::VectorXi labels = random_labels(5, 2, 9202);
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, random_labels(6, 2, 1)), "batch_hard_triplet_loss", "labels",
                           "length 6", "5 rows");
  RowMatrix<S> bad = X;
  bad(4, 2) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(bad, labels), "batch_hard_triplet_loss", "'X'", "row 4");
  TripletOptions o;
  o.margin = -0.5;
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, labels, o, value_only), "batch_hard_triplet_loss", "margin");
  o = TripletOptions{};
  o.swap = true;
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, labels, o), "batch_hard_triplet_loss", "swap", "not supported");
}

TEST_CASE("batch_hard_triplet_loss reproduces TFA triplet_hard_loss and PML BatchHardMiner", "[batch_hard][reference]") {
  const ReferenceFile ref("triplet_batch_hard.txt");
  for (const char* prefix : {"tfa_l2", "tfa_soft", "tfa_sq"}) {
    const std::string p(prefix);
    INFO(p);
    TripletOptions o;
    o.margin = ref.scalar(p + "_margin");
    o.soft = p == "tfa_soft";
    if (o.soft) o.margin = 0;  // TFA's soft term ignores its margin: softplus(d_ap - d_an)
    const RowMatrix<double> X = ref.matrix(p + "_X");
    const Eigen::VectorXi labels = ref.labels(p + "_labels");
    const LossResult<double> r = p == "tfa_sq" ? batch_hard_triplet_loss<SquaredEuclidean>(X, labels, o)
                                               : batch_hard_triplet_loss<Euclidean>(X, labels, o);
    CHECK(r.value == Approx(ref.scalar(p + "_loss")).epsilon(1e-12));
    CHECK((r.grad[0] - ref.matrix(p + "_grad")).cwiseAbs().maxCoeff() < 1e-12);
  }
  TripletOptions pml;
  pml.margin = 0.05;
  pml.reduction = Reduction::MeanNonZero;
  const LossResult<double> r = batch_hard_triplet_loss(ref.matrix("pml_X"), ref.labels("pml_labels"), pml);
  CHECK(r.value == Approx(ref.scalar("pml_loss")).epsilon(1e-12));
  CHECK((r.grad[0] - ref.matrix("pml_grad")).cwiseAbs().maxCoeff() < 1e-12);
  const LossResult<float> rf = batch_hard_triplet_loss(ref.matrix<float>("pml_X"), ref.labels("pml_labels"), pml);
  CHECK(double(rf.value) == Approx(ref.scalar("pml_loss")).epsilon(1e-4));
}

}  // namespace test_batch_hard_triplet_loss

TEST_CASE("batch_hard_triplet_loss soft reproduces pytorch-metric-learning 2.8.1 smooth_loss + BatchHardMiner",
          "[batch_hard][soft][reference]") {
  const contrastive_test::SoftTripletWorst worst = contrastive_test::compare_soft_triplets_with_pml(true);
  for (int code = 0; code < 4; ++code) CHECK(worst.cases[code] > 0);
}

// Prints the worst relative errors: build/tests/triplet_loss_tests "[.pml_report]" -s
TEST_CASE("batch_hard_triplet_loss soft: worst relative error against PML", "[.pml_report]") {
  const contrastive_test::SoftTripletWorst worst = contrastive_test::compare_soft_triplets_with_pml(true);
  for (int code = 0; code < 4; ++code)
    std::printf("TripletMarginLoss(smooth_loss=True) + BatchHardMiner %-50s value %.2e grad %.2e (%d cases)\n",
                contrastive_test::pml_distance_name(code), worst.value[code], worst.grad[code], worst.cases[code]);
}
