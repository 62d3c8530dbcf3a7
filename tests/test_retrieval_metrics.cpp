// The AccuracyCalculator metrics (evaluation/retrieval_metrics.hpp): against
// pytorch-metric-learning 2.8.1 (tests/reference/generate_pml_accuracy.py), against
// loops written from the definitions, blocks against one block, bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/evaluation/retrieval_metrics.hpp>

#include <cmath>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_retrieval_metrics {

namespace {

const ReferenceFile& pml() {
  static const ReferenceFile file("pml_accuracy.txt");
  return file;
}

// PML's order: precision_at_1 r_precision mean_average_precision_at_r mean_average_precision mean_reciprocal_rank.
std::vector<double> as_pml(const RetrievalMetrics& m) {
  return {m.precision_at_1, m.r_precision, m.mean_average_precision_at_r, m.mean_average_precision,
          m.mean_reciprocal_rank};
}

template <class Scalar>
RetrievalMetrics run_case(const std::string& name, const AnyMetric& metric, RetrievalOptions o) {
  const ReferenceFile& f = pml();
  const RowMatrix<Scalar> Q = f.matrix<Scalar>(name + "_queries");
  const Eigen::VectorXi yq = f.labels(name + "_query_labels");
  if (!f.has(name + "_references")) return retrieval_metrics(Q, yq, o, metric);
  const RowMatrix<Scalar> R = f.matrix<Scalar>(name + "_references");
  const Eigen::VectorXi yr = f.labels(name + "_reference_labels");
  o.knn.ref_includes_query = name.rfind("inside", 0) == 0;
  return retrieval_metrics(Q, yq, R, yr, metric, o);
}

// Loops from the definitions on a full brute-force ranking (all references, by exact distance).
struct Expected {
  std::vector<double> pml;  // the five PML metrics
  std::vector<double> recall;
};

Expected from_definitions(const RowMatrix<double>& Q, const Eigen::VectorXi& yq, const RowMatrix<double>& R,
                          const Eigen::VectorXi& yr, bool self, Index k, const std::vector<Index>& recall_at) {
  Expected e{std::vector<double>(5, 0.0), std::vector<double>(recall_at.size(), 0.0)};
  Index counted = 0;
  for (Index i = 0; i < Q.rows(); ++i) {
    std::vector<Index> ids;
    for (Index j = 0; j < R.rows(); ++j)
      if (!(self && j == i)) ids.push_back(j);
    std::stable_sort(ids.begin(), ids.end(), [&](Index a, Index b) {
      return (Q.row(i) - R.row(a)).squaredNorm() < (Q.row(i) - R.row(b)).squaredNorm();
    });
    Index r_q = 0;
    for (Index j : ids) r_q += yr(j) == yq(i) ? 1 : 0;
    if (r_q == 0) continue;
    ++counted;
    const Index r = std::min(r_q, k);
    double hits = 0, ap = 0, ap_r = 0, hits_r = 0, rr = 0;
    for (Index j = 0; j < k; ++j) {
      if (yr(ids[static_cast<std::size_t>(j)]) != yq(i)) continue;
      hits += 1;
      if (rr == 0) rr = 1.0 / static_cast<double>(j + 1);
      ap += hits / static_cast<double>(j + 1);
      if (j < r) {
        ap_r += hits / static_cast<double>(j + 1);
        hits_r += 1;
      }
    }
    e.pml[0] += yr(ids[0]) == yq(i) ? 1 : 0;
    e.pml[1] += hits_r / static_cast<double>(r);
    e.pml[2] += ap_r / static_cast<double>(r_q);
    e.pml[3] += ap / static_cast<double>(r_q);
    e.pml[4] += rr;
    for (std::size_t t = 0; t < recall_at.size(); ++t) {
      bool any = false;
      for (Index j = 0; j < recall_at[t]; ++j) any = any || yr(ids[static_cast<std::size_t>(j)]) == yq(i);
      e.recall[t] += any ? 1 : 0;
    }
  }
  for (double& v : e.pml) v /= static_cast<double>(counted);
  for (double& v : e.recall) v /= static_cast<double>(counted);
  return e;
}

}  // namespace

TEMPLATE_TEST_CASE("retrieval_metrics: PML AccuracyCalculator values", "[retrieval]", float, double) {
  using S = TestType;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"separate_euclidean", "euclidean"}, {"separate_cosine", "cosine"}, {"separate_dot", "dot_product"},
      {"inside_euclidean", "euclidean"},   {"self_euclidean", "euclidean"}, {"self_cosine", "cosine"}};
  for (const auto& [name, metric_name] : cases) {
    const AnyMetric metric = AnyMetric::from_name(metric_name);
    for (const char* k_name : {"maxbin", "all", "k5"}) {
      for (bool avg : {false, true}) {
        INFO(name << " k=" << k_name << " avg_of_avgs=" << avg);
        RetrievalOptions o;
        o.avg_of_avgs = avg;
        o.recall_at = {1, 2, 5, 10};
        if (std::string(k_name) == "all") o.neighbours = RetrievalOptions::Neighbours::AllReferences;
        if (std::string(k_name) == "k5") {
          o.neighbours = RetrievalOptions::Neighbours::Fixed;
          o.k = 5;
        }
        const RetrievalMetrics m = run_case<S>(name, metric, o);
        const Vector<double> want = pml().vector(name + "_" + k_name + (avg ? "_avg" : ""));
        const std::vector<double> got = as_pml(m);
        for (Index t = 0; t < 4; ++t) {
          INFO("metric " << t);
          CHECK(got[static_cast<std::size_t>(t)] == Approx(want(t)).margin(1e-12).epsilon(0));
        }
        // PML takes reciprocal ranks and their mean in float32: its MRR is good to float32 rounding.
        CHECK(m.mean_reciprocal_rank == Approx(want(4)).margin(2e-7).epsilon(0));
        if (!avg) {
          const double exact = pml().scalar(name + "_" + k_name + "_mrr64");
          CHECK(m.mean_reciprocal_rank == Approx(exact).margin(1e-12).epsilon(0));
          const Vector<double> recall = pml().vector(name + "_recall");
          for (Index t = 0; t < 4; ++t) CHECK(m.recall_at[static_cast<std::size_t>(t)] == Approx(recall(t)).margin(1e-12));
          CHECK(m.recall_at[0] == m.precision_at_1);
        }
      }
    }
  }
  // One query label of the separate cases has no reference: its queries are lone.
  const RetrievalMetrics m = run_case<S>("separate_euclidean", AnyMetric::from_name("euclidean"), {});
  CHECK(m.lone_queries > 0);
  CHECK(m.queries + m.lone_queries == 60);
}

TEMPLATE_TEST_CASE("retrieval_metrics: the k-NN equals PML's torch k-NN", "[retrieval]", float, double) {
  using S = TestType;
  for (const std::string name : {"separate_euclidean", "inside_euclidean", "self_euclidean"}) {
    INFO(name);
    const ReferenceFile& f = pml();
    const RowMatrix<S> Q = f.matrix<S>(name + "_queries");
    const RowMatrix<S> R = f.has(name + "_references") ? f.matrix<S>(name + "_references") : Q;
    KnnOptions o;
    o.ref_includes_query = name != "separate_euclidean";
    const RowMatrix<double> want = f.matrix(name + "_knn10");
    CHECK(knn(Q, R, 10, o).indices.template cast<double>() == want);
  }
}

TEST_CASE("retrieval_metrics: the definitions, written out as loops", "[retrieval]") {
  const RowMatrix<double> R = random_embeddings<double>(90, 4, 31);
  const Eigen::VectorXi yr = random_labels(90, 6, 32);
  const RowMatrix<double> Q = random_embeddings<double>(25, 4, 33);
  const Eigen::VectorXi yq = random_labels(25, 7, 34);  // label 6 has no reference: lone queries
  for (Index k : {1, 3, 8, 40, 89}) {
    INFO("k " << k);
    RetrievalOptions o;
    o.neighbours = RetrievalOptions::Neighbours::Fixed;
    o.k = k;
    o.recall_at = {1, 4, 30};
    const Expected e = from_definitions(Q, yq, R, yr, false, k, o.recall_at);
    const RetrievalMetrics m = retrieval_metrics(Q, yq, R, yr, o);
    for (std::size_t t = 0; t < 5; ++t) CHECK(as_pml(m)[t] == Approx(e.pml[t]).margin(1e-14));
    for (std::size_t t = 0; t < 3; ++t) CHECK(m.recall_at[t] == Approx(e.recall[t]).margin(1e-14));
    // The set against itself.
    const Expected s = from_definitions(R, yr, R, yr, true, k, o.recall_at);
    const RetrievalMetrics ms = retrieval_metrics(R, yr, o);
    for (std::size_t t = 0; t < 5; ++t) CHECK(as_pml(ms)[t] == Approx(s.pml[t]).margin(1e-14));
  }
}

TEMPLATE_TEST_CASE("retrieval_metrics: query blocks and tiny budgets give the one-block values", "[retrieval]", float,
                   double) {
  using S = TestType;
  const RowMatrix<S> X = random_embeddings<S>(120, 5, 41);
  const Eigen::VectorXi y = random_labels(120, 5, 42);
  RetrievalOptions o;
  o.recall_at = {1, 10};
  const RetrievalMetrics whole = retrieval_metrics(X, y, o);
  for (Index qb : {1, 13}) {
    for (std::size_t budget : {std::size_t(0), std::size_t(40000)}) {
      o.knn.query_block_rows = budget == 0 ? qb : 0;
      if (budget > 0) o.knn.memory_budget_bytes = budget;
      const RetrievalMetrics tiled = retrieval_metrics(X, y, o);
      CHECK(as_pml(tiled) == as_pml(whole));
      CHECK(tiled.recall_at == whole.recall_at);
      CHECK(tiled.k == whole.k);
    }
  }
}

TEST_CASE("retrieval_metrics: every query lone gives NaN, as PML", "[retrieval]") {
  const RowMatrix<double> Q = random_embeddings<double>(4, 2, 1);
  const RowMatrix<double> R = random_embeddings<double>(6, 2, 2);
  const Eigen::VectorXi yq = Eigen::VectorXi::Constant(4, 9);
  const Eigen::VectorXi yr = Eigen::VectorXi::Zero(6);
  const RetrievalMetrics m = retrieval_metrics(Q, yq, R, yr);
  CHECK(std::isnan(m.precision_at_1));
  CHECK(std::isnan(m.mean_average_precision_at_r));
  CHECK(m.queries == 0);
  CHECK(m.lone_queries == 4);
}

TEST_CASE("retrieval_metrics: bad input names the argument", "[retrieval]") {
  const RowMatrix<double> Q = random_embeddings<double>(5, 3, 1);
  const RowMatrix<double> R = random_embeddings<double>(8, 3, 2);
  const Eigen::VectorXi yq = random_labels(5, 2, 3), yr = random_labels(8, 2, 4);
  const char* fn = "contrastive::retrieval_metrics";
  RetrievalOptions o;
  o.neighbours = RetrievalOptions::Neighbours::Fixed;
  o.k = 0;
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, yq, R, yr, o), fn, "RetrievalOptions::k", ">= 1");
  o.k = 9;
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, yq, R, yr, o), fn, "RetrievalOptions::k", "(8)");
  o.k = 8;
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(R, yr, o), fn, "RetrievalOptions::k", "(7)");
  RetrievalOptions r;
  r.recall_at = {1, 0};
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, yq, R, yr, r), fn, "recall_at");
  r.recall_at = {20};
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, yq, R, yr, r), fn, "recall_at", "(20)");
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, random_labels(4, 2, 3), R, yr), fn, "'query_labels'", "length 4");
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, yq, R, random_labels(9, 2, 3)), fn, "'reference_labels'", "length 9");
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, random_labels(6, 2, 3)), fn, "'labels'", "length 6");
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(RowMatrix<double>(0, 3), Eigen::VectorXi(0), R, yr), fn,
                           "'queries' is empty");
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(Q, yq, RowMatrix<double>(0, 3), Eigen::VectorXi(0)), fn,
                           "'references' is empty");
  RetrievalOptions inside;
  inside.knn.ref_includes_query = true;
  Eigen::VectorXi other = yr;
  other.head(5) = yq.array() + 1;
  REQUIRE_INVALID_ARGUMENT(retrieval_metrics(R.topRows(5), yq, R, other, inside), fn, "'reference_labels'",
                           "'query_labels'");
}

}  // namespace test_retrieval_metrics
