// batch_all_triplet_loss against an N^3 brute-force loop (values, valid and
// active triplet counts, ties), finite differences, the three call forms, edge
// cases, bad input, and pytorch-metric-learning reference values.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_soft_triplet.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/batch_all_triplet_loss.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <type_traits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_batch_all_triplet_loss {

namespace {

struct Brute {
  double sum = 0;
  long long valid = 0;
  long long active = 0;
  std::vector<double> anchor_terms;
  double closest_kink = 1e300;  // smallest |hinge| over valid triplets
};

// Every valid triplet, enumerated; the hinge is evaluated in the library's
// scalar type on the library's distances, so ties classify identically.
template <class S>
Brute brute_all(const RowMatrix<S>& D, const Eigen::VectorXi& labels, double margin) {
  Brute b;
  const Index n = D.rows();
  b.anchor_terms.assign(std::size_t(n), 0.0);
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      for (Index q = 0; q < n; ++q) {
        if (labels(q) == labels(a)) continue;
        ++b.valid;
        const S h = D(a, p) - D(a, q) + S(margin);
        b.closest_kink = std::min(b.closest_kink, std::abs(double(h)));
        if (h > S(0)) {
          ++b.active;
          b.sum += double(h);
          b.anchor_terms[std::size_t(a)] += double(h);
        }
      }
    }
  return b;
}

template <class S>
TripletOptions with(double margin, Reduction r) {
  TripletOptions o;
  o.margin = margin;
  o.reduction = r;
  return o;
}

struct Layout {
  const char* name;
  Eigen::VectorXi labels;
};

std::vector<Layout> layouts() {
  Eigen::VectorXi dominant = Eigen::VectorXi::Zero(34);  // more positives than negatives
  dominant.tail(6) << 1, 2, 1, 3, 2, 1;
  Eigen::VectorXi two = class_blocks(2, 13);
  return {{"P x K blocks 4 x 5", class_blocks(4, 5)},
          {"random 30 labels, 5 classes", random_labels(30, 5, 11)},
          {"random 40 labels, 3 classes", random_labels(40, 3, 12)},
          {"random 25 labels, 12 classes (singletons)", random_labels(25, 12, 13)},
          {"one dominant class", dominant},
          {"two classes", two},
          // Beyond 32 positives per anchor on average the hinge runs on row panels, below on tiles.
          {"two classes of 36 (row panels)", class_blocks(2, 36)},
          {"random 90 labels, 2 classes (row panels)", random_labels(90, 2, 14)}};
}

}  // namespace

TEMPLATE_TEST_CASE("batch_all_triplet_loss matches an N^3 brute-force loop", "[batch_all]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 1000;
  for (const Layout& layout : layouts()) {
    const Index n = layout.labels.size();
    const RowMatrix<S> X = random_embeddings<S>(n, 6, ++seed);
    const RowMatrix<S> D = pairwise_distance<M>(X);
    for (double margin : {0.0, 0.2, 1.0}) {
      INFO(layout.name << ", margin " << margin);
      const Brute b = brute_all(D, layout.labels, margin);
      REQUIRE(b.active > 0);
      const LossResult<S> sum = batch_all_triplet_loss<M>(X, layout.labels, with<S>(margin, Reduction::Sum));
      const LossResult<S> mean = batch_all_triplet_loss<M>(X, layout.labels, with<S>(margin, Reduction::Mean));
      const LossResult<S> nonzero =
          batch_all_triplet_loss<M>(X, layout.labels, with<S>(margin, Reduction::MeanNonZero));
      const double tol = 20 * value_tolerance<S>();
      CHECK(double(sum.value) == Approx(b.sum).epsilon(tol).margin(tol));
      CHECK(double(mean.value) == Approx(b.sum / double(b.valid)).epsilon(tol).margin(tol));
      CHECK(double(nonzero.value) == Approx(b.sum / double(b.active)).epsilon(tol).margin(tol));
      // The divisors, exactly: valid triplets for Mean, active ones for MeanNonZero.
      CHECK(std::llround(double(sum.value) / double(mean.value)) == b.valid);
      CHECK(std::llround(double(sum.value) / double(nonzero.value)) == b.active);
      REQUIRE(sum.terms.size() == n);
      for (Index a = 0; a < n; ++a)
        CHECK(double(sum.terms(a)) == Approx(b.anchor_terms[std::size_t(a)]).epsilon(tol).margin(tol));
      // Mean and MeanNonZero gradients are the Sum gradient scaled by the divisor.
      CHECK((mean.grad[0] * S(double(b.valid)) - sum.grad[0]).cwiseAbs().maxCoeff() <=
            S(tol) * std::max(S(1), sum.grad[0].cwiseAbs().maxCoeff()));
      CHECK(batch_all_triplet_loss<M>(X, layout.labels, with<S>(margin, Reduction::MeanNonZero), value_only) ==
            nonzero.value);
    }
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss counts exact ties as inactive, like the brute force",
                   "[batch_all][ties]", float, double) {
  using S = TestType;
  // Integer points under the squared distance: every distance is an exact
  // integer, so many hinges are exactly 0.
  for (unsigned seed = 0; seed < 6; ++seed) {
    std::mt19937 gen(seed);
    std::uniform_int_distribution<int> coord(0, 2);
    const Index n = 24;
    RowMatrix<S> X(n, 3);
    for (Index i = 0; i < n; ++i)
      for (Index j = 0; j < 3; ++j) X(i, j) = S(coord(gen));
    const Eigen::VectorXi labels = seed % 2 ? random_labels(n, 3, seed) : random_labels(n, 8, seed);
    const RowMatrix<S> D = pairwise_distance<SquaredEuclidean>(X);
    for (double margin : {1.0, 2.0}) {
      const Brute b = brute_all(D, labels, margin);
      REQUIRE(b.closest_kink == 0.0);  // the premise: exact ties exist
      const S sum = batch_all_triplet_loss<SquaredEuclidean>(X, labels, with<S>(margin, Reduction::Sum), value_only);
      const S nonzero =
          batch_all_triplet_loss<SquaredEuclidean>(X, labels, with<S>(margin, Reduction::MeanNonZero), value_only);
      CHECK(double(sum) == b.sum);  // integers: exact
      CHECK(std::llround(double(sum) / double(nonzero)) == b.active);
      // The gradient of a tied triplet is 0: compare with the sum over strictly active triplets.
      const LossResult<S> r = batch_all_triplet_loss<SquaredEuclidean>(X, labels, with<S>(margin, Reduction::Sum));
      RowMatrix<double> expected = RowMatrix<double>::Zero(n, 3);
      for (Index a = 0; a < n; ++a)
        for (Index p = 0; p < n; ++p) {
          if (p == a || labels(p) != labels(a)) continue;
          for (Index q = 0; q < n; ++q) {
            if (labels(q) == labels(a) || !(D(a, p) - D(a, q) + S(margin) > S(0))) continue;
            const RowMatrix<double> xa = X.row(a).template cast<double>(), xp = X.row(p).template cast<double>(),
                                    xq = X.row(q).template cast<double>();
            expected.row(a) += 2 * (xa - xp) - 2 * (xa - xq);
            expected.row(p) -= 2 * (xa - xp);
            expected.row(q) += 2 * (xa - xq);
          }
        }
      CHECK((r.grad[0].template cast<double>() - expected).cwiseAbs().maxCoeff() == 0.0);
    }
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss keeps the hinges' precision when distances dwarf the margin",
                   "[batch_all][accuracy]", float, double) {
  using S = TestType;
  // Row 0 at the origin, the others on a circle of radius R, their radii
  // spread by about the margin: anchor 0's distances are all ~R but differ
  // by ~m, so its hinges are ~m while the distances are ~R (R/m = 2e4 in
  // float, 2e12 in double). Sums of raw distances would cancel to noise of
  // eps * R per triplet; the library's sums are of non-negative gaps.
  const double R = std::is_same<S, float>::value ? 1e4 : 1e12;
  const double margin = 0.5;
  std::mt19937 gen(3);
  std::uniform_real_distribution<double> angle(0.0, 6.283185307179586), spread(-2.0, 2.0);
  for (const Index positives : {Index(10), Index(20)}) {  // both sides of the smaller-side choice
    const Index n = 31;
    RowMatrix<S> X = RowMatrix<S>::Zero(n, 2);
    Eigen::VectorXi labels = Eigen::VectorXi::Ones(n);
    labels.head(positives + 1).setZero();
    for (Index i = 1; i < n; ++i) {
      const double r = R + margin * spread(gen), t = angle(gen);
      X(i, 0) = static_cast<S>(r * std::cos(t));
      X(i, 1) = static_cast<S>(r * std::sin(t));
    }
    const RowMatrix<S> D = pairwise_distance(X);
    const Brute b = brute_all(D, labels, margin);
    INFO(positives << " positives of anchor 0, " << (n - 1 - positives) << " negatives");
    REQUIRE(b.anchor_terms[0] > 10 * margin);
    const LossResult<S> r = batch_all_triplet_loss(X, labels, with<S>(margin, Reduction::Sum));
    CHECK(double(r.terms(0)) == Approx(b.anchor_terms[0]).epsilon(value_tolerance<S>()));
    CHECK(double(r.value) == Approx(b.sum).epsilon(value_tolerance<S>()));
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss gradient matches finite differences", "[batch_all][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const double gap = sizeof(S) == sizeof(float) ? 0.03 : 1e-3;
  for (Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
    for (const Eigen::VectorXi& labels : {class_blocks(3, 3), random_labels(9, 2, 5)}) {
      bool found = false;
      for (unsigned seed = 2000; seed < 4000 && !found; ++seed) {
        const RowMatrix<S> X = random_embeddings<S>(labels.size(), 3, seed);
        const TripletOptions o = with<S>(0.5, reduction);
        const Brute b = brute_all(pairwise_distance<M>(X), labels, o.margin);
        if (b.closest_kink < gap || b.active == 0) continue;
        found = true;
        const LossResult<S> r = batch_all_triplet_loss<M>(X, labels, o);
        auto f = [&](const RowMatrix<S>& x) { return batch_all_triplet_loss<M>(x, labels, o, value_only); };
        const auto report = testing::check_gradient(f, X, r.grad[0]);
        INFO("seed " << seed << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(r.grad[0].isZero(0));
      }
      REQUIRE(found);
    }
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss writes the gradient into a caller-owned buffer", "[batch_all]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(12, 4, 3001);
  const Eigen::VectorXi labels = class_blocks(3, 4);
  const TripletOptions o = with<S>(1.0, Reduction::MeanNonZero);
  const LossResult<S> r = batch_all_triplet_loss(X, labels, o);
  std::vector<S> buffer(48, S(7));
  Eigen::Map<RowMatrix<S>> out(buffer.data(), 12, 4);
  CHECK(batch_all_triplet_loss(X, labels, o, out) == r.value);
  CHECK(out == r.grad[0]);
  std::vector<S> wrong(44, S(7));
  Eigen::Map<RowMatrix<S>> bad(wrong.data(), 11, 4);
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, labels, o, bad), "batch_all_triplet_loss", "grad", "11 x 4",
                           "12 x 4");
  CHECK(std::all_of(wrong.begin(), wrong.end(), [](S v) { return v == S(7); }));
  // A std::vector of labels through a Map, and a column-major input.
  std::vector<int> label_buffer(labels.data(), labels.data() + 12);
  const Eigen::Map<const Eigen::VectorXi> mapped(label_buffer.data(), 12);
  const Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic> col_major = X;
  CHECK(batch_all_triplet_loss(col_major, mapped, o, value_only) == r.value);
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss edge cases", "[batch_all][edge]", float, double) {
  using S = TestType;
  const TripletOptions o = with<S>(1.0, Reduction::MeanNonZero);
  auto expect_empty = [&](const RowMatrix<S>& X, const Eigen::VectorXi& labels) {
    for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
      const LossResult<S> r = batch_all_triplet_loss(X, labels, with<S>(1.0, red));
      CHECK(r.value == S(0));
      REQUIRE(r.grad.size() == 1);
      CHECK(r.grad[0].rows() == X.rows());
      CHECK(r.grad[0].cols() == X.cols());
      CHECK(r.grad[0].isZero(0));
    }
  };
  SECTION("all-unique labels: no positive pair") {
    Eigen::VectorXi labels(6);
    labels << 0, 1, 2, 3, 4, 5;
    expect_empty(random_embeddings<S>(6, 3, 3101), labels);
  }
  SECTION("single class: no negative") { expect_empty(random_embeddings<S>(6, 3, 3102), Eigen::VectorXi::Zero(6)); }
  SECTION("N = 1 and N = 0") {
    expect_empty(random_embeddings<S>(1, 3, 3103), Eigen::VectorXi::Zero(1));
    expect_empty(RowMatrix<S>(0, 3), Eigen::VectorXi(0));
  }
  SECTION("coincident embeddings: every triplet at the margin, zero subgradient") {
    const RowMatrix<S> X = RowMatrix<S>::Ones(6, 3);
    const LossResult<S> r = batch_all_triplet_loss(X, class_blocks(2, 3), o);
    CHECK(r.value == S(1));
    CHECK(r.grad[0].isZero(0));
  }
  SECTION("zero vectors under Cosine") {
    RowMatrix<S> X = random_embeddings<S>(8, 3, 3104);
    X.row(0).setZero();
    X.row(5).setZero();
    const LossResult<S> r = batch_all_triplet_loss<Cosine>(X, class_blocks(2, 4), o);
    CHECK(std::isfinite(r.value));
    CHECK(r.grad[0].allFinite());
    CHECK(r.grad[0].row(0).isZero(0));
    CHECK(r.grad[0].row(5).isZero(0));
  }
  SECTION("inputs scaled by 1e-6 and 1e6") {
    const RowMatrix<S> X = random_embeddings<S>(12, 4, 3105);
    const Eigen::VectorXi labels = class_blocks(3, 4);
    const LossResult<S> base = batch_all_triplet_loss(X, labels, with<S>(0.0, Reduction::Sum));
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> x = X * S(scale);
      const LossResult<S> r = batch_all_triplet_loss(x, labels, with<S>(0.0, Reduction::Sum));
      CHECK(double(r.value) == Approx(double(base.value) * scale).epsilon(1e-4));
      CHECK(r.grad[0].allFinite());
      CHECK((r.grad[0] - base.grad[0]).cwiseAbs().maxCoeff() <= S(1e-3) * base.grad[0].cwiseAbs().maxCoeff());
      const LossResult<S> small_margin = batch_all_triplet_loss(x, labels, with<S>(1.0, Reduction::MeanNonZero));
      CHECK(std::isfinite(small_margin.value));
      CHECK(small_margin.grad[0].allFinite());
      const LossResult<S> rc = batch_all_triplet_loss<Cosine>(x, labels, o);
      CHECK(std::isfinite(rc.value));
      CHECK(rc.grad[0].allFinite());
    }
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss rejects bad input", "[batch_all][errors]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 3201);
  const Eigen::VectorXi labels = random_labels(5, 2, 3202);
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, random_labels(4, 2, 1)), "batch_all_triplet_loss", "labels",
                           "length 4", "5 rows");
  RowMatrix<S> bad = X;
  bad(3, 0) = std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(bad, labels), "batch_all_triplet_loss", "'X'", "row 3");
  TripletOptions o;
  o.margin = -1;
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, labels, o), "batch_all_triplet_loss", "margin", ">= 0");
  o = TripletOptions{};
  o.swap = true;
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, labels, o), "batch_all_triplet_loss", "swap", "not supported");
}

TEST_CASE("batch_all_triplet_loss reproduces PML TripletMarginLoss without a miner", "[batch_all][reference]") {
  const ReferenceFile ref("triplet_batch_all.txt");
  TripletOptions pml;
  pml.margin = 0.05;
  pml.reduction = Reduction::MeanNonZero;
  const LossResult<double> r = batch_all_triplet_loss(ref.matrix("pml_X"), ref.labels("pml_labels"), pml);
  CHECK(r.value == Approx(ref.scalar("pml_loss")).epsilon(1e-12));
  CHECK((r.grad[0] - ref.matrix("pml_grad")).cwiseAbs().maxCoeff() < 1e-12);
  const LossResult<float> rf =
      batch_all_triplet_loss(ref.matrix<float>("pml_X"), ref.labels("pml_labels"), pml);
  CHECK(double(rf.value) == Approx(ref.scalar("pml_loss")).epsilon(1e-4));

  TripletOptions mean;  // margin 1, Reduction::Mean over all valid triplets
  const LossResult<double> m = batch_all_triplet_loss(ref.matrix("mean_X"), ref.labels("mean_labels"), mean);
  CHECK(m.value == Approx(ref.scalar("mean_loss")).epsilon(1e-12));
  CHECK((m.grad[0] - ref.matrix("mean_grad")).cwiseAbs().maxCoeff() < 1e-12);
}

}  // namespace test_batch_all_triplet_loss

namespace test_batch_all_triplet_loss {
namespace {

// softplus(d_ap - d_an + margin) over every valid triplet, each taking its anchor's weight.
struct SoftBrute {
  double sum = 0;
  long long valid = 0, positive = 0;
  std::vector<double> anchor_terms;
};

template <class S>
SoftBrute brute_soft(const RowMatrix<S>& D, const Eigen::VectorXi& labels, double margin, const std::vector<double>& w) {
  SoftBrute b;
  const Index n = D.rows();
  b.anchor_terms.assign(std::size_t(n), 0.0);
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p) {
      if (p == a || labels(p) != labels(a)) continue;
      for (Index q = 0; q < n; ++q) {
        if (labels(q) == labels(a)) continue;
        ++b.valid;
        const double x = double(D(a, p)) - double(D(a, q)) + margin;
        const double term = w[std::size_t(a)] * (x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)));
        b.sum += term;
        b.anchor_terms[std::size_t(a)] += term;
        if (term > 0) ++b.positive;
      }
    }
  return b;
}

}  // namespace

TEMPLATE_TEST_CASE("batch_all_triplet_loss soft matches a brute-force softplus loop", "[batch_all][soft]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  unsigned seed = 1500;
  for (const Layout& layout : layouts()) {
    const Index n = layout.labels.size();
    const RowMatrix<S> X = random_embeddings<S>(n, 6, ++seed);
    const RowMatrix<S> D = pairwise_distance<M>(X);
    const Vector<double> weights = random_embeddings<double>(n, 1, seed + 100).cwiseAbs();
    const std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
    for (double margin : {0.0, 0.2, 1.0}) {
      for (const bool weighted : {false, true}) {
        INFO(layout.name << ", margin " << margin << (weighted ? ", weighted" : ""));
        const SoftBrute b = brute_soft(D, layout.labels, margin, weighted ? w : ones);
        REQUIRE(b.valid > 0);
        const double tol = 20 * value_tolerance<S>();
        for (const Reduction r : {Reduction::Sum, Reduction::Mean, Reduction::MeanNonZero}) {
          TripletOptions o = with<S>(margin, r);
          o.soft = true;
          if (weighted) o.reduction = Reducer(r, weights);
          const LossResult<S> got = batch_all_triplet_loss<M>(X, layout.labels, o);
          const double divisor = r == Reduction::Sum ? 1.0 : r == Reduction::Mean ? double(b.valid) : double(b.positive);
          CHECK(double(got.value) == Approx(b.sum / divisor).epsilon(tol).margin(tol));
          REQUIRE(got.terms.size() == n);
          for (Index a = 0; a < n; ++a)
            CHECK(double(got.terms(a)) == Approx(b.anchor_terms[std::size_t(a)]).epsilon(tol).margin(tol));
          CHECK(batch_all_triplet_loss<M>(X, layout.labels, o, value_only) == got.value);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss soft gradient matches finite differences", "[batch_all][soft][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  // The softplus has no kink: any point will do (but Euclidean's at coincident rows, which random rows avoid).
  unsigned seed = 2600;
  for (const Reduction reduction : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
    for (const Eigen::VectorXi& labels : {class_blocks(3, 3), random_labels(9, 2, 5), random_labels(10, 6, 7)}) {
      for (const double margin : {0.0, 0.5}) {
        const RowMatrix<S> X = random_embeddings<S>(labels.size(), 3, ++seed);
        const Vector<double> weights = random_embeddings<double>(labels.size(), 1, seed + 50).cwiseAbs();
        TripletOptions o = with<S>(margin, reduction);
        o.soft = true;
        if (margin > 0) o.reduction = Reducer(reduction, weights);
        const LossResult<S> r = batch_all_triplet_loss<M>(X, labels, o);
        auto f = [&](const RowMatrix<S>& x) { return batch_all_triplet_loss<M>(x, labels, o, value_only); };
        const auto report = testing::check_gradient(f, X, r.grad[0]);
        INFO("seed " << seed << ", margin " << margin << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(r.grad[0].isZero(0));
      }
    }
  }
}

TEMPLATE_TEST_CASE("batch_all_triplet_loss soft edge cases", "[batch_all][soft][edge]", float, double) {
  using S = TestType;
  TripletOptions o;
  o.soft = true;
  for (const Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
    o.reduction = r;
    for (const Eigen::VectorXi& labels : {Eigen::VectorXi(Eigen::VectorXi::Zero(5)), Eigen::VectorXi(Eigen::VectorXi::LinSpaced(5, 0, 4))}) {
      const LossResult<S> res = batch_all_triplet_loss(random_embeddings<S>(5, 3, 3301), labels, o);
      CHECK(res.value == S(0));
      CHECK(res.grad[0].isZero(0));
    }
    const LossResult<S> empty = batch_all_triplet_loss(RowMatrix<S>(0, 3), Eigen::VectorXi(0), o);
    CHECK(empty.value == S(0));
    CHECK(empty.grad[0].rows() == 0);
  }
  // Coincident rows: every triplet is softplus(margin), zero gradient (Euclidean's zero subgradient).
  const RowMatrix<S> X = RowMatrix<S>::Constant(6, 3, S(0.5));
  o.reduction = Reduction::Mean;
  o.margin = 0;
  const LossResult<S> r0 = batch_all_triplet_loss(X, class_blocks(2, 3), o);
  CHECK(double(r0.value) == Approx(std::log(2.0)).epsilon(1e-6));
  CHECK(r0.grad[0].isZero(0));
  o.margin = 1;
  CHECK(double(batch_all_triplet_loss(X, class_blocks(2, 3), o, value_only)) == Approx(std::log1p(std::exp(1.0))).epsilon(1e-6));
}

TEST_CASE("batch_all_triplet_loss soft reproduces pytorch-metric-learning 2.8.1 smooth_loss", "[batch_all][soft][reference]") {
  const SoftTripletWorst worst = compare_soft_triplets_with_pml(false);
  for (int code = 0; code < 4; ++code) CHECK(worst.cases[code] > 0);
}

// Prints the worst relative errors: build/tests/triplet_loss_tests "[.pml_report]" -s
TEST_CASE("batch_all_triplet_loss soft: worst relative error against PML", "[.pml_report]") {
  const SoftTripletWorst worst = compare_soft_triplets_with_pml(false);
  for (int code = 0; code < 4; ++code)
    std::printf("TripletMarginLoss(smooth_loss=True), all triplets  %-50s value %.2e grad %.2e (%d cases)\n",
                pml_distance_name(code), worst.value[code], worst.grad[code], worst.cases[code]);
}

}  // namespace test_batch_all_triplet_loss
