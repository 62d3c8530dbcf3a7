// One training step of CrossBatchMemory at scale: a batch of B rows against a
// full memory of M rows (D columns), per loss, against the GEMM bound of the
// step: the two B x M x D products the loss cannot avoid (the distances
// Q R^T forward, dL/dQ = W R backward; memory rows need no gradient).
//
//   cross_batch_memory <loss> [M] [B] [D] [steps] [workspace_MiB]
//
//   loss   bound | supcon | multi_similarity | contrastive | batch_hard | all
//   M, B, D   memory rows, batch rows, columns (default 65536, 256, 128), float
//   steps     timed steps after the memory is full (default 5); each is followed
//             by one run of the bound, and the ratio is the median of the per-step ratios
//
// Data: standard normal rows normalised to unit length, labels i mod 1000.
// Single-threaded (no OpenMP; Eigen on one thread). Output, one line per case:
//   case M B D median_step_s median_bound_s median_ratio
// batch_contrastive runs through its gradient-output form: its full result
// would also carry one term per (query, memory row) pair, B x M, which a
// training step does not use.
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

// The two products of a step, whole (the fastest way the GEMM does them), in
// buffers allocated once: the bound pays no page faults.
class Bound {
 public:
  Bound(Index m, Index b, Index d) : Q_(unit_rows(b, d, 1)), R_(unit_rows(m, d, 2)), G_(b, m), dQ_(b, d) {}
  double step() {
    const auto t0 = std::chrono::steady_clock::now();
    G_.noalias() = Q_ * R_.transpose();
    dQ_.noalias() = G_ * R_;
    return seconds_since(t0);
  }
  double check() const { return double(dQ_.norm()); }

 private:
  RowMatrix<Scalar> Q_, R_, G_, dQ_;
};

struct Timing {
  double step_s, bound_s, ratio;
};

// Each timed step is followed by one run of the bound, so that a step and its
// bound see the same machine (shared, noisy): the ratio reported is the median
// of the per-step ratios.
template <class Loss>
Timing run(const Loss& loss, Bound& bound, Index m, Index b, Index d, int steps) {
  contrastive::CrossBatchMemory<Scalar> memory(d, m);
  std::vector<int> labels(static_cast<std::size_t>(b));
  // Fill the memory first (untimed), with a loss that does nothing: the
  // timed steps are then most of the run, and of its profile.
  auto fill = [](const auto& Q, const auto&, const auto&) {
    contrastive::LossResult<Scalar> r;
    r.grad.assign(1, RowMatrix<Scalar>::Zero(Q.rows(), Q.cols()));
    return r;
  };
  unsigned seed = 10;
  for (Index filled = 0; filled < m; filled += b) {
    const RowMatrix<Scalar> X = unit_rows(b, d, ++seed);
    for (Index i = 0; i < b; ++i) labels[std::size_t(i)] = int((filled + i) % 1000);
    memory(fill, X, labels);
  }
  std::vector<double> t, tb, ratio;
  double check = 0;
  for (int s = 0; s < steps; ++s) {
    const RowMatrix<Scalar> X = unit_rows(b, d, ++seed);
    for (Index i = 0; i < b; ++i) labels[std::size_t(i)] = int((s * b + i) % 1000);
    const auto t0 = std::chrono::steady_clock::now();
    const contrastive::LossResult<Scalar> r = memory(loss, X, labels);
    t.push_back(seconds_since(t0));
    tb.push_back(bound.step());
    ratio.push_back(t.back() / tb.back());
    check += double(r.value) + double(r.grad[0].norm());
  }
  std::printf("# check %g (bound %g)\n", check, bound.check());
  return Timing{median(t), median(tb), median(ratio)};
}

// The loss through its gradient-output form, for a loss whose full result
// also carries per-pair terms (batch_contrastive: one per (query, memory row),
// B x M), which a training step does not use.
template <class Loss>
auto without_terms(const Loss& loss) {
  return [loss](const auto& Q, const auto& y, const auto& set) {
    contrastive::LossResult<Scalar> r;
    r.grad.emplace_back(Q.rows(), Q.cols());
    r.value = loss(Q, y, set, r.grad[0]);
    return r;
  };
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
  Bound bound(m, b, d);
  bound.step();  // first touch of its buffers
  auto report = [&](const char* name, const Timing& t) {
    std::printf("%s %ld %ld %ld %.4f %.4f %.2f\n", name, long(m), long(b), long(d), t.step_s, t.bound_s, t.ratio);
  };
  if (which == "bound" || which == "all") {
    std::vector<double> tb;
    for (int s = 0; s < steps; ++s) tb.push_back(bound.step());
    report("bound", Timing{median(tb), median(tb), 1.0});
  }
  if (which == "supcon" || which == "all") {
    contrastive::SupConOptions o;
    o.workspace_bytes = ws;
    report("supcon", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::supcon_loss(Q, y, set, 0.1, o); }, bound, m, b, d, steps));
  }
  if (which == "multi_similarity" || which == "all") {
    contrastive::MultiSimilarityOptions o;
    o.workspace_bytes = ws;
    report("multi_similarity", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::multi_similarity_loss(Q, y, set, o); }, bound, m, b, d, steps));
  }
  if (which == "contrastive" || which == "all") {
    contrastive::ContrastiveOptions o;
    o.workspace_bytes = ws;
    report("contrastive", run(without_terms([&](const auto& Q, const auto& y, const auto& set, auto& g) { return contrastive::batch_contrastive_loss(Q, y, set, o, g); }), bound, m, b, d, steps));
  }
  if (which == "batch_hard" || which == "all") {
    contrastive::TripletOptions o;
    o.workspace_bytes = ws;
    report("batch_hard", run([&](const auto& Q, const auto& y, const auto& set) { return contrastive::batch_hard_triplet_loss(Q, y, set, o); }, bound, m, b, d, steps));
  }
  return 0;
}
