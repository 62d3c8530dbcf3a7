// Retrieval metrics of 10,000 queries against 100,000 references (D = 128,
// float) beside the bound: the Gram product Q R^T alone, computed in the same
// row blocks by Eigen's GEMM into a reused buffer.
//
//   eval_retrieval [queries=10000] [references=100000] [dim=128] [classes=100]
//
// Random embeddings: a unit-variance centre per class plus noise of standard deviation 2. One thread (no OpenMP).
// Prints wall and CPU seconds of the GEMM bound, knn (k = 1 and k = the max
// bin count), retrieval_metrics (every AccuracyCalculator metric at
// k = max_bin_count, recall@1 and @10), and k-means NMI / AMI of the queries,
// then the ratios to the bound and the peak resident memory.
#include <contrastive/contrastive.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
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
  return static_cast<double>(usage.ru_maxrss) / 1024.0;
}

Index arg(int argc, char** argv, int i, Index fallback) {
  return argc > i ? static_cast<Index>(std::atoll(argv[i])) : fallback;
}

struct Timing {
  double wall, cpu;
};

template <class F>
Timing timed(F&& f) {
  const double c0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  return {std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), cpu_seconds() - c0};
}

}  // namespace

int main(int argc, char** argv) {
  const Index n = arg(argc, argv, 1, 10000), m = arg(argc, argv, 2, 100000);
  const Index dim = arg(argc, argv, 3, 128), classes = arg(argc, argv, 4, 100);
  std::mt19937_64 gen(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const Matrix centres = Matrix::NullaryExpr(classes, dim, [&] { return normal(gen); });
  auto sample = [&](Index rows, Eigen::VectorXi& labels) {
    labels.resize(rows);
    Matrix X(rows, dim);
    for (Index i = 0; i < rows; ++i) {
      labels(i) = static_cast<int>(gen() % static_cast<std::uint64_t>(classes));
      for (Index j = 0; j < dim; ++j) X(i, j) = centres(labels(i), j) + 2.0f * normal(gen);
    }
    return X;
  };
  Eigen::VectorXi yq, yr;
  const Matrix Q = sample(n, yq), R = sample(m, yr);
  std::printf("eval_retrieval: %ld queries x %ld references x %ld floats, %ld classes, %d Eigen thread(s)\n",
              static_cast<long>(n), static_cast<long>(m), static_cast<long>(dim), static_cast<long>(classes),
              Eigen::nbThreads());

  // The bound: Q R^T tile by tile (256 queries x 512 references, the product's fastest blocking here: a
  // whole 256 x M block is slower, bound by writing it to memory) into one reused buffer, nothing read back.
  Matrix G;
  float checksum = 0;
  const Timing gemm = timed([&] {
    for (Index q0 = 0; q0 < n; q0 += 256) {
      const Index rows = std::min<Index>(256, n - q0);
      for (Index r0 = 0; r0 < m; r0 += 512) {
        const Index cols = std::min<Index>(512, m - r0);
        G.noalias() = Q.middleRows(q0, rows) * R.middleRows(r0, cols).transpose();
        checksum += G(0, 0);
      }
    }
  });
  const double flops = 2.0 * static_cast<double>(n) * static_cast<double>(m) * static_cast<double>(dim);
  std::printf("%-44s %8.2f s wall %8.2f s cpu  (%.1f GFLOP/s; checksum %g)\n", "GEMM bound Q R^T", gemm.wall, gemm.cpu,
              flops / gemm.cpu * 1e-9, static_cast<double>(checksum));

  contrastive::KnnOptions ko;
  const Timing knn1 = timed([&] { checksum += static_cast<float>(contrastive::knn(Q, R, 1, ko).indices(0, 0)); });
  std::printf("%-44s %8.2f s wall %8.2f s cpu  %.2fx the bound\n", "knn k = 1 (Euclidean)", knn1.wall, knn1.cpu,
              knn1.cpu / gemm.cpu);

  const Timing knnk = timed([&] { checksum += static_cast<float>(contrastive::knn(Q, R, 1067, ko).indices(0, 0)); });
  std::printf("%-44s %8.2f s wall %8.2f s cpu  %.2fx the bound\n", "knn k = 1067 (Euclidean)", knnk.wall, knnk.cpu,
              knnk.cpu / gemm.cpu);

  contrastive::RetrievalOptions ro;
  ro.recall_at = {1, 10};
  contrastive::RetrievalMetrics r;
  const Timing ret = timed([&] { r = contrastive::retrieval_metrics(Q, yq, R, yr, ro); });
  char what[96];
  std::snprintf(what, sizeof what, "retrieval_metrics, k = max_bin_count = %ld", static_cast<long>(r.k));
  std::printf("%-44s %8.2f s wall %8.2f s cpu  %.2fx the bound\n", what, ret.wall, ret.cpu, ret.cpu / gemm.cpu);
  std::printf("  P@1 %.4f  R-precision %.4f  MAP@R %.4f  MAP %.4f  MRR %.4f  recall@10 %.4f\n", r.precision_at_1,
              r.r_precision, r.mean_average_precision_at_r, r.mean_average_precision, r.mean_reciprocal_rank,
              r.recall_at[1]);
  const Timing ret_cos = timed([&] { r = contrastive::retrieval_metrics<contrastive::Cosine>(Q, yq, R, yr, ro); });
  std::printf("%-44s %8.2f s wall %8.2f s cpu  %.2fx the bound\n", "retrieval_metrics, Cosine", ret_cos.wall,
              ret_cos.cpu, ret_cos.cpu / gemm.cpu);

  contrastive::ClusteringMetrics c;
  const Timing km = timed([&] { c = contrastive::clustering_metrics(Q, yq); });
  std::printf("%-44s %8.2f s wall %8.2f s cpu  (NMI %.4f, AMI %.4f)\n", "clustering_metrics (k-means of the queries)",
              km.wall, km.cpu, c.nmi, c.ami);
  std::printf("peak resident memory %.0f MiB (inputs %.0f MiB)\n", peak_mib(),
              static_cast<double>((n + m) * dim) * 4.0 / 1048576.0);
  return 0;
}
