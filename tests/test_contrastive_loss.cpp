// contrastive_loss (explicit and mined pairs) and batch_contrastive_loss:
// against a brute-force loop, finite differences, the three call forms, edge
// cases, bad input, and PyTorch reference values for Hadsell et al., TensorFlow
// Addons and pytorch-metric-learning semantics.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/contrastive_loss.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_contrastive_loss {

namespace {

struct BrutePair {
  double d;
  bool similar;
};

// The loss straight from its definition, in double.
double brute_contrastive(const std::vector<BrutePair>& pairs, const ContrastiveOptions& o,
                         std::vector<double>* terms = nullptr) {
  double sum[2] = {0, 0};
  int count[2] = {0, 0}, nonzero[2] = {0, 0};
  for (const BrutePair& p : pairs) {
    const double h = p.similar ? p.d - o.pos_margin : o.neg_margin - p.d;
    const double t = h > 0 ? o.scale * (o.squared ? h * h : h) : 0.0;
    const int s = p.similar ? 1 : 0;
    sum[s] += t;
    count[s] += 1;
    nonzero[s] += t > 0 ? 1 : 0;
    if (terms) terms->push_back(t);
  }
  auto reduced = [&](double s, int c, int z) {
    switch (o.reduction.kind()) {
      case Reduction::Sum: return s;
      case Reduction::Mean: return c > 0 ? s / c : 0.0;
      case Reduction::MeanNonZero: return z > 0 ? s / z : 0.0;
    }
    return 0.0;
  };
  if (o.average_separately) return reduced(sum[0], count[0], nonzero[0]) + reduced(sum[1], count[1], nonzero[1]);
  return reduced(sum[0] + sum[1], count[0] + count[1], nonzero[0] + nonzero[1]);
}

template <class S>
std::vector<BrutePair> all_pairs(Ref metric, const RowMatrix<S>& X, const Eigen::VectorXi& labels) {
  std::vector<BrutePair> out;
  for (Index i = 0; i < X.rows(); ++i)
    for (Index j = i + 1; j < X.rows(); ++j)
      out.push_back({reference_distance(metric, X.row(i), X.row(j)), labels(i) == labels(j)});
  return out;
}

std::vector<ContrastiveOptions> option_sets() {
  std::vector<ContrastiveOptions> sets(5);
  sets[1].squared = true;
  sets[1].scale = 0.5;
  sets[1].reduction = Reduction::Sum;
  sets[2].pos_margin = 0.3;
  sets[2].neg_margin = 1.1;
  sets[2].reduction = Reduction::MeanNonZero;
  sets[2].average_separately = true;
  sets[3].average_separately = true;
  sets[3].squared = true;
  sets[4].pos_margin = 0.5;
  sets[4].neg_margin = 1.3;
  sets[4].reduction = Reduction::MeanNonZero;
  return sets;
}

Eigen::VectorXi unique_labels(Index n) {
  Eigen::VectorXi labels(n);
  for (Index i = 0; i < n; ++i) labels(i) = int(i);
  return labels;
}

// Classes in blocks, random classes, all-unique labels, a single class, two classes.
std::vector<Eigen::VectorXi> label_layouts() {
  return {class_blocks(4, 4), random_labels(16, 3, 21), unique_labels(16), Eigen::VectorXi::Zero(16),
          random_labels(16, 2, 23)};
}

// Smallest distance of any pair to a hinge kink, so finite differences never straddle one.
template <class S>
double kink_clearance(const std::vector<BrutePair>& pairs, const ContrastiveOptions& o) {
  double m = std::numeric_limits<double>::infinity();
  for (const BrutePair& p : pairs) m = std::min(m, std::abs(p.d - (p.similar ? o.pos_margin : o.neg_margin)));
  return m;
}

constexpr double kEmbeddingScale = 0.35;  // distances of order 1 for every metric at D = 5

}  // namespace

TEMPLATE_TEST_CASE("batch_contrastive_loss matches a brute-force loop", "[contrastive]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(16, 5, 31, kEmbeddingScale);
  for (const Eigen::VectorXi& labels : label_layouts()) {
    for (const ContrastiveOptions& o : option_sets()) {
      std::vector<double> terms;
      const double expected = brute_contrastive(all_pairs(ref_of<M>(), X, labels), o, &terms);
      const LossResult<S> r = batch_contrastive_loss<M>(X, labels, o);
      CHECK(double(r.value) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
      REQUIRE(r.terms.size() == Index(terms.size()));
      for (Index k = 0; k < r.terms.size(); ++k)
        CHECK(double(r.terms(k)) == Approx(terms[std::size_t(k)]).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
      REQUIRE(r.grad.size() == 1);
      CHECK(r.grad[0].rows() == 16);
      CHECK(r.grad[0].cols() == 5);
    }
  }
}

TEMPLATE_TEST_CASE("contrastive_loss on explicit and mined pairs matches a brute-force loop",
                   "[contrastive]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X1 = random_embeddings<S>(13, 5, 32, kEmbeddingScale);
  const RowMatrix<S> X2 = random_embeddings<S>(13, 5, 33, kEmbeddingScale);
  const Eigen::VectorXi similar = random_labels(13, 2, 34);
  Pairs mined;
  std::mt19937 gen(35);
  std::uniform_int_distribution<int> row(0, 12);
  for (int k = 0; k < 30; ++k) mined.add(row(gen), row(gen), k % 3 == 0);
  for (const ContrastiveOptions& o : option_sets()) {
    std::vector<BrutePair> explicit_pairs, mined_pairs;
    for (Index i = 0; i < 13; ++i)
      explicit_pairs.push_back({reference_distance(ref_of<M>(), X1.row(i), X2.row(i)), similar(i) != 0});
    for (Index k = 0; k < mined.size(); ++k) {
      const std::size_t u = std::size_t(k);
      mined_pairs.push_back({mined.first[u] == mined.second[u] ? 0.0
                                 : reference_distance(ref_of<M>(), X1.row(mined.first[u]), X1.row(mined.second[u])),
                             mined.similar[u] != 0});
    }
    std::vector<double> terms;
    const double expected = brute_contrastive(explicit_pairs, o, &terms);
    const LossResult<S> r = contrastive_loss<M>(X1, X2, similar, o);
    CHECK(double(r.value) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    REQUIRE(r.terms.size() == 13);
    for (Index k = 0; k < 13; ++k)
      CHECK(double(r.terms(k)) == Approx(terms[std::size_t(k)]).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    REQUIRE(r.grad.size() == 2);

    const double expected_mined = brute_contrastive(mined_pairs, o);
    const LossResult<S> rm = contrastive_loss<M>(X1, mined, o);
    CHECK(double(rm.value) == Approx(expected_mined).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    REQUIRE(rm.grad.size() == 1);
    CHECK(rm.terms.size() == 30);
  }
}

TEMPLATE_TEST_CASE("mined pairs covering every i < j equal the batch loss, gradient included",
                   "[contrastive]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(12, 5, 36, kEmbeddingScale);
  const Eigen::VectorXi labels = random_labels(12, 3, 37);
  Pairs pairs;
  for (Index i = 0; i < 12; ++i)
    for (Index j = i + 1; j < 12; ++j) pairs.add(i, j, labels(i) == labels(j));
  for (const ContrastiveOptions& o : option_sets()) {
    const LossResult<S> batch = batch_contrastive_loss<M>(X, labels, o);
    const LossResult<S> mined = contrastive_loss<M>(X, pairs, o);
    CHECK(double(mined.value) == Approx(double(batch.value)).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    const double scale = std::max(1.0, double(batch.grad[0].cwiseAbs().maxCoeff()));
    CHECK(double((mined.grad[0] - batch.grad[0]).cwiseAbs().maxCoeff()) <= 1e2 * value_tolerance<S>() * scale);
  }
}

TEMPLATE_TEST_CASE("contrastive gradients match finite differences", "[contrastive][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Eigen::VectorXi labels = random_labels(8, 3, 43);
  const Eigen::VectorXi similar = random_labels(8, 2, 44);
  Pairs pairs;
  for (Index k = 0; k < 8; ++k) pairs.add(k, (3 * k + 1) % 8, k % 2 == 0);
  pairs.add(2, 2, true);  // a degenerate pair contributes nothing
  for (const ContrastiveOptions& o : option_sets()) {
    INFO("pos_margin " << o.pos_margin << " neg_margin " << o.neg_margin << " squared " << o.squared);
    // A random point whose every distance is clear of its hinge kink by more than a
    // finite-difference step moves it (float steps are ~5e-3).
    RowMatrix<S> X, Y;
    double clearance = 0;
    for (unsigned seed = 1000; seed < 1400 && clearance <= 2e-2; seed += 2) {
      X = random_embeddings<S>(8, 4, seed, kEmbeddingScale);
      Y = random_embeddings<S>(8, 4, seed + 1, kEmbeddingScale);
      std::vector<BrutePair> all = all_pairs(ref_of<M>(), X, labels);
      for (Index i = 0; i < 8; ++i)
        all.push_back({reference_distance(ref_of<M>(), X.row(i), Y.row(i)), similar(i) != 0});
      clearance = kink_clearance<S>(all, o);
    }
    REQUIRE(clearance > 2e-2);

    const LossResult<S> batch = batch_contrastive_loss<M>(X, labels, o);
    auto fb = [&](const RowMatrix<S>& x) { return batch_contrastive_loss<M>(x, labels, o, value_only); };
    const auto rb = testing::check_gradient(fb, X, batch.grad[0]);
    INFO("batch: " << rb.summary());
    CHECK(rb.passed);

    const LossResult<S> ex = contrastive_loss<M>(X, Y, similar, o);
    auto f1 = [&](const RowMatrix<S>& x) { return contrastive_loss<M>(x, Y, similar, o, value_only); };
    auto f2 = [&](const RowMatrix<S>& y) { return contrastive_loss<M>(X, y, similar, o, value_only); };
    const auto r1 = testing::check_gradient(f1, X, ex.grad[0]);
    const auto r2 = testing::check_gradient(f2, Y, ex.grad[1]);
    INFO("explicit: " << r1.summary() << " / " << r2.summary());
    CHECK(r1.passed);
    CHECK(r2.passed);

    // The mined pairs are a subset of all pairs, so they are clear of kinks too.
    const LossResult<S> mined = contrastive_loss<M>(X, pairs, o);
    auto fm = [&](const RowMatrix<S>& x) { return contrastive_loss<M>(x, pairs, o, value_only); };
    const auto rm = testing::check_gradient(fm, X, mined.grad[0]);
    INFO("mined: " << rm.summary());
    CHECK(rm.passed);
  }
}

TEMPLATE_TEST_CASE("value-only and buffer forms agree with the full call", "[contrastive][forms]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(9, 4, 51, kEmbeddingScale);
  const RowMatrix<S> Y = random_embeddings<S>(9, 4, 52, kEmbeddingScale);
  const Eigen::VectorXi labels = random_labels(9, 3, 53);
  ContrastiveOptions o;
  o.squared = true;
  o.neg_margin = 1.2;
  Pairs pairs;
  for (Index k = 0; k < 9; ++k) pairs.add(k, (k + 4) % 9, k % 3 == 0);

  const LossResult<S> batch = batch_contrastive_loss(X, labels, o);
  CHECK(batch_contrastive_loss(X, labels, o, value_only) == batch.value);
  std::vector<S> buffer(9 * 4, S(-7));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 9, 4);
  CHECK(batch_contrastive_loss(X, labels, o, grad) == batch.value);
  CHECK(grad == batch.grad[0]);

  const LossResult<S> ex = contrastive_loss(X, Y, labels.unaryExpr([](int v) { return v == 0; }), o);
  CHECK(contrastive_loss(X, Y, labels.unaryExpr([](int v) { return v == 0; }), o, value_only) == ex.value);
  std::vector<S> b1(36, S(3)), b2(36, S(3));
  Eigen::Map<RowMatrix<S>> g1(b1.data(), 9, 4), g2(b2.data(), 9, 4);
  CHECK(contrastive_loss(X, Y, labels.unaryExpr([](int v) { return v == 0; }), o, g1, g2) == ex.value);
  CHECK(g1 == ex.grad[0]);
  CHECK(g2 == ex.grad[1]);

  const LossResult<S> mined = contrastive_loss(X, pairs, o);
  CHECK(contrastive_loss(X, pairs, o, value_only) == mined.value);
  std::vector<S> bm(36, S(5));
  Eigen::Map<RowMatrix<S>> gm(bm.data(), 9, 4);
  CHECK(contrastive_loss(X, pairs, o, gm) == mined.value);
  CHECK(gm == mined.grad[0]);

  // Wrong-shaped buffers throw and are left untouched.
  std::vector<S> small(8 * 4, S(9));
  Eigen::Map<RowMatrix<S>> wrong(small.data(), 8, 4);
  REQUIRE_INVALID_ARGUMENT(batch_contrastive_loss(X, labels, o, wrong), "batch_contrastive_loss",
                           "'grad' is 8 x 4", "must be 9 x 4");
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, pairs, o, wrong), "contrastive_loss", "'grad' is 8 x 4");
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, Y, labels, o, g1, wrong), "contrastive_loss",
                           "'grad2' is 8 x 4");
  CHECK(std::all_of(small.begin(), small.end(), [](S v) { return v == S(9); }));
  CHECK(g1 == ex.grad[0]);
  // A plain matrix output is resized.
  RowMatrix<S> plain;
  batch_contrastive_loss(X, labels, o, plain);
  CHECK(plain == batch.grad[0]);
}

TEMPLATE_TEST_CASE("contrastive edge cases: empty sets, tiny batches, degenerate inputs",
                   "[contrastive][edge]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  ContrastiveOptions sep;
  sep.reduction = Reduction::MeanNonZero;
  sep.average_separately = true;

  SECTION("no positive pair: only negatives count") {
    const RowMatrix<S> X = random_embeddings<S>(8, 4, 61, kEmbeddingScale);
    const Eigen::VectorXi unique = unique_labels(8);
    std::vector<BrutePair> pairs = all_pairs(ref_of<M>(), X, unique);
    const LossResult<S> r = batch_contrastive_loss<M>(X, unique, sep);
    CHECK(double(r.value) == Approx(brute_contrastive(pairs, sep)).epsilon(value_tolerance<S>()));
    CHECK(r.grad[0].allFinite());
    // Nothing reaches the loss when no negative is within the margin either.
    ContrastiveOptions none;
    none.neg_margin = 0;
    const LossResult<S> z = batch_contrastive_loss<M>(X, unique, none);
    CHECK(z.value == S(0));
    CHECK(z.grad[0].isZero(0));
  }
  SECTION("single class: no negative pair") {
    const RowMatrix<S> X = random_embeddings<S>(6, 4, 62, kEmbeddingScale);
    const Eigen::VectorXi one = Eigen::VectorXi::Constant(6, 4);
    const LossResult<S> r = batch_contrastive_loss<M>(X, one, sep);
    CHECK(double(r.value) == Approx(brute_contrastive(all_pairs(ref_of<M>(), X, one), sep)).epsilon(value_tolerance<S>()));
    CHECK(r.value > S(0));
    ContrastiveOptions far;
    far.pos_margin = 5;
    far.neg_margin = 5;
    const LossResult<S> z = batch_contrastive_loss<M>(X, one, far);
    CHECK(z.value == S(0));
    CHECK(z.grad[0].isZero(0));
  }
  SECTION("N = 1 and N = 0") {
    const RowMatrix<S> X1 = random_embeddings<S>(1, 3, 63);
    const LossResult<S> r1 = batch_contrastive_loss<M>(X1, Eigen::VectorXi::Zero(1), sep);
    CHECK(r1.value == S(0));
    CHECK(r1.grad[0].rows() == 1);
    CHECK(r1.grad[0].isZero(0));
    CHECK(r1.terms.size() == 0);
    const RowMatrix<S> X0(0, 3);
    const LossResult<S> r0 = batch_contrastive_loss<M>(X0, Eigen::VectorXi(0), sep);
    CHECK(r0.value == S(0));
    CHECK(r0.grad[0].rows() == 0);
    CHECK(r0.grad[0].cols() == 3);
    const LossResult<S> e0 = contrastive_loss<M>(X0, X0, Eigen::VectorXi(0));
    CHECK(e0.value == S(0));
    CHECK(e0.grad[0].rows() == 0);
    CHECK(e0.grad[1].cols() == 3);
    const LossResult<S> m0 = contrastive_loss<M>(X1, Pairs{});
    CHECK(m0.value == S(0));
    CHECK(m0.grad[0].isZero(0));
    CHECK(m0.grad[0].rows() == 1);
  }
  SECTION("coincident embeddings and zero vectors stay finite") {
    RowMatrix<S> X = random_embeddings<S>(6, 4, 64, kEmbeddingScale);
    X.row(3) = X.row(1);
    X.row(4) = X.row(1);
    X.row(5).setZero();
    const Eigen::VectorXi labels = random_labels(6, 2, 65);
    ContrastiveOptions o;
    o.squared = true;
    const LossResult<S> r = batch_contrastive_loss<M>(X, labels, o);
    CHECK(std::isfinite(r.value));
    CHECK(r.grad[0].allFinite());
    if (std::is_same<M, Cosine>::value) CHECK(r.grad[0].row(5).isZero(0));
    // Every explicit pair coincident: positives cost 0, negatives the full margin (Cosine: a
    // zero row has similarity 0 with itself, d = 1).
    const LossResult<S> e = contrastive_loss<M>(X, X, labels, o);
    std::vector<BrutePair> same;
    for (Index i = 0; i < 6; ++i) same.push_back({reference_distance(ref_of<M>(), X.row(i), X.row(i)), labels(i) != 0});
    CHECK(double(e.value) == Approx(brute_contrastive(same, o)).epsilon(value_tolerance<S>()));
    CHECK(e.grad[0].allFinite());
    if (!std::is_same<M, Cosine>::value) CHECK(e.grad[0].isZero(0));  // zero subgradient at d = 0
  }
  SECTION("inputs scaled by 1e-6 and 1e6 give finite results") {
    const Eigen::VectorXi labels = random_labels(10, 3, 66);
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> X = random_embeddings<S>(10, 4, 67, scale);
      const LossResult<S> r = batch_contrastive_loss<M>(X, labels, sep);
      CHECK(std::isfinite(r.value));
      CHECK(r.grad[0].allFinite());
      CHECK(double(r.value) == Approx(brute_contrastive(all_pairs(ref_of<M>(), X, labels), sep)).epsilon(1e-3).margin(1e-6));
    }
  }
}

TEMPLATE_TEST_CASE("contrastive bad input throws with a precise message", "[contrastive][validation]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 71);
  const RowMatrix<S> Y = random_embeddings<S>(4, 3, 72);
  const Eigen::VectorXi labels = random_labels(5, 2, 73);
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, Y, labels), "contrastive::contrastive_loss",
                           "'X1' (5 x 3)", "'X2' (4 x 3)");
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, X, Eigen::VectorXi::Zero(4)), "contrastive_loss",
                           "'similar' has length 4", "5 rows");
  REQUIRE_INVALID_ARGUMENT(batch_contrastive_loss(X, Eigen::VectorXi::Zero(6)),
                           "contrastive::batch_contrastive_loss", "'labels' has length 6", "5 rows");
  RowMatrix<S> bad = X;
  bad(2, 1) = std::numeric_limits<S>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(batch_contrastive_loss(bad, labels), "batch_contrastive_loss", "'X'",
                           "row 2, column 1");
  ContrastiveOptions o;
  o.pos_margin = 1.5;
  REQUIRE_INVALID_ARGUMENT(batch_contrastive_loss(X, labels, o), "'options.pos_margin' (1.5",
                           "'options.neg_margin' (1.0");
  o = ContrastiveOptions{};
  o.neg_margin = -1;
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, X, labels, o), "'options.neg_margin' must be >= 0");
  o = ContrastiveOptions{};
  o.scale = 0;
  REQUIRE_INVALID_ARGUMENT(batch_contrastive_loss(X, labels, o), "'options.scale' must be > 0");
  Pairs pairs;
  pairs.add(0, 1, true);
  pairs.add(3, 5, false);
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, pairs), "contrastive_loss", "pair 1 (3, 5)",
                           "out of range", "5 rows");
  pairs.similar.pop_back();
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, pairs), "'pairs'", "same length");
  // Flags are 0 or 1: a -1 (cosine_embedding_loss's "dissimilar") is not read as "similar".
  Eigen::VectorXi flags = Eigen::VectorXi::Ones(5);
  flags(3) = -1;
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, X, flags), "contrastive_loss", "'similar' has -1 at row 3",
                           "use 1 (or true)");
  flags(3) = 2;
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, X, flags, value_only), "'similar' has 2 at row 3");
  const Eigen::Matrix<bool, Eigen::Dynamic, 1> as_bool = Eigen::Matrix<bool, Eigen::Dynamic, 1>::Constant(5, true);
  REQUIRE(contrastive_loss(X, X, as_bool, value_only) == contrastive_loss(X, X, Eigen::VectorXi::Ones(5), value_only));
  Pairs flagged;
  flagged.add(0, 1, true);
  flagged.similar[0] = 2;
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, flagged), "'pairs': pair 0 has similar = 2");
}

// ---- PyTorch reference values ----

TEMPLATE_TEST_CASE("Hadsell et al. 2006: squared, scale 0.5, Sum or Mean", "[contrastive][reference]",
                   float, double) {
  using S = TestType;
  const ReferenceFile ref("pair_contrastive_hadsell.txt");
  const RowMatrix<S> X1 = ref.matrix<S>("X1"), X2 = ref.matrix<S>("X2");
  const Eigen::VectorXi similar = ref.labels("similar");
  ContrastiveOptions o;
  o.squared = true;
  o.scale = 0.5;
  o.neg_margin = ref.scalar("margin");
  const double tol = value_tolerance<S>();
  for (const char* name : {"sum", "mean"}) {
    o.reduction = std::string(name) == "sum" ? Reduction::Sum : Reduction::Mean;
    const LossResult<S> r = contrastive_loss(X1, X2, similar, o);
    CHECK(double(r.value) == Approx(ref.scalar(std::string("value_") + name)).epsilon(tol));
    CHECK(r.grad[0].template cast<double>().isApprox(ref.matrix(std::string("grad1_") + name), 10 * tol));
    CHECK(r.grad[1].template cast<double>().isApprox(ref.matrix(std::string("grad2_") + name), 10 * tol));
    CHECK(r.terms.template cast<double>().isApprox(ref.vector("terms"), 10 * tol));
  }
}

TEMPLATE_TEST_CASE("TensorFlow Addons contrastive_loss: squared, pos_margin 0, Mean",
                   "[contrastive][reference]", float, double) {
  using S = TestType;
  const ReferenceFile ref("pair_contrastive_tfa.txt");
  ContrastiveOptions o;
  o.squared = true;
  o.pos_margin = 0;
  o.neg_margin = ref.scalar("margin");
  o.reduction = Reduction::Mean;
  const LossResult<S> r = contrastive_loss(ref.matrix<S>("X1"), ref.matrix<S>("X2"), ref.labels("similar"), o);
  const double tol = value_tolerance<S>();
  CHECK(double(r.value) == Approx(ref.scalar("value")).epsilon(tol));
  CHECK(r.grad[0].template cast<double>().isApprox(ref.matrix("grad1"), 10 * tol));
  CHECK(r.grad[1].template cast<double>().isApprox(ref.matrix("grad2"), 10 * tol));
}

TEMPLATE_TEST_CASE("pytorch-metric-learning ContrastiveLoss: MeanNonZero, average_separately",
                   "[contrastive][reference]", float, double) {
  using S = TestType;
  const ReferenceFile ref("pair_contrastive_pml.txt");
  const RowMatrix<S> X = ref.matrix<S>("X");  // unit rows, as PML's default LpDistance normalises
  const Eigen::VectorXi labels = ref.labels("labels");
  const double tol = value_tolerance<S>();
  for (int c = 0; c < 2; ++c) {
    const std::string k = std::to_string(c);
    ContrastiveOptions o;
    o.pos_margin = ref.scalar("pos_margin_" + k);
    o.neg_margin = ref.scalar("neg_margin_" + k);
    o.reduction = Reduction::MeanNonZero;
    o.average_separately = true;
    const LossResult<S> r = batch_contrastive_loss(X, labels, o);
    CHECK(double(r.value) == Approx(ref.scalar("value_" + k)).epsilon(tol));
    CHECK(r.grad[0].template cast<double>().isApprox(ref.matrix("grad_" + k), 10 * tol));
    // The same through mined pairs (every i < j).
    Pairs pairs;
    for (Index i = 0; i < X.rows(); ++i)
      for (Index j = i + 1; j < X.rows(); ++j) pairs.add(i, j, labels(i) == labels(j));
    const LossResult<S> m = contrastive_loss(X, pairs, o);
    CHECK(double(m.value) == Approx(ref.scalar("value_" + k)).epsilon(tol));
    CHECK(m.grad[0].template cast<double>().isApprox(ref.matrix("grad_" + k), 10 * tol));
  }
}

}  // namespace test_contrastive_loss
