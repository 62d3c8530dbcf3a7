// One rank's compute on the distributed shared-tiles path, without MPI: the
// batch form of a loss on the whole global batch with a TileShare that gives
// this process part 0 of P (engine/tile_share.hpp) and whose collectives do
// nothing. What it times is what rank 0 of P ranks computes per step: 1/P of
// the tiles plus the per-row work every rank repeats (the metric's row
// transform, finish over every anchor, the N x D gradient's passes); the
// gather and the all-reduces are not in it. docs/distributed.md's scaling
// estimate is built on it.
//
//   shared_tiles_rank [N] [D] [steps] [P ...]
//
// Defaults: N = 8192, D = 128, 5 steps, P = 1 2 64 1024. Data: unit rows of
// standard normals, labels i mod (N / 8), float, one thread. Prints, per loss
// and P, the median wall time of a forward + backward step and its ratio to
// P = 1's time divided by P (1.00: perfect scaling of the compute).
#include <contrastive/contrastive.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

using contrastive::Index;
using contrastive::RowMatrix;
using Scalar = float;
namespace cdt = contrastive::detail;

// Part 0 of `parts`; every collective leaves this part's values as they are.
class SilentShare final : public cdt::TileShare<Scalar> {
 public:
  explicit SilentShare(int parts) : cdt::TileShare<Scalar>(0, parts) {}
  void sum(Scalar*, Index) const override {}
  void min(Scalar*, Index) const override {}
  void max(Scalar*, Index) const override {}
  void min(std::int32_t*, Index) const override {}
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <class Step>
double time_step(int steps, const Step& step) {
  step();  // warm-up
  std::vector<double> t;
  for (int s = 0; s < steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    step();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(t);
}

}  // namespace

int main(int argc, char** argv) {
  const Index n = argc > 1 ? std::atoll(argv[1]) : 8192;
  const Index d = argc > 2 ? std::atoll(argv[2]) : 128;
  const int steps = argc > 3 ? std::atoi(argv[3]) : 5;
  std::vector<int> parts;
  for (int a = 4; a < argc; ++a) parts.push_back(std::atoi(argv[a]));
  if (parts.empty()) parts = {1, 2, 64, 1024};

  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  RowMatrix<Scalar> X(n, d);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(gen);
  X.rowwise().normalize();
  contrastive::LabelVector y(n);
  const Index classes = std::max<Index>(1, n / 8);
  for (Index i = 0; i < n; ++i) y(i) = static_cast<int>(i % classes);
  const contrastive::ConstRowRef<Scalar> x(X);

  contrastive::TripletOptions triplet;
  triplet.margin = 0.2;
  const contrastive::MultiSimilarityOptions ms;
  const contrastive::SupConOptions sc;
  const contrastive::Cosine cosine;
  struct Case {
    const char* name;
    std::function<void(const cdt::TileShare<Scalar>*)> step;
  };
  const std::vector<Case> cases = {
      {"supcon", [&](const cdt::TileShare<Scalar>* share) {
         cdt::Gradients<Scalar> g;
         cdt::SupConLoss::eval<Scalar>(cosine, cdt::BatchSource<Scalar>{x, y, share}, 0.1, sc, &g, nullptr);
       }},
      {"batch_hard", [&](const cdt::TileShare<Scalar>* share) {
         cdt::Gradients<Scalar> g;
         cdt::BatchHardTripletLoss::eval<Scalar>(cosine, cdt::BatchSource<Scalar>{x, y, share}, triplet, &g, nullptr);
       }},
      {"multi_similarity", [&](const cdt::TileShare<Scalar>* share) {
         cdt::Gradients<Scalar> g;
         cdt::MultiSimilarityLoss::eval<Scalar>(cosine, cdt::BatchSource<Scalar>{x, y, share}, ms, &g, nullptr);
       }},
  };
  for (const Case& c : cases) {
    double one = 0;
    for (int p : parts) {
      const SilentShare share(p);
      const double t = time_step(steps, [&] { c.step(p == 1 ? nullptr : &share); });
      if (p == 1) one = t;
      std::printf("%-17s N=%lld D=%lld P=%-5d rank 0 step median %.4f s", c.name, static_cast<long long>(n),
                  static_cast<long long>(d), p, t);
      if (one > 0) std::printf("  time / (P=1 time / P) %.2f", t / (one / p));
      std::printf("\n");
      std::fflush(stdout);
    }
  }
  return 0;
}
