// Mining a batch of anchors against a large gallery (memory bank), block-wise.
//
//   mine_gallery [anchors=2000] [gallery=200000] [dim=128] [classes=1000]
//
// Random float embeddings: a unit-variance centre per class plus unit noise.
// Prints the wall time of each miner and the peak resident memory
// (getrusage ru_maxrss), which must stay well under 1 GiB: the gallery itself
// plus one 64 MiB block of distances (ReferenceOptions::memory_budget_bytes).
#include <contrastive/contrastive.hpp>

#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace {

using contrastive::Index;
using Matrix = contrastive::RowMatrix<float>;

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

double peak_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // KiB on Linux
}

Index arg(int argc, char** argv, int i, Index fallback) {
  return argc > i ? static_cast<Index>(std::atoll(argv[i])) : fallback;
}

// Wall time of f; its CPU time (user + system, all threads) goes to *cpu. On a
// shared machine the CPU time is the steadier number.
template <class F>
double seconds(F&& f, double* cpu) {
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  *cpu = cpu_seconds() - c0;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const Index anchors = arg(argc, argv, 1, 2000), gallery = arg(argc, argv, 2, 200000);
  const Index dim = arg(argc, argv, 3, 128), classes = arg(argc, argv, 4, 1000);
  std::mt19937_64 gen(42);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const Matrix centres = Matrix::NullaryExpr(classes, dim, [&] { return normal(gen); });
  auto sample = [&](Index rows, Eigen::VectorXi& labels) {
    Matrix X(rows, dim);
    labels.resize(rows);
    for (Index i = 0; i < rows; ++i) {
      labels(i) = static_cast<int>(i % classes);
      for (Index j = 0; j < dim; ++j) X(i, j) = centres(labels(i), j) + normal(gen);
    }
    return X;
  };
  Eigen::VectorXi labels, ref_labels;
  const Matrix X = sample(anchors, labels);
  const Matrix R = sample(gallery, ref_labels);
  std::printf("anchors %ld x %ld against gallery %ld x %ld (float, %ld classes); inputs %.1f MiB, peak so far %.1f MiB\n",
              static_cast<long>(anchors), static_cast<long>(dim), static_cast<long>(gallery),
              static_cast<long>(dim), static_cast<long>(classes),
              static_cast<double>((anchors + gallery) * dim) * sizeof(float) / (1024.0 * 1024.0), peak_mib());

  const double margin = 0.5 * std::sqrt(2.0 * static_cast<double>(dim)) / 4;
  contrastive::NegativeStats<float> stats;
  double cpu = 0;
  double t = seconds([&] { stats = contrastive::negative_stats(X, labels, R, ref_labels, margin); }, &cpu);
  std::printf("negative_stats      %7.2f s wall %7.2f s cpu  triplets %lld: hard %.4f semi-hard %.4f easy %.4f  peak %.1f MiB\n", t, cpu,
              static_cast<long long>(stats.triplets()), stats.hard_fraction(), stats.semihard_fraction(),
              stats.easy_fraction(), peak_mib());
  std::fflush(stdout);

  contrastive::MineOptions options;
  options.max_per_anchor = 16;
  options.seed = 7;
  contrastive::Triplets mined;
  t = seconds([&] {
    mined = contrastive::mine_triplets(X, labels, R, ref_labels, margin,
                                       contrastive::NegativeKind::Hard | contrastive::NegativeKind::SemiHard, options);
  }, &cpu);
  std::printf("mine_triplets (16)  %7.2f s wall %7.2f s cpu  triplets %ld  peak %.1f MiB\n", t, cpu,
              static_cast<long>(mined.size()), peak_mib());
  std::fflush(stdout);

  t = seconds([&] { mined = contrastive::mine_batch_hard(X, labels, R, ref_labels); }, &cpu);
  std::printf("mine_batch_hard     %7.2f s wall %7.2f s cpu  triplets %ld  peak %.1f MiB\n", t, cpu,
              static_cast<long>(mined.size()), peak_mib());
  return 0;
}
