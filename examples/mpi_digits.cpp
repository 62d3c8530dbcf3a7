// Data-parallel metric learning over MPI: the train_digits MLP (64-512-16,
// Adam, warped training images, P x K batches) with each batch split across
// the ranks. Rank r embeds its rows of the batch, the distributed loss
// (contrastive/distributed.hpp) returns the global batch's loss and dL/d(its
// embeddings), the MLP backpropagates them into its share of the parameter
// gradients, and one all-reduce sums the shares: every rank takes the same
// Adam step as one process would on the whole batch (to rounding), so the
// held-out Recall@1 is the one-process figure.
//
//   mpirun -np 2 mpi_digits [--loss batch_hard|supcon] [--epochs 30] [--seed 1]
//
// Every rank draws the same batches, warps and initial weights from the same
// seed; only the embedding work, the loss's anchors and the backward pass
// are split. Rank 0 prints the held-out Recall@1 per epoch and at the end.
#include <contrastive/contrastive.hpp>
#include <contrastive/distributed.hpp>

#include "digits/adam.hpp"
#include "digits/augment.hpp"
#include "digits/batches.hpp"
#include "digits/dataset.hpp"
#include "digits/evaluate.hpp"
#include "digits/mlp.hpp"

#include <mpi.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <stdexcept>
#include <string>

namespace {

using namespace digits;
namespace cd = contrastive::distributed;

struct Options {
  std::string loss = "batch_hard";
  long epochs = 30;
  unsigned seed = 1;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int a = 1; a < argc; ++a) {
    const std::string flag = argv[a];
    if (a + 1 >= argc) throw std::invalid_argument("flag '" + flag + "' needs a value");
    const std::string value = argv[++a];
    if (flag == "--loss" && (value == "batch_hard" || value == "supcon")) {
      o.loss = value;
    } else if (flag == "--epochs") {
      o.epochs = std::stol(value);
    } else if (flag == "--seed") {
      o.seed = static_cast<unsigned>(std::stoul(value));
    } else {
      throw std::invalid_argument("unknown flag or value '" + flag + " " + value +
                                  "'; usage: mpi_digits [--loss batch_hard|supcon] [--epochs N] [--seed S]");
    }
  }
  return o;
}

void allreduce_sum(const cd::Communicator& comm, Matrix& m) {
  comm.allreduce_sum(m.data(), m.size());
}

int train(const cd::Communicator& comm, const Options& o) {
  Dataset all = load_csv(CONTRASTIVE_DIGITS_CSV);
  std::mt19937 rng(o.seed);
  Dataset train_set, test_set;
  stratified_split(all, 0.3, rng, train_set, test_set);
  train_set.pixels /= 16.0f;
  test_set.pixels /= 16.0f;
  const Index p = 10, k = 8, batch_rows = p * k;
  Mlp net(kPixels, 512, 16, true, rng);
  const double lr = 2e-3;
  Adam adam(lr, 0.01);
  PkSampler sampler(train_set.labels, kClasses, p, k, rng);
  const long batches = static_cast<long>(sampler.batches_per_epoch());
  // This rank's rows of every batch.
  const Index first = batch_rows * comm.rank() / comm.size();
  const Index rows = batch_rows * (comm.rank() + 1) / comm.size() - first;
  contrastive::TripletOptions triplet;
  triplet.margin = 0.5;
  if (comm.rank() == 0) {
    std::printf("mpi_digits: %d processes, %ld of %ld rows of each batch on rank 0; %s loss; %ld epochs x %ld batches\n",
                comm.size(), static_cast<long>(rows), static_cast<long>(batch_rows), o.loss.c_str(), o.epochs, batches);
  }
  Mlp::Cache cache;
  Matrix dE;
  double recall = 0;
  for (long epoch = 1; epoch <= o.epochs; ++epoch) {
    double loss_sum = 0;
    for (long b = 0; b < batches; ++b) {
      const double progress = static_cast<double>((epoch - 1) * batches + b) / static_cast<double>(o.epochs * batches);
      adam.set_learning_rate(0.5 * lr * (1.0 + std::cos(3.141592653589793 * progress)));
      Dataset batch = select_rows(train_set, sampler.next());
      batch.pixels = random_warp(batch.pixels, WarpOptions{}, rng);  // the whole batch: every rank's rng stays in step
      const Matrix mine = batch.pixels.middleRows(first, rows);
      const contrastive::LabelVector labels = batch.labels.segment(first, rows);
      const Matrix E = net.forward(mine, &cache);
      dE.resize(E.rows(), E.cols());
      const float loss = o.loss == "supcon"
                             ? cd::supcon_loss<contrastive::Euclidean>(comm, E, labels, 0.1, contrastive::SupConOptions{}, dE)
                             : cd::batch_hard_triplet_loss<contrastive::Euclidean>(comm, E, labels, triplet, dE);
      loss_sum += static_cast<double>(loss);
      // dL/dE of this rank's rows is its slice of the global batch's: its backward
      // pass gives its share of the parameter gradient; the shares add up.
      MlpParameters grads = net.backward(cache, dE);
      allreduce_sum(comm, grads.W1);
      allreduce_sum(comm, grads.b1);
      allreduce_sum(comm, grads.W2);
      allreduce_sum(comm, grads.b2);
      adam.step(net.parameters(), grads);
    }
    recall = recall_at_1<contrastive::Euclidean>(net.forward(test_set.pixels), test_set.labels);
    if (comm.rank() == 0) std::printf("epoch %3ld  loss %.4f  held-out R@1 %.4f\n", epoch, loss_sum / static_cast<double>(batches), recall);
  }
  if (comm.rank() == 0) std::printf("held-out Recall@1 %.4f\n", recall);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int status = 1;
  try {
    const cd::Communicator comm(MPI_COMM_WORLD);
    status = train(comm, parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mpi_digits: error: %s\n", e.what());
    status = 1;
  }
  MPI_Finalize();
  return status;
}
