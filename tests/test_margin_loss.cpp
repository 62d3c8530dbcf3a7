// margin_loss (Wu et al. 2017): against a brute-force loop (ordered pairs, or
// literal triplets for PML's weighting), dL/dbeta against finite differences of
// that loop, dL/dX against finite differences, the call forms, edge cases, bad
// input, and pytorch-metric-learning MarginLoss reference values from PyTorch.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/margin_loss.hpp>

#include <cmath>
#include <limits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_margin_loss {

namespace {

double beta_of(const MarginOptions& o, int label) {
  return o.class_beta.size() == 0 ? o.beta : o.class_beta(label);
}

// Straight from the definition, in double. Pair mode: every ordered pair (a, b).
// Triplet mode: every (a, p, n) triplet, literally enumerated (N^3).
double brute_margin(const Eigen::MatrixXd& D, const Eigen::VectorXi& labels, const MarginOptions& o) {
  const Index n = D.rows();
  double sum = 0, count = 0, nonzero = 0, reg_uses = 0;
  bool any = false;
  auto add = [&](double t) {
    sum += t;
    count += 1;
    nonzero += t > 0 ? 1 : 0;
    any = true;
  };
  for (Index a = 0; a < n; ++a) {
    const double beta = beta_of(o, labels(a));
    for (Index b = 0; b < n; ++b) {
      if (b == a) continue;
      const bool same = labels(a) == labels(b);
      if (!o.triplet_weights) {
        add(std::max(0.0, same ? D(a, b) - beta + o.alpha : beta - D(a, b) + o.alpha));
        reg_uses += beta;
        continue;
      }
      if (!same) continue;
      for (Index c = 0; c < n; ++c) {
        if (labels(c) == labels(a)) continue;
        add(std::max(0.0, D(a, b) - beta + o.alpha));
        add(std::max(0.0, beta - D(a, c) + o.alpha));
        reg_uses += beta;
      }
    }
  }
  double divisor = 1;
  if (o.reduction.kind() == Reduction::Mean) divisor = count;
  if (o.reduction.kind() == Reduction::MeanNonZero) divisor = nonzero;
  double value = divisor > 0 ? sum / divisor : 0.0;
  if (any && o.nu > 0) {
    if (o.class_beta.size() == 0) {
      value += o.nu * o.beta;
    } else if (divisor > 0) {
      value += o.nu * reg_uses / divisor;
    }
  }
  return value;
}

template <class S>
Eigen::MatrixXd brute_distances(Ref metric, const RowMatrix<S>& X) {
  Eigen::MatrixXd D = Eigen::MatrixXd::Zero(X.rows(), X.rows());
  for (Index i = 0; i < X.rows(); ++i)
    for (Index j = 0; j < X.rows(); ++j)
      if (i != j) D(i, j) = reference_distance(metric, X.row(i), X.row(j));
  return D;
}

// dL/dbeta of the brute-force loop by central differences (it is piecewise linear in beta).
Eigen::VectorXd brute_beta_grad(const Eigen::MatrixXd& D, const Eigen::VectorXi& labels, MarginOptions o) {
  const double h = 1e-7;
  if (o.class_beta.size() == 0) {
    const double b = o.beta;
    o.beta = b + h;
    const double up = brute_margin(D, labels, o);
    o.beta = b - h;
    const double down = brute_margin(D, labels, o);
    return Eigen::VectorXd::Constant(1, (up - down) / (2 * h));
  }
  Eigen::VectorXd g(o.class_beta.size());
  for (Index c = 0; c < g.size(); ++c) {
    const double b = o.class_beta(c);
    o.class_beta(c) = b + h;
    const double up = brute_margin(D, labels, o);
    o.class_beta(c) = b - h;
    const double down = brute_margin(D, labels, o);
    o.class_beta(c) = b;
    g(c) = (up - down) / (2 * h);
  }
  return g;
}

std::vector<MarginOptions> option_sets() {
  std::vector<MarginOptions> sets(5);
  sets[1].triplet_weights = true;
  sets[1].nu = 0.1;
  sets[2].class_beta = Eigen::VectorXd::LinSpaced(4, 1.0, 1.3);
  sets[2].nu = 0.05;
  sets[2].reduction = Reduction::Sum;
  sets[3].class_beta = Eigen::VectorXd::LinSpaced(4, 1.3, 1.0);
  sets[3].triplet_weights = true;
  sets[3].reduction = Reduction::Mean;
  sets[3].nu = 0.2;
  sets[4].class_beta = Eigen::VectorXd::LinSpaced(4, 1.1, 1.4);
  sets[4].triplet_weights = true;
  sets[4].nu = 0.03;
  sets[4].alpha = 0.1;
  return sets;
}

double kink_clearance(const Eigen::MatrixXd& D, const Eigen::VectorXi& labels, const MarginOptions& o) {
  double m = std::numeric_limits<double>::infinity();
  for (Index a = 0; a < D.rows(); ++a)
    for (Index b = 0; b < D.rows(); ++b) {
      if (a == b) continue;
      const double beta = beta_of(o, labels(a));
      const double kink = labels(a) == labels(b) ? beta - o.alpha : beta + o.alpha;
      m = std::min(m, std::abs(D(a, b) - kink));
    }
  return m;
}

constexpr double kEmbeddingScale = 0.4;  // distances near beta = 1.2 for every metric at D = 5

}  // namespace

TEMPLATE_TEST_CASE("margin_loss value and dL/dbeta match a brute-force loop", "[margin]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(12, 5, 81, kEmbeddingScale);
  const Eigen::MatrixXd D = brute_distances(ref_of<M>(), X);
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(4, 3), random_labels(12, 4, 82),
                                                random_labels(12, 2, 83), Eigen::VectorXi::Constant(12, 2)};
  for (const Eigen::VectorXi& labels : layouts) {
    for (const MarginOptions& o : option_sets()) {
      INFO("triplet_weights " << o.triplet_weights << " class betas " << o.class_beta.size());
      const MarginLossResult<S> r = margin_loss<M>(X, labels, o);
      const double expected = brute_margin(D, labels, o);
      CHECK(double(r.value) == Approx(expected).epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
      const Eigen::VectorXd gb = brute_beta_grad(D, labels, o);
      REQUIRE(r.beta_grad.size() == gb.size());
      for (Index c = 0; c < gb.size(); ++c) CHECK(double(r.beta_grad(c)) == Approx(gb(c)).margin(1e-5));
      CHECK(r.terms.size() == 12 * 11);
      REQUIRE(r.grad.size() == 1);
      CHECK(r.grad[0].rows() == 12);
    }
  }
}

TEMPLATE_TEST_CASE("margin_loss gradient matches finite differences", "[margin][gradient]",
                   CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Eigen::VectorXi labels = random_labels(8, 4, 91);
  for (const MarginOptions& o : option_sets()) {
    INFO("triplet_weights " << o.triplet_weights << " class betas " << o.class_beta.size());
    // Cosine distances move by about step / |x|: rows of norm ~2 keep a float step
    // (~5e-3) well inside the clearance; Cosine is scale-invariant otherwise.
    const double scale = std::is_same<M, Cosine>::value ? 1.0 : kEmbeddingScale;
    RowMatrix<S> X;
    double clearance = 0;
    for (unsigned seed = 2000; seed < 2400 && clearance <= 2e-2; ++seed) {
      X = random_embeddings<S>(8, 4, seed, scale);
      clearance = kink_clearance(brute_distances(ref_of<M>(), X), labels, o);
    }
    REQUIRE(clearance > 2e-2);
    const MarginLossResult<S> r = margin_loss<M>(X, labels, o);
    auto f = [&](const RowMatrix<S>& x) { return margin_loss<M>(x, labels, o, value_only); };
    const auto report = testing::check_gradient(f, X, r.grad[0]);
    INFO(report.summary());
    CHECK(report.passed);
    CHECK_FALSE(r.grad[0].isZero(0));
  }
}

TEMPLATE_TEST_CASE("margin_loss value-only and buffer forms agree with the full call",
                   "[margin][forms]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 5, 101, kEmbeddingScale);
  const Eigen::VectorXi labels = random_labels(10, 4, 102);
  MarginOptions o = option_sets()[4];
  const MarginLossResult<S> r = margin_loss(X, labels, o);
  CHECK(margin_loss(X, labels, o, value_only) == r.value);
  std::vector<S> buffer(50, S(-1));
  Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 5);
  CHECK(margin_loss(X, labels, o, grad) == r.value);
  CHECK(grad == r.grad[0]);
  std::vector<S> beta_buffer(4, S(-1));
  Eigen::Map<Vector<S>> beta_grad(beta_buffer.data(), 4);
  grad.setZero();
  CHECK(margin_loss(X, labels, o, grad, beta_grad) == r.value);
  CHECK(grad == r.grad[0]);
  CHECK(beta_grad == r.beta_grad);

  std::vector<S> small(45, S(9));
  Eigen::Map<RowMatrix<S>> wrong(small.data(), 9, 5);
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, labels, o, wrong), "contrastive::margin_loss", "'grad' is 9 x 5",
                           "must be 10 x 5");
  std::vector<S> short_beta(3, S(9));
  Eigen::Map<Vector<S>> wrong_beta(short_beta.data(), 3);
  buffer.assign(50, S(7));
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, labels, o, grad, wrong_beta), "'beta_grad' is 3 x 1",
                           "must be 4 x 1");
  CHECK(std::all_of(small.begin(), small.end(), [](S v) { return v == S(9); }));
  CHECK(std::all_of(short_beta.begin(), short_beta.end(), [](S v) { return v == S(9); }));
  CHECK(std::all_of(buffer.begin(), buffer.end(), [](S v) { return v == S(7); }));
}

TEMPLATE_TEST_CASE("margin_loss edge cases", "[margin][edge]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  MarginOptions pml;
  pml.triplet_weights = true;
  pml.nu = 0.1;
  SECTION("single class and all-unique labels: no triplet, loss 0, zero gradients") {
    const RowMatrix<S> X = random_embeddings<S>(6, 4, 111, kEmbeddingScale);
    Eigen::VectorXi unique(6);
    for (Index i = 0; i < 6; ++i) unique(i) = int(i);
    for (const Eigen::VectorXi& labels : {Eigen::VectorXi(Eigen::VectorXi::Zero(6)), unique}) {
      const MarginLossResult<S> r = margin_loss<M>(X, labels, pml);
      CHECK(r.value == S(0));
      CHECK(r.grad[0].isZero(0));
      CHECK(r.beta_grad.isZero(0));
    }
    // Pair mode still has the one-sided terms, and matches the loop.
    MarginOptions pairs;
    const MarginLossResult<S> p = margin_loss<M>(X, Eigen::VectorXi::Zero(6), pairs);
    CHECK(double(p.value) == Approx(brute_margin(brute_distances(ref_of<M>(), X), Eigen::VectorXi::Zero(6), pairs))
                                 .epsilon(value_tolerance<S>()).margin(value_tolerance<S>()));
    CHECK(p.grad[0].allFinite());
  }
  SECTION("N = 1 and N = 0") {
    const MarginLossResult<S> r1 = margin_loss<M>(random_embeddings<S>(1, 3, 112), Eigen::VectorXi::Zero(1), pml);
    CHECK(r1.value == S(0));
    CHECK(r1.grad[0].rows() == 1);
    CHECK(r1.grad[0].isZero(0));
    CHECK(r1.terms.size() == 0);
    const MarginLossResult<S> r0 = margin_loss<M>(RowMatrix<S>(0, 3), Eigen::VectorXi(0), pml);
    CHECK(r0.value == S(0));
    CHECK(r0.grad[0].rows() == 0);
    CHECK(r0.grad[0].cols() == 3);
    CHECK(r0.beta_grad.size() == 1);
  }
  SECTION("coincident rows, zero vectors and extreme scales stay finite") {
    RowMatrix<S> X = random_embeddings<S>(8, 4, 113, kEmbeddingScale);
    X.row(2) = X.row(0);
    X.row(5).setZero();
    const Eigen::VectorXi labels = class_blocks(4, 2);
    const MarginLossResult<S> r = margin_loss<M>(X, labels, pml);
    CHECK(std::isfinite(r.value));
    CHECK(r.grad[0].allFinite());
    if (std::is_same<M, Cosine>::value) CHECK(r.grad[0].row(5).isZero(0));
    for (double scale : {1e-6, 1e6}) {
      const RowMatrix<S> Y = random_embeddings<S>(8, 4, 114, scale);
      const MarginLossResult<S> s = margin_loss<M>(Y, labels, pml);
      CHECK(std::isfinite(s.value));
      CHECK(s.grad[0].allFinite());
      CHECK(s.beta_grad.allFinite());
      CHECK(double(s.value) == Approx(brute_margin(brute_distances(ref_of<M>(), Y), labels, pml)).epsilon(1e-3).margin(1e-6));
    }
  }
}

TEMPLATE_TEST_CASE("margin_loss bad input throws with a precise message", "[margin][validation]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(5, 3, 121);
  const Eigen::VectorXi labels = random_labels(5, 3, 122);
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, Eigen::VectorXi::Zero(4)), "contrastive::margin_loss",
                           "'labels' has length 4", "5 rows");
  MarginOptions o;
  o.alpha = -0.1;
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, labels, o), "'options.alpha' must be >= 0");
  o = MarginOptions{};
  o.nu = -1;
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, labels, o), "'options.nu' must be >= 0");
  o = MarginOptions{};
  o.class_beta = Eigen::VectorXd::Constant(2, 1.0);
  Eigen::VectorXi too_big = Eigen::VectorXi::Zero(5);
  too_big(3) = 2;
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, too_big, o), "margin_loss", "'labels' has 2 at row 3",
                           "[0, 2)", "class_beta");
  o.class_beta(1) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, Eigen::VectorXi::Zero(5), o), "'options.class_beta'", "index 1");
  RowMatrix<S> bad = X;
  bad(4, 0) = std::numeric_limits<S>::infinity();
  REQUIRE_INVALID_ARGUMENT(margin_loss(bad, labels), "margin_loss", "'X'", "row 4, column 0");
}

TEMPLATE_TEST_CASE("pytorch-metric-learning MarginLoss reference values", "[margin][reference]", float,
                   double) {
  using S = TestType;
  const ReferenceFile ref("pair_margin_pml.txt");
  const RowMatrix<S> X = ref.matrix<S>("X");  // unit rows: PML's LpDistance normalises
  const Eigen::VectorXi labels = ref.labels("labels");
  const double tol = value_tolerance<S>();
  for (int c = 0; c < 3; ++c) {
    const std::string k = std::to_string(c);
    MarginOptions o;
    o.alpha = ref.scalar("alpha");
    o.nu = ref.scalar("nu_" + k);
    o.triplet_weights = true;
    o.reduction = Reduction::MeanNonZero;
    const Eigen::VectorXd beta = ref.vector("beta_" + k);
    if (beta.size() == 1) {
      o.beta = beta(0);
    } else {
      o.class_beta = beta;
    }
    const MarginLossResult<S> r = margin_loss(X, labels, o);
    INFO("case " << c);
    CHECK(double(r.value) == Approx(ref.scalar("value_" + k)).epsilon(tol));
    CHECK(r.grad[0].template cast<double>().isApprox(ref.matrix("grad_" + k), 10 * tol));
    CHECK(r.beta_grad.template cast<double>().isApprox(ref.vector("beta_grad_" + k), 10 * tol));
  }
}

}  // namespace test_margin_loss
