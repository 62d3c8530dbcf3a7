// One training step of CrossBatchMemory at scale: a batch of B rows against a
// full memory of M rows (D columns), per loss, against the GEMM bound of the
// step: the two B x M x D products the loss cannot avoid (the distances
// Q R^T forward, dL/dQ = W R backward; memory rows need no gradient).
//
//   cross_batch_memory <loss> [M] [B] [D] [steps] [workspace_MiB]
//
//   loss   bound | supcon | multi_similarity | contrastive | batch_hard | all
//   M, B, D   memory rows, batch rows, columns (default 65536, 256, 128), float
//   steps     timed steps after the memory is full (default 5); the median is reported
//
// Data: standard normal rows normalised to unit length, labels i mod 1000.
// Single-threaded (no OpenMP; Eigen on one thread). Output, one line per case:
//   case M B D median_step_s bound_s ratio
#include <contrastive/contrastive.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using contrastive::Index;
using contrastive::RowMatrix;
using Scalar = float;

RowMatrix<Scalar> unit_rows(Index n, Index d, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal;
  RowMatrix<Scalar> X(n, d);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(gen);
  X.rowwise().normalize();
  return X;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The two products of a step, whole (the fastest way the GEMM does them).
double bound(Index m, Index b, Index d, int steps) {
  const RowMatrix<Scalar> Q = unit_rows(b, d, 1), R = unit_rows(m, d, 2);
  RowMatrix<Scalar> G(b, m), dQ(b, d);
  std::vector<double> t;
  for (int s = 0; s < steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    G.noalias() = Q * R.transpose();
    dQ.noalias() = G * R;
    t.push_back(seconds_since(t0));
  }
  std::printf("# bound check %g\n", double(dQ.norm()));
  return median(t);
}

template <class Loss>
double run(const Loss& loss, Index m, Index b, Index d, int steps) {
  contrastive::CrossBatchMemory<Scalar> memory(d, m);
  std::vector<int> labels(static_cast<std::size_t>(b));
  // Fill the memory first (untimed).
  unsigned seed = 10;
  for (Index filled = 0; filled < m; filled += b) {
    const RowMatrix<Scalar> X = unit_rows(b, d, ++seed);
    for (Index i = 0; i < b; ++i) labels[std::size_t(i)] = int((filled + i) % 1000);
    memory(loss, X, labels);
  }
  std::vector<double> t;
  double check = 0;
  for (int s = 0; s < steps; ++s) {
    const RowMatrix<Scalar> X = unit_rows(b, d, ++seed);
    for (Index i = 0; i < b; ++i) labels[std::size_t(i)] = int((s * b + i) % 1000);
    const auto t0 = std::chrono::steady_clock::now();
    const contrastive::LossResult<Scalar> r = memory(loss, X, labels);
    t.push_back(seconds_since(t0));
    check += double(r.value) + double(r.grad[0].norm());
  }
  std::printf("# check %g\n", check);
  return median(t);
}

}  // namespace

int main(int argc, char** argv) {
  Eigen::setNbThreads(1);
  const std::string which = argc > 1 ? argv[1] : "all";
  const Index m = argc > 2 ? std::atol(argv[2]) : 65536;
  const Index b = argc > 3 ? std::atol(argv[3]) : 256;
  const Index d = argc > 4 ? std::atol(argv[4]) : 128;
  const int steps = argc > 5 ? std::atoi(argv[5]) : 5;
  const std::size_t ws = (argc > 6 ? std::size_t(std::atol(argv[6])) : std::size_t(64)) << 20;
  const double bound_s = bound(m, b, d, steps);
  auto report = [&](const char* name, double s) {
    std::printf("%s %ld %ld %ld %.4f %.4f %.2f\n", name, long(m), long(b), long(d), s, bound_s, s / bound_s);
  };
  if (which == "bound" || which == "all") report("bound", bound_s);
  if (which == "supcon" || which == "all") {
    contrastive::SupConOptions o;
    o.workspace_bytes = ws;
    report("supcon", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::supcon_loss(Q, y, set, 0.1, o); }, m, b, d, steps));
  }
  if (which == "multi_similarity" || which == "all") {
    contrastive::MultiSimilarityOptions o;
    o.workspace_bytes = ws;
    report("multi_similarity", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::multi_similarity_loss(Q, y, set, o); }, m, b, d, steps));
  }
  if (which == "contrastive" || which == "all") {
    contrastive::ContrastiveOptions o;
    o.workspace_bytes = ws;
    report("contrastive", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::batch_contrastive_loss(Q, y, set, o); }, m, b, d, steps));
  }
  if (which == "batch_hard" || which == "all") {
    contrastive::TripletOptions o;
    o.workspace_bytes = ws;
    report("batch_hard", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::batch_hard_triplet_loss(Q, y, set, o); }, m, b, d, steps));
  }
  return 0;
}
