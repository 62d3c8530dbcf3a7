// Losses against a reference set (anchors from X, positives and negatives from
// R): brute-force loops, finite differences of dL/dX and dL/dR, R = X equal to
// the batch loss, tiled against whole under small workspaces, bad input.
#include "support/cases.hpp"
#include "support/catch.hpp"
#include "support/fixtures.hpp"

#include <contrastive/contrastive.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_reference_losses {

namespace {

struct BruteHard {
  double value = 0;
  double closest_kink = 1e300;
};

// Batch-hard from the definition: anchors X, candidates R, the pair (i, i + offset) skipped.
template <class S>
BruteHard brute_hard(Ref metric, const RowMatrix<S>& X, const Eigen::VectorXi& y, const RowMatrix<S>& R,
                     const Eigen::VectorXi& ry, Index offset, const TripletOptions& o) {
  BruteHard b;
  double sum = 0;
  Index count = 0, positive = 0;
  for (Index a = 0; a < X.rows(); ++a) {
    std::vector<double> pos, neg;
    for (Index j = 0; j < R.rows(); ++j) {
      if (offset >= 0 && j == (a + offset) % R.rows()) continue;
      const double d = reference_distance(metric, X.row(a), R.row(j));
      (ry(j) == y(a) ? pos : neg).push_back(d);
    }
    if (pos.empty() || neg.empty()) continue;
    std::sort(pos.begin(), pos.end());
    std::sort(neg.begin(), neg.end());
    if (pos.size() > 1) b.closest_kink = std::min(b.closest_kink, pos[pos.size() - 1] - pos[pos.size() - 2]);
    if (neg.size() > 1) b.closest_kink = std::min(b.closest_kink, neg[1] - neg[0]);
    const double x = pos.back() - neg.front() + o.margin;
    if (!o.soft) b.closest_kink = std::min(b.closest_kink, std::abs(x));
    const double term = o.soft ? std::log1p(std::exp(x)) : std::max(0.0, x);
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

template <class S>
double max_abs_diff(const RowMatrix<S>& a, const RowMatrix<S>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return a.size() == 0 ? 0.0 : double((a - b).cwiseAbs().maxCoeff());
}

// Each query's candidates in R (the self pair skipped): distance and same-label flag.
struct Candidate {
  double d;
  bool same;
};
template <class S>
std::vector<std::vector<Candidate>> candidates(Ref metric, const RowMatrix<S>& X, const Eigen::VectorXi& y,
                                               const RowMatrix<S>& R, const Eigen::VectorXi& ry, Index offset) {
  std::vector<std::vector<Candidate>> out(static_cast<std::size_t>(X.rows()));
  for (Index a = 0; a < X.rows(); ++a)
    for (Index j = 0; j < R.rows(); ++j)
      if (!(offset >= 0 && j == (a + offset) % R.rows()))
        out[std::size_t(a)].push_back({reference_distance(metric, X.row(a), R.row(j)), ry(j) == y(a)});
  return out;
}

double log_sum_exp(const std::vector<double>& v) {
  if (v.empty()) return 0;
  const double m = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

// Sum over the queries of each loss's anchor term, straight from its formula on distances.
double brute_multi_similarity(const std::vector<std::vector<Candidate>>& c, const MultiSimilarityOptions& o,
                              double lambda) {
  double sum = 0;
  for (const auto& row : c) {
    double p = 0, n = 0;
    for (const Candidate& k : row) {
      if (k.same) p += std::exp(o.alpha * (k.d - lambda));
      else n += std::exp(o.beta * (lambda - k.d));
    }
    sum += std::log1p(p) / o.alpha + std::log1p(n) / o.beta;
  }
  return sum;
}

double brute_supcon(const std::vector<std::vector<Candidate>>& c, double t) {
  double sum = 0;
  bool any_neg = false;
  for (const auto& row : c)
    for (const Candidate& k : row) any_neg |= !k.same;
  if (!any_neg) return 0;
  for (const auto& row : c) {
    std::vector<double> all;
    double pd = 0;
    int p = 0;
    for (const Candidate& k : row) {
      all.push_back(-k.d / t);
      if (k.same) pd += k.d, ++p;
    }
    if (p == 0) continue;
    sum += log_sum_exp(all) + pd / p / t;
  }
  return sum;
}

double brute_generalized_lifted(const std::vector<std::vector<Candidate>>& c, double lp, double ln) {
  double sum = 0;
  for (const auto& row : c) {
    std::vector<double> p, n;
    for (const Candidate& k : row) (k.same ? p : n).push_back(k.same ? k.d - lp : ln - k.d);
    sum += std::max(0.0, log_sum_exp(p) + log_sum_exp(n));
  }
  return sum;
}

double softplus_torch(double z) { return z > 20 ? z : std::log1p(std::exp(z)); }

double brute_circle(const std::vector<std::vector<Candidate>>& c, double m, double gamma) {
  double sum = 0;
  for (const auto& row : c) {
    std::vector<double> p, n;
    for (const Candidate& k : row) {
      const double s = 1 - k.d;
      if (k.same) p.push_back(-gamma * std::max(0.0, 1 + m - s) * (s - 1 + m));
      else n.push_back(gamma * std::max(0.0, s + m) * (s - m));
    }
    if (p.empty() || n.empty()) continue;
    sum += softplus_torch(log_sum_exp(p) + log_sum_exp(n));
  }
  return sum;
}

double brute_nca(const std::vector<std::vector<Candidate>>& c, double scale) {
  double sum = 0;
  for (const auto& row : c) {
    std::vector<double> all, same;
    for (const Candidate& k : row) {
      all.push_back(-scale * k.d);
      if (k.same) same.push_back(-scale * k.d);
    }
    if (same.empty()) continue;
    sum += log_sum_exp(all) - log_sum_exp(same);
  }
  return sum;
}

double brute_contrastive(const std::vector<std::vector<Candidate>>& c, const ContrastiveOptions& o) {
  double sum = 0;
  for (const auto& row : c)
    for (const Candidate& k : row) {
      const double h = std::max(0.0, k.same ? k.d - o.pos_margin : o.neg_margin - k.d);
      sum += o.scale * (o.squared ? h * h : h);
    }
  return sum;
}

// The checks every dense reference-set loss passes: `ref(X, y, reference, workspace)` and
// `batch(X, y)` are the loss's two forms (default options otherwise), `brute` its Sum
// over the queries from the candidates, `sum_ref` the same loss with Reduction::Sum.
template <class S, class RefCall, class BatchCall, class SumCall, class Brute>
void check_dense_reference_loss(Ref metric, const RefCall& ref, const BatchCall& batch, const SumCall& sum_ref,
                                const Brute& brute) {
  // Brute force, with and without self pairs.
  {
    const RowMatrix<S> X = random_embeddings<S>(9, 5, 701), R = random_embeddings<S>(23, 5, 702);
    const Eigen::VectorXi y = random_labels(9, 3, 703), ry = random_labels(23, 3, 704);
    for (Index offset : {Index(-1), Index(6), Index(20)}) {  // 20: the queries wrap past R's end
      INFO("brute force, offset " << offset);
      const double expected = brute(candidates(metric, X, y, R, ry, offset));
      const auto r = offset < 0 ? sum_ref(X, y, reference_set(R, ry)) : sum_ref(X, y, reference_set(R, ry, offset));
      const double tol = 20 * value_tolerance<S>();
      CHECK(double(r.value) == Approx(expected).epsilon(tol).margin(tol));
    }
  }
  // R = X with self_offset 0 is the batch loss; dL/dX of the batch is dL/dX + dL/dR.
  {
    const RowMatrix<S> X = random_embeddings<S>(37, 6, 711);
    const Eigen::VectorXi y = random_labels(37, 4, 712);
    const auto b = batch(X, y);
    const auto r = ref(X, y, reference_set(X, y, 0), default_workspace_bytes);
    const double tol = 20 * value_tolerance<S>();
    CHECK(double(r.value) == Approx(double(b.value)).epsilon(tol).margin(tol));
    const RowMatrix<S> both = r.grad[0] + r.grad[1];
    CHECK(max_abs_diff<S>(both, b.grad[0]) <= tol);
  }
  // Tiles of 16 (40 queries, 150 references, self pairs at offset 7) against one tile.
  {
    const RowMatrix<S> X = random_embeddings<S>(40, 5, 721);
    RowMatrix<S> R = random_embeddings<S>(150, 5, 722);
    R.middleRows(7, 40) = X;
    const Eigen::VectorXi y = random_labels(40, 5, 723);
    Eigen::VectorXi ry = random_labels(150, 5, 724);
    ry.segment(7, 40) = y;
    for (Index offset : {Index(-1), Index(7), Index(135)}) {  // 135: wraps
      INFO("tiles, offset " << offset);
      const auto set = offset < 0 ? reference_set(R, ry) : reference_set(R, ry, offset);
      const auto whole = ref(X, y, set, default_workspace_bytes);
      const auto tiny = ref(X, y, set, std::size_t(8192));
      const double tol = 20 * value_tolerance<S>();
      CHECK(double(tiny.value) == Approx(double(whole.value)).epsilon(tol).margin(tol));
      CHECK(max_abs_diff<S>(whole.grad[0], tiny.grad[0]) <= tol);
      CHECK(max_abs_diff<S>(whole.grad[1], tiny.grad[1]) <= tol);
    }
  }
}

// dL/dX and dL/dR against finite differences, in double, small.
template <class RefCall>
void check_reference_gradients(const RefCall& ref, int classes = 2) {
  const Eigen::VectorXi y = random_labels(6, classes, 801), ry = random_labels(10, classes, 802);
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 803), R = random_embeddings<double>(10, 3, 804);
  for (Index offset : {Index(-1), Index(2)}) {
    auto set = [&](const RowMatrix<double>& r) { return offset < 0 ? reference_set(r, ry) : reference_set(r, ry, offset); };
    const auto res = ref(X, y, set(R));
    auto fx = [&](const RowMatrix<double>& x) { return double(ref(x, y, set(R)).value); };
    auto fr = [&](const RowMatrix<double>& r) { return double(ref(X, y, set(r)).value); };
    const auto rx = testing::check_gradient(fx, X, res.grad[0]);
    const auto rr = testing::check_gradient(fr, R, res.grad[1]);
    INFO("offset " << offset << ": dX " << rx.summary() << "; dR " << rr.summary());
    CHECK(rx.passed);
    CHECK(rr.passed);
    CHECK(res.grad[1].cwiseAbs().maxCoeff() > 0);
  }
}

}  // namespace

TEMPLATE_TEST_CASE("batch_hard_triplet_loss against a reference set matches a brute-force loop",
                   "[reference][batch_hard]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(9, 5, 101);
  const RowMatrix<S> R = random_embeddings<S>(23, 5, 102);
  const Eigen::VectorXi y = random_labels(9, 3, 103), ry = random_labels(23, 3, 104);
  for (double margin : {0.0, 0.5}) {
    for (Reduction red : {Reduction::Mean, Reduction::Sum, Reduction::MeanNonZero}) {
      TripletOptions o;
      o.margin = margin;
      o.reduction = red;
      for (Index offset : {Index(-1), Index(0), Index(5), Index(14), Index(19)}) {  // 19: wraps
        INFO("margin " << margin << " reduction " << int(red) << " offset " << offset);
        const BruteHard b = brute_hard(ref_of<M>(), X, y, R, ry, offset, o);
        const LossResult<S> r = offset < 0 ? batch_hard_triplet_loss<M>(X, y, reference_set(R, ry), o)
                                           : batch_hard_triplet_loss<M>(X, y, reference_set(R, ry, offset), o);
        const double tol = 10 * value_tolerance<S>();
        CHECK(double(r.value) == Approx(b.value).epsilon(tol).margin(tol));
        REQUIRE(r.grad.size() == 2);
        CHECK(r.grad[0].rows() == 9);
        CHECK(r.grad[1].rows() == 23);
      }
    }
  }
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss: dL/dX and dL/dR match finite differences", "[reference][batch_hard][gradient]",
                   (Case<double, Euclidean>), (Case<double, SquaredEuclidean>), (Case<double, Cosine>),
                   (Case<double, DotProduct>)) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const Eigen::VectorXi y = random_labels(6, 2, 201), ry = random_labels(10, 2, 202);
  TripletOptions o;
  o.margin = 0.5;
  o.reduction = Reduction::Sum;
  for (Index offset : {Index(-1), Index(3)}) {
    bool found = false;
    for (unsigned seed = 300; seed < 900 && !found; ++seed) {
      const RowMatrix<S> X = random_embeddings<S>(6, 3, seed), R = random_embeddings<S>(10, 3, seed + 5000);
      if (!std::is_same<M, DotProduct>::value) {
        const BruteHard b = brute_hard(ref_of<M>(), X, y, R, ry, offset, o);
        if (b.closest_kink < 1e-3 || b.value == 0) continue;
      }
      found = true;
      auto ref = [&](const RowMatrix<S>& r) { return offset < 0 ? reference_set(r, ry) : reference_set(r, ry, offset); };
      const LossResult<S> res = batch_hard_triplet_loss<M>(X, y, ref(R), o);
      auto fx = [&](const RowMatrix<S>& x) { return batch_hard_triplet_loss<M>(x, y, ref(R), o, value_only); };
      auto fr = [&](const RowMatrix<S>& r) { return batch_hard_triplet_loss<M>(X, y, ref(r), o, value_only); };
      const auto rx = testing::check_gradient(fx, X, res.grad[0]);
      const auto rr = testing::check_gradient(fr, R, res.grad[1]);
      INFO("offset " << offset << " seed " << seed << ": dX " << rx.summary() << "; dR " << rr.summary());
      CHECK(rx.passed);
      CHECK(rr.passed);
      CHECK(res.grad[1].cwiseAbs().maxCoeff() > 0);
    }
    REQUIRE(found);
  }
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss with R = X and self_offset 0 is the batch loss",
                   "[reference][batch_hard]", CONTRASTIVE_ALL_METRIC_CASES) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(37, 6, 401);
  const Eigen::VectorXi y = random_labels(37, 4, 402);
  TripletOptions o;
  o.margin = 0.3;
  const LossResult<S> batch = batch_hard_triplet_loss<M>(X, y, o);
  const LossResult<S> ref = batch_hard_triplet_loss<M>(X, y, reference_set(X, y, 0), o);
  const double tol = 10 * value_tolerance<S>();
  CHECK(double(ref.value) == Approx(double(batch.value)).epsilon(tol).margin(tol));
  // X plays both roles in the batch loss: its gradient is the sum of the two.
  const RowMatrix<S> both = ref.grad[0] + ref.grad[1];
  CHECK(max_abs_diff<S>(both, batch.grad[0]) <= 10 * tol);
  CHECK(max_abs_diff<S>(ref.terms, batch.terms) <= tol);
}

TEMPLATE_TEST_CASE("batch_hard_triplet_loss on reference tiles agrees with one tile", "[reference][batch_hard][tiles]",
                   (Case<double, Euclidean>), (Case<float, Cosine>), (Case<double, DotProduct>)) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  // 16-row tiles: 40 queries and 150 references cross tile edges, self pairs at offset 7 too.
  const RowMatrix<S> X = random_embeddings<S>(40, 5, 501);
  RowMatrix<S> R = random_embeddings<S>(150, 5, 502);
  R.middleRows(7, 40) = X;
  const Eigen::VectorXi y = random_labels(40, 5, 503);
  Eigen::VectorXi ry = random_labels(150, 5, 504);
  ry.segment(7, 40) = y;
  TripletOptions whole, tiny;
  tiny.workspace_bytes = 8192;
  for (Index offset : {Index(-1), Index(7)}) {
    auto ref = [&] { return offset < 0 ? reference_set(R, ry) : reference_set(R, ry, offset); };
    const LossResult<S> a = batch_hard_triplet_loss<M>(X, y, ref(), whole);
    const LossResult<S> b = batch_hard_triplet_loss<M>(X, y, ref(), tiny);
    CHECK(a.value == b.value);
    CHECK(max_abs_diff<S>(a.grad[0], b.grad[0]) <= 10 * value_tolerance<S>());
    CHECK(max_abs_diff<S>(a.grad[1], b.grad[1]) <= 10 * value_tolerance<S>());
    // One output: dL/dX alone, the same.
    RowMatrix<S> dX(40, 5);
    CHECK(batch_hard_triplet_loss<M>(X, y, ref(), tiny, dX) == b.value);
    CHECK(dX == b.grad[0]);
    RowMatrix<S> dX2(40, 5), dR(150, 5);
    CHECK(batch_hard_triplet_loss<M>(X, y, ref(), tiny, dX2, dR) == b.value);
    CHECK(dR == b.grad[1]);
  }
}

TEST_CASE("reference-set losses reject bad input, naming the argument", "[reference][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(5, 3, 601), R = random_embeddings<double>(8, 3, 602);
  const RowMatrix<double> R4 = random_embeddings<double>(8, 4, 603);
  const Eigen::VectorXi y = random_labels(5, 2, 604), ry = random_labels(8, 2, 605), ry7 = random_labels(7, 2, 606);
  auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  const std::string labels_msg = message([&] { batch_hard_triplet_loss(X, y, reference_set(R, ry7)); });
  CHECK(labels_msg.find("contrastive::batch_hard_triplet_loss") != std::string::npos);
  CHECK(labels_msg.find("ref_labels") != std::string::npos);
  const std::string d_msg = message([&] { batch_hard_triplet_loss(X, y, reference_set(R4, ry)); });
  CHECK(d_msg.find("'R'") != std::string::npos);
  CHECK(message([&] { batch_hard_triplet_loss(X, y, reference_set(R, ry, 8)); }).find("self_offset") != std::string::npos);
  CHECK(message([&] { batch_hard_triplet_loss(X, y, reference_set(R, ry, -3)); }).find("self_offset") != std::string::npos);
  RowMatrix<double> Rnan = R;
  Rnan(2, 1) = std::nan("");
  CHECK(message([&] { batch_hard_triplet_loss(X, y, reference_set(Rnan, ry)); }).find("'R'") != std::string::npos);
  // An empty reference set: loss 0, zero gradient.
  const RowMatrix<double> none(0, 3);
  const LossResult<double> r = batch_hard_triplet_loss(X, y, reference_set(none, Eigen::VectorXi(0)));
  CHECK(r.value == 0);
  CHECK(r.grad[0].cwiseAbs().maxCoeff() == 0);
}

TEST_CASE("every reference-set form: no queries, or no references, give loss 0 and zero gradients",
          "[reference][edge]") {
  const RowMatrix<double> X = random_embeddings<double>(5, 3, 611), R = random_embeddings<double>(8, 3, 612);
  const Eigen::VectorXi y = random_labels(5, 2, 613), ry = random_labels(8, 2, 614);
  const RowMatrix<double> none(0, 3);
  const Eigen::VectorXi no_labels(0);
  auto check = [&](const char* name, auto&& loss) {
    INFO(name);
    for (const bool no_queries : {true, false}) {
      INFO((no_queries ? "no queries" : "no references"));
      const LossResult<double> r =
          no_queries ? loss(none, no_labels, reference_set(R, ry)) : loss(X, y, reference_set(none, no_labels));
      CHECK(r.value == 0);
      REQUIRE(r.grad.size() >= 2);
      CHECK(r.grad[0].rows() == (no_queries ? 0 : 5));
      CHECK(r.grad[1].rows() == (no_queries ? 8 : 0));
      for (const RowMatrix<double>& g : r.grad) CHECK((g.size() == 0 || g.cwiseAbs().maxCoeff() == 0));
    }
  };
  check("batch_hard_triplet_loss", [](const auto& A, const auto& l, const auto& set) { return batch_hard_triplet_loss(A, l, set); });
  check("batch_contrastive_loss", [](const auto& A, const auto& l, const auto& set) { return batch_contrastive_loss(A, l, set); });
  check("multi_similarity_loss", [](const auto& A, const auto& l, const auto& set) { return multi_similarity_loss(A, l, set); });
  check("circle_loss", [](const auto& A, const auto& l, const auto& set) { return circle_loss(A, l, set); });
  check("supcon_loss", [](const auto& A, const auto& l, const auto& set) { return supcon_loss(A, l, set, 0.1); });
  check("nca_loss", [](const auto& A, const auto& l, const auto& set) { return nca_loss(A, l, set); });
  check("generalized_lifted_structure_loss",
        [](const auto& A, const auto& l, const auto& set) { return generalized_lifted_structure_loss(A, l, set); });
}

TEMPLATE_TEST_CASE("multi_similarity_loss against a reference set", "[reference][multi_similarity]", float, double) {
  using S = TestType;
  MultiSimilarityOptions o;
  o.alpha = 2;
  o.beta = 10;
  o.base = 0.5;
  auto ref = [&](const auto& X, const auto& y, const auto& set, std::size_t ws) {
    MultiSimilarityOptions w = o;
    w.workspace_bytes = ws;
    return multi_similarity_loss(X, y, set, w);
  };
  auto sum = [&](const auto& X, const auto& y, const auto& set) {
    MultiSimilarityOptions w = o;
    w.reduction = Reduction::Sum;
    return multi_similarity_loss(X, y, set, w);
  };
  auto batch = [&](const auto& X, const auto& y) { return multi_similarity_loss(X, y, o); };
  auto brute = [&](const std::vector<std::vector<Candidate>>& c) { return brute_multi_similarity(c, o, 1 - o.base); };
  check_dense_reference_loss<S>(Ref::Cosine, ref, batch, sum, brute);
  if (std::is_same<S, double>::value) {
    check_reference_gradients([&](const auto& X, const auto& y, const auto& set) { return multi_similarity_loss(X, y, set, o); });
  }
}

TEMPLATE_TEST_CASE("supcon_loss against a reference set", "[reference][supcon]", float, double) {
  using S = TestType;
  const double t = 0.3;
  auto ref = [&](const auto& X, const auto& y, const auto& set, std::size_t ws) {
    SupConOptions w;
    w.workspace_bytes = ws;
    return supcon_loss(X, y, set, t, w);
  };
  auto sum = [&](const auto& X, const auto& y, const auto& set) {
    SupConOptions w;
    w.reduction = Reduction::Sum;
    return supcon_loss(X, y, set, t, w);
  };
  auto batch = [&](const auto& X, const auto& y) { return supcon_loss(X, y, t); };
  auto brute = [&](const std::vector<std::vector<Candidate>>& c) { return brute_supcon(c, t); };
  check_dense_reference_loss<S>(Ref::Cosine, ref, batch, sum, brute);
  if (std::is_same<S, double>::value) {
    check_reference_gradients([&](const auto& X, const auto& y, const auto& set) { return supcon_loss(X, y, set, t); });
  }
}

TEMPLATE_TEST_CASE("generalized_lifted_structure_loss against a reference set", "[reference][lifted]", float, double) {
  using S = TestType;
  LiftedStructureOptions o;
  o.pos_margin = 0.5;
  o.neg_margin = 1.5;
  auto ref = [&](const auto& X, const auto& y, const auto& set, std::size_t ws) {
    LiftedStructureOptions w = o;
    w.workspace_bytes = ws;
    return generalized_lifted_structure_loss(X, y, set, w);
  };
  auto sum = [&](const auto& X, const auto& y, const auto& set) {
    LiftedStructureOptions w = o;
    w.reduction = Reduction::Sum;
    return generalized_lifted_structure_loss(X, y, set, w);
  };
  auto batch = [&](const auto& X, const auto& y) { return generalized_lifted_structure_loss(X, y, o); };
  auto brute = [&](const std::vector<std::vector<Candidate>>& c) { return brute_generalized_lifted(c, 0.5, 1.5); };
  check_dense_reference_loss<S>(Ref::Euclidean, ref, batch, sum, brute);
  if (std::is_same<S, double>::value) {
    check_reference_gradients(
        [&](const auto& X, const auto& y, const auto& set) { return generalized_lifted_structure_loss(X, y, set, o); });
  }
}

TEMPLATE_TEST_CASE("circle_loss against a reference set", "[reference][circle]", float, double) {
  using S = TestType;
  CircleOptions o;
  o.gamma = 4;  // small enough that float keeps the values apart
  auto ref = [&](const auto& X, const auto& y, const auto& set, std::size_t ws) {
    CircleOptions w = o;
    w.workspace_bytes = ws;
    return circle_loss(X, y, set, w);
  };
  auto sum = [&](const auto& X, const auto& y, const auto& set) {
    CircleOptions w = o;
    w.reduction = Reduction::Sum;
    return circle_loss(X, y, set, w);
  };
  auto batch = [&](const auto& X, const auto& y) { return circle_loss(X, y, o); };
  auto brute = [&](const std::vector<std::vector<Candidate>>& c) { return brute_circle(c, o.m, o.gamma); };
  // The gradient is PML's, with the pair weights held fixed: not the derivative
  // of the value, so no finite differences; R = X proves it equal to the batch form's.
  check_dense_reference_loss<S>(Ref::Cosine, ref, batch, sum, brute);
}

TEMPLATE_TEST_CASE("nca_loss against a reference set", "[reference][nca]", float, double) {
  using S = TestType;
  NCAOptions o;
  auto ref = [&](const auto& X, const auto& y, const auto& set, std::size_t ws) {
    NCAOptions w = o;
    w.workspace_bytes = ws;
    return nca_loss(X, y, set, w);
  };
  auto sum = [&](const auto& X, const auto& y, const auto& set) {
    NCAOptions w = o;
    w.reduction = Reduction::Sum;
    return nca_loss(X, y, set, w);
  };
  auto batch = [&](const auto& X, const auto& y) { return nca_loss(X, y, o); };
  auto brute = [&](const std::vector<std::vector<Candidate>>& c) { return brute_nca(c, o.softmax_scale); };
  check_dense_reference_loss<S>(Ref::SquaredEuclidean, ref, batch, sum, brute);
  if (std::is_same<S, double>::value) {
    check_reference_gradients([&](const auto& X, const auto& y, const auto& set) { return nca_loss(X, y, set, o); });
  }
}

TEMPLATE_TEST_CASE("batch_contrastive_loss against a reference set", "[reference][contrastive]", float, double) {
  using S = TestType;
  for (bool squared : {false, true}) {
    ContrastiveOptions o;
    o.pos_margin = 0.5;
    o.neg_margin = 2.5;
    o.squared = squared;
    INFO("squared " << squared);
    auto ref = [&](const auto& X, const auto& y, const auto& set, std::size_t ws) {
      ContrastiveOptions w = o;
      w.workspace_bytes = ws;
      return batch_contrastive_loss(X, y, set, w);
    };
    auto sum = [&](const auto& X, const auto& y, const auto& set) {
      ContrastiveOptions w = o;
      w.reduction = Reduction::Sum;
      return batch_contrastive_loss(X, y, set, w);
    };
    auto batch = [&](const auto& X, const auto& y) { return batch_contrastive_loss(X, y, o); };
    auto brute = [&](const std::vector<std::vector<Candidate>>& c) { return brute_contrastive(c, o); };
    check_dense_reference_loss<S>(Ref::Euclidean, ref, batch, sum, brute);
    if (std::is_same<S, double>::value) {
      check_reference_gradients(
          [&](const auto& X, const auto& y, const auto& set) { return batch_contrastive_loss(X, y, set, o); });
    }
  }
  // Terms: one per (query, reference) pair, row-major; a self pair's is 0.
  const RowMatrix<S> X = random_embeddings<S>(4, 3, 901), R = random_embeddings<S>(7, 3, 902);
  const Eigen::VectorXi y = random_labels(4, 2, 903), ry = random_labels(7, 2, 904);
  ContrastiveOptions o;
  o.reduction = Reduction::Sum;
  const LossResult<S> r = batch_contrastive_loss(X, y, reference_set(R, ry, 2), o);
  REQUIRE(r.terms.size() == 28);
  CHECK(double(r.terms.sum()) == Approx(double(r.value)).epsilon(1e-5));
  for (Index i = 0; i < 4; ++i) CHECK(r.terms(i * 7 + i + 2) == S(0));
  // Sample weights weigh a pair by both rows: refused against a reference set.
  Vector<double> w = Vector<double>::Ones(4);
  ContrastiveOptions weighted;
  weighted.reduction = Reducer(Reduction::Mean, w);
  CHECK_THROWS_AS(batch_contrastive_loss(X, y, reference_set(R, ry), weighted), std::invalid_argument);
}

TEMPLATE_TEST_CASE("mined tuples against a reference set: the losses on the gathered rows", "[reference][mined]",
                   (Case<double, Euclidean>), (Case<float, Cosine>)) {
  using S = typename TestType::Scalar;
  using M = typename TestType::Metric;
  const RowMatrix<S> X = random_embeddings<S>(8, 4, 1101), R = random_embeddings<S>(14, 4, 1102);
  const Eigen::VectorXi y = random_labels(8, 3, 1103), ry = random_labels(14, 3, 1104);
  const double tol = 20 * value_tolerance<S>();
  // Triplets from the reference-set miner, fed straight in.
  const Triplets t = mine_triplets<M>(X, y, R, ry, 0.5, NegativeKinds::all());
  REQUIRE(t.size() > 10);
  TripletOptions o;
  o.margin = 0.5;
  const LossResult<S> r = triplet_margin_loss<M>(X, t, reference_set(R), o);
  // By hand: gather anchor, positive, negative rows; scatter their gradients back.
  RowMatrix<S> A(t.size(), 4), P(t.size(), 4), N(t.size(), 4);
  for (Index k = 0; k < t.size(); ++k) {
    A.row(k) = X.row(t.anchor[std::size_t(k)]);
    P.row(k) = R.row(t.positive[std::size_t(k)]);
    N.row(k) = R.row(t.negative[std::size_t(k)]);
  }
  TripletOptions per_triplet = o;
  const LossResult<S> g = triplet_margin_loss<M>(A, P, N, per_triplet);
  CHECK(double(r.value) == Approx(double(g.value)).epsilon(tol).margin(tol));
  RowMatrix<S> dX = RowMatrix<S>::Zero(8, 4), dR = RowMatrix<S>::Zero(14, 4);
  for (Index k = 0; k < t.size(); ++k) {
    dX.row(t.anchor[std::size_t(k)]) += g.grad[0].row(k);
    dR.row(t.positive[std::size_t(k)]) += g.grad[1].row(k);
    dR.row(t.negative[std::size_t(k)]) += g.grad[2].row(k);
  }
  CHECK(max_abs_diff<S>(r.grad[0], dX) <= tol);
  CHECK(max_abs_diff<S>(r.grad[1], dR) <= tol);
  // Pairs from the reference-set pair miner: contrastive_loss on them equals the explicit pairs form.
  const Pairs pairs = mine_pairs<M>(X, y, R, ry, 0.2, 1.2);
  REQUIRE(pairs.size() > 5);
  ContrastiveOptions c;
  c.pos_margin = 0.2;
  c.neg_margin = 1.2;
  const LossResult<S> pr = contrastive_loss<M>(X, pairs, reference_set(R), c);
  RowMatrix<S> X1(pairs.size(), 4), X2(pairs.size(), 4);
  Eigen::VectorXi similar(pairs.size());
  for (Index k = 0; k < pairs.size(); ++k) {
    X1.row(k) = X.row(pairs.first[std::size_t(k)]);
    X2.row(k) = R.row(pairs.second[std::size_t(k)]);
    similar(k) = pairs.similar[std::size_t(k)];
  }
  const LossResult<S> pg = contrastive_loss<M>(X1, X2, similar, c);
  CHECK(double(pr.value) == Approx(double(pg.value)).epsilon(tol).margin(tol));
  RowMatrix<S> pX = RowMatrix<S>::Zero(8, 4), pR = RowMatrix<S>::Zero(14, 4);
  for (Index k = 0; k < pairs.size(); ++k) {
    pX.row(pairs.first[std::size_t(k)]) += pg.grad[0].row(k);
    pR.row(pairs.second[std::size_t(k)]) += pg.grad[1].row(k);
  }
  CHECK(max_abs_diff<S>(pr.grad[0], pX) <= tol);
  CHECK(max_abs_diff<S>(pr.grad[1], pR) <= tol);
  // The other pair losses take the same pairs.
  CHECK(multi_similarity_loss<M>(X, pairs, reference_set(R)).grad.size() == 2);
  // Indices out of range name the argument.
  Triplets bad = t;
  bad.positive[3] = 14;
  CHECK_THROWS_WITH(triplet_margin_loss<M>(X, bad, reference_set(R), o), ContainsSubstring("triplets.positive"));
  Pairs bad_pairs = pairs;
  bad_pairs.first[0] = 8;
  CHECK_THROWS_WITH(contrastive_loss<M>(X, bad_pairs, reference_set(R), c), ContainsSubstring("pairs.first"));
}

TEST_CASE("mined triplets against a reference set: finite differences", "[reference][mined][gradient]") {
  const RowMatrix<double> X = random_embeddings<double>(5, 3, 1201), R = random_embeddings<double>(9, 3, 1202);
  const Eigen::VectorXi y = random_labels(5, 2, 1203), ry = random_labels(9, 2, 1204);
  const Triplets t = mine_triplets<Euclidean>(X, y, R, ry, 1.0, NegativeKinds::with_loss());
  REQUIRE(t.size() > 3);
  TripletOptions o;
  o.soft = true;  // smooth: no kinks for the differences to cross
  const LossResult<double> r = triplet_margin_loss(X, t, reference_set(R), o);
  auto fx = [&](const RowMatrix<double>& x) { return triplet_margin_loss(x, t, reference_set(R), o, value_only); };
  auto fr = [&](const RowMatrix<double>& q) { return triplet_margin_loss(X, t, reference_set(q), o, value_only); };
  const auto rx = testing::check_gradient(fx, X, r.grad[0]);
  const auto rr = testing::check_gradient(fr, R, r.grad[1]);
  INFO(rx.summary() << "; " << rr.summary());
  CHECK(rx.passed);
  CHECK(rr.passed);
}

// A Workspace lent through reusing(): the same bits as a call without one,
// whether its buffers must grow (a larger R), are reused as they are, or
// are larger than needed; a tiny budget keeps some tiles and recomputes the
// others, so both kinds of tile go through the lent buffers.
TEMPLATE_TEST_CASE("reference-set losses reusing a Workspace give the bits of a call without one",
                   "[reference][workspace]", float, double) {
  using S = TestType;
  // Options whose budget gives 16-row tiles, four kept at most.
  const auto tiny = [](auto options) {
    options.workspace_bytes = 16 * 16 * 2 * sizeof(S) * 2;
    return options;
  };
  const SupConOptions sc = tiny(SupConOptions{});
  const MultiSimilarityOptions ms = tiny(MultiSimilarityOptions{});
  const ContrastiveOptions co = tiny(ContrastiveOptions{});
  const CircleOptions ci = tiny(CircleOptions{});
  const NCAOptions nc = tiny(NCAOptions{});
  const LiftedStructureOptions li = tiny(LiftedStructureOptions{});
  const TripletOptions bh = tiny(TripletOptions{});
  const auto check = [&](const char* name, const auto& loss) {
    INFO(name);
    Workspace workspace;
    const RowMatrix<S> X = random_embeddings<S>(20, 5, 31);
    const Eigen::VectorXi y = random_labels(20, 4, 32);
    std::size_t held = 0;
    for (const Index m : {70, 150, 33, 150}) {
      INFO("M = " << m);
      const RowMatrix<S> R = random_embeddings<S>(m, 5, 33 + unsigned(m));
      const Eigen::VectorXi ry = random_labels(m, 4, 34 + unsigned(m));
      for (const Index offset : {Index(-1), Index(3)}) {
        INFO("self_offset " << offset);
        const auto set = offset < 0 ? reference_set(R, ry) : reference_set(R, ry, offset);
        const LossResult<S> plain = loss(X, y, set);
        const LossResult<S> reused = loss(X, y, set.reusing(workspace));
        CHECK(reused.value == plain.value);
        REQUIRE(reused.grad.size() == plain.grad.size());
        for (std::size_t k = 0; k < plain.grad.size(); ++k) CHECK(reused.grad[k] == plain.grad[k]);
        CHECK(reused.terms == plain.terms);
        const LossResult<S> detached = loss(X, y, set.detached().reusing(workspace));
        CHECK(detached.value == plain.value);
        CHECK(detached.grad[0] == plain.grad[0]);
      }
      // It grows to the largest call and keeps that.
      CHECK(workspace.bytes() >= held);
      held = workspace.bytes();
    }
    return held;
  };
  // Two-pass losses keep tiles in it; under Cosine it also holds R's unit rows.
  const std::size_t cosine = check("supcon", [&](const auto& X, const auto& y, const auto& set) {
    return supcon_loss(X, y, set, 0.2, sc);
  });
  CHECK(cosine >= std::size_t(150 * 5) * sizeof(S));
  check("multi_similarity", [&](const auto& X, const auto& y, const auto& set) {
    return multi_similarity_loss(X, y, set, ms);
  });
  CHECK(check("batch_contrastive", [&](const auto& X, const auto& y, const auto& set) {
          return batch_contrastive_loss(X, y, set, co);
        }) > 0);
  check("circle", [&](const auto& X, const auto& y, const auto& set) { return circle_loss(X, y, set, ci); });
  check("nca", [&](const auto& X, const auto& y, const auto& set) { return nca_loss(X, y, set, nc); });
  check("generalized_lifted_structure", [&](const auto& X, const auto& y, const auto& set) {
    return generalized_lifted_structure_loss(X, y, set, li);
  });
  // Sparse backward: nothing to keep under Euclidean, so nothing is taken.
  CHECK(check("batch_hard_triplet", [&](const auto& X, const auto& y, const auto& set) {
          return batch_hard_triplet_loss(X, y, set, bh);
        }) == 0);

  Workspace workspace;
  const RowMatrix<S> X = random_embeddings<S>(6, 4, 41), R = random_embeddings<S>(40, 4, 42);
  const Eigen::VectorXi y = random_labels(6, 3, 43), ry = random_labels(40, 3, 44);
  const S value = supcon_loss(X, y, reference_set(R, ry).reusing(workspace), 0.2, sc, value_only);
  CHECK(value == supcon_loss(X, y, reference_set(R, ry), 0.2, sc, value_only));
  CHECK(workspace.bytes() > 0);
  workspace.release();
  CHECK(workspace.bytes() == 0);
  CHECK(supcon_loss(X, y, reference_set(R, ry).reusing(workspace), 0.2, sc, value_only) == value);
}

}  // namespace test_reference_losses
