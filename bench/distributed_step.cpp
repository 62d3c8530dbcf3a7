// One data-parallel training step (forward + backward) of a batch loss over
// MPI: a global batch of N rows (D columns, float) split evenly across the
// ranks, each rank calling the distributed loss on its rows
// (contrastive/distributed.hpp, docs/distributed.md).
//
//   mpirun -np P distributed_step [N] [D] [steps] [loss ...]
//
//   N, D     global batch rows and columns (default 8192, 128)
//   steps    timed steps per loss (default 7; one untimed warm-up step first); the median is reported
//   loss     supcon | batch_hard | multi_similarity | contrastive | batch_all | single (default: all six;
//            single: the one-process batch-form call of each loss on the whole batch, rank 0 alone)
//
// Data: standard normal rows normalised to unit length, labels i mod (N / 8)
// (8 rows per class). One thread per process (no OpenMP; Eigen on one thread).
// Output (rank 0), one line per loss: the step's wall time (the slowest
// rank's; median and min), its CPU time (std::clock of the busiest rank,
// median: on a machine shared with other jobs the wall time measures the
// other jobs too; Open MPI busy-polls, so waiting in a collective counts as
// CPU time), and the bytes the busiest rank sent and received per step
// (payload of the library's collectives, Communicator::traffic()).
#include <contrastive/contrastive.hpp>
#include <contrastive/distributed.hpp>

#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <vector>

namespace {

using contrastive::Index;
using contrastive::RowMatrix;
using Scalar = float;
namespace cd = contrastive::distributed;

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Setup {
  RowMatrix<Scalar> X;  // this rank's rows
  Eigen::VectorXi labels;
  RowMatrix<Scalar> global;  // rank 0 keeps the whole batch for the single-process line
  Eigen::VectorXi global_labels;
};

Setup make(const cd::Communicator& comm, Index n, Index d) {
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  RowMatrix<Scalar> X(n, d);
  for (Index i = 0; i < X.size(); ++i) X.data()[i] = normal(gen);
  X.rowwise().normalize();
  Eigen::VectorXi y(n);
  const Index classes = std::max<Index>(1, n / 8);
  for (Index i = 0; i < n; ++i) y(i) = static_cast<int>(i % classes);
  const Index p = comm.size(), r = comm.rank();
  const Index begin = n * r / p, end = n * (r + 1) / p;
  Setup s;
  s.X = X.middleRows(begin, end - begin);
  s.labels = y.segment(begin, end - begin);
  if (r == 0) {
    s.global = std::move(X);
    s.global_labels = std::move(y);
  }
  return s;
}

template <class Step>
void time_loss(const cd::Communicator& comm, const std::string& name, const char* path, Index n, Index d, int steps,
               const Step& step) {
  step();  // warm-up
  std::vector<double> times, cpu_times;
  comm.reset_traffic();
  for (int s = 0; s < steps; ++s) {
    MPI_Barrier(comm.get());
    const double t0 = MPI_Wtime();
    const std::clock_t c0 = std::clock();
    step();
    double t[2] = {MPI_Wtime() - t0, static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC};
    double slowest[2] = {0, 0};
    MPI_Allreduce(t, slowest, 2, MPI_DOUBLE, MPI_MAX, comm.get());
    times.push_back(slowest[0]);
    cpu_times.push_back(slowest[1]);
  }
  const cd::Traffic traffic = comm.traffic();
  double mine[3] = {static_cast<double>(traffic.sent) / steps, static_cast<double>(traffic.received) / steps,
                    static_cast<double>(traffic.collectives) / steps};
  double most[3];
  MPI_Reduce(mine, most, 3, MPI_DOUBLE, MPI_MAX, 0, comm.get());
  if (comm.rank() == 0) {
    std::printf("%-19s P=%d N=%lld D=%lld %-5s wall median %.4f s min %.4f s  cpu median %.4f s  sent %.0f B  received %.0f B  collectives %.0f\n",
                name.c_str(), comm.size(), static_cast<long long>(n), static_cast<long long>(d), path, median(times),
                *std::min_element(times.begin(), times.end()), median(cpu_times), most[0], most[1], most[2]);
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    const cd::Communicator comm(MPI_COMM_WORLD);
    const Index n = argc > 1 ? std::atoll(argv[1]) : 8192;
    const Index d = argc > 2 ? std::atoll(argv[2]) : 128;
    const int steps = argc > 3 ? std::atoi(argv[3]) : 7;
    std::vector<std::string> losses;
    for (int a = 4; a < argc; ++a) losses.emplace_back(argv[a]);
    if (losses.empty()) losses = {"supcon", "batch_hard", "multi_similarity", "contrastive", "batch_all", "single"};
    const Setup s = make(comm, n, d);
    contrastive::TripletOptions triplet;
    triplet.margin = 0.2;
    const contrastive::MultiSimilarityOptions ms;
    contrastive::ContrastiveOptions contrastive_options;
    contrastive_options.pos_margin = 0.2;
    contrastive_options.neg_margin = 1.0;
    for (const std::string& loss : losses) {
      if (loss == "supcon") {
        time_loss(comm, loss, "shared", n, d, steps, [&] { return cd::supcon_loss(comm, s.X, s.labels, 0.1); });
      } else if (loss == "batch_hard") {
        time_loss(comm, loss, "shared", n, d, steps,
                  [&] { return cd::batch_hard_triplet_loss<contrastive::Cosine>(comm, s.X, s.labels, triplet); });
      } else if (loss == "multi_similarity") {
        time_loss(comm, loss, "shared", n, d, steps, [&] { return cd::multi_similarity_loss(comm, s.X, s.labels, ms); });
      } else if (loss == "contrastive") {
        time_loss(comm, loss, "pairs", n, d, steps, [&] { return cd::batch_contrastive_loss(comm, s.X, s.labels, contrastive_options); });
      } else if (loss == "batch_all") {
        time_loss(comm, loss, "whole", n, d, steps,
                  [&] { return cd::batch_all_triplet_loss<contrastive::Cosine>(comm, s.X, s.labels, triplet); });
      } else if (loss == "single" && comm.size() == 1) {
        // The batch-form calls on the whole batch, no MPI: the 1-process baseline.
        time_loss(comm, "supcon/batch", "batch", n, d, steps, [&] { return contrastive::supcon_loss(s.global, s.global_labels, 0.1); });
        time_loss(comm, "batch_hard/batch", "batch", n, d, steps, [&] {
          return contrastive::batch_hard_triplet_loss<contrastive::Cosine>(s.global, s.global_labels, triplet);
        });
        time_loss(comm, "multi_sim/batch", "batch", n, d, steps,
                  [&] { return contrastive::multi_similarity_loss(s.global, s.global_labels, ms); });
        time_loss(comm, "contrastive/batch", "batch", n, d, steps,
                  [&] { return contrastive::batch_contrastive_loss(s.global, s.global_labels, contrastive_options); });
        time_loss(comm, "batch_all/batch", "batch", n, d, steps, [&] {
          return contrastive::batch_all_triplet_loss<contrastive::Cosine>(s.global, s.global_labels, triplet);
        });
      }
    }
  }
  MPI_Finalize();
  return 0;
}
