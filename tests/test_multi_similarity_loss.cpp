// multi_similarity_loss and mine_multi_similarity against pytorch-metric-learning
// 2.8.1 itself (tests/reference/data/pml_multi_similarity.txt), brute-force loops
// written from PML's formulas, finite differences, the call forms and bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_distances.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/contrastive_loss.hpp>
#include <contrastive/losses/multi_similarity_loss.hpp>
#include <contrastive/mining/pair_miners.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_multi_similarity_loss {

namespace {

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

// log(1 + sum exp(v)) the naive way (the arguments here stay far below overflow).
double log_one_plus(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double s = 1;
  for (const double x : v) s += std::exp(x);
  return std::log(s);
}

// PML MultiSimilarityLoss._compute_loss on masks, then the reduction, straight from its source.
template <class Metric, class S>
Brute brute_ms(const RowMatrix<S>& X, const std::vector<std::vector<int>>& pos, const std::vector<std::vector<int>>& neg,
               const MultiSimilarityOptions& o, Reduction reduction, const std::vector<double>& w) {
  const Index n = X.rows();
  Brute out;
  out.terms.assign(static_cast<std::size_t>(n), 0.0);
  double sum = 0;
  int nonzero = 0;
  for (Index i = 0; i < n; ++i) {
    std::vector<double> pe, ne;
    for (Index j = 0; j < n; ++j) {
      const double mat = pml_mat<Metric>(X.row(i), X.row(j));
      if (pos[std::size_t(i)][std::size_t(j)]) pe.push_back(o.alpha * pml_margin<Metric>(mat, o.base));
      if (neg[std::size_t(i)][std::size_t(j)]) ne.push_back(o.beta * pml_margin<Metric>(o.base, mat));
    }
    const double term = (log_one_plus(pe) / o.alpha + log_one_plus(ne) / o.beta) * w[std::size_t(i)];
    out.terms[std::size_t(i)] = term;
    sum += term;
    if (term > 0) ++nonzero;
  }
  const int divisor = reduction == Reduction::Sum ? 1 : reduction == Reduction::Mean ? int(n) : nonzero;
  out.value = divisor > 0 ? sum / divisor : 0.0;
  return out;
}

using Masks = std::vector<std::vector<int>>;

// PML's get_all_pairs_indices as masks.
void label_masks(const Eigen::VectorXi& labels, Masks& pos, Masks& neg) {
  const std::size_t n = std::size_t(labels.size());
  pos.assign(n, std::vector<int>(n, 0));
  neg.assign(n, std::vector<int>(n, 0));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) {
      if (labels(Index(i)) == labels(Index(j))) {
        pos[i][j] = i != j;
      } else {
        neg[i][j] = 1;
      }
    }
}

// GenericPairLoss.mat_based_loss's masks from an indices tuple, with its "every tensor has length <= 1" rule.
void pair_masks(const Pairs& pairs, Index n, Masks& pos, Masks& neg) {
  pos.assign(std::size_t(n), std::vector<int>(std::size_t(n), 0));
  neg.assign(std::size_t(n), std::vector<int>(std::size_t(n), 0));
  std::size_t np = 0, nn = 0;
  for (std::size_t k = 0; k < pairs.first.size(); ++k) (pairs.similar[k] ? np : nn) += 1;
  if (np <= 1 && nn <= 1) return;
  for (std::size_t k = 0; k < pairs.first.size(); ++k) {
    (pairs.similar[k] ? pos : neg)[std::size_t(pairs.first[k])][std::size_t(pairs.second[k])] = 1;
  }
}

Eigen::VectorXi with_singletons(Index n) {
  Eigen::VectorXi l(n);
  for (Index i = 0; i < n; ++i) l(i) = static_cast<int>(i % 3);
  l(2) = 100;
  l(5) = 101;
  return l;
}

const Reduction all_reductions[] = {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero};

Reducer reducer_of(Reduction r, const Vector<double>& w, bool weighted) {
  if (!weighted) return r;
  return Reducer(r, w);
}

// Rows scaled so each metric's distances sit around base = 0.5 (as the reference data).
template <class Metric>
double scale_of() {
  return std::is_same<Metric, Cosine>::value ? 1.0 : std::is_same<Metric, DotProduct>::value ? 0.5 : 0.2;
}

// max |got - want| / max |want| (0 when both are zero).
std::set<std::tuple<Index, Index, int>> pair_set(const Pairs& p) {
  std::set<std::tuple<Index, Index, int>> s;
  for (std::size_t k = 0; k < p.first.size(); ++k) s.emplace(p.first[k], p.second[k], int(p.similar[k]));
  return s;
}

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

// Every case of pml_multi_similarity.txt; the worst errors per distance code (0..3), labels and mined.
void compare_with_pml(Worst worst[4][2]) {
  const ReferenceFile ref("pml_multi_similarity.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    const int code = int(ref.scalar(c + "distance"));
    const bool mined = ref.scalar(c + "mined") != 0;
    MultiSimilarityOptions o;
    o.alpha = ref.scalar(c + "alpha");
    o.beta = ref.scalar(c + "beta");
    o.base = ref.scalar(c + "base");
    with_pml_metric(code, [&](const auto& metric) {
      const char* name = pml_metric_name(code);
      using M = std::decay_t<decltype(metric)>;
      INFO("case " << k << ", " << name << (mined ? ", mined" : ", all pairs"));
      LossResult<double> got;
      if (mined) {
        const Pairs p = mine_multi_similarity<M>(X, labels, ref.scalar(c + "epsilon"));
        std::set<std::tuple<Index, Index, int>> want;
        const Vector<double> a1 = ref.vector(c + "a1"), pp = ref.vector(c + "p"), a2 = ref.vector(c + "a2"),
                             nn = ref.vector(c + "n");
        for (Index q = 0; q < a1.size(); ++q) want.emplace(Index(a1(q)), Index(pp(q)), 1);
        for (Index q = 0; q < a2.size(); ++q) want.emplace(Index(a2(q)), Index(nn(q)), 0);
        CHECK(pair_set(p) == want);
        CHECK(std::size_t(p.size()) == want.size());  // no duplicates
        got = multi_similarity_loss(X, p, metric, o);
      } else {
        got = multi_similarity_loss(X, labels, metric, o);
      }
      const double want_value = ref.scalar(c + "value");
      const RowMatrix<double> want_grad = ref.matrix(c + "grad");
      const Vector<double> want_terms = ref.vector(c + "terms");
      Worst& w = worst[code][mined ? 1 : 0];
      const double ev = want_value == 0 ? std::abs(got.value) : pml_relative(got.value, want_value);
      const double eg = pml_relative_max(got.grad[0], want_grad);
      const double et = pml_relative_max(got.terms, want_terms);
      w.value = std::max(w.value, ev);
      w.grad = std::max(w.grad, eg);
      w.terms = std::max(w.terms, et);
      CHECK(ev <= 1e-9);
      REQUIRE(got.grad[0].rows() == want_grad.rows());
      CHECK(eg <= 1e-9);
      REQUIRE(got.terms.size() == want_terms.size());
      CHECK(et <= 1e-9);
      if (want_value != 0) CHECK_FALSE(got.grad[0].isZero(0));
    });
  }
}

}  // namespace

TEST_CASE("multi_similarity_loss reproduces pytorch-metric-learning 2.8.1 MultiSimilarityLoss and Miner",
          "[multi_similarity][reference]") {
  Worst worst[4][2];
  compare_with_pml(worst);
}

// Prints the worst relative errors: build/tests/pair_loss_tests "[.pml_report]" -s
TEST_CASE("multi_similarity_loss: worst relative error against PML", "[.pml_report]") {
  Worst worst[4][2];
  compare_with_pml(worst);
  const char* names[4] = {"CosineSimilarity()", "DotProductSimilarity(normalize_embeddings=False)",
                          "LpDistance(normalize_embeddings=False)", "LpDistance(normalize_embeddings=False, power=2)"};
  for (int code = 0; code < 4; ++code)
    for (int mined = 0; mined < 2; ++mined)
      std::printf("MultiSimilarityLoss %-50s %-22s value %.2e grad %.2e terms %.2e\n", names[code],
                  mined ? "on the miner's pairs" : "all pairs", worst[code][mined].value, worst[code][mined].grad,
                  worst[code][mined].terms);
}

#define MS_METRIC_CASES                                                                          \
  CONTRASTIVE_ALL_METRIC_CASES, (contrastive_test::Case<float, contrastive::DotProduct>), \
      (contrastive_test::Case<double, contrastive::DotProduct>)

TEMPLATE_TEST_CASE("multi_similarity_loss matches a brute-force loop", "[multi_similarity][brute]", MS_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 21;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 71, scale_of<M>());
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(7, 3), random_labels(n, 5, 72), with_singletons(n),
                                                Eigen::VectorXi::Zero(n), class_blocks(21, 1)};
  const Vector<double> weights = random_embeddings<double>(n, 1, 73).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  MultiSimilarityOptions other;
  other.alpha = 1;
  other.beta = 10;
  other.base = -0.2;
  for (const MultiSimilarityOptions& base_options : {MultiSimilarityOptions{}, other}) {
    for (const Eigen::VectorXi& labels : layouts) {
      Masks pos, neg;
      label_masks(labels, pos, neg);
      for (const Reduction r : all_reductions) {
        for (const bool weighted : {false, true}) {
          MultiSimilarityOptions o = base_options;
          o.reduction = reducer_of(r, weights, weighted);
          const RowMatrix<double> Xd = X.template cast<double>();
          const Brute expected = brute_ms<M>(Xd, pos, neg, o, r, weighted ? w : ones);
          const LossResult<S> got = multi_similarity_loss<M>(X, labels, o);
          INFO("alpha " << o.alpha << ", reduction " << int(r) << (weighted ? " weighted" : "") << ", labels "
                        << labels.transpose());
          const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 2e-5;
          CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
          REQUIRE(got.terms.size() == n);
          for (Index i = 0; i < n; ++i)
            CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol));
          REQUIRE(got.grad.size() == 1);
          CHECK(got.grad[0].rows() == n);
        }
      }
    }
  }
}

TEMPLATE_TEST_CASE("multi_similarity_loss on pairs matches a brute-force loop on PML's masks",
                   "[multi_similarity][brute]", MS_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 13;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 81, scale_of<M>());
  const Eigen::VectorXi labels = random_labels(n, 3, 82);
  // Pairs with duplicates, both flags for one (a, b), and rows without pairs.
  Pairs pairs;
  std::mt19937 gen(83);
  std::uniform_int_distribution<Index> pick(0, n - 3);
  for (int k = 0; k < 60; ++k) {
    const Index a = pick(gen), b = pick(gen);
    if (a != b) pairs.add(a, b, labels(a) == labels(b));
  }
  pairs.add(pairs.first[0], pairs.second[0], pairs.similar[0] != 0);
  pairs.add(3, 4, true);
  pairs.add(3, 4, false);
  Pairs one_each;  // PML: at most one entry per index tensor gives zero losses
  one_each.add(0, 1, true);
  one_each.add(0, 2, false);
  Pairs two_positives = one_each;
  two_positives.add(1, 0, true);
  const Vector<double> weights = random_embeddings<double>(n, 1, 84).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  for (const Pairs& p : {pairs, one_each, two_positives, Pairs{}}) {
    Masks pos, neg;
    pair_masks(p, n, pos, neg);
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        MultiSimilarityOptions o;
        o.reduction = reducer_of(r, weights, weighted);
        const Brute expected = brute_ms<M>(RowMatrix<double>(X.template cast<double>()), pos, neg, o, r,
                                           weighted ? w : ones);
        const LossResult<S> got = multi_similarity_loss<M>(X, p, o);
        INFO(p.size() << " pairs, reduction " << int(r) << (weighted ? " weighted" : ""));
        const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 2e-5;
        CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
        REQUIRE(got.terms.size() == n);
        for (Index i = 0; i < n; ++i)
          CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol));
        if (expected.value == 0) CHECK(got.grad[0].isZero(0));
      }
    }
  }
  CHECK(multi_similarity_loss<M>(X, one_each, value_only) == S(0));
  CHECK(multi_similarity_loss<M>(X, two_positives, value_only) > S(0));
}

TEMPLATE_TEST_CASE("multi_similarity_loss on every pair equals the labels form", "[multi_similarity]", float, double) {
  using S = TestType;
  const Index n = 17;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 91);
  const Eigen::VectorXi labels = with_singletons(n);
  const Pairs all = mine_pairs<Cosine>(X, labels, -10.0, 10.0);  // every ordered pair
  REQUIRE(all.size() == n * (n - 1));
  for (const Reduction r : all_reductions) {
    MultiSimilarityOptions o;
    o.reduction = r;
    const LossResult<S> a = multi_similarity_loss(X, labels, o);
    const LossResult<S> b = multi_similarity_loss(X, all, o);
    const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
    CHECK(double(a.value) == Approx(double(b.value)).epsilon(tol));
    CHECK(pml_relative_max(a.grad[0].template cast<double>(), b.grad[0].template cast<double>()) <= tol);
  }
}

TEMPLATE_TEST_CASE("multi_similarity_loss gradient matches finite differences", "[multi_similarity][gradient]",
                   MS_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  if (!std::is_same<S, double>::value) return;  // finite differences in double
  const Index n = 12;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 101, scale_of<M>());
  const Eigen::VectorXi labels = with_singletons(n);
  const Pairs mined = mine_multi_similarity<M>(X, labels, 0.3);
  REQUIRE(mined.size() > 2);
  const Vector<double> weights = random_embeddings<double>(n, 1, 102).cwiseAbs();
  for (const Reduction r : all_reductions) {
    for (const bool weighted : {false, true}) {
      MultiSimilarityOptions o;
      o.beta = 10;  // beta = 50 is checked against PML; a softer one keeps the differences well-conditioned
      o.reduction = reducer_of(r, weights, weighted);
      {
        const LossResult<S> res = multi_similarity_loss<M>(X, labels, o);
        auto f = [&](const RowMatrix<S>& x) { return multi_similarity_loss<M>(x, labels, o, value_only); };
        const auto report = testing::check_gradient(f, X, res.grad[0]);
        INFO("labels, reduction " << int(r) << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(res.grad[0].isZero(0));
      }
      {
        const LossResult<S> res = multi_similarity_loss<M>(X, mined, o);
        auto f = [&](const RowMatrix<S>& x) { return multi_similarity_loss<M>(x, mined, o, value_only); };
        const auto report = testing::check_gradient(f, X, res.grad[0]);
        INFO("mined pairs, reduction " << int(r) << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(res.grad[0].isZero(0));
      }
    }
  }
  // The default beta = 50 too, and Mahalanobis with dL/dL.
  const LossResult<S> res = multi_similarity_loss<M>(X, labels);
  auto f = [&](const RowMatrix<S>& x) { return multi_similarity_loss<M>(x, labels, value_only); };
  const auto report = testing::check_gradient(f, X, res.grad[0]);
  INFO(report.summary());
  CHECK(report.passed);
}

TEST_CASE("multi_similarity_loss under Mahalanobis: dL/dX and dL/dL match finite differences",
          "[multi_similarity][gradient]") {
  const RowMatrix<double> X = random_embeddings<double>(10, 4, 111, 0.3);
  const RowMatrix<double> L = random_embeddings<double>(3, 4, 112, 0.8);
  const Eigen::VectorXi labels = with_singletons(10);
  const Pairs mined = mine_multi_similarity<Euclidean>(X, labels, 0.5);
  MultiSimilarityOptions o;
  o.beta = 10;
  for (const bool use_pairs : {false, true}) {
    INFO((use_pairs ? "mined pairs" : "labels"));
    auto loss = [&](const RowMatrix<double>& x, const RowMatrix<double>& l) {
      return use_pairs ? multi_similarity_loss(x, mined, Mahalanobis(l), o)
                       : multi_similarity_loss(x, labels, Mahalanobis(l), o);
    };
    const LossResult<double> res = loss(X, L);
    REQUIRE(res.grad.size() == 2);
    const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return loss(x, L).value; }, X, res.grad[0]);
    const auto rl = testing::check_gradient([&](const RowMatrix<double>& l) { return loss(X, l).value; }, L, res.grad[1]);
    INFO(rx.summary() << "; " << rl.summary());
    CHECK(rx.passed);
    CHECK(rl.passed);
    // Equal to Euclidean on X L^T.
    const RowMatrix<double> Z = X * L.transpose();
    const double e = use_pairs ? multi_similarity_loss<Euclidean>(Z, mined, o, value_only)
                               : multi_similarity_loss<Euclidean>(Z, labels, o, value_only);
    CHECK(res.value == Approx(e).epsilon(1e-12));
  }
}

TEMPLATE_TEST_CASE("multi_similarity_loss value-only and buffer forms agree with the full call", "[multi_similarity]",
                   float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 121);
  const Eigen::VectorXi labels = random_labels(10, 3, 122);
  const Pairs mined = mine_multi_similarity(X, labels);
  const MultiSimilarityOptions options;
  for (const bool use_pairs : {false, true}) {
    const LossResult<S> full = use_pairs ? multi_similarity_loss(X, mined, options) : multi_similarity_loss(X, labels, options);
    const S v = use_pairs ? multi_similarity_loss(X, mined, options, value_only)
                          : multi_similarity_loss(X, labels, options, value_only);
    CHECK(v == full.value);
    std::vector<S> buffer(40, S(-7));
    Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
    const S b = use_pairs ? multi_similarity_loss(X, mined, options, grad) : multi_similarity_loss(X, labels, options, grad);
    CHECK(b == full.value);
    CHECK(grad == full.grad[0]);
    // The metric as a value is the template form.
    const S m = use_pairs ? multi_similarity_loss(X, mined, Cosine{}, options, value_only)
                          : multi_similarity_loss(X, labels, Cosine{}, options, value_only);
    CHECK(m == full.value);
    // A wrong buffer shape throws and leaves the buffer alone.
    std::vector<S> small(36, S(-7));
    Eigen::Map<RowMatrix<S>> wrong(small.data(), 9, 4);
    if (use_pairs) {
      REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, mined, options, wrong), "multi_similarity_loss", "grad");
    } else {
      REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, labels, options, wrong), "multi_similarity_loss", "grad");
    }
    CHECK(std::all_of(small.begin(), small.end(), [](S x) { return x == S(-7); }));
  }
}

TEST_CASE("multi_similarity_loss: beta = 50 in float is finite and matches double", "[multi_similarity][stability]") {
  // Far-apart classes: exponents of beta (s - base) reach -70 and +25.
  RowMatrix<double> X = random_embeddings<double>(16, 6, 131, 0.05);
  for (Index i = 0; i < 16; ++i) X(i, i % 4) += 1.0;
  const Eigen::VectorXi labels = random_labels(16, 4, 132);
  for (const double beta : {50.0, 500.0}) {
    MultiSimilarityOptions o;
    o.beta = beta;
    o.alpha = 20;
    const LossResult<double> d = multi_similarity_loss(X, labels, o);
    const LossResult<float> f = multi_similarity_loss(RowMatrix<float>(X.cast<float>()), labels, o);
    REQUIRE(std::isfinite(f.value));
    REQUIRE(f.grad[0].allFinite());
    CHECK(double(f.value) == Approx(d.value).epsilon(1e-4));
    CHECK(pml_relative_max(f.grad[0].cast<double>(), d.grad[0]) <= 1e-3);
  }
}

TEST_CASE("multi_similarity_loss edge cases", "[multi_similarity][edge]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 141);
  // N = 0 and N = 1: loss 0.
  const LossResult<double> empty = multi_similarity_loss(RowMatrix<double>(0, 3), Eigen::VectorXi(0));
  CHECK(empty.value == 0);
  CHECK(empty.grad[0].rows() == 0);
  const LossResult<double> one = multi_similarity_loss(RowMatrix<double>(X.topRows(1)), Eigen::VectorXi::Zero(1));
  CHECK(one.value == 0);
  CHECK(one.grad[0].isZero(0));
  // Distinct labels: negatives only, still a loss (PML).
  Eigen::VectorXi distinct(6);
  distinct << 0, 1, 2, 3, 4, 5;
  CHECK(multi_similarity_loss(X, distinct, value_only) > 0);
  // A zero row under Cosine: similarity 0, gradient 0 for it.
  RowMatrix<double> Z = X;
  Z.row(2).setZero();
  const LossResult<double> z = multi_similarity_loss(Z, distinct);
  CHECK(std::isfinite(z.value));
  CHECK(z.grad[0].row(2).isZero(0));
}

TEST_CASE("multi_similarity_loss and mine_multi_similarity reject bad arguments", "[multi_similarity][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 151);
  const Eigen::VectorXi labels = random_labels(6, 2, 152);
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
    MultiSimilarityOptions o;
    o.alpha = bad;
    REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, labels, o), "multi_similarity_loss", "options.alpha");
    REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, Pairs{}, o), "multi_similarity_loss", "options.alpha");
    o = MultiSimilarityOptions{};
    o.beta = bad;
    REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, labels, o), "multi_similarity_loss", "options.beta");
  }
  MultiSimilarityOptions o;
  o.base = std::nan("");
  REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, labels, o), "multi_similarity_loss", "options.base");
  o = MultiSimilarityOptions{};
  o.reduction = Mean(Eigen::VectorXd::Ones(5));
  REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, labels, o), "multi_similarity_loss", "options.reduction");
  Pairs out_of_range;
  out_of_range.add(0, 6, true);
  REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, out_of_range), "multi_similarity_loss", "pairs", "out of range");
  REQUIRE_INVALID_ARGUMENT(multi_similarity_loss(X, Eigen::VectorXi(5)), "multi_similarity_loss", "labels");
  for (const double bad : {-0.1, std::numeric_limits<double>::infinity(), std::nan("")}) {
    REQUIRE_INVALID_ARGUMENT(mine_multi_similarity(X, labels, bad), "mine_multi_similarity", "epsilon");
    REQUIRE_INVALID_ARGUMENT(mine_multi_similarity(X, labels, X, labels, bad), "mine_multi_similarity", "epsilon");
  }
}

TEMPLATE_TEST_CASE("mine_multi_similarity matches a brute-force loop", "[multi_similarity][miner]", MS_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Index n = 19;
  const RowMatrix<S> X = random_embeddings<S>(n, 5, 161, scale_of<M>());
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(19, 1), random_labels(n, 4, 162), with_singletons(n),
                                                Eigen::VectorXi::Zero(n)};
  for (const Eigen::VectorXi& labels : layouts) {
    for (const double eps : {0.0, 0.1, 0.3}) {
      // PML's rule on its matrix (similarity or distance), in double.
      std::set<std::tuple<Index, Index, int>> want;
      for (Index a = 0; a < n; ++a) {
        double best_neg = pml_inverted<M>() ? -1e300 : 1e300, worst_pos = pml_inverted<M>() ? 1e300 : -1e300;
        bool has_p = false, has_n = false;
        for (Index b = 0; b < n; ++b) {
          if (b == a) continue;
          const double mat = pml_mat<M>(X.row(a), X.row(b));
          if (labels(a) == labels(b)) {
            has_p = true;
            worst_pos = pml_inverted<M>() ? std::min(worst_pos, mat) : std::max(worst_pos, mat);
          } else {
            has_n = true;
            best_neg = pml_inverted<M>() ? std::max(best_neg, mat) : std::min(best_neg, mat);
          }
        }
        if (!has_p || !has_n) continue;
        for (Index b = 0; b < n; ++b) {
          if (b == a) continue;
          const double mat = pml_mat<M>(X.row(a), X.row(b));
          if (labels(a) == labels(b)) {
            if (pml_inverted<M>() ? mat - eps < best_neg : mat + eps > best_neg) want.emplace(a, b, 1);
          } else if (pml_inverted<M>() ? mat + eps > worst_pos : mat - eps < worst_pos) {
            want.emplace(a, b, 0);
          }
        }
      }
      const Pairs got = mine_multi_similarity<M>(X, labels, eps);
      INFO("epsilon " << eps << ", labels " << labels.transpose());
      CHECK(pair_set(got) == want);
      CHECK(std::size_t(got.size()) == want.size());
      // Row-major order.
      for (std::size_t k = 1; k < got.first.size(); ++k)
        CHECK(std::make_pair(got.first[k - 1], got.second[k - 1]) < std::make_pair(got.first[k], got.second[k]));
      // Against the batch as a reference set (self excluded), in small blocks: the same pairs.
      ReferenceOptions blocks;
      blocks.block_rows = 4;
      blocks.exclude_same_index = true;
      CHECK(pair_set(mine_multi_similarity<M>(X, labels, X, labels, eps, blocks)) == want);
    }
  }
}

TEST_CASE("mine_multi_similarity's pairs feed every loss that takes Pairs", "[multi_similarity][miner]") {
  const RowMatrix<double> X = random_embeddings<double>(12, 4, 171);
  const Eigen::VectorXi labels = class_blocks(4, 3);
  const Pairs mined = mine_multi_similarity(X, labels, 0.2);
  REQUIRE(mined.size() > 0);
  ContrastiveOptions co;
  co.pos_margin = 0.1;
  co.neg_margin = 0.8;
  const LossResult<double> c = contrastive_loss<Cosine>(X, mined, co);
  CHECK(std::isfinite(c.value));
  CHECK(c.terms.size() == mined.size());
  const LossResult<double> m = multi_similarity_loss(X, mined);
  CHECK(m.value > 0);
}

}  // namespace test_multi_similarity_loss
