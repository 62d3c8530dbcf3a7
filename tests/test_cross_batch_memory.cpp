// CrossBatchMemory: pytorch-metric-learning 2.8.1's CrossBatchMemory values and
// gradients over several steps (masks, a wrapping ring, warm-up), a plain
// re-implementation of the ring, and bad input. Also the reference-set losses
// against PML's ref_emb / ref_labels.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/reference_data.hpp"

#include <contrastive/contrastive.hpp>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_cross_batch_memory {

namespace {

// The library call for a generator's loss code (generate_pml_reference_sets.py).
struct PmlLoss {
  int code;
  template <class DQ, class Y, class Set>
  LossResult<double> operator()(const DQ& Q, const Y& y, const Set& set) const {
    switch (code) {
      case 0: {
        ContrastiveOptions o;
        o.pos_margin = 0.2;
        o.neg_margin = 1.5;
        o.reduction = Reduction::MeanNonZero;
        o.average_separately = true;
        return batch_contrastive_loss<Euclidean>(Q, y, set, o);
      }
      case 1: {
        MultiSimilarityOptions o;
        o.alpha = 2;
        o.beta = 10;
        o.base = 0.5;
        return multi_similarity_loss<Cosine>(Q, y, set, o);
      }
      case 2: return supcon_loss<Cosine>(Q, y, set, 0.3);
      case 3: {
        CircleOptions o;
        o.m = 0.4;
        o.gamma = 4;
        return circle_loss(Q, y, set, o);
      }
      case 4: return nca_loss<SquaredEuclidean>(Q, y, set);
      case 5: {
        LiftedStructureOptions o;
        o.neg_margin = 1.5;
        o.pos_margin = 0.5;
        return generalized_lifted_structure_loss<Euclidean>(Q, y, set, o);
      }
      case 6: {
        TripletOptions o;
        o.margin = 0.3;
        o.reduction = Reduction::MeanNonZero;
        return batch_hard_triplet_loss<Euclidean>(Q, y, set, o);
      }
    }
    FAIL("unknown loss code " << code);
    return {};
  }
};

double relative_error(const RowMatrix<double>& a, const RowMatrix<double>& b) {
  const double scale = std::max(1e-12, std::max(a.cwiseAbs().maxCoeff(), b.cwiseAbs().maxCoeff()));
  return a.size() == 0 ? 0.0 : (a - b).cwiseAbs().maxCoeff() / scale;
}

}  // namespace

TEST_CASE("reference-set losses reproduce pytorch-metric-learning 2.8.1 with ref_emb", "[reference][pml]") {
  const ReferenceFile f("pml_reference_sets.txt");
  const int cases = int(f.scalar("cases"));
  double worst_value = 0, worst_grad = 0;
  for (int k = 0; k < cases; ++k) {
    const std::string p = "case" + std::to_string(k) + "_";
    const int code = int(f.scalar(p + "loss"));
    INFO("case " << k << " loss code " << code);
    const RowMatrix<double> X = f.matrix(p + "X"), R = f.matrix(p + "R");
    const Eigen::VectorXi y = f.labels(p + "labels"), ry = f.labels(p + "ref_labels");
    const LossResult<double> r = PmlLoss{code}(X, y, reference_set(R, ry));
    const double expected = f.scalar(p + "value");
    const double ev = std::abs(r.value - expected) / std::max(1.0, std::abs(expected));
    const double ex = relative_error(r.grad[0], f.matrix(p + "gradX"));
    const double er = relative_error(r.grad[1], f.matrix(p + "gradR"));
    CHECK(ev <= 1e-12);
    CHECK(ex <= 1e-10);
    CHECK(er <= 1e-10);
    worst_value = std::max(worst_value, ev);
    worst_grad = std::max({worst_grad, ex, er});
  }
  // Measured: values to 4e-16, gradients to 2e-15 relative.
  CHECK(worst_value <= 1e-12);
  CHECK(worst_grad <= 1e-10);
}

TEST_CASE("CrossBatchMemory reproduces pytorch-metric-learning 2.8.1 CrossBatchMemory", "[memory][pml]") {
  const ReferenceFile f("pml_cross_batch_memory.txt");
  const int runs = int(f.scalar("runs"));
  double worst_value = 0, worst_grad = 0;
  for (int run = 0; run < runs; ++run) {
    const std::string p = "run" + std::to_string(run) + "_";
    const PmlLoss loss{int(f.scalar(p + "loss"))};
    CrossBatchMemoryOptions o;
    o.warmup_steps = Index(f.scalar(p + "warmup"));
    CrossBatchMemory<double> memory(4, Index(f.scalar(p + "memory_size")), o);
    const int steps = int(f.scalar(p + "steps"));
    for (int s = 0; s < steps; ++s) {
      const std::string q = p + "step" + std::to_string(s) + "_";
      INFO("run " << run << " step " << s);
      const RowMatrix<double> X = f.matrix(q + "X");
      const Eigen::VectorXi y = f.labels(q + "labels"), mask = f.labels(q + "mask");
      const LossResult<double> r = mask.sum() == 0 ? memory(loss, X, y) : memory(loss, X, y, mask);
      const double expected = f.scalar(q + "value");
      const double ev = std::abs(r.value - expected) / std::max(1.0, std::abs(expected));
      const double eg = relative_error(r.grad[0], f.matrix(q + "grad"));
      CHECK(ev <= 1e-12);
      CHECK(eg <= 1e-10);
      REQUIRE(r.grad.size() == 1);
      worst_value = std::max(worst_value, ev);
      worst_grad = std::max(worst_grad, eg);
    }
  }
  // Measured: values to 3e-16, gradients to 8e-16 relative.
  CHECK(worst_value <= 1e-12);
  CHECK(worst_grad <= 1e-10);
}

TEST_CASE("CrossBatchMemory matches a plain ring buffer and the reference-set loss", "[memory]") {
  // The ring kept by hand: slot k of a vector, next slot, filled flag.
  const Index M = 11, D = 3;
  CrossBatchMemory<double> memory(D, M);
  RowMatrix<double> ring = RowMatrix<double>::Zero(M, D);
  Eigen::VectorXi ring_labels = Eigen::VectorXi::Zero(M);
  Index next = 0, held = 0;
  const auto loss = [](const auto& Q, const auto& y, const auto& set) {
    return supcon_loss(Q, y, set, 0.5);
  };
  for (int s = 0; s < 6; ++s) {
    INFO("step " << s);
    const RowMatrix<double> X = random_embeddings<double>(4, D, 1000 + unsigned(s));
    const Eigen::VectorXi y = random_labels(4, 3, 2000 + unsigned(s));
    Eigen::VectorXi mask = Eigen::VectorXi::Zero(4);
    const bool masked = s % 3 == 2;
    if (masked) mask << 1, 0, 0, 1;
    const Index first = next;
    for (Index i = 0; i < 4; ++i) {
      if (masked && mask(i) == 0) continue;
      ring.row(next) = X.row(i);
      ring_labels(next) = y(i);
      next = (next + 1) % M;
      held = std::min(held + 1, M);
    }
    const LossResult<double> r = masked ? memory(loss, X, y, mask) : memory(loss, X, y);
    CHECK(memory.size() == held);
    CHECK(memory.next_slot() == next);
    CHECK(memory.embeddings() == ring.topRows(held));
    if (!masked) {
      const LossResult<double> e = loss(X, y, reference_set(ring.topRows(held), ring_labels.head(held), first));
      CHECK(r.value == e.value);
      CHECK(r.grad[0] == e.grad[0]);
    } else {
      RowMatrix<double> Q(2, D);
      Q << X.row(1), X.row(2);
      Eigen::VectorXi yq(2);
      yq << y(1), y(2);
      const LossResult<double> e = loss(Q, yq, reference_set(ring.topRows(held), ring_labels.head(held)));
      CHECK(r.value == e.value);
      CHECK(r.grad[0].row(0).isZero());
      CHECK(r.grad[0].row(3).isZero());
      CHECK(r.grad[0].row(1) == e.grad[0].row(0));
      CHECK(r.grad[0].row(2) == e.grad[0].row(1));
    }
  }
  // The loss's buffers stay with the memory (under Cosine at least the unit rows) until released.
  CHECK(memory.workspace_bytes() >= std::size_t(M * D) * sizeof(double));
  // A copy holds the same ring and starts with an empty workspace.
  CrossBatchMemory<double> copy = memory;
  CHECK(copy.embeddings() == memory.embeddings());
  CHECK(copy.workspace_bytes() == 0);
  memory.release_workspace();
  CHECK(memory.workspace_bytes() == 0);
}

TEST_CASE("CrossBatchMemory warm-up computes the batch loss and leaves the memory empty", "[memory]") {
  CrossBatchMemoryOptions o;
  o.warmup_steps = 2;
  CrossBatchMemory<double> memory(3, 8, o);
  const auto loss = [](const auto& Q, const auto& y, const auto& set) {
    return multi_similarity_loss(Q, y, set);
  };
  for (int s = 0; s < 3; ++s) {
    const RowMatrix<double> X = random_embeddings<double>(5, 3, 3000 + unsigned(s));
    const Eigen::VectorXi y = random_labels(5, 2, 4000 + unsigned(s));
    const LossResult<double> r = memory(loss, X, y);
    if (s < 2) {
      const LossResult<double> batch = multi_similarity_loss(X, y);
      CHECK(r.value == Approx(batch.value).epsilon(1e-12));
      CHECK((r.grad[0] - batch.grad[0]).cwiseAbs().maxCoeff() <= 1e-12);
      CHECK(memory.size() == 0);
    } else {
      CHECK(memory.size() == 5);
    }
  }
  memory.reset();
  CHECK(memory.size() == 0);
  CHECK(memory.steps() == 0);
}

TEST_CASE("CrossBatchMemory rejects bad input, naming the argument", "[memory][validation]") {
  auto message = [](auto&& call) -> std::string {
    try {
      call();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  CHECK(message([] { CrossBatchMemory<float>(4, 0); }).find("memory_size") != std::string::npos);
  CHECK(message([] { CrossBatchMemory<float>(4, -3); }).find("memory_size") != std::string::npos);
  CHECK(message([] { CrossBatchMemory<float>(0, 16); }).find("embedding_size") != std::string::npos);
  CrossBatchMemory<double> memory(3, 4);
  const auto loss = [](const auto& Q, const auto& y, const auto& set) { return nca_loss(Q, y, set); };
  const RowMatrix<double> X = random_embeddings<double>(3, 3, 5000);
  const Eigen::VectorXi y = random_labels(3, 2, 5001);
  const Eigen::VectorXi short_mask = Eigen::VectorXi::Ones(2);
  CHECK(message([&] { memory(loss, X, y, short_mask); }).find("enqueue_mask") != std::string::npos);
  CHECK(message([&] { memory(loss, X, Eigen::VectorXi(Eigen::VectorXi::Zero(2))); }).find("labels") != std::string::npos);
  const RowMatrix<double> wide = random_embeddings<double>(3, 5, 5002);
  CHECK(message([&] { memory(loss, wide, y); }).find("'X'") != std::string::npos);
  const RowMatrix<double> big = random_embeddings<double>(5, 3, 5003);
  CHECK(message([&] { memory(loss, big, random_labels(5, 2, 5004)); }).find("enqueue") != std::string::npos);
  // Nothing entered the memory on a throw.
  CHECK(memory.size() == 0);
}

}  // namespace test_cross_batch_memory
