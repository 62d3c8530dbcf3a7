// Google Benchmark of every metric and loss, forward + backward ("fb") and
// value only ("value"), against the bound: the work no implementation can
// avoid, the Gram product X X^T plus one N x N x D product, timed with Eigen
// on the same data.
//
// Benchmark names: <case>/<mode>/<scalar>/<N>/<D>/threads:<t>
//   case   a metric, a loss, or "bound" (fb: Gram + one product; value: Gram only)
//   mode   fb | value
// Threads: Eigen's GEMM threads and the losses' OpenMP passes (when built with
// OpenMP); Google Benchmark's own threading is not used.
//
// Data (the same as bench/compare_torch.py): rows drawn from a standard normal
// and normalised to unit length (as embeddings usually are, so margins of 0.2
// give a mix of easy, semi-hard and hard negatives); labels i / 4 (P x K
// batches, K = 4); explicit-pair losses pair row i of X with row i of a second
// matrix; ntxent's two views are the two halves of X (N / 2 rows each, so its
// Gram matrix is N x N like every other batch loss).
//
// `bench_losses --peak-memory=<case>/<mode>/<scalar>/<N>/<D>` runs one call in
// a fresh process and prints the peak resident memory above the inputs, in KiB.
#include <contrastive/contrastive.hpp>
#include <contrastive/losses/batch_all_triplet_loss.hpp>
#include <contrastive/losses/batch_hard_triplet_loss.hpp>
#include <contrastive/losses/batch_semihard_triplet_loss.hpp>
#include <contrastive/losses/contrastive_loss.hpp>
#include <contrastive/losses/cosine_embedding_loss.hpp>
#include <contrastive/losses/circle_loss.hpp>
#include <contrastive/losses/margin_loss.hpp>
#include <contrastive/losses/lifted_structure_loss.hpp>
#include <contrastive/losses/multi_similarity_loss.hpp>
#include <contrastive/losses/nca_loss.hpp>
#include <contrastive/losses/npairs_loss.hpp>
#include <contrastive/losses/ntxent_loss.hpp>
#include <contrastive/losses/similarity_regression_loss.hpp>
#include <contrastive/losses/supcon_loss.hpp>
#include <contrastive/losses/triplet_margin_loss.hpp>
#include <contrastive/losses/tuplet_margin_loss.hpp>
#include <contrastive/losses/angular_loss.hpp>
#include <contrastive/losses/vicreg_loss.hpp>

#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <Eigen/Core>

#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace {

using contrastive::Index;
using contrastive::RowMatrix;
using contrastive::Vector;

template <class Scalar>
struct Batch {
  RowMatrix<Scalar> X, X2, X3;    // N x D unit rows
  Eigen::VectorXi labels;         // i / 4
  Eigen::VectorXi similar;        // explicit pairs: 1 for even i
  Eigen::VectorXi sign;           // cosine_embedding_loss targets: +1 / -1
  Vector<Scalar> score;           // similarity_regression_loss targets in [0, 1]
  RowMatrix<Scalar> dD;           // upstream gradient for the metric benchmarks
  RowMatrix<Scalar> W;            // bound: the N x N weight matrix of the backward product
};

template <class Scalar>
RowMatrix<Scalar> unit_rows(Index n, Index d, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RowMatrix<Scalar> X(n, d);
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < d; ++j) X(i, j) = static_cast<Scalar>(normal(gen));
    X.row(i).normalize();
  }
  return X;
}

template <class Scalar>
Batch<Scalar> make_batch(Index n, Index d) {
  Batch<Scalar> b;
  b.X = unit_rows<Scalar>(n, d, 1);
  b.X2 = unit_rows<Scalar>(n, d, 2);
  b.X3 = unit_rows<Scalar>(n, d, 3);
  b.labels.resize(n);
  b.similar.resize(n);
  b.sign.resize(n);
  b.score.resize(n);
  for (Index i = 0; i < n; ++i) {
    b.labels(i) = static_cast<int>(i / 4);
    b.similar(i) = i % 2 == 0 ? 1 : 0;
    b.sign(i) = i % 2 == 0 ? 1 : -1;
    b.score(i) = static_cast<Scalar>(static_cast<double>(i % 11) / 10.0);
  }
  b.dD = unit_rows<Scalar>(n, n, 4);
  b.W = b.dD;
  return b;
}

// One case: runs the call once and returns something that depends on its result.
template <class Scalar>
using CaseFn = std::function<Scalar(const Batch<Scalar>&, bool value_only)>;

template <class Metric, class Scalar>
Scalar metric_case(const Batch<Scalar>& b, bool value_only) {
  const contrastive::ConstRowRef<Scalar> x(b.X);
  const auto forward = Metric::template pairwise<Scalar>(x, x, true);
  if (value_only) return forward.distances(0, 1);
  RowMatrix<Scalar> dX;
  Metric::template pairwise_backward<Scalar>(forward, x, x, b.dD, dX, nullptr);
  return dX(0, 0);
}

template <class Scalar>
Scalar bound_case(const Batch<Scalar>& b, bool value_only) {
  RowMatrix<Scalar> G;
  G.noalias() = b.X * b.X.transpose();
  if (value_only) return G(0, 1);
  RowMatrix<Scalar> dX;
  dX.noalias() = b.W * b.X;
  return G(0, 1) + dX(0, 0);
}

// Full call or value only; the result of the full call is touched so nothing is elided.
template <class Scalar, class Full, class Value>
Scalar either(bool value_only, Full&& full, Value&& value) {
  if (value_only) return value();
  const auto r = full();
  return r.value + r.grad[0](0, 0);
}

constexpr double kTripletMargin = 0.2;  // unit rows: distances in [0, 2]
constexpr double kTemperature = 0.1;

template <class Scalar>
std::vector<std::pair<std::string, CaseFn<Scalar>>> cases() {
  using namespace contrastive;
  TripletOptions triplet;
  triplet.margin = kTripletMargin;
  const ContrastiveOptions pairs;  // pos_margin 0, neg_margin 1, not squared, Mean
  const MarginOptions margin;      // alpha 0.2, beta 1.2, MeanNonZero
  const NTXentOptions ntxent;
  std::vector<std::pair<std::string, CaseFn<Scalar>>> c;
  c.emplace_back("bound", bound_case<Scalar>);
  c.emplace_back("euclidean", metric_case<Euclidean, Scalar>);
  c.emplace_back("squared_euclidean", metric_case<SquaredEuclidean, Scalar>);
  c.emplace_back("cosine", metric_case<Cosine, Scalar>);
  c.emplace_back("contrastive", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return contrastive_loss(b.X, b.X2, b.similar, pairs); },
        [&] { return contrastive_loss(b.X, b.X2, b.similar, pairs, value_only); });
  });
  c.emplace_back("triplet_margin", [=](const Batch<Scalar>& b, bool v) {
    TripletOptions o;  // torch.nn.TripletMarginLoss defaults: margin 1
    return either<Scalar>(
        v, [&] { return triplet_margin_loss(b.X, b.X2, b.X3, o); },
        [&] { return triplet_margin_loss(b.X, b.X2, b.X3, o, value_only); });
  });
  c.emplace_back("cosine_embedding", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return cosine_embedding_loss(b.X, b.X2, b.sign); },
        [&] { return cosine_embedding_loss(b.X, b.X2, b.sign, 0.0, Reduction::Mean, value_only); });
  });
  c.emplace_back("similarity_regression", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return similarity_regression_loss<Cosine>(b.X, b.X2, b.score); },
        [&] { return similarity_regression_loss<Cosine>(b.X, b.X2, b.score, Reduction::Mean, value_only); });
  });
  c.emplace_back("batch_contrastive", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return batch_contrastive_loss(b.X, b.labels, pairs); },
        [&] { return batch_contrastive_loss(b.X, b.labels, pairs, value_only); });
  });
  c.emplace_back("batch_all", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return batch_all_triplet_loss(b.X, b.labels, triplet); },
        [&] { return batch_all_triplet_loss(b.X, b.labels, triplet, value_only); });
  });
  c.emplace_back("batch_hard", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return batch_hard_triplet_loss(b.X, b.labels, triplet); },
        [&] { return batch_hard_triplet_loss(b.X, b.labels, triplet, value_only); });
  });
  c.emplace_back("batch_semihard", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return batch_semihard_triplet_loss(b.X, b.labels, triplet); },
        [&] { return batch_semihard_triplet_loss(b.X, b.labels, triplet, value_only); });
  });
  c.emplace_back("margin", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return margin_loss(b.X, b.labels, margin); },
        [&] { return margin_loss(b.X, b.labels, margin, value_only); });
  });
  c.emplace_back("ntxent", [=](const Batch<Scalar>& b, bool v) {
    const Index half = b.X.rows() / 2;
    return either<Scalar>(
        v, [&] { return ntxent_loss(b.X.topRows(half), b.X.bottomRows(half), kTemperature, ntxent); },
        [&] {
          return ntxent_loss(b.X.topRows(half), b.X.bottomRows(half), kTemperature, ntxent, value_only);
        });
  });
  c.emplace_back("supcon", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return supcon_loss(b.X, b.labels, kTemperature); },
        [&] { return supcon_loss(b.X, b.labels, kTemperature, SupConOptions{}, value_only); });
  });
  c.emplace_back("multi_similarity", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return multi_similarity_loss(b.X, b.labels); },
        [&] { return multi_similarity_loss(b.X, b.labels, MultiSimilarityOptions{}, value_only); });
  });
  c.emplace_back("circle", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return circle_loss(b.X, b.labels); },
        [&] { return circle_loss(b.X, b.labels, CircleOptions{}, value_only); });
  });
  c.emplace_back("lifted_structure", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return lifted_structure_loss(b.X, b.labels); },
        [&] { return lifted_structure_loss(b.X, b.labels, LiftedStructureOptions{}, value_only); });
  });
  c.emplace_back("generalized_lifted", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return generalized_lifted_structure_loss(b.X, b.labels); },
        [&] { return generalized_lifted_structure_loss(b.X, b.labels, LiftedStructureOptions{}, value_only); });
  });
  c.emplace_back("nca", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return nca_loss(b.X, b.labels); },
        [&] { return nca_loss(b.X, b.labels, NCAOptions{}, value_only); });
  });
  c.emplace_back("npairs", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return npairs_loss(b.X, b.labels); },
        [&] { return npairs_loss(b.X, b.labels, NPairsOptions{}, value_only); });
  });
  c.emplace_back("batch_all_soft", [=](const Batch<Scalar>& b, bool v) {
    TripletOptions soft = triplet;  // softplus(d_ap - d_an + margin): O(N P N_neg) per call
    soft.soft = true;
    return either<Scalar>(
        v, [&] { return batch_all_triplet_loss(b.X, b.labels, soft); },
        [&] { return batch_all_triplet_loss(b.X, b.labels, soft, value_only); });
  });
  c.emplace_back("tuplet_margin", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return tuplet_margin_loss(b.X, b.labels); },
        [&] { return tuplet_margin_loss(b.X, b.labels, TupletMarginOptions{}, value_only); });
  });
  c.emplace_back("angular", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return angular_loss(b.X, b.labels); },
        [&] { return angular_loss(b.X, b.labels, AngularOptions{}, value_only); });
  });
  c.emplace_back("vicreg", [=](const Batch<Scalar>& b, bool v) {
    return either<Scalar>(
        v, [&] { return vicreg_loss(b.X, b.X2); },
        [&] { return vicreg_loss(b.X, b.X2, VICRegOptions{}, value_only); });
  });
  return c;
}

void set_threads(int threads) {
  Eigen::setNbThreads(threads);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

template <class Scalar>
const char* scalar_name() {
  return sizeof(Scalar) == sizeof(float) ? "float" : "double";
}

struct Size {
  Index n, d;
};
const Size kSizes[] = {{256, 128}, {1024, 128}, {4096, 256}};

template <class Scalar>
void register_all() {
  for (const auto& [name, fn] : cases<Scalar>()) {
    for (const bool value_only : {false, true}) {
      for (const Size size : kSizes) {
        for (const int threads : {1, 2}) {
          const std::string full = name + (value_only ? "/value/" : "/fb/") + scalar_name<Scalar>() +
                                   "/" + std::to_string(size.n) + "/" + std::to_string(size.d) +
                                   "/threads:" + std::to_string(threads);
          const CaseFn<Scalar> call = fn;
          benchmark::RegisterBenchmark(full.c_str(), [=](benchmark::State& state) {
            // Built once per benchmark, outside the timed loop, and freed after it.
            const Batch<Scalar> batch = make_batch<Scalar>(size.n, size.d);
            set_threads(threads);
            for (auto _ : state) benchmark::DoNotOptimize(call(batch, value_only));
            set_threads(1);
          })->Unit(benchmark::kMillisecond)->UseRealTime();
        }
      }
    }
  }
}

long peak_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

template <class Scalar>
int peak_memory(const std::string& name, bool value_only, Index n, Index d) {
  const Batch<Scalar> batch = make_batch<Scalar>(n, d);
  set_threads(1);
  for (const auto& [case_name, fn] : cases<Scalar>()) {
    if (case_name != name) continue;
    const long before = peak_rss_kib();
    benchmark::DoNotOptimize(fn(batch, value_only));
    std::printf("%ld\n", peak_rss_kib() - before);
    return 0;
  }
  std::fprintf(stderr, "unknown case %s\n", name.c_str());
  return 2;
}

// --peak-memory=<case>/<mode>/<scalar>/<N>/<D>
int peak_memory_main(const char* spec) {
  char name[64], mode[16], scalar[16];
  long n = 0, d = 0;
  if (std::sscanf(spec, "%63[^/]/%15[^/]/%15[^/]/%ld/%ld", name, mode, scalar, &n, &d) != 5) {
    std::fprintf(stderr, "expected --peak-memory=<case>/<fb|value>/<float|double>/<N>/<D>\n");
    return 2;
  }
  const bool value_only = std::strcmp(mode, "value") == 0;
  if (std::strcmp(scalar, "float") == 0) return peak_memory<float>(name, value_only, n, d);
  return peak_memory<double>(name, value_only, n, d);
}

}  // namespace

int main(int argc, char** argv) {
  const char* flag = "--peak-memory=";
  if (argc == 2 && std::strncmp(argv[1], flag, std::strlen(flag)) == 0) {
    return peak_memory_main(argv[1] + std::strlen(flag));
  }
  register_all<float>();
  register_all<double>();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
