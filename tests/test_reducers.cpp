// Reducer objects and per-sample weights (core/reducer.hpp), for every loss:
// - weights of 1 give the unweighted value, gradient and terms bit for bit;
// - a weighted value is the reduction of the unweighted terms times the
//   weight of the sample each term belongs to (the mapping each loss
//   documents), reduced by Sum, Mean or MeanNonZero; the weighted terms are
//   those products; batch-all against a brute-force triplet loop;
// - weighted gradients against central finite differences in double,
//   margin_loss's class-beta gradient included;
// - the tiled / panel engine under a tiny workspace agrees with the whole
//   matrix when weighted;
// - bad weights are std::invalid_argument naming options.reduction.
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <cmath>
#include <cstddef>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_reducers {

namespace {

constexpr Index kRows = 13;
constexpr Index kDim = 4;

// Labels of kRows rows: four classes and one singleton (an anchor without a positive).
Eigen::VectorXi batch_labels() {
  Eigen::VectorXi labels = random_labels(kRows, 4, 41);
  labels(kRows - 1) = 9;
  return labels;
}

Eigen::VectorXd random_weights(Index n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(0.0, 2.0);
  Eigen::VectorXd w(n);
  for (Index i = 0; i < n; ++i) w(i) = u(gen);
  w(1) = 0;  // a weight of 0 takes its terms out of MeanNonZero's count
  return w;
}

// One loss call under test. `run` evaluates on X (its first embedding argument;
// the others are fixed) with a reducer and a workspace; `term_weights` gives the
// weight of each of the loss's terms from the sample weights; `counted` says
// which terms Mean divides by (all when empty).
template <class S>
struct Case {
  std::string name;
  RowMatrix<S> X;
  Index samples = 0;
  Index engine_rows = 0;  // rows of the pairwise engine (0: a row-wise loss)
  std::function<LossResult<S>(const RowMatrix<S>&, const Reducer&, std::size_t)> run;
  std::function<S(const RowMatrix<S>&, const Reducer&)> value_only_run;
  std::function<Eigen::VectorXd(const Eigen::VectorXd&)> term_weights;
  std::vector<bool> counted;
  bool generic_reduction = true;  // false: the terms do not map one to one onto counted terms
};

template <class S>
Case<S> make_case(std::string name, const RowMatrix<S>& X, Index samples, Index engine_rows = 0) {
  Case<S> c;
  c.name = std::move(name);
  c.X = X;
  c.samples = samples;
  c.engine_rows = engine_rows;
  return c;
}

template <class Options>
Options with(const Reducer& r, std::size_t budget) {
  Options o;
  o.reduction = r;
  o.workspace_bytes = budget;
  return o;
}

template <class S>
std::vector<Case<S>> all_cases() {
  const Eigen::VectorXi labels = batch_labels();
  const Index n = kRows;
  const RowMatrix<S> X = random_embeddings<S>(n, kDim, 7);
  const RowMatrix<S> X2 = random_embeddings<S>(n, kDim, 8);
  const RowMatrix<S> X3 = random_embeddings<S>(n, kDim, 9);
  const auto same = [](const Eigen::VectorXd& w) { return w; };
  std::vector<Index> class_size(n, 0);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < n; ++j) class_size[static_cast<std::size_t>(i)] += labels(i) == labels(j) ? 1 : 0;
  const auto repeat_per_positive = [=](const Eigen::VectorXd& w) {
    std::vector<double> out;
    for (Index a = 0; a < n; ++a)
      for (Index k = 1; k < class_size[static_cast<std::size_t>(a)]; ++k) out.push_back(w(a));
    return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(out.data(), static_cast<Index>(out.size())));
  };
  std::vector<bool> has_positive(static_cast<std::size_t>(n));
  for (Index a = 0; a < n; ++a) has_positive[static_cast<std::size_t>(a)] = class_size[static_cast<std::size_t>(a)] > 1;

  std::vector<Case<S>> cases;
  {
    Case<S> c = make_case<S>("triplet_margin_loss (explicit)", X, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t) {
      TripletOptions o = with<TripletOptions>(r, default_workspace_bytes);
      o.margin = 2;
      o.swap = true;
      return triplet_margin_loss(A, X2, X3, o);
    };
    c.term_weights = same;
    cases.push_back(c);
  }
  {
    Triplets t;
    for (Index k = 0; k < 20; ++k) {
      t.anchor.push_back(k % n);
      t.positive.push_back((3 * k + 1) % n);
      t.negative.push_back((5 * k + 2) % n);
    }
    Case<S> c = make_case<S>("triplet_margin_loss (index triplets)", X, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t) {
      TripletOptions o = with<TripletOptions>(r, default_workspace_bytes);
      o.margin = 2;
      return triplet_margin_loss(A, t, o);
    };
    c.term_weights = [=](const Eigen::VectorXd& w) {
      Eigen::VectorXd out(t.size());
      for (Index k = 0; k < t.size(); ++k) out(k) = w(t.anchor[static_cast<std::size_t>(k)]);
      return out;
    };
    cases.push_back(c);
  }
  {
    Eigen::VectorXi similar(n);
    for (Index i = 0; i < n; ++i) similar(i) = i % 3 == 0 ? 1 : 0;
    Case<S> c = make_case<S>("contrastive_loss (explicit pairs)", X, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t) {
      ContrastiveOptions o = with<ContrastiveOptions>(r, default_workspace_bytes);
      o.neg_margin = 3;
      return contrastive_loss(A, X2, similar, o);
    };
    c.term_weights = same;
    cases.push_back(c);
  }
  {
    Pairs p;
    for (Index k = 0; k < 25; ++k) {
      p.first.push_back((7 * k + 3) % n);
      p.second.push_back((2 * k + 5) % n);
      p.similar.push_back(static_cast<std::uint8_t>(k % 2));
    }
    Case<S> c = make_case<S>("contrastive_loss (mined pairs)", X, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t) {
      ContrastiveOptions o = with<ContrastiveOptions>(r, default_workspace_bytes);
      o.neg_margin = 3;
      o.squared = true;
      return contrastive_loss(A, p, o);
    };
    c.term_weights = [=](const Eigen::VectorXd& w) {
      Eigen::VectorXd out(p.size());
      for (Index k = 0; k < p.size(); ++k) out(k) = w(p.first[static_cast<std::size_t>(k)]);
      return out;
    };
    cases.push_back(c);
  }
  for (const bool separately : {false, true}) {
    Case<S> c = make_case<S>(separately ? "batch_contrastive_loss (average separately)" : "batch_contrastive_loss", X, n, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      ContrastiveOptions o = with<ContrastiveOptions>(r, budget);
      o.pos_margin = 0.5;
      o.neg_margin = 2.5;
      o.average_separately = separately;
      return batch_contrastive_loss(A, labels, o);
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      ContrastiveOptions o = with<ContrastiveOptions>(r, default_workspace_bytes);
      o.pos_margin = 0.5;
      o.neg_margin = 2.5;
      o.average_separately = separately;
      return batch_contrastive_loss(A, labels, o, value_only);
    };
    // Pair (i, j), i < j, row-major: the mean of the two rows' weights.
    c.term_weights = [=](const Eigen::VectorXd& w) {
      std::vector<double> out;
      for (Index i = 0; i < n; ++i)
        for (Index j = i + 1; j < n; ++j) out.push_back((w(i) + w(j)) / 2);
      return Eigen::VectorXd(Eigen::Map<const Eigen::VectorXd>(out.data(), static_cast<Index>(out.size())));
    };
    c.generic_reduction = !separately;
    cases.push_back(c);
  }
  {
    Case<S> c = make_case<S>("batch_hard_triplet_loss", X, n, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      TripletOptions o = with<TripletOptions>(r, budget);
      o.margin = 1.5;
      return batch_hard_triplet_loss(A, labels, o);
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      TripletOptions o = with<TripletOptions>(r, default_workspace_bytes);
      o.margin = 1.5;
      return batch_hard_triplet_loss(A, labels, o, value_only);
    };
    c.term_weights = same;
    c.counted = has_positive;  // every anchor here has a negative
    cases.push_back(c);
  }
  {
    Case<S> c = make_case<S>("batch_semihard_triplet_loss", X, n, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      TripletOptions o = with<TripletOptions>(r, budget);
      o.margin = 1.5;
      return batch_semihard_triplet_loss(A, labels, o);
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      TripletOptions o = with<TripletOptions>(r, default_workspace_bytes);
      o.margin = 1.5;
      return batch_semihard_triplet_loss(A, labels, o, value_only);
    };
    c.term_weights = repeat_per_positive;
    cases.push_back(c);
  }
  {
    // Terms are per-anchor sums while the reduction counts triplets: checked by brute force below.
    Case<S> c = make_case<S>("batch_all_triplet_loss", X, n, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      TripletOptions o = with<TripletOptions>(r, budget);
      o.margin = 1.0;
      return batch_all_triplet_loss(A, labels, o);
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      TripletOptions o = with<TripletOptions>(r, default_workspace_bytes);
      o.margin = 1.0;
      return batch_all_triplet_loss(A, labels, o, value_only);
    };
    c.term_weights = same;
    c.generic_reduction = false;
    cases.push_back(c);
  }
  for (const bool triplets : {false, true}) {
    Case<S> c = make_case<S>(triplets ? "margin_loss (triplet weights, class betas, nu)" : "margin_loss", X, n, n);
    const auto options = [=](const Reducer& r, std::size_t budget) {
      MarginOptions o = with<MarginOptions>(r, budget);
      o.alpha = 0.5;
      o.beta = 2.0;
      if (triplets) {
        o.triplet_weights = true;
        o.class_beta = Eigen::VectorXd::LinSpaced(10, 1.5, 2.5);
        o.nu = 0.1;
      }
      return o;
    };
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      MarginLossResult<S> m = margin_loss(A, labels, options(r, budget));
      return static_cast<LossResult<S>>(m);
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      return margin_loss(A, labels, options(r, default_workspace_bytes), value_only);
    };
    // Ordered pairs (a, b != a), row-major: the anchor's weight.
    c.term_weights = [=](const Eigen::VectorXd& w) {
      Eigen::VectorXd out(n * (n - 1));
      for (Index a = 0; a < n; ++a) out.segment(a * (n - 1), n - 1).setConstant(w(a));
      return out;
    };
    c.generic_reduction = !triplets;
    cases.push_back(c);
  }
  {
    Case<S> c = make_case<S>("supcon_loss", X, n, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      return supcon_loss(A, labels, 0.5, with<SupConOptions>(r, budget));
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      return supcon_loss(A, labels, 0.5, with<SupConOptions>(r, default_workspace_bytes), value_only);
    };
    c.term_weights = same;
    c.counted = has_positive;
    cases.push_back(c);
  }
  {
    Case<S> c = make_case<S>("ntxent_loss (labels)", X, n, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      return ntxent_loss(A, labels, 0.5, with<NTXentOptions>(r, budget));
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      return ntxent_loss(A, labels, 0.5, with<NTXentOptions>(r, default_workspace_bytes), value_only);
    };
    c.term_weights = repeat_per_positive;
    cases.push_back(c);
  }
  {
    Case<S> c = make_case<S>("ntxent_loss (two views)", X, n, 2 * n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t budget) {
      return ntxent_loss(A, X2, 0.5, with<NTXentOptions>(r, budget));
    };
    c.value_only_run = [=](const RowMatrix<S>& A, const Reducer& r) {
      return ntxent_loss(A, X2, 0.5, with<NTXentOptions>(r, default_workspace_bytes), value_only);
    };
    // Rows of [view1; view2]: sample i's weight for both of its views.
    c.term_weights = [=](const Eigen::VectorXd& w) {
      Eigen::VectorXd out(2 * n);
      out << w, w;
      return out;
    };
    cases.push_back(c);
  }
  {
    Eigen::VectorXi target(n);
    for (Index i = 0; i < n; ++i) target(i) = i % 2 == 0 ? 1 : -1;
    Case<S> c = make_case<S>("cosine_embedding_loss", X, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t) {
      return cosine_embedding_loss(A, X2, target, -0.3, r);
    };
    c.term_weights = same;
    cases.push_back(c);
  }
  {
    Eigen::VectorXd score = Eigen::VectorXd::LinSpaced(n, -0.9, 0.9);
    Case<S> c = make_case<S>("similarity_regression_loss", X, n);
    c.run = [=](const RowMatrix<S>& A, const Reducer& r, std::size_t) {
      return similarity_regression_loss<Cosine>(A, X2, score, r);
    };
    c.term_weights = same;
    cases.push_back(c);
  }
  return cases;
}

const Reduction kinds[] = {Reduction::Sum, Reduction::Mean, Reduction::MeanNonZero};

const char* kind_name(Reduction r) {
  return r == Reduction::Sum ? "Sum" : r == Reduction::Mean ? "Mean" : "MeanNonZero";
}

template <class S>
void require_identical(const LossResult<S>& a, const LossResult<S>& b) {
  REQUIRE(a.value == b.value);
  REQUIRE(a.grad.size() == b.grad.size());
  for (std::size_t k = 0; k < a.grad.size(); ++k) REQUIRE(a.grad[k] == b.grad[k]);
  REQUIRE(a.terms == b.terms);
}

double relative_error(double a, double b) { return std::abs(a - b) / std::max(1.0, std::abs(b)); }

}  // namespace

TEMPLATE_TEST_CASE("sample weights of 1 give the unweighted result bit for bit", "[reducers]", float, double) {
  using S = TestType;
  for (const Case<S>& c : all_cases<S>()) {
    for (const Reduction kind : kinds) {
      INFO(c.name << ", " << kind_name(kind));
      const LossResult<S> plain = c.run(c.X, kind, default_workspace_bytes);
      const LossResult<S> ones = c.run(c.X, Reducer(kind, Eigen::VectorXd::Ones(c.samples)), default_workspace_bytes);
      require_identical(plain, ones);
    }
  }
}

TEST_CASE("a weighted loss reduces the unweighted terms times their samples' weights", "[reducers]") {
  using S = double;
  const Eigen::VectorXd w = random_weights(kRows, 3);
  for (const Case<S>& c : all_cases<S>()) {
    // Sum's terms are the raw terms whatever the kind.
    const LossResult<S> raw = c.run(c.X, Reduction::Sum, default_workspace_bytes);
    const Eigen::VectorXd omega = c.term_weights(w);
    REQUIRE(omega.size() == raw.terms.size());
    for (const Reduction kind : kinds) {
      INFO(c.name << ", " << kind_name(kind));
      const LossResult<S> weighted = c.run(c.X, Reducer(kind, w), default_workspace_bytes);
      // The weighted terms, for every loss.
      REQUIRE(weighted.terms.size() == raw.terms.size());
      for (Index k = 0; k < raw.terms.size(); ++k) REQUIRE(relative_error(weighted.terms(k), omega(k) * raw.terms(k)) < 1e-14);
      if (!c.generic_reduction) continue;
      double sum = 0;
      Index count = 0, positive = 0;
      for (Index k = 0; k < raw.terms.size(); ++k) {
        if (!c.counted.empty() && !c.counted[static_cast<std::size_t>(k)]) continue;
        const double t = omega(k) * raw.terms(k);
        sum += t;
        ++count;
        positive += t > 0 ? 1 : 0;
      }
      REQUIRE(count > 0);
      REQUIRE(positive < count);  // the zero weight (or an inactive term) shows in MeanNonZero
      const double expected = kind == Reduction::Sum ? sum : kind == Reduction::Mean ? sum / double(count) : sum / double(positive);
      INFO("value " << weighted.value << ", expected " << expected);
      REQUIRE(relative_error(weighted.value, expected) < 1e-12);
    }
  }
}

TEST_CASE("weighted batch-all and margin (triplet weights) against brute-force loops", "[reducers]") {
  using S = double;
  const Eigen::VectorXd w = random_weights(kRows, 5);
  const Eigen::VectorXi labels = batch_labels();
  const RowMatrix<S> X = random_embeddings<S>(kRows, kDim, 7);
  const auto d = [&](Index i, Index j) { return reference_distance(Ref::Euclidean, X.row(i), X.row(j)); };
  for (const Reduction kind : kinds) {
    INFO(kind_name(kind));
    {
      double sum = 0;
      Index valid = 0, active = 0;
      for (Index a = 0; a < kRows; ++a)
        for (Index p = 0; p < kRows; ++p)
          for (Index q = 0; q < kRows; ++q) {
            if (p == a || labels(p) != labels(a) || labels(q) == labels(a)) continue;
            const double t = w(a) * std::max(0.0, d(a, p) - d(a, q) + 1.0);
            sum += t;
            ++valid;
            active += t > 0 ? 1 : 0;
          }
      const double expected = kind == Reduction::Sum ? sum : kind == Reduction::Mean ? sum / double(valid) : sum / double(active);
      TripletOptions o;
      o.margin = 1.0;
      o.reduction = Reducer(kind, w);
      REQUIRE(relative_error(batch_all_triplet_loss(X, labels, o, value_only), expected) < 1e-12);
    }
    {
      // PML's triplet weighting: (a, p) once per negative of a, (a, n) once per positive; the
      // per-class regulariser nu * beta_a once per use (triplet), all times w_a.
      const Eigen::VectorXd class_beta = Eigen::VectorXd::LinSpaced(10, 1.5, 2.5);
      const double alpha = 0.5, nu = 0.1;
      double sum = 0, uses = 0;
      Index count = 0, positive = 0;
      for (Index a = 0; a < kRows; ++a)
        for (Index p = 0; p < kRows; ++p)
          for (Index q = 0; q < kRows; ++q) {
            if (p == a || labels(p) != labels(a) || labels(q) == labels(a)) continue;
            const double beta = class_beta(labels(a));
            const double tp = w(a) * std::max(0.0, d(a, p) - beta + alpha);
            const double tn = w(a) * std::max(0.0, beta - d(a, q) + alpha);
            sum += tp + tn;
            count += 2;
            positive += (tp > 0 ? 1 : 0) + (tn > 0 ? 1 : 0);
            uses += w(a) * beta;
          }
      const double divisor = kind == Reduction::Sum ? 1.0 : kind == Reduction::Mean ? double(count) : double(positive);
      const double expected = (sum + nu * uses) / divisor;
      MarginOptions o;
      o.alpha = alpha;
      o.class_beta = class_beta;
      o.nu = nu;
      o.triplet_weights = true;
      o.reduction = Reducer(kind, w);
      REQUIRE(relative_error(margin_loss(X, labels, o, value_only), expected) < 1e-12);
    }
  }
}

TEST_CASE("weighted gradients match central finite differences", "[reducers]") {
  using S = double;
  const Eigen::VectorXd w = random_weights(kRows, 11);
  for (const Case<S>& c : all_cases<S>()) {
    for (const Reduction kind : kinds) {
      INFO(c.name << ", " << kind_name(kind));
      const Reducer r(kind, w);
      const LossResult<S> res = c.run(c.X, r, default_workspace_bytes);
      const auto f = [&](const RowMatrix<S>& x) { return c.run(x, r, default_workspace_bytes).value; };
      const testing::GradientCheckReport report = testing::check_gradient(f, c.X, res.grad[0]);
      INFO(report.summary());
      REQUIRE(report.passed);
    }
  }
}

TEST_CASE("weighted margin_loss: the class-beta gradient matches finite differences", "[reducers]") {
  const Eigen::VectorXi labels = batch_labels();
  const RowMatrix<double> X = random_embeddings<double>(kRows, kDim, 7);
  for (const bool triplets : {false, true}) {
    for (const Reduction kind : kinds) {
      INFO("triplet weights " << triplets << ", " << kind_name(kind));
      MarginOptions o;
      o.alpha = 0.5;
      o.class_beta = Eigen::VectorXd::LinSpaced(10, 1.5, 2.5);
      o.nu = 0.1;
      o.triplet_weights = triplets;
      o.reduction = Reducer(kind, random_weights(kRows, 13));
      const MarginLossResult<double> res = margin_loss(X, labels, o);
      for (Index c = 0; c < o.class_beta.size(); ++c) {
        const double h = 1e-6;
        MarginOptions up = o, down = o;
        up.class_beta(c) += h;
        down.class_beta(c) -= h;
        const double numeric = (margin_loss(X, labels, up, value_only) - margin_loss(X, labels, down, value_only)) / (2 * h);
        INFO("class " << c << ": analytic " << res.beta_grad(c) << ", numeric " << numeric);
        REQUIRE(relative_error(res.beta_grad(c), numeric) < 1e-6);
      }
    }
  }
}

TEMPLATE_TEST_CASE("weighted batch losses: a tiny workspace agrees with the whole matrix", "[reducers][engine]", float,
                   double) {
  using S = TestType;
  const double tol = sizeof(S) == sizeof(double) ? 1e-12 : 1e-5;
  const Eigen::VectorXd w = random_weights(kRows, 17);
  for (const Case<S>& c : all_cases<S>()) {
    if (c.engine_rows == 0) continue;
    // Panels of 3 rows (and the tiles that fit them), two buffers of distances and gradients.
    const std::size_t tiny = static_cast<std::size_t>(3 * c.engine_rows) * sizeof(S) * 2;
    for (const Reduction kind : kinds) {
      INFO(c.name << ", " << kind_name(kind));
      const Reducer r(kind, w);
      const LossResult<S> whole = c.run(c.X, r, default_workspace_bytes);
      const LossResult<S> tiled = c.run(c.X, r, tiny);
      REQUIRE(relative_error(double(tiled.value), double(whole.value)) < tol);
      const double scale = std::max(1.0, double(whole.grad[0].norm()));
      REQUIRE(double((tiled.grad[0] - whole.grad[0]).norm()) / scale < tol);
      REQUIRE(relative_error(double(c.value_only_run(c.X, r)), double(whole.value)) < tol);
    }
  }
}

TEST_CASE("Reducer objects: Mean(), Sum(), MeanNonZero() and their weighted forms", "[reducers]") {
  const Eigen::VectorXi labels = batch_labels();
  const RowMatrix<double> X = random_embeddings<double>(kRows, kDim, 7);
  const std::vector<double> w(static_cast<std::size_t>(kRows), 0.5);
  const Eigen::Map<const Eigen::VectorXd> wm(w.data(), kRows);
  TripletOptions o;
  o.margin = 1.5;
  o.reduction = Sum();
  const double sum = batch_hard_triplet_loss(X, labels, o, value_only);
  o.reduction = Sum(wm);
  REQUIRE(batch_hard_triplet_loss(X, labels, o, value_only) == 0.5 * sum);
  o.reduction = Mean(wm);
  CHECK(o.reduction.kind() == Reduction::Mean);
  CHECK(o.reduction.weighted());
  CHECK(o.reduction.sample_weights().size() == kRows);
  o.reduction = MeanNonZero();
  CHECK(o.reduction.kind() == Reduction::MeanNonZero);
  CHECK(!o.reduction.weighted());
  // Integer weights convert.
  o.reduction = Sum(Eigen::VectorXi::Constant(kRows, 2));
  REQUIRE(batch_hard_triplet_loss(X, labels, o, value_only) == 2 * sum);
}

TEST_CASE("bad sample weights are rejected naming options.reduction", "[reducers][validation]") {
  const Eigen::VectorXi labels = batch_labels();
  const RowMatrix<double> X = random_embeddings<double>(kRows, kDim, 7);
  TripletOptions o;
  o.reduction = Mean(Eigen::VectorXd::Ones(kRows - 1));
  REQUIRE_INVALID_ARGUMENT(batch_hard_triplet_loss(X, labels, o), "options.reduction", "12 sample weights",
                           "rows of X", "13");
  SupConOptions so;
  so.reduction = MeanNonZero(Eigen::VectorXd::Ones(kRows + 1));
  REQUIRE_INVALID_ARGUMENT(supcon_loss(X, labels, 0.1, so, value_only), "options.reduction", "14 sample weights");
  Eigen::VectorXd bad = Eigen::VectorXd::Ones(kRows);
  for (const double v : {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    bad(4) = v;
    o.reduction = Sum(bad);
    REQUIRE_INVALID_ARGUMENT(batch_all_triplet_loss(X, labels, o), "options.reduction", "sample weight 4",
                             "finite and >= 0");
  }
  NTXentOptions no;
  no.reduction = Mean(Eigen::VectorXd::Ones(2 * kRows));
  REQUIRE_INVALID_ARGUMENT(ntxent_loss(X, X, 0.5, no), "options.reduction", "26 sample weights", "rows of view1");
  REQUIRE_INVALID_ARGUMENT(cosine_embedding_loss(X, X, Eigen::VectorXi::Ones(kRows), 0.0, Mean(bad)), "reduction",
                           "sample weight 4");
  REQUIRE_INVALID_ARGUMENT(Reducer(Reduction::Mean, Eigen::MatrixXd::Ones(3, 2)), "must be a vector", "3 x 2");
}

}  // namespace test_reducers
