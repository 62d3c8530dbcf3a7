// triplet_margin_loss: explicit and index triplets against a brute-force loop,
// finite differences, the three call forms, edge cases, bad input, and
// PyTorch / PML reference values.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/triplet_margin_loss.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_triplet_margin_loss {

namespace {

struct Brute {
  double value = 0;
  std::vector<double> hinges;  // d_ap - d_an(+swap) + margin per triplet, before clamping
  double closest_swap_tie = 1e300;
};

template <class S>
Brute brute_explicit(Ref metric, const RowMatrix<S>& A, const RowMatrix<S>& P, const RowMatrix<S>& N,
                     const TripletOptions& o) {
  Brute b;
  double sum = 0;
  Index positive = 0;
  for (Index i = 0; i < A.rows(); ++i) {
    const double ap = reference_distance(metric, A.row(i), P.row(i));
    double an = reference_distance(metric, A.row(i), N.row(i));
    if (o.swap) {
      const double pn = reference_distance(metric, P.row(i), N.row(i));
      b.closest_swap_tie = std::min(b.closest_swap_tie, std::abs(pn - an));
      an = std::min(an, pn);
    }
    const double x = ap - an;
    b.hinges.push_back(x + o.margin);
    const double term = o.soft ? std::log1p(std::exp(x + o.margin)) : std::max(0.0, x + o.margin);  // soft: softplus(x + margin)
    sum += term;
    if (term > 0) ++positive;
  }
  const Index count = A.rows();
  switch (o.reduction.kind()) {
    case Reduction::Sum: b.value = sum; break;
    case Reduction::Mean: b.value = count ? sum / double(count) : 0; break;
    case Reduction::MeanNonZero: b.value = positive ? sum / double(positive) : 0; break;
  }
  return b;
}

template <class S>
bool away_from_kinks(const Brute& b, const TripletOptions& o, double gap) {
  if (o.swap && b.closest_swap_tie < gap) return false;
  if (o.soft) return true;
  for (double h : b.hinges)
    if (std::abs(h) < gap) return false;
  return true;
}

std::vector<TripletOptions> option_grid() {
  std::vector<TripletOptions> grid;
  for (double margin : {0.0, 0.3, 1.0})
    for (bool swap : {false, true})
      for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
        TripletOptions o;
        o.margin = margin;
        o.swap = swap;
        o.reduction = r;
        grid.push_back(o);
      }
  TripletOptions soft;
  soft.soft = true;
  grid.push_back(soft);
  soft.swap = true;
  soft.reduction = Reduction::Sum;
  grid.push_back(soft);
  soft.margin = 0;  // the Hermans soft margin
  soft.swap = false;
  soft.reduction = Reduction::MeanNonZero;
  grid.push_back(soft);
  return grid;
}

template <class S>
void require_close(double actual, double expected, double tol) {
  CHECK(actual == Approx(expected).epsilon(tol).margin(tol));
}

}  // namespace

TEMPLATE_TEST_CASE("triplet_margin_loss (explicit) matches a brute-force loop", "[triplet_margin]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> A = random_embeddings<S>(23, 7, 101);
  const RowMatrix<S> P = random_embeddings<S>(23, 7, 102);
  const RowMatrix<S> N = random_embeddings<S>(23, 7, 103);
  for (const TripletOptions& o : option_grid()) {
    INFO("margin " << o.margin << " swap " << o.swap << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
    const Brute b = brute_explicit(ref_of<M>(), A, P, N, o);
    const LossResult<S> r = triplet_margin_loss<M>(A, P, N, o);
    require_close<S>(double(r.value), b.value, value_tolerance<S>() * 10);
    REQUIRE(r.grad.size() == 3);
    REQUIRE(r.terms.size() == 23);
    for (Index i = 0; i < 23; ++i) {
      const double expected = o.soft ? std::log1p(std::exp(b.hinges[std::size_t(i)]))
                                     : std::max(0.0, b.hinges[std::size_t(i)]);
      require_close<S>(double(r.terms(i)), expected, value_tolerance<S>() * 10);
    }
    CHECK(triplet_margin_loss<M>(A, P, N, o, value_only) == r.value);
  }
}

TEMPLATE_TEST_CASE("triplet_margin_loss (explicit) gradients match finite differences",
                   "[triplet_margin][gradient]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  for (const TripletOptions& o : option_grid()) {
    INFO("margin " << o.margin << " swap " << o.swap << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
    // A seed whose triplets sit away from the hinge and swap kinks.
    unsigned seed = 200;
    RowMatrix<S> A, P, N;
    for (;; seed += 3) {
      A = random_embeddings<S>(6, 4, seed);
      P = random_embeddings<S>(6, 4, seed + 1);
      N = random_embeddings<S>(6, 4, seed + 2);
      if (away_from_kinks<S>(brute_explicit(ref_of<M>(), A, P, N, o), o, 0.05)) break;
    }
    const LossResult<S> r = triplet_margin_loss<M>(A, P, N, o);
    auto fa = [&](const RowMatrix<S>& a) { return triplet_margin_loss<M>(a, P, N, o, value_only); };
    auto fp = [&](const RowMatrix<S>& p) { return triplet_margin_loss<M>(A, p, N, o, value_only); };
    auto fn = [&](const RowMatrix<S>& n) { return triplet_margin_loss<M>(A, P, n, o, value_only); };
    const auto ra = testing::check_gradient(fa, A, r.grad[0]);
    const auto rp = testing::check_gradient(fp, P, r.grad[1]);
    const auto rn = testing::check_gradient(fn, N, r.grad[2]);
    INFO(ra.summary() << " / " << rp.summary() << " / " << rn.summary());
    CHECK(ra.passed);
    CHECK(rp.passed);
    CHECK(rn.passed);
  }
}

TEMPLATE_TEST_CASE("triplet_margin_loss (index) equals the explicit form on gathered rows",
                   "[triplet_margin]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(15, 6, 301);
  const Eigen::VectorXi labels = random_labels(15, 4, 302);
  Triplets t;
  for (Index a = 0; a < 15; ++a)
    for (Index p = 0; p < 15; ++p)
      for (Index n = 0; n < 15; ++n)
        if (a != p && labels(a) == labels(p) && labels(n) != labels(a) && (a + 2 * p + 3 * n) % 5 == 0)
          t.add(a, p, n);
  REQUIRE(t.size() > 20);
  t.add(3, 3, 3);  // degenerate triplets are accepted as given
  RowMatrix<S> A(t.size(), 6), P(t.size(), 6), N(t.size(), 6);
  for (Index k = 0; k < t.size(); ++k) {
    A.row(k) = X.row(t.anchor[std::size_t(k)]);
    P.row(k) = X.row(t.positive[std::size_t(k)]);
    N.row(k) = X.row(t.negative[std::size_t(k)]);
  }
  for (const TripletOptions& o : option_grid()) {
    INFO("margin " << o.margin << " swap " << o.swap << " soft " << o.soft << " reduction " << int(o.reduction.kind()));
    const LossResult<S> e = triplet_margin_loss<M>(A, P, N, o);
    const LossResult<S> r = triplet_margin_loss<M>(X, t, o);
    require_close<S>(double(r.value), double(e.value), value_tolerance<S>() * 10);
    REQUIRE(r.grad.size() == 1);
    REQUIRE(r.terms.size() == t.size());
    for (Index k = 0; k < t.size(); ++k) require_close<S>(double(r.terms(k)), double(e.terms(k)), value_tolerance<S>() * 10);
    // Scatter-add of the explicit gradients.
    RowMatrix<double> expected = RowMatrix<double>::Zero(15, 6);
    for (Index k = 0; k < t.size(); ++k) {
      expected.row(t.anchor[std::size_t(k)]) += e.grad[0].row(k).template cast<double>();
      expected.row(t.positive[std::size_t(k)]) += e.grad[1].row(k).template cast<double>();
      expected.row(t.negative[std::size_t(k)]) += e.grad[2].row(k).template cast<double>();
    }
    const double err = (r.grad[0].template cast<double>() - expected).cwiseAbs().maxCoeff();
    CHECK(err <= 50 * value_tolerance<S>() * std::max(1.0, expected.cwiseAbs().maxCoeff()));
    CHECK(triplet_margin_loss<M>(X, t, o, value_only) == r.value);
  }
}

TEMPLATE_TEST_CASE("triplet_margin_loss (index) gradient matches finite differences",
                   "[triplet_margin][gradient]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  TripletOptions o;
  o.margin = 0.5;
  o.swap = true;
  for (unsigned seed = 400;; ++seed) {
    const RowMatrix<S> X = random_embeddings<S>(8, 3, seed);
    Triplets t;
    t.add(0, 1, 2);
    t.add(1, 0, 5);
    t.add(3, 4, 0);
    t.add(6, 7, 1);
    t.add(0, 1, 7);
    RowMatrix<S> A(5, 3), P(5, 3), N(5, 3);
    for (Index k = 0; k < 5; ++k) {
      A.row(k) = X.row(t.anchor[std::size_t(k)]);
      P.row(k) = X.row(t.positive[std::size_t(k)]);
      N.row(k) = X.row(t.negative[std::size_t(k)]);
    }
    if (!away_from_kinks<S>(brute_explicit(ref_of<M>(), A, P, N, o), o, 0.05)) continue;
    const LossResult<S> r = triplet_margin_loss<M>(X, t, o);
    CHECK(r.value > S(0));
    auto f = [&](const RowMatrix<S>& x) { return triplet_margin_loss<M>(x, t, o, value_only); };
    const auto report = testing::check_gradient(f, X, r.grad[0]);
    INFO(report.summary());
    CHECK(report.passed);
    break;
  }
}

TEMPLATE_TEST_CASE("triplet_margin_loss writes gradients into caller-owned buffers", "[triplet_margin]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> A = random_embeddings<S>(9, 5, 501);
  const RowMatrix<S> P = random_embeddings<S>(9, 5, 502);
  const RowMatrix<S> N = random_embeddings<S>(9, 5, 503);
  TripletOptions o;
  o.swap = true;
  const LossResult<S> r = triplet_margin_loss(A, P, N, o);
  std::vector<S> ga(45, S(7)), gp(45, S(7)), gn(45, S(7));
  Eigen::Map<RowMatrix<S>> ma(ga.data(), 9, 5), mp(gp.data(), 9, 5), mn(gn.data(), 9, 5);
  CHECK(triplet_margin_loss(A, P, N, o, ma, mp, mn) == r.value);
  CHECK(ma == r.grad[0]);
  CHECK(mp == r.grad[1]);
  CHECK(mn == r.grad[2]);

  std::vector<S> wrong(40, S(7));
  Eigen::Map<RowMatrix<S>> bad(wrong.data(), 8, 5);
  std::fill(ga.begin(), ga.end(), S(7));
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, P, N, o, ma, mp, bad), "triplet_margin_loss", "grad3", "8 x 5",
                           "9 x 5");
  CHECK(std::all_of(wrong.begin(), wrong.end(), [](S v) { return v == S(7); }));
  CHECK(std::all_of(ga.begin(), ga.end(), [](S v) { return v == S(7); }));

  // Index form.
  const RowMatrix<S> X = random_embeddings<S>(6, 5, 504);
  Triplets t;
  t.add(0, 1, 2);
  t.add(3, 4, 5);
  const LossResult<S> ri = triplet_margin_loss(X, t, o);
  std::vector<S> gx(30, S(7));
  Eigen::Map<RowMatrix<S>> mx(gx.data(), 6, 5);
  CHECK(triplet_margin_loss(X, t, o, mx) == ri.value);
  CHECK(mx == ri.grad[0]);
  std::vector<S> gx_bad(35, S(7));
  Eigen::Map<RowMatrix<S>> mx_bad(gx_bad.data(), 7, 5);
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(X, t, o, mx_bad), "triplet_margin_loss", "grad", "7 x 5", "6 x 5");
  CHECK(std::all_of(gx_bad.begin(), gx_bad.end(), [](S v) { return v == S(7); }));
}

TEMPLATE_TEST_CASE("triplet_margin_loss edge cases", "[triplet_margin][edge]", float, double) {
  using S = TestType;
  SECTION("no triplet: loss 0, empty or zero gradient") {
    const RowMatrix<S> empty(0, 4);
    const LossResult<S> r = triplet_margin_loss(empty, empty, empty);
    CHECK(r.value == S(0));
    CHECK(r.grad[0].rows() == 0);
    CHECK(r.grad[0].cols() == 4);
    CHECK(r.terms.size() == 0);
    const RowMatrix<S> X = random_embeddings<S>(5, 4, 601);
    const LossResult<S> ri = triplet_margin_loss(X, Triplets{});
    CHECK(ri.value == S(0));
    CHECK(ri.grad[0].rows() == 5);
    CHECK(ri.grad[0].isZero(0));
    const LossResult<S> re = triplet_margin_loss(empty, Triplets{});
    CHECK(re.value == S(0));
    CHECK(re.grad[0].rows() == 0);
  }
  SECTION("coincident embeddings: loss = margin, zero subgradient, finite") {
    const RowMatrix<S> A = random_embeddings<S>(3, 4, 602);
    TripletOptions o;
    o.swap = true;
    const LossResult<S> r = triplet_margin_loss(A, A, A, o);
    CHECK(r.value == S(1));
    for (const auto& g : r.grad) CHECK(g.isZero(0));
    const LossResult<S> rc = triplet_margin_loss<Cosine>(A, A, A, o);
    CHECK(std::abs(rc.value - S(1)) < S(1e-5));
    for (const auto& g : rc.grad) CHECK(g.allFinite());
  }
  SECTION("zero vectors under Cosine: finite, zero gradient on the zero rows") {
    RowMatrix<S> A = random_embeddings<S>(4, 3, 603);
    RowMatrix<S> P = random_embeddings<S>(4, 3, 604);
    const RowMatrix<S> N = RowMatrix<S>::Zero(4, 3);
    A.row(1).setZero();
    const LossResult<S> r = triplet_margin_loss<Cosine>(A, P, N);
    CHECK(std::isfinite(r.value));
    for (const auto& g : r.grad) CHECK(g.allFinite());
    CHECK(r.grad[2].isZero(0));
    CHECK(r.grad[0].row(1).isZero(0));
  }
  SECTION("inputs scaled by 1e-6 and 1e6 stay finite and scale as the distances do") {
    const RowMatrix<S> A = random_embeddings<S>(7, 5, 605);
    const RowMatrix<S> P = random_embeddings<S>(7, 5, 606);
    const RowMatrix<S> N = random_embeddings<S>(7, 5, 607);
    TripletOptions o;
    o.margin = 0;
    o.reduction = Reduction::Sum;
    const LossResult<S> base = triplet_margin_loss(A, P, N, o);
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> a = A * S(scale), p = P * S(scale), n = N * S(scale);
      const LossResult<S> r = triplet_margin_loss(a, p, n, o);
      CHECK(std::isfinite(r.value));
      CHECK(double(r.value) == Approx(double(base.value) * scale).epsilon(1e-4));
      for (const auto& g : r.grad) CHECK(g.allFinite());
      // Margin 0: the Euclidean loss is 1-homogeneous, so the gradient does not change.
      CHECK((r.grad[0] - base.grad[0]).cwiseAbs().maxCoeff() <= S(1e-3));
      const LossResult<S> rc = triplet_margin_loss<Cosine>(a, p, n, o);
      CHECK(std::isfinite(rc.value));
      for (const auto& g : rc.grad) CHECK(g.allFinite());
    }
  }
}

TEMPLATE_TEST_CASE("triplet_margin_loss rejects bad input", "[triplet_margin][errors]", float, double) {
  using S = TestType;
  const RowMatrix<S> A = random_embeddings<S>(4, 3, 701);
  const RowMatrix<S> short_rows = random_embeddings<S>(3, 3, 702);
  const RowMatrix<S> narrow = random_embeddings<S>(4, 2, 703);
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, short_rows, A), "triplet_margin_loss", "positive", "3 x 3", "4 x 3");
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, A, narrow), "triplet_margin_loss", "negative", "4 x 2");
  RowMatrix<S> bad = A;
  bad(2, 1) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, bad, A), "triplet_margin_loss", "positive", "row 2");
  TripletOptions o;
  o.margin = -0.1;
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, A, A, o), "triplet_margin_loss", "margin", ">= 0");
  o.margin = std::numeric_limits<double>::infinity();
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, A, A, o, value_only), "triplet_margin_loss", "margin", "finite");
  Triplets t;
  t.add(0, 1, 2);
  t.add(1, 2, 4);
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, t), "triplet_margin_loss", "triplet 1", "negative index 4", "4 rows");
  Triplets neg;
  neg.add(-1, 1, 2);
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, neg), "triplet_margin_loss", "triplet 0", "anchor index -1");
  Triplets ragged;
  ragged.add(0, 1, 2);
  ragged.negative.push_back(3);
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(A, ragged), "triplet_margin_loss", "same length");
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(bad, t), "triplet_margin_loss", "'X'", "row 2");
}

TEST_CASE("triplet_margin_loss reproduces torch.nn.TripletMarginLoss and PML", "[triplet_margin][reference]") {
  const ReferenceFile ref("triplet_margin.txt");
  auto check = [&](const std::string& prefix, auto metric, const TripletOptions& o) {
    using M = decltype(metric);
    INFO(prefix);
    const RowMatrix<double> A = ref.matrix(prefix + "_A"), P = ref.matrix(prefix + "_P"), N = ref.matrix(prefix + "_N");
    const LossResult<double> r = triplet_margin_loss<M>(A, P, N, o);
    CHECK(r.value == Approx(ref.scalar(prefix + "_loss")).epsilon(1e-12));
    CHECK((r.grad[0] - ref.matrix(prefix + "_gA")).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((r.grad[1] - ref.matrix(prefix + "_gP")).cwiseAbs().maxCoeff() < 1e-12);
    CHECK((r.grad[2] - ref.matrix(prefix + "_gN")).cwiseAbs().maxCoeff() < 1e-12);
    const LossResult<float> rf = triplet_margin_loss<M>(A.cast<float>(), P.cast<float>(), N.cast<float>(), o);
    CHECK(double(rf.value) == Approx(ref.scalar(prefix + "_loss")).epsilon(1e-5));
    CHECK((rf.grad[0].cast<double>() - ref.matrix(prefix + "_gA")).cwiseAbs().maxCoeff() < 1e-4);
  };
  TripletOptions o;
  check("mean", Euclidean{}, o);
  o.margin = 0.7;
  o.swap = true;
  o.reduction = Reduction::Sum;
  check("sum_swap", Euclidean{}, o);
  o = TripletOptions{};
  o.margin = 0.3;
  check("cosine", Cosine{}, o);
  o.margin = 2.0;
  o.reduction = Reduction::Sum;
  check("sqeuclid", SquaredEuclidean{}, o);

  // PML TripletMarginLoss(margin=0.05) on mined index triplets: AvgNonZeroReducer.
  const RowMatrix<double> X = ref.matrix("pml_index_X");
  const Vector<double> a = ref.vector("pml_index_a"), p = ref.vector("pml_index_p"), n = ref.vector("pml_index_n");
  Triplets t;
  for (Index k = 0; k < a.size(); ++k) t.add(Index(a(k)), Index(p(k)), Index(n(k)));
  TripletOptions pml;
  pml.margin = 0.05;
  pml.reduction = Reduction::MeanNonZero;
  const LossResult<double> r = triplet_margin_loss(X, t, pml);
  CHECK(r.value == Approx(ref.scalar("pml_index_loss")).epsilon(1e-12));
  CHECK((r.grad[0] - ref.matrix("pml_index_grad")).cwiseAbs().maxCoeff() < 1e-12);
}

}  // namespace test_triplet_margin_loss
