// The libtorch adapter's overhead: forward + backward through
// contrastive::libtorch (a torch::autograd::Function around the library call,
// then loss.backward() into the embeddings' .grad) against the direct library
// call returning the value and dL/dX (LossResult), on the same data, one thread
// (torch::set_num_threads(1); built without OpenMP). The target is at
// most 5% at N = 1024, D = 128.
//
// Benchmark names: <loss>/<direct|adapter>/<N>/<D>. Data as bench_losses:
// unit rows from a standard normal, float32, labels i / 4.
//
//   bench_libtorch --benchmark_repetitions=10 --benchmark_report_aggregates_only=true
#include <contrastive/libtorch.hpp>

#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>

namespace {

namespace ct = contrastive::libtorch;
using contrastive::Index;
using contrastive::RowMatrix;

struct Data {
  RowMatrix<float> X;
  Eigen::VectorXi labels;
  torch::Tensor x, y;  // the same values as tensors
};

Data make_data(Index n, Index d) {
  Data data;
  std::mt19937 gen(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  data.X.resize(n, d);
  for (Index i = 0; i < n; ++i) {
    for (Index j = 0; j < d; ++j) data.X(i, j) = static_cast<float>(normal(gen));
    data.X.row(i).normalize();
  }
  data.labels.resize(n);
  for (Index i = 0; i < n; ++i) data.labels(i) = static_cast<int>(i / 4);
  data.x = torch::from_blob(data.X.data(), {n, d}, torch::kFloat).clone().requires_grad_(true);
  data.y = torch::div(torch::arange(n, torch::kLong), 4, "floor");
  return data;
}

template <class Direct, class Adapter>
void register_loss(const std::string& name, Index n, Index d, Direct direct, Adapter adapter) {
  const std::string shape = "/" + std::to_string(n) + "/" + std::to_string(d);
  benchmark::RegisterBenchmark((name + "/direct" + shape).c_str(), [=](benchmark::State& state) {
    const Data data = make_data(n, d);
    for (auto _ : state) {
      auto result = direct(data);
      benchmark::DoNotOptimize(result.value);
      benchmark::DoNotOptimize(result.grad[0].data());
    }
  })->Unit(benchmark::kMillisecond)->UseRealTime();
  benchmark::RegisterBenchmark((name + "/adapter" + shape).c_str(), [=](benchmark::State& state) {
    Data data = make_data(n, d);
    for (auto _ : state) {
      const torch::Tensor loss = adapter(data);
      loss.backward();
      benchmark::DoNotOptimize(data.x.grad().data_ptr());
      data.x.mutable_grad() = torch::Tensor();  // zero_grad(set_to_none): the next backward stores, not adds
    }
  })->Unit(benchmark::kMillisecond)->UseRealTime();
}

}  // namespace

int main(int argc, char** argv) {
  at::set_num_threads(1);
  contrastive::TripletOptions triplet;
  triplet.margin = 0.2;
  for (const Index n : {Index(256), Index(1024)}) {
    const Index d = 128;
    register_loss(
        "batch_hard_triplet_loss", n, d,
        [triplet](const Data& data) { return contrastive::batch_hard_triplet_loss(data.X, data.labels, triplet); },
        [triplet](const Data& data) { return ct::batch_hard_triplet_loss(data.x, data.y, triplet); });
    register_loss(
        "supcon_loss", n, d, [](const Data& data) { return contrastive::supcon_loss(data.X, data.labels, 0.1); },
        [](const Data& data) { return ct::supcon_loss(data.x, data.y, 0.1); });
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
