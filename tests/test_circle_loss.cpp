// circle_loss against pytorch-metric-learning 2.8.1 itself
// (tests/reference/data/pml_circle.txt), a brute-force loop from PML's formula,
// finite differences of the value with PML's detached weights frozen, the call
// forms and bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/circle_loss.hpp>
#include <contrastive/metrics/any_metric.hpp>
#include <contrastive/mining/pair_miners.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_circle_loss {

namespace {

double cosine(const RowMatrix<double>& X, Index i, Index j) { return 1.0 - reference_distance(Ref::Cosine, X.row(i), X.row(j)); }

double log_sum_exp(const std::vector<double>& v) {
  const double top = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (const double x : v) s += std::exp(x - top);
  return top + std::log(s);
}

// torch.nn.Softplus(beta=1, threshold=20).
double softplus(double x) { return x > 20 ? x : x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

using Masks = std::vector<std::vector<int>>;

// PML CircleLoss._compute_loss on masks, then the reduction. The weights
// relu(1 + m - s_p), relu(s_n + m) come from X0 (PML's .detach(): X0 = X gives
// the value, and differentiating in X with X0 fixed gives PML's gradient).
Brute brute_circle(const RowMatrix<double>& X, const RowMatrix<double>& X0, const Masks& pos, const Masks& neg, double m,
                   double gamma, Reduction reduction, const std::vector<double>& w) {
  const Index n = X.rows();
  Brute out;
  out.terms.assign(std::size_t(n), 0.0);
  double sum = 0;
  int nonzero = 0;
  for (Index i = 0; i < n; ++i) {
    std::vector<double> lp, ln;
    for (Index j = 0; j < n; ++j) {
      const double s = cosine(X, i, j), s0 = cosine(X0, i, j);
      if (pos[std::size_t(i)][std::size_t(j)]) lp.push_back(-gamma * std::max(1 + m - s0, 0.0) * (s - (1 - m)));
      if (neg[std::size_t(i)][std::size_t(j)]) ln.push_back(gamma * std::max(s0 + m, 0.0) * (s - m));
    }
    if (lp.empty() || ln.empty()) continue;
    const double term = softplus(log_sum_exp(lp) + log_sum_exp(ln)) * w[std::size_t(i)];
    out.terms[std::size_t(i)] = term;
    sum += term;
    if (term > 0) ++nonzero;
  }
  const int divisor = reduction == Reduction::Sum ? 1 : reduction == Reduction::Mean ? int(n) : nonzero;
  out.value = divisor > 0 ? sum / divisor : 0.0;
  return out;
}

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

void pair_masks(const Pairs& pairs, Index n, Masks& pos, Masks& neg) {
  pos.assign(std::size_t(n), std::vector<int>(std::size_t(n), 0));
  neg.assign(std::size_t(n), std::vector<int>(std::size_t(n), 0));
  std::size_t np = 0, nn = 0;
  for (std::size_t k = 0; k < pairs.first.size(); ++k) (pairs.similar[k] ? np : nn) += 1;
  if (np <= 1 && nn <= 1) return;
  for (std::size_t k = 0; k < pairs.first.size(); ++k)
    (pairs.similar[k] ? pos : neg)[std::size_t(pairs.first[k])][std::size_t(pairs.second[k])] = 1;
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

double relative_max(const RowMatrix<double>& got, const RowMatrix<double>& want) {
  const double scale = want.size() ? want.cwiseAbs().maxCoeff() : 0.0;
  const double err = want.size() ? (got - want).cwiseAbs().maxCoeff() : 0.0;
  return scale == 0 ? err : err / scale;
}

struct Worst {
  double value = 0, grad = 0, terms = 0;
};

void compare_with_pml(Worst worst[2]) {
  const ReferenceFile ref("pml_circle.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases > 0);
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const RowMatrix<double> X = ref.matrix(c + "X");
    const Eigen::VectorXi labels = ref.labels(c + "labels");
    const bool mined = ref.scalar(c + "mined") != 0;
    CircleOptions o;
    o.m = ref.scalar(c + "m");
    o.gamma = ref.scalar(c + "gamma");
    INFO("case " << k << (mined ? ", mined" : ", all pairs"));
    const LossResult<double> got =
        mined ? circle_loss(X, mine_multi_similarity(X, labels, ref.scalar(c + "epsilon")), o) : circle_loss(X, labels, o);
    const double want = ref.scalar(c + "value");
    Worst& w = worst[mined ? 1 : 0];
    const double ev = want == 0 ? std::abs(got.value) : std::abs(got.value - want) / std::abs(want);
    const double eg = relative_max(got.grad[0], ref.matrix(c + "grad"));
    const RowMatrix<double> terms = got.terms;
    const double et = relative_max(terms, RowMatrix<double>(ref.vector(c + "terms")));
    w.value = std::max(w.value, ev);
    w.grad = std::max(w.grad, eg);
    w.terms = std::max(w.terms, et);
    CHECK(ev <= 1e-9);
    CHECK(eg <= 1e-9);
    CHECK(et <= 1e-9);
    if (want != 0) CHECK_FALSE(got.grad[0].isZero(0));
  }
}

}  // namespace

TEST_CASE("circle_loss reproduces pytorch-metric-learning 2.8.1 CircleLoss (value and its gradient)",
          "[circle][reference]") {
  Worst worst[2];
  compare_with_pml(worst);
}

// Prints the worst relative errors: build/tests/pair_loss_tests "[.pml_report]" -s
TEST_CASE("circle_loss: worst relative error against PML", "[.pml_report]") {
  Worst worst[2];
  compare_with_pml(worst);
  for (int mined = 0; mined < 2; ++mined)
    std::printf("CircleLoss          %-50s %-22s value %.2e grad %.2e terms %.2e\n", "CosineSimilarity()",
                mined ? "on the miner's pairs" : "all pairs", worst[mined].value, worst[mined].grad, worst[mined].terms);
}

TEMPLATE_TEST_CASE("circle_loss matches a brute-force loop", "[circle][brute]", float, double) {
  using S = TestType;
  const Index n = 20;
  const RowMatrix<S> X = random_embeddings<S>(n, 6, 201);
  const RowMatrix<double> Xd = X.template cast<double>();
  const Vector<double> weights = random_embeddings<double>(n, 1, 202).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  const std::vector<Eigen::VectorXi> layouts = {class_blocks(5, 4), random_labels(n, 4, 203), with_singletons(n),
                                                Eigen::VectorXi::Zero(n)};
  Pairs pairs = mine_multi_similarity(X, layouts[1], 0.3);
  pairs.add(pairs.first[0], pairs.second[0], pairs.similar[0] != 0);  // a duplicate counts once
  for (const double m : {0.4, 0.25, 0.0}) {
    const double gamma = m == 0.25 ? 256.0 : 80.0;
    for (std::size_t layout = 0; layout <= layouts.size(); ++layout) {
      const bool use_pairs = layout == layouts.size();
      Masks pos, neg;
      if (use_pairs) {
        pair_masks(pairs, n, pos, neg);
      } else {
        label_masks(layouts[layout], pos, neg);
      }
      for (const Reduction r : all_reductions) {
        for (const bool weighted : {false, true}) {
          CircleOptions o;
          o.m = m;
          o.gamma = gamma;
          o.reduction = reducer_of(r, weights, weighted);
          const Brute expected = brute_circle(Xd, Xd, pos, neg, m, gamma, r, weighted ? w : ones);
          const LossResult<S> got = use_pairs ? circle_loss(X, pairs, o) : circle_loss(X, layouts[layout], o);
          INFO("m " << m << ", layout " << layout << ", reduction " << int(r) << (weighted ? " weighted" : ""));
          const double tol = sizeof(S) == sizeof(double) ? 1e-11 : 1e-4;
          CHECK(double(got.value) == Approx(expected.value).epsilon(tol).margin(tol));
          REQUIRE(got.terms.size() == n);
          for (Index i = 0; i < n; ++i)
            CHECK(double(got.terms(i)) == Approx(expected.terms[std::size_t(i)]).epsilon(tol).margin(tol * gamma));
        }
      }
    }
  }
}

TEST_CASE("circle_loss gradient is the derivative with PML's weights frozen, not the value's", "[circle][gradient]") {
  const Index n = 12;
  const RowMatrix<double> X = random_embeddings<double>(n, 5, 211);
  const Eigen::VectorXi labels = with_singletons(n);
  const Pairs mined = mine_multi_similarity(X, labels, 0.3);
  const Vector<double> weights = random_embeddings<double>(n, 1, 212).cwiseAbs();
  std::vector<double> ones(std::size_t(n), 1.0), w(weights.data(), weights.data() + n);
  for (const bool use_pairs : {false, true}) {
    Masks pos, neg;
    if (use_pairs) {
      pair_masks(mined, n, pos, neg);
    } else {
      label_masks(labels, pos, neg);
    }
    for (const Reduction r : all_reductions) {
      for (const bool weighted : {false, true}) {
        CircleOptions o;
        o.gamma = 4;  // a small scale keeps the softmax (and the differences) well-conditioned
        o.reduction = reducer_of(r, weights, weighted);
        const LossResult<double> res = use_pairs ? circle_loss(X, mined, o) : circle_loss(X, labels, o);
        const std::vector<double>& sw = weighted ? w : ones;
        auto frozen = [&](const RowMatrix<double>& x) { return brute_circle(x, X, pos, neg, o.m, o.gamma, r, sw).value; };
        const auto report = testing::check_gradient(frozen, X, res.grad[0]);
        INFO((use_pairs ? "mined pairs" : "labels") << ", reduction " << int(r) << ": " << report.summary());
        CHECK(report.passed);
        CHECK_FALSE(res.grad[0].isZero(0));
        // The value's own derivative differs: PML's gradient is not it.
        auto value = [&](const RowMatrix<double>& x) {
          return use_pairs ? circle_loss(x, mined, o, value_only) : circle_loss(x, labels, o, value_only);
        };
        CHECK_FALSE(testing::check_gradient(value, X, res.grad[0]).passed);
      }
    }
  }
}

TEMPLATE_TEST_CASE("circle_loss value-only and buffer forms agree with the full call", "[circle]", float, double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(10, 4, 221);
  const Eigen::VectorXi labels = random_labels(10, 3, 222);
  const Pairs mined = mine_multi_similarity(X, labels, 0.3);
  const CircleOptions o;
  for (const bool use_pairs : {false, true}) {
    const LossResult<S> full = use_pairs ? circle_loss(X, mined, o) : circle_loss(X, labels, o);
    CHECK((use_pairs ? circle_loss(X, mined, o, value_only) : circle_loss(X, labels, o, value_only)) == full.value);
    std::vector<S> buffer(40, S(-7));
    Eigen::Map<RowMatrix<S>> grad(buffer.data(), 10, 4);
    CHECK((use_pairs ? circle_loss(X, mined, o, grad) : circle_loss(X, labels, o, grad)) == full.value);
    CHECK(grad == full.grad[0]);
    const AnyMetric cosine = AnyMetric::from_name("cosine");
    CHECK((use_pairs ? circle_loss(X, mined, cosine, o, value_only) : circle_loss(X, labels, cosine, o, value_only)) ==
          full.value);
  }
}

TEST_CASE("circle_loss: gamma = 256 in float is finite and matches double", "[circle][stability]") {
  const RowMatrix<double> X = random_embeddings<double>(16, 6, 231);
  const Eigen::VectorXi labels = random_labels(16, 4, 232);
  CircleOptions o;
  o.m = 0.25;
  o.gamma = 256;
  const LossResult<double> d = circle_loss(X, labels, o);
  const LossResult<float> f = circle_loss(RowMatrix<float>(X.cast<float>()), labels, o);
  REQUIRE(std::isfinite(f.value));
  REQUIRE(f.grad[0].allFinite());
  CHECK(double(f.value) == Approx(d.value).epsilon(1e-4));
  CHECK(relative_max(f.grad[0].cast<double>(), d.grad[0]) <= 1e-3);
}

TEST_CASE("circle_loss edge cases and bad arguments", "[circle][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 241);
  const Eigen::VectorXi labels = random_labels(6, 2, 242);
  CHECK(circle_loss(X, Eigen::VectorXi::Zero(6), value_only) == 0);  // no negatives: every row dropped
  Eigen::VectorXi distinct(6);
  distinct << 0, 1, 2, 3, 4, 5;
  const LossResult<double> none = circle_loss(X, distinct);
  CHECK(none.value == 0);
  CHECK(none.grad[0].isZero(0));
  const LossResult<double> empty = circle_loss(RowMatrix<double>(0, 3), Eigen::VectorXi(0));
  CHECK(empty.value == 0);
  CHECK(empty.grad[0].rows() == 0);
  CircleOptions o;
  o.m = -0.1;
  REQUIRE_INVALID_ARGUMENT(circle_loss(X, labels, o), "circle_loss", "options.m");
  for (const double bad : {0.0, -1.0, std::numeric_limits<double>::infinity()}) {
    o = CircleOptions{};
    o.gamma = bad;
    REQUIRE_INVALID_ARGUMENT(circle_loss(X, labels, o), "circle_loss", "options.gamma");
    REQUIRE_INVALID_ARGUMENT(circle_loss(X, Pairs{}, o), "circle_loss", "options.gamma");
  }
  REQUIRE_INVALID_ARGUMENT(circle_loss(X, labels, Euclidean{}), "circle_loss", "metric", "Cosine");
  REQUIRE_INVALID_ARGUMENT(circle_loss(X, labels, DotProduct{}, CircleOptions{}, value_only), "circle_loss", "metric");
  REQUIRE_INVALID_ARGUMENT(circle_loss(X, Pairs{}, AnyMetric::from_name("euclidean")), "circle_loss", "metric");
}

}  // namespace test_circle_loss
