// Metrics as values: a metric argument gives exactly the template form;
// AnyMetric::from_name gives exactly the metric it names; DotProduct against a
// brute-force loop (d = -x.y); Mahalanobis against Euclidean on X L^T, its
// dL/dX and dL/dL against finite differences, its caller-owned outputs and bad
// input; and a few gradient steps on L that learn to ignore noise dimensions.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <random>
#include <string>
#include <variant>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_metric_objects {

namespace {

// Relative to the norm, max(1, |expected|).
template <class S>
constexpr double same_tolerance() {
  return sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
}

template <class S>
constexpr double brute_tolerance() {
  return sizeof(S) == sizeof(double) ? 1e-10 : 1e-4;
}

template <class A, class B>
double relative_error(const Eigen::MatrixBase<A>& expected, const Eigen::MatrixBase<B>& got) {
  return double((expected - got).norm()) / std::max(1.0, double(expected.norm()));
}

double relative_error(double expected, double got) { return std::abs(expected - got) / std::max(1.0, std::abs(expected)); }

template <class S>
void check_identical(const LossResult<S>& expected, const LossResult<S>& got) {
  CHECK(got.value == expected.value);
  REQUIRE(got.grad.size() == expected.grad.size());
  for (std::size_t k = 0; k < expected.grad.size(); ++k) {
    INFO("gradient block " << k);
    REQUIRE(got.grad[k].rows() == expected.grad[k].rows());
    REQUIRE(got.grad[k].cols() == expected.grad[k].cols());
    CHECK(got.grad[k] == expected.grad[k]);
  }
  REQUIRE(got.terms.size() == expected.terms.size());
  CHECK(got.terms == expected.terms);
}

template <class S>
void check_close(const LossResult<S>& expected, const LossResult<S>& got, double tol) {
  {
    INFO("value: expected " << expected.value << ", got " << got.value);
    CHECK(relative_error(static_cast<double>(expected.value), static_cast<double>(got.value)) <= tol);
  }
  REQUIRE(got.grad.size() == expected.grad.size());
  for (std::size_t k = 0; k < expected.grad.size(); ++k) {
    INFO("gradient block " << k);
    REQUIRE(got.grad[k].rows() == expected.grad[k].rows());
    REQUIRE(got.grad[k].cols() == expected.grad[k].cols());
    const double error = relative_error(expected.grad[k].template cast<double>(), got.grad[k].template cast<double>());
    INFO("relative error " << error);
    CHECK(error <= tol);
  }
  REQUIRE(got.terms.size() == expected.terms.size());
  CHECK(relative_error(expected.terms.template cast<double>(), got.terms.template cast<double>()) <= tol);
}

// Every labelled loss called with a value of M and with M as its template argument.
template <class S, class M>
void check_value_equals_template(const RowMatrix<S>& X, const Eigen::VectorXi& y) {
  TripletOptions t;
  t.margin = 0.5;
  ContrastiveOptions c;
  c.neg_margin = 1.5;
  MarginOptions mo;
  mo.nu = 0.1;
  SupConOptions so;
  NTXentOptions no;
  const M m{};
  {
    INFO("batch_hard_triplet_loss");
    check_identical(batch_hard_triplet_loss<M>(X, y, t), batch_hard_triplet_loss(X, y, m, t));
    CHECK(batch_hard_triplet_loss<M>(X, y, t, value_only) == batch_hard_triplet_loss(X, y, m, t, value_only));
  }
  {
    INFO("batch_semihard_triplet_loss");
    check_identical(batch_semihard_triplet_loss<M>(X, y, t), batch_semihard_triplet_loss(X, y, m, t));
  }
  {
    INFO("batch_all_triplet_loss");
    check_identical(batch_all_triplet_loss<M>(X, y, t), batch_all_triplet_loss(X, y, m, t));
    CHECK(batch_all_triplet_loss<M>(X, y, t, value_only) == batch_all_triplet_loss(X, y, m, t, value_only));
  }
  {
    INFO("batch_contrastive_loss");
    check_identical(batch_contrastive_loss<M>(X, y, c), batch_contrastive_loss(X, y, m, c));
  }
  {
    INFO("margin_loss");
    const MarginLossResult<S> a = margin_loss<M>(X, y, mo);
    const MarginLossResult<S> b = margin_loss(X, y, m, mo);
    check_identical<S>(a, b);
    CHECK(a.beta_grad == b.beta_grad);
  }
  {
    INFO("supcon_loss");
    check_identical(supcon_loss<M>(X, y, 0.5, so), supcon_loss(X, y, 0.5, m, so));
  }
  {
    INFO("ntxent_loss");
    check_identical(ntxent_loss<M>(X, y, 0.5, no), ntxent_loss(X, y, 0.5, m, no));
  }
}

}  // namespace

TEMPLATE_TEST_CASE("a metric value gives exactly the template form", "[metric_objects]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(20, 5, 101);
  const Eigen::VectorXi y = random_labels(20, 4, 102);
  TripletOptions o;
  o.margin = 0.5;
  // The example of the documentation, then every metric through every labelled loss.
  check_identical(batch_hard_triplet_loss<Cosine>(X, y, o), batch_hard_triplet_loss(X, y, Cosine{}, o));
  // No metric at all: the loss's default (Euclidean; Cosine for the InfoNCE losses).
  check_identical(batch_hard_triplet_loss(X, y, o), batch_hard_triplet_loss(X, y, Euclidean{}, o));
  check_identical(supcon_loss(X, y, 0.5), supcon_loss(X, y, 0.5, Cosine{}));
  {
    INFO("Euclidean");
    check_value_equals_template<S, Euclidean>(X, y);
  }
  {
    INFO("SquaredEuclidean");
    check_value_equals_template<S, SquaredEuclidean>(X, y);
  }
  {
    INFO("Cosine");
    check_value_equals_template<S, Cosine>(X, y);
  }
  {
    INFO("DotProduct");
    check_value_equals_template<S, DotProduct>(X, y);
  }
}

namespace {

struct NamedMetric {
  const char* name;       // as given to from_name
  const char* held_name;  // AnyMetric::name() of the result
  std::size_t index;      // in AnyMetric::Variant
};

const std::vector<NamedMetric>& metric_names() {
  static const std::vector<NamedMetric> names = {
      {"euclidean", "Euclidean", 0},           {"EUCLIDEAN", "Euclidean", 0},
      {"Euclidean", "Euclidean", 0},           {"squared_euclidean", "SquaredEuclidean", 1},
      {"Squared-Euclidean", "SquaredEuclidean", 1}, {"SQUARED_EUCLIDEAN", "SquaredEuclidean", 1},
      {"squared-euclidean", "SquaredEuclidean", 1}, {"cosine", "Cosine", 2},
      {"CoSiNe", "Cosine", 2},                 {"dot_product", "DotProduct", 3},
      {"Dot-Product", "DotProduct", 3},        {"DOT_PRODUCT", "DotProduct", 3},
      {"normalized_euclidean", "Normalized", 5}, {"Normalized-Squared-Euclidean", "Normalized", 6},
      {"normalized_dot_product", "Normalized", 7}, {"normalized_cosine", "Cosine", 2},
  };
  return names;
}

template <class S, class M>
void check_any_equals(const AnyMetric& any, const M& held, const RowMatrix<S>& X, const Eigen::VectorXi& y) {
  TripletOptions t;
  t.margin = 0.5;
  ContrastiveOptions c;
  c.neg_margin = 1.5;
  check_identical(batch_hard_triplet_loss(X, y, held, t), batch_hard_triplet_loss(X, y, any, t));
  check_identical(batch_all_triplet_loss(X, y, held, t), batch_all_triplet_loss(X, y, any, t));
  check_identical(batch_contrastive_loss(X, y, held, c), batch_contrastive_loss(X, y, any, c));
  check_identical(supcon_loss(X, y, 0.5, held), supcon_loss(X, y, 0.5, any));
  CHECK(batch_all_triplet_loss(X, y, held, t, value_only) == batch_all_triplet_loss(X, y, any, t, value_only));
}

}  // namespace

TEMPLATE_TEST_CASE("AnyMetric::from_name holds the named metric and gives exactly its results",
                   "[metric_objects][any_metric]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(18, 5, 201);
  const Eigen::VectorXi y = random_labels(18, 3, 202);
  for (const NamedMetric& named : metric_names()) {
    INFO("from_name(\"" << named.name << "\")");
    const AnyMetric any = AnyMetric::from_name(named.name);
    CHECK(std::string(any.name()) == named.held_name);
    CHECK(any.variant().index() == named.index);
    CHECK(any.parameter_blocks() == 0);
    switch (named.index) {
      case 0: check_any_equals<S>(any, Euclidean{}, X, y); break;
      case 1: check_any_equals<S>(any, SquaredEuclidean{}, X, y); break;
      case 2: check_any_equals<S>(any, Cosine{}, X, y); break;
      case 3: check_any_equals<S>(any, DotProduct{}, X, y); break;
      case 5: check_any_equals<S>(any, Normalized<Euclidean>{}, X, y); break;
      case 6: check_any_equals<S>(any, Normalized<SquaredEuclidean>{}, X, y); break;
      case 7: check_any_equals<S>(any, Normalized<DotProduct>{}, X, y); break;
      default: FAIL("unexpected variant index");
    }
  }
  // A default AnyMetric is Euclidean.
  check_any_equals<S>(AnyMetric{}, Euclidean{}, X, y);
}

namespace {
template <class S>
RowMatrix<S> unit_rows_of(const RowMatrix<S>& X) {
  RowMatrix<S> U = X;
  for (Index i = 0; i < U.rows(); ++i) {
    if (U.row(i).norm() > 0) U.row(i) /= U.row(i).norm();
  }
  return U;
}
}  // namespace

// Normalized<M> is M on the unit rows, and its backward carries the
// normalisation: the value equals M on pre-normalised rows; dL/dX is the
// projection of that gradient, checked here by finite differences of the
// whole composition, and is orthogonal to each row (the loss cannot see a
// row's length).
TEMPLATE_TEST_CASE("Normalized<M>: M on unit rows, the normalisation in dL/dX", "[metric_objects][normalized]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(14, 4, 301, 3.0);
  const Eigen::VectorXi y = random_labels(14, 3, 302);
  const RowMatrix<S> U = unit_rows_of(X);
  TripletOptions t;
  t.margin = 0.3;
  ContrastiveOptions c;
  c.neg_margin = 1.2;
  const auto check_metric = [&](const auto& inner) {
    const auto metric = normalized(inner);
    const LossResult<S> on_x = batch_all_triplet_loss(X, y, metric, t);
    const LossResult<S> on_u = batch_all_triplet_loss(U, y, inner, t);
    CHECK(relative_error(double(on_u.value), double(on_x.value)) <= same_tolerance<S>());
    // Project the unit-row gradient: (g - u (u . g)) / |x|.
    RowMatrix<S> projected = on_u.grad[0];
    for (Index i = 0; i < X.rows(); ++i) {
      projected.row(i) = (projected.row(i) - U.row(i).dot(projected.row(i)) * U.row(i)) / X.row(i).norm();
      CHECK(std::abs(double(on_x.grad[0].row(i).dot(X.row(i)))) <=
            same_tolerance<S>() * std::max(1.0, double(on_x.grad[0].row(i).norm() * X.row(i).norm())));
    }
    CHECK(relative_error(projected, on_x.grad[0]) <= same_tolerance<S>());
    const LossResult<S> bc = batch_contrastive_loss(X, y, metric, c);
    CHECK(relative_error(double(batch_contrastive_loss(U, y, inner, c).value), double(bc.value)) <=
          same_tolerance<S>());
    if (sizeof(S) == sizeof(double)) {
      const auto f = [&](const RowMatrix<S>& x) { return batch_contrastive_loss(x, y, metric, c, value_only); };
      const auto report = testing::check_gradient(f, X, bc.grad[0]);
      INFO(report.summary());
      CHECK(report.passed);
    }
  };
  check_metric(Euclidean{});
  check_metric(SquaredEuclidean{});
  check_metric(DotProduct{});
  // Normalized<Cosine> is Cosine (to rounding: the unit rows are normalised again).
  check_close(supcon_loss(X, y, 0.5, Cosine{}), supcon_loss(X, y, 0.5, normalized(Cosine{})), same_tolerance<S>());
}

TEST_CASE("Normalized<Mahalanobis>: L acts on the unit rows and gets its gradient", "[metric_objects][normalized]") {
  const RowMatrix<double> X = random_embeddings<double>(12, 4, 303, 2.0);
  const Eigen::VectorXi y = random_labels(12, 3, 304);
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 305);
  const RowMatrix<double> U = unit_rows_of(X);
  ContrastiveOptions c;
  c.neg_margin = 1.5;
  const auto metric = normalized(Mahalanobis(L));
  const LossResult<double> on_x = batch_contrastive_loss(X, y, metric, c);
  const LossResult<double> on_u = batch_contrastive_loss(U, y, Mahalanobis(L), c);
  REQUIRE(on_x.grad.size() == 2);
  CHECK(relative_error(on_u.value, on_x.value) <= 1e-12);
  CHECK(relative_error(on_u.grad[1], on_x.grad[1]) <= 1e-12);
  const auto fx = [&](const RowMatrix<double>& x) { return batch_contrastive_loss(x, y, metric, c, value_only); };
  const auto rx = testing::check_gradient(fx, X, on_x.grad[0]);
  INFO(rx.summary());
  CHECK(rx.passed);
  const auto fl = [&](const RowMatrix<double>& l) {
    return batch_contrastive_loss(X, y, normalized(Mahalanobis(l)), c, value_only);
  };
  const auto rl = testing::check_gradient(fl, L, on_x.grad[1]);
  INFO(rl.summary());
  CHECK(rl.passed);
}

TEST_CASE("Normalized<M>: a zero row stays zero and gets gradient 0", "[metric_objects][normalized]") {
  RowMatrix<double> X = random_embeddings<double>(6, 3, 306);
  X.row(2).setZero();
  const Eigen::VectorXi y = class_blocks(3, 2);
  TripletOptions t;
  t.margin = 0.5;
  const LossResult<double> r = batch_all_triplet_loss(X, y, normalized(Euclidean{}), t);
  CHECK(r.grad[0].row(2).isZero(0));
  CHECK(std::isfinite(r.value));
  CHECK(r.grad[0].allFinite());
}

TEST_CASE("AnyMetric::from_name rejects an unknown name and lists the accepted ones",
          "[metric_objects][any_metric][validation]") {
  REQUIRE_INVALID_ARGUMENT(AnyMetric::from_name("manhattan"), "AnyMetric::from_name", "manhattan", "euclidean",
                           "squared_euclidean", "cosine", "dot_product");
  REQUIRE_INVALID_ARGUMENT(AnyMetric::from_name(""), "euclidean", "squared_euclidean", "cosine", "dot_product");
  REQUIRE_INVALID_ARGUMENT(AnyMetric::from_name("squared euclidean"), "squared euclidean", "squared_euclidean");
  REQUIRE_INVALID_ARGUMENT(AnyMetric::from_name("mahalanobis"), "mahalanobis", "Mahalanobis");
}

TEMPLATE_TEST_CASE("AnyMetric holding a Mahalanobis metric gives exactly its results, dL/dL included",
                   "[metric_objects][any_metric][mahalanobis]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(15, 5, 211);
  const Eigen::VectorXi y = random_labels(15, 3, 212);
  const Mahalanobis held(random_embeddings<double>(3, 5, 213));
  const AnyMetric any = held;
  CHECK(std::string(any.name()) == "Mahalanobis");
  CHECK(any.parameter_blocks() == 1);
  CHECK(any.parameter_shape(0) == std::pair<Index, Index>(3, 5));
  check_any_equals<S>(any, held, X, y);
  const LossResult<S> full = batch_all_triplet_loss(X, y, held);
  REQUIRE(full.grad.size() == 2);
  RowMatrix<S> dX, dL;
  CHECK(batch_all_triplet_loss(X, y, any, dX, dL) == full.value);
  CHECK(dX == full.grad[0]);
  CHECK(dL == full.grad[1]);
}

namespace {

// batch_all under DotProduct, in double from the definition: d(x, y) = -x.y.
struct DotBrute {
  double value = 0;
  RowMatrix<double> grad;
  Eigen::VectorXd terms;
  double closest_kink = std::numeric_limits<double>::infinity();
};

DotBrute brute_dot_batch_all(const RowMatrix<double>& X, const Eigen::VectorXi& y, const TripletOptions& o) {
  const Index n = X.rows();
  DotBrute b;
  b.terms = Eigen::VectorXd::Zero(n);
  RowMatrix<double> g = RowMatrix<double>::Zero(n, X.cols());
  double sum = 0;
  long long valid = 0, active = 0;
  for (Index a = 0; a < n; ++a)
    for (Index p = 0; p < n; ++p) {
      if (p == a || y(p) != y(a)) continue;
      for (Index q = 0; q < n; ++q) {
        if (y(q) == y(a)) continue;
        ++valid;
        const double d_ap = -X.row(a).dot(X.row(p));
        const double d_an = -X.row(a).dot(X.row(q));
        const double h = d_ap - d_an + o.margin;
        b.closest_kink = std::min(b.closest_kink, std::abs(h));
        if (!(h > 0)) continue;
        ++active;
        sum += h;
        b.terms(a) += h;
        // h = -a.p + a.q + margin
        g.row(a) += X.row(q) - X.row(p);
        g.row(p) -= X.row(a);
        g.row(q) += X.row(a);
      }
    }
  const long long divisor = o.reduction.kind() == Reduction::Sum ? 1 : o.reduction.kind() == Reduction::Mean ? valid : active;
  const double weight = divisor == 0 ? 0.0 : 1.0 / static_cast<double>(divisor);
  b.value = sum * weight;
  b.grad = weight * g;
  return b;
}

}  // namespace

TEMPLATE_TEST_CASE("DotProduct: batch_all_triplet_loss matches a brute-force loop on d = -x.y",
                   "[metric_objects][dot_product]", float, double) {
  using S = TestType;
  const double gap = sizeof(S) == sizeof(float) ? 1e-3 : 1e-8;
  const double tol = brute_tolerance<S>();
  unsigned seed = 300;
  for (const Index n : {Index(6), Index(17), Index(30)}) {
    for (const double margin : {0.0, 0.5, 2.0}) {
      for (const Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
        TripletOptions o;
        o.margin = margin;
        o.reduction = r;
        INFO("N " << n << ", margin " << margin << ", reduction " << static_cast<int>(r));
        bool found = false;
        for (int attempt = 0; attempt < 200 && !found; ++attempt) {
          ++seed;
          const RowMatrix<S> X = random_embeddings<S>(n, 4, seed, 0.7);
          const Eigen::VectorXi y = random_labels(n, 3, seed + 1000u);
          const DotBrute expected = brute_dot_batch_all(X.template cast<double>(), y, o);
          if (expected.closest_kink < gap) continue;
          found = true;
          INFO("seed " << seed);
          const LossResult<S> got = batch_all_triplet_loss(X, y, DotProduct{}, o);
          INFO("value: expected " << expected.value << ", got " << got.value);
          CHECK(relative_error(expected.value, static_cast<double>(got.value)) <= tol);
          REQUIRE(got.grad.size() == 1);
          const double error = relative_error(expected.grad, got.grad[0].template cast<double>());
          INFO("gradient relative error " << error);
          CHECK(error <= tol);
          REQUIRE(got.terms.size() == n);
          CHECK(relative_error(expected.terms, got.terms.template cast<double>()) <= tol);
          CHECK(relative_error(expected.value,
                               static_cast<double>(batch_all_triplet_loss(X, y, DotProduct{}, o, value_only))) <= tol);
        }
        REQUIRE(found);
      }
    }
  }
}

namespace {

// Z = X L^T in the embeddings' scalar type, as the metric computes it.
template <class S>
RowMatrix<S> project(const RowMatrix<S>& X, const RowMatrix<double>& L) {
  return X * L.template cast<S>().transpose();
}

// The Euclidean (or squared) result on Z, with its dZ carried back to X and
// to L by the chain rule: dX = dZ L, dL = sum over inputs of dZ^T X.
template <class S>
LossResult<S> chain_back(LossResult<S> onZ, const std::vector<const RowMatrix<S>*>& inputs, const RowMatrix<double>& L) {
  const RowMatrix<S> Ls = L.template cast<S>();
  LossResult<S> r;
  r.value = onZ.value;
  r.terms = onZ.terms;
  RowMatrix<S> dL = RowMatrix<S>::Zero(L.rows(), L.cols());
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    r.grad.push_back(onZ.grad[k] * Ls);
    dL += onZ.grad[k].transpose() * (*inputs[k]);
  }
  r.grad.push_back(dL);
  return r;
}

template <class S, class Plain>
void check_mahalanobis_is_plain_on_projection(const RowMatrix<double>& L, bool squared) {
  const double tol = same_tolerance<S>();
  const Mahalanobis metric(L, squared);
  const Plain plain{};
  const RowMatrix<S> X = random_embeddings<S>(16, L.cols(), 401);
  const Eigen::VectorXi y = random_labels(16, 3, 402);
  const RowMatrix<S> Z = project(X, L);
  TripletOptions t;
  t.margin = squared ? 2.0 : 0.7;
  {
    INFO("batch_hard_triplet_loss");
    const LossResult<S> got = batch_hard_triplet_loss(X, y, metric, t);
    check_close(chain_back(batch_hard_triplet_loss(Z, y, plain, t), {&X}, L), got, tol);
  }
  {
    INFO("batch_all_triplet_loss");
    const LossResult<S> got = batch_all_triplet_loss(X, y, metric, t);
    check_close(chain_back(batch_all_triplet_loss(Z, y, plain, t), {&X}, L), got, tol);
  }
  {
    INFO("contrastive_loss, explicit pairs");
    const RowMatrix<S> X2 = random_embeddings<S>(16, L.cols(), 403);
    const RowMatrix<S> Z2 = project(X2, L);
    Eigen::VectorXi similar(16);
    for (Index i = 0; i < 16; ++i) similar(i) = static_cast<int>(i % 2);
    ContrastiveOptions c;
    c.neg_margin = squared ? 6.0 : 2.5;
    const LossResult<S> got = contrastive_loss(X, X2, similar, metric, c);
    check_close(chain_back(contrastive_loss(Z, Z2, similar, plain, c), {&X, &X2}, L), got, tol);
  }
  {
    INFO("triplet_margin_loss, explicit triplets");
    const RowMatrix<S> P = random_embeddings<S>(16, L.cols(), 404);
    const RowMatrix<S> N = random_embeddings<S>(16, L.cols(), 405);
    const RowMatrix<S> ZP = project(P, L), ZN = project(N, L);
    const LossResult<S> got = triplet_margin_loss(X, P, N, metric, t);
    check_close(chain_back(triplet_margin_loss(Z, ZP, ZN, plain, t), {&X, &P, &N}, L), got, tol);
    TripletOptions swap = t;
    swap.swap = true;
    INFO("with swap");
    check_close(chain_back(triplet_margin_loss(Z, ZP, ZN, plain, swap), {&X, &P, &N}, L),
                triplet_margin_loss(X, P, N, metric, swap), tol);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("Mahalanobis is Euclidean on X L^T (squared: SquaredEuclidean), dL/dX and dL/dL by the chain rule",
                   "[metric_objects][mahalanobis]", float, double) {
  using S = TestType;
  for (const Index k : {Index(2), Index(3), Index(5)}) {
    INFO("L is " << k << " x 5");
    const RowMatrix<double> L = random_embeddings<double>(k, 5, 410 + static_cast<unsigned>(k), 0.8);
    {
      INFO("squared = false");
      check_mahalanobis_is_plain_on_projection<S, Euclidean>(L, false);
    }
    {
      INFO("squared = true");
      check_mahalanobis_is_plain_on_projection<S, SquaredEuclidean>(L, true);
    }
  }
  // L = identity is the plain metric itself.
  const RowMatrix<S> X = random_embeddings<S>(12, 5, 420);
  const Eigen::VectorXi y = random_labels(12, 3, 421);
  const LossResult<S> m = batch_all_triplet_loss(X, y, Mahalanobis(RowMatrix<double>::Identity(5, 5)));
  const LossResult<S> e = batch_all_triplet_loss(X, y, Euclidean{});
  CHECK(relative_error(static_cast<double>(e.value), static_cast<double>(m.value)) <= same_tolerance<S>());
  CHECK(relative_error(e.grad[0].template cast<double>(), m.grad[0].template cast<double>()) <= same_tolerance<S>());
}

namespace {

// Central differences of f over every entry of M, step h.
template <class F>
RowMatrix<double> finite_differences(F&& f, RowMatrix<double> M, double h) {
  RowMatrix<double> g(M.rows(), M.cols());
  for (Index i = 0; i < M.rows(); ++i)
    for (Index j = 0; j < M.cols(); ++j) {
      const double original = M(i, j);
      M(i, j) = original + h;
      const double up = f(M);
      M(i, j) = original - h;
      const double down = f(M);
      M(i, j) = original;
      g(i, j) = (up - down) / (2 * h);
    }
  return g;
}

// The smallest distance of a Mahalanobis hinge or selection from its kink on
// (X, L): batch_all's |d_ap - d_an + margin| over valid triplets.
double closest_batch_all_kink(const RowMatrix<double>& X, const Eigen::VectorXi& y, const RowMatrix<double>& L,
                              bool squared, double margin) {
  const RowMatrix<double> Z = X * L.transpose();
  auto d = [&](Index i, Index j) {
    const double s = (Z.row(i) - Z.row(j)).squaredNorm();
    return squared ? s : std::sqrt(s);
  };
  double closest = std::numeric_limits<double>::infinity();
  for (Index a = 0; a < X.rows(); ++a)
    for (Index p = 0; p < X.rows(); ++p) {
      if (p == a || y(p) != y(a)) continue;
      for (Index q = 0; q < X.rows(); ++q)
        if (y(q) != y(a)) closest = std::min(closest, std::abs(d(a, p) - d(a, q) + margin));
    }
  return closest;
}

// dL/dX and dL/dL of `loss(X, metric)` (a LossResult) against central differences.
template <class Loss>
void check_mahalanobis_gradients(Loss&& loss, const RowMatrix<double>& X, const RowMatrix<double>& L, bool squared) {
  const double h = 1e-6;
  const LossResult<double> r = loss(X, Mahalanobis(L, squared));
  REQUIRE(r.grad.size() == 2);
  REQUIRE(r.grad[0].rows() == X.rows());
  REQUIRE(r.grad[0].cols() == X.cols());
  REQUIRE(r.grad[1].rows() == L.rows());
  REQUIRE(r.grad[1].cols() == L.cols());
  CHECK(r.value > 0);
  const RowMatrix<double> fdX =
      finite_differences([&](const RowMatrix<double>& x) { return loss(x, Mahalanobis(L, squared)).value; }, X, h);
  const RowMatrix<double> fdL =
      finite_differences([&](const RowMatrix<double>& l) { return loss(X, Mahalanobis(l, squared)).value; }, L, h);
  const double errorX = relative_error(r.grad[0], fdX);
  const double errorL = relative_error(r.grad[1], fdL);
  INFO("dL/dX: relative error " << errorX << " (norm " << r.grad[0].norm() << "); dL/dL: relative error " << errorL
                                << " (norm " << r.grad[1].norm() << ")");
  CHECK(errorX < 1e-6);
  CHECK(errorL < 1e-6);
  CHECK(r.grad[1].norm() > 1e-3);  // the check is not vacuous
}

}  // namespace

TEST_CASE("Mahalanobis: dL/dX and dL/dL match central finite differences", "[metric_objects][mahalanobis][gradient]") {
  const Eigen::VectorXi y = class_blocks(3, 3);
  for (const Index k : {Index(2), Index(5)}) {
    for (const bool squared : {false, true}) {
      INFO("L is " << k << " x 5, squared " << squared);
      const RowMatrix<double> X = random_embeddings<double>(9, 5, 500 + static_cast<unsigned>(k));
      const RowMatrix<double> L = random_embeddings<double>(k, 5, 510 + static_cast<unsigned>(k), 0.5);
      {
        INFO("batch_contrastive_loss, squared hinge");
        ContrastiveOptions c;
        c.squared = true;
        c.neg_margin = squared ? 4.0 : 2.0;
        check_mahalanobis_gradients(
            [&](const RowMatrix<double>& x, const Mahalanobis& m) { return batch_contrastive_loss(x, y, m, c); }, X, L,
            squared);
      }
      {
        INFO("supcon_loss (smooth)");
        SupConOptions s;
        s.reduction = Reduction::Mean;
        check_mahalanobis_gradients(
            [&](const RowMatrix<double>& x, const Mahalanobis& m) { return supcon_loss(x, y, 0.7, m, s); }, X, L,
            squared);
      }
      {
        INFO("batch_all_triplet_loss, away from every kink");
        TripletOptions t;
        t.margin = squared ? 1.5 : 0.8;
        bool found = false;
        for (unsigned seed = 520; seed < 720 && !found; ++seed) {
          const RowMatrix<double> Xs = random_embeddings<double>(9, 5, seed);
          if (closest_batch_all_kink(Xs, y, L, squared, t.margin) < 1e-3) continue;
          found = true;
          INFO("seed " << seed);
          check_mahalanobis_gradients(
              [&](const RowMatrix<double>& x, const Mahalanobis& m) { return batch_all_triplet_loss(x, y, m, t); },
              Xs, L, squared);
        }
        REQUIRE(found);
      }
    }
  }
}

TEMPLATE_TEST_CASE("Mahalanobis: caller-owned outputs for X and L", "[metric_objects][mahalanobis]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(12, 5, 601);
  const Eigen::VectorXi y = class_blocks(3, 4).head(12);
  const Mahalanobis metric(random_embeddings<double>(2, 5, 602));
  TripletOptions o;
  o.margin = 0.5;
  auto untouched = [](const std::vector<S>& v) { return std::all_of(v.begin(), v.end(), [](S x) { return x == S(7); }); };

  for (const bool hard : {true, false}) {
    INFO((hard ? "batch_hard_triplet_loss" : "batch_all_triplet_loss"));
    const LossResult<S> full = hard ? batch_hard_triplet_loss(X, y, metric, o) : batch_all_triplet_loss(X, y, metric, o);
    REQUIRE(full.grad.size() == 2);
    REQUIRE(full.grad[1].rows() == 2);
    REQUIRE(full.grad[1].cols() == 5);
    std::vector<S> xs(60, S(7)), ls(10, S(7));
    Eigen::Map<RowMatrix<S>> dX(xs.data(), 12, 5), dL(ls.data(), 2, 5);
    const S v = hard ? batch_hard_triplet_loss(X, y, metric, o, dX, dL) : batch_all_triplet_loss(X, y, metric, o, dX, dL);
    CHECK(v == full.value);
    CHECK(dX == full.grad[0]);
    CHECK(dL == full.grad[1]);
    // One output: dL/dX only.
    std::vector<S> xs1(60, S(7));
    Eigen::Map<RowMatrix<S>> dX1(xs1.data(), 12, 5);
    CHECK((hard ? batch_hard_triplet_loss(X, y, metric, o, dX1) : batch_all_triplet_loss(X, y, metric, o, dX1)) ==
          full.value);
    CHECK(dX1 == full.grad[0]);
    // A wrong-shaped L output: rejected before anything is written.
    std::vector<S> xs2(60, S(7)), bad(15, S(7));
    Eigen::Map<RowMatrix<S>> dX2(xs2.data(), 12, 5), dLbad(bad.data(), 3, 5);
    if (hard) {
      REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, y, metric, o, dX2, dLbad), "metric_grad", "3 x 5", "2 x 5");
    } else {
      REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, y, metric, o, dX2, dLbad), "metric_grad", "3 x 5", "2 x 5");
    }
    CHECK(untouched(xs2));
    CHECK(untouched(bad));
    // Too many outputs.
    std::vector<S> extra(10, S(7));
    Eigen::Map<RowMatrix<S>> dExtra(extra.data(), 2, 5);
    REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, y, metric, o, dX2, dL, dExtra), "3 gradient outputs given");
    CHECK(untouched(xs2));
  }
  {
    INFO("a resizable matrix output takes its shape");
    const LossResult<S> full = batch_all_triplet_loss(X, y, metric, o);
    RowMatrix<S> dX, dL;
    CHECK(batch_all_triplet_loss(X, y, metric, o, dX, dL) == full.value);
    CHECK(dX == full.grad[0]);
    CHECK(dL == full.grad[1]);
  }
  {
    INFO("margin_loss: dX, dL, then dL/dbeta");
    MarginOptions mo;
    mo.nu = 0.1;
    const MarginLossResult<S> full = margin_loss(X, y, metric, mo);
    REQUIRE(full.grad.size() == 2);
    REQUIRE(full.beta_grad.size() == 1);
    std::vector<S> xs(60, S(7)), ls(10, S(7)), bs(1, S(7));
    Eigen::Map<RowMatrix<S>> dX(xs.data(), 12, 5), dL(ls.data(), 2, 5), dB(bs.data(), 1, 1);
    CHECK(margin_loss(X, y, metric, mo, dX, dL, dB) == full.value);
    CHECK(dX == full.grad[0]);
    CHECK(dL == full.grad[1]);
    CHECK(dB(0, 0) == full.beta_grad(0));
  }
  {
    INFO("contrastive_loss, explicit pairs: dX1, dX2, then dL (both sides' share)");
    const RowMatrix<S> X2 = random_embeddings<S>(12, 5, 603);
    Eigen::VectorXi similar(12);
    for (Index i = 0; i < 12; ++i) similar(i) = static_cast<int>(i % 2);
    ContrastiveOptions c;
    c.neg_margin = 3;
    const LossResult<S> full = contrastive_loss(X, X2, similar, metric, c);
    REQUIRE(full.grad.size() == 3);
    std::vector<S> a(60, S(7)), b(60, S(7)), ls(10, S(7));
    Eigen::Map<RowMatrix<S>> d1(a.data(), 12, 5), d2(b.data(), 12, 5), dL(ls.data(), 2, 5);
    CHECK(contrastive_loss(X, X2, similar, metric, c, d1, d2, dL) == full.value);
    CHECK(d1 == full.grad[0]);
    CHECK(d2 == full.grad[1]);
    CHECK(dL == full.grad[2]);
    std::vector<S> bad(12, S(7));
    Eigen::Map<RowMatrix<S>> dLbad(bad.data(), 2, 6);
    REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, X2, similar, metric, c, d1, d2, dLbad), "metric_grad", "2 x 6");
    CHECK(untouched(bad));
  }
}

TEMPLATE_TEST_CASE("Mahalanobis: an L whose column count is not the embeddings' is rejected",
                   "[metric_objects][mahalanobis][validation]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 5, 701);
  const RowMatrix<S> X2 = random_embeddings<S>(10, 5, 702);
  const Eigen::VectorXi y = random_labels(10, 3, 703);
  Eigen::VectorXi similar = Eigen::VectorXi::Zero(10);
  similar(0) = 1;
  const Mahalanobis narrow(random_embeddings<double>(2, 4, 704));
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, y, narrow), "batch_hard_triplet_loss", "metric", "2 x 4");
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, y, narrow, value_only), "batch_all_triplet_loss", "metric");
  REQUIRE_INVALID_ARGUMENT(batch_contrastive_loss(X, y, narrow), "metric");
  REQUIRE_INVALID_ARGUMENT(margin_loss(X, y, narrow), "metric");
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, y, 0.5, narrow), "metric");
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(X, X2, 0.5, narrow), "metric");
  REQUIRE_INVALID_ARGUMENT(contrastive_loss(X, X2, similar, narrow), "contrastive_loss", "metric");
  REQUIRE_INVALID_ARGUMENT(triplet_margin_loss(X, X2, X, narrow), "triplet_margin_loss", "metric");
  const Mahalanobis wide(random_embeddings<double>(3, 6, 705));
  REQUIRE_INVALID_ARGUMENT(batch_semihard_triplet_loss(X, y, wide), "metric", "3 x 6");
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, y, AnyMetric(wide)), "metric", "3 x 6");
  // The caller's output is untouched.
  std::vector<S> out(50, S(7));
  Eigen::Map<RowMatrix<S>> dX(out.data(), 10, 5);
  REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, y, narrow, dX), "metric");
  CHECK(std::all_of(out.begin(), out.end(), [](S v) { return v == S(7); }));
}

TEST_CASE("Mahalanobis: an L with a NaN, an Inf or no entries is rejected at construction",
          "[metric_objects][mahalanobis][validation]") {
  RowMatrix<double> L = RowMatrix<double>::Identity(3, 4);
  L(1, 2) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(Mahalanobis(L), "Mahalanobis", "'L'", "row 1, column 2");
  L(1, 2) = std::numeric_limits<double>::infinity();
  REQUIRE_INVALID_ARGUMENT(Mahalanobis(L, true), "'L'");
  Eigen::MatrixXf Lf = Eigen::MatrixXf::Identity(2, 2);
  Lf(0, 1) = -std::numeric_limits<float>::infinity();
  REQUIRE_INVALID_ARGUMENT(Mahalanobis(Lf), "'L'");
  REQUIRE_INVALID_ARGUMENT(Mahalanobis(RowMatrix<double>(0, 5)), "'L'");
  REQUIRE_INVALID_ARGUMENT(Mahalanobis(RowMatrix<double>(3, 0)), "'L'");
}

namespace {

// Three classes whose means lie on a circle in dims 0, 1 (noise 0.15), and two
// dimensions of pure noise (std 3) that swamp the Euclidean distance.
struct NoisyProblem {
  RowMatrix<double> X;
  Eigen::VectorXi labels;
};

NoisyProblem noisy_problem(int per_class, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  const int classes = 3;
  NoisyProblem p;
  p.X.resize(classes * per_class, 4);
  p.labels.resize(classes * per_class);
  const double pi = std::acos(-1.0);
  for (int c = 0; c < classes; ++c)
    for (int k = 0; k < per_class; ++k) {
      const Index i = c * per_class + k;
      const double angle = 2 * pi * c / classes;
      p.X(i, 0) = std::cos(angle) + 0.15 * normal(gen);
      p.X(i, 1) = std::sin(angle) + 0.15 * normal(gen);
      p.X(i, 2) = 3.0 * normal(gen);
      p.X(i, 3) = 3.0 * normal(gen);
      p.labels(i) = c;
    }
  return p;
}

}  // namespace

TEST_CASE("Mahalanobis: gradient steps on L learn to drop the noise dimensions", "[metric_objects][mahalanobis][training]") {
  const NoisyProblem p = noisy_problem(10, 800);
  TripletOptions o;
  o.margin = 1.0;
  RowMatrix<double> L = RowMatrix<double>::Identity(4, 4);
  const double initial = batch_all_triplet_loss(p.X, p.labels, Mahalanobis(L), o, value_only);
  REQUIRE(initial > 0);
  const double step = 0.05;
  double previous = initial;
  int increases = 0;
  for (int it = 0; it < 50; ++it) {
    const LossResult<double> r = batch_all_triplet_loss(p.X, p.labels, Mahalanobis(L), o);
    REQUIRE(r.grad.size() == 2);
    if (r.value > previous) ++increases;
    previous = r.value;
    L -= step * r.grad[1];
  }
  const double final_loss = batch_all_triplet_loss(p.X, p.labels, Mahalanobis(L), o, value_only);
  INFO("initial loss " << initial << ", final " << final_loss << ", increases " << increases);
  INFO("column norms " << L.colwise().norm());
  CHECK(final_loss < 0.5 * initial);
  CHECK(increases <= 5);
  const double informative = std::min(L.col(0).norm(), L.col(1).norm());
  CHECK(L.col(2).norm() < informative);
  CHECK(L.col(3).norm() < informative);
}

}  // namespace test_metric_objects

namespace test_metric_objects {

// The public distance functions of a similarity: x.y itself, the diagonal
// |x|^2 included, and their backward against central differences of
// L = sum(W .* S) (W fixed, so dL/dS = W).
TEST_CASE("DotProduct: the public distance functions return x.y, and their backward includes the diagonal",
          "[metric_objects][dot_product]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 91);
  const RowMatrix<double> Y = random_embeddings<double>(4, 3, 92);
  const RowMatrix<double> W = random_embeddings<double>(6, 6, 93);
  const RowMatrix<double> WY = random_embeddings<double>(6, 4, 94);
  const RowMatrix<double> S = pairwise_distance<DotProduct>(X);
  CHECK(relative_error(RowMatrix<double>(X * X.transpose()), S) < 1e-15);
  CHECK(relative_error(RowMatrix<double>(X * Y.transpose()), pairwise_distance<DotProduct>(X, Y)) < 1e-15);
  const Vector<double> r = rowwise_distance<DotProduct>(X.topRows(4), Y);
  for (Index i = 0; i < 4; ++i) CHECK(std::abs(r(i) - X.row(i).dot(Y.row(i))) < 1e-14);

  const double h = 1e-6;
  auto numeric = [&](auto&& f, const RowMatrix<double>& at) {
    RowMatrix<double> g(at.rows(), at.cols());
    for (Index i = 0; i < at.rows(); ++i) {
      for (Index j = 0; j < at.cols(); ++j) {
        RowMatrix<double> plus = at, minus = at;
        plus(i, j) += h;
        minus(i, j) -= h;
        g(i, j) = (f(plus) - f(minus)) / (2 * h);
      }
    }
    return g;
  };
  const RowMatrix<double> dX = pairwise_distance_backward<DotProduct>(X, W);
  const RowMatrix<double> fd =
      numeric([&](const RowMatrix<double>& x) { return (W.array() * pairwise_distance<DotProduct>(x).array()).sum(); }, X);
  INFO("symmetric backward, relative error " << relative_error(fd, dX));
  CHECK(relative_error(fd, dX) < 1e-8);
  const PairGradient<double> g = pairwise_distance_backward<DotProduct>(X, Y, WY);
  const RowMatrix<double> fdx =
      numeric([&](const RowMatrix<double>& x) { return (WY.array() * pairwise_distance<DotProduct>(x, Y).array()).sum(); }, X);
  const RowMatrix<double> fdy =
      numeric([&](const RowMatrix<double>& y) { return (WY.array() * pairwise_distance<DotProduct>(X, y).array()).sum(); }, Y);
  CHECK(relative_error(fdx, g.dX) < 1e-8);
  CHECK(relative_error(fdy, g.dY) < 1e-8);
}

}  // namespace test_metric_objects
