// One large batch, one call, one thread: wall time and peak resident memory of
// every batch loss (forward + backward) and of negative_stats, against "the
// bound computed in row panels" (the two GEMM products X X^T and (N x N) * X,
// done B rows at a time so the bound itself runs in O(B N) memory).
//
//   large_batch <case> [N] [D] [workspace_MiB] [panel_rows]
//
//   case          bound | batch_hard | batch_semihard | batch_all | batch_contrastive | margin |
//                 supcon | ntxent | ntxent_views | negative_stats | all
//   N, D          rows and columns of X (default 65536, 128), float
//   workspace_MiB options.workspace_bytes of the loss (default 64); negative_stats'
//                 batch form has no such option and always runs under its own
//                 default budget (ReferenceOptions::memory_budget_bytes, 64 MiB)
//   panel_rows    B of the bound (default 256)
//
// `all` runs every case in a fresh child process (fork + exec of this binary),
// one after the other, so each peak RSS is that case's own.
//
// Data (as bench/bench_losses.cpp): rows from a standard normal normalised to
// unit length (seed 1), labels i / 4. ntxent_views takes the two halves of X as
// its views (N / 2 rows each), so its distance matrix is N x N like the others.
// Every loss is called in its caller-buffer form, loss(X, labels, ..., options,
// grad), with grad an N x D matrix allocated (and touched) before the baseline:
// no per-pair terms are materialised.
//
// Output, one line per case:
//   case N D wall_s peak_rss_MiB above_baseline_MiB value check
// wall_s: std::chrono::steady_clock around the one call; peak_rss_MiB:
// getrusage(RUSAGE_SELF).ru_maxrss after the call; above_baseline_MiB: that
// minus ru_maxrss just before the call (inputs and gradient buffer resident);
// value: the loss (negative_stats: the fraction of hard triplets); check: the
// Frobenius norm of the gradient (negative_stats: hard/semihard/easy counts).
#include <contrastive/contrastive.hpp>

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>
#include <vector>

namespace {

using contrastive::Index;
using contrastive::RowMatrix;
using Scalar = float;

constexpr double kTripletMargin = 0.2;  // unit rows: distances in [0, 2]
constexpr double kTemperature = 0.1;

const char* const kCases[] = {"bound",  "batch_hard", "batch_semihard", "batch_all", "batch_contrastive",
                              "margin", "supcon",     "ntxent",         "ntxent_views", "negative_stats"};

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

double rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

struct Outcome {
  double value = 0;
  std::string check;
};

std::string grad_norm(double norm) {
  char text[64];
  std::snprintf(text, sizeof text, "grad_norm=%.7g", norm);
  return text;
}

std::string norm_of(const RowMatrix<Scalar>& g) { return grad_norm(static_cast<double>(g.norm())); }

struct Args {
  std::string name;
  Index n = 65536;
  Index d = 128;
  std::size_t workspace = std::size_t(64) << 20;
  Index panel_rows = 256;
};

int run_case(const Args& a) {
  Eigen::setNbThreads(1);
  const Index n = a.n, d = a.d;
  const RowMatrix<Scalar> X = unit_rows(n, d, 1);
  Eigen::VectorXi labels(n);
  for (Index i = 0; i < n; ++i) labels(i) = static_cast<int>(i / 4);
  const Index half = n / 2;
  // The gradient buffer(s), touched so their pages are resident before the baseline.
  RowMatrix<Scalar> grad, grad2;
  if (a.name == "ntxent_views") {
    grad = RowMatrix<Scalar>::Zero(half, d);
    grad2 = RowMatrix<Scalar>::Zero(half, d);
  } else if (a.name != "negative_stats") {
    grad = RowMatrix<Scalar>::Zero(n, d);  // bound: dX of the backward product
  }

  using namespace contrastive;
  TripletOptions triplet;
  triplet.margin = kTripletMargin;
  triplet.workspace_bytes = a.workspace;
  ContrastiveOptions pairs;  // pos_margin 0, neg_margin 1, not squared, Mean
  pairs.workspace_bytes = a.workspace;
  MarginOptions margin;  // alpha 0.2, beta 1.2, MeanNonZero
  margin.workspace_bytes = a.workspace;
  SupConOptions supcon;
  supcon.workspace_bytes = a.workspace;
  NTXentOptions ntxent;
  ntxent.workspace_bytes = a.workspace;

  const double before = rss_mib();
  const auto start = std::chrono::steady_clock::now();
  Outcome out;
  if (a.name == "bound") {
    // The panel buffer is allocated inside the timed region, like a loss's workspace.
    const Index B = std::min(a.panel_rows, n);
    RowMatrix<Scalar> G(B, n);
    for (Index first = 0; first < n; first += B) {
      const Index rows = std::min(B, n - first);
      G.topRows(rows).noalias() = X.middleRows(first, rows) * X.transpose();
      grad.middleRows(first, rows).noalias() = G.topRows(rows) * X;
    }
    out.value = static_cast<double>(grad(0, 0));
    out.check = norm_of(grad) + " B=" + std::to_string(B);
  } else if (a.name == "batch_hard") {
    out.value = static_cast<double>(batch_hard_triplet_loss(X, labels, triplet, grad));
  } else if (a.name == "batch_semihard") {
    out.value = static_cast<double>(batch_semihard_triplet_loss(X, labels, triplet, grad));
  } else if (a.name == "batch_all") {
    out.value = static_cast<double>(batch_all_triplet_loss(X, labels, triplet, grad));
  } else if (a.name == "batch_contrastive") {
    out.value = static_cast<double>(batch_contrastive_loss(X, labels, pairs, grad));
  } else if (a.name == "margin") {
    out.value = static_cast<double>(margin_loss(X, labels, margin, grad));
  } else if (a.name == "supcon") {
    out.value = static_cast<double>(supcon_loss(X, labels, kTemperature, supcon, grad));
  } else if (a.name == "ntxent") {
    out.value = static_cast<double>(ntxent_loss(X, labels, kTemperature, ntxent, grad));
  } else if (a.name == "ntxent_views") {
    out.value = static_cast<double>(
        ntxent_loss(X.topRows(half), X.bottomRows(half), kTemperature, ntxent, grad, grad2));
  } else if (a.name == "negative_stats") {
    const NegativeStats<Scalar> s = negative_stats(X, labels, kTripletMargin);
    out.value = s.hard_fraction();
    out.check = "hard=" + std::to_string(s.hard) + " semihard=" + std::to_string(s.semihard) +
                " easy=" + std::to_string(s.easy);
  } else {
    std::fprintf(stderr, "large_batch: unknown case '%s'\n", a.name.c_str());
    return 2;
  }
  const auto stop = std::chrono::steady_clock::now();
  const double after = rss_mib();
  if (out.check.empty()) {
    out.check = a.name == "ntxent_views"
                    ? grad_norm(std::sqrt(static_cast<double>(grad.squaredNorm() + grad2.squaredNorm())))
                    : norm_of(grad);
  }
  const double seconds = std::chrono::duration<double>(stop - start).count();
  std::printf("%-18s %7ld %4ld %10.3f %10.1f %10.1f %14.7g  %s\n", a.name.c_str(), static_cast<long>(n),
              static_cast<long>(d), seconds, after, after - before, out.value, out.check.c_str());
  std::fflush(stdout);
  return 0;
}

// Every case in its own child process, one at a time.
int run_all(const char* self, int argc, char** argv) {
  int failures = 0;
  for (const char* name : kCases) {
    std::vector<std::string> args{self, name};
    for (int i = 2; i < argc; ++i) args.emplace_back(argv[i]);
    std::vector<char*> cargs;
    for (std::string& s : args) cargs.push_back(&s[0]);
    cargs.push_back(nullptr);
    std::fflush(stdout);
    const pid_t pid = fork();
    if (pid < 0) {
      std::perror("large_batch: fork");
      return 1;
    }
    if (pid == 0) {
      execv("/proc/self/exe", cargs.data());
      std::perror("large_batch: execv");
      std::_Exit(127);
    }
    int status = 0;
    if (waitpid(pid, &status, 0) < 0) {
      std::perror("large_batch: waitpid");
      return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      ++failures;
      if (WIFSIGNALED(status)) {
        std::printf("%-18s FAILED: killed by signal %d\n", name, WTERMSIG(status));
      } else {
        std::printf("%-18s FAILED: exit status %d\n", name, WEXITSTATUS(status));
      }
      std::fflush(stdout);
    }
  }
  return failures == 0 ? 0 : 1;
}

void usage() {
  std::fprintf(stderr,
               "usage: large_batch <case> [N] [D] [workspace_MiB] [panel_rows]\n"
               "  case: all | bound | batch_hard | batch_semihard | batch_all | batch_contrastive |\n"
               "        margin | supcon | ntxent | ntxent_views | negative_stats\n");
}

bool parse_positive(const char* text, long& out) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v <= 0) return false;
  out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 6) {
    usage();
    return 2;
  }
  Args a;
  a.name = argv[1];
  long values[4] = {static_cast<long>(a.n), static_cast<long>(a.d), 64, static_cast<long>(a.panel_rows)};
  for (int i = 2; i < argc; ++i) {
    if (!parse_positive(argv[i], values[i - 2])) {
      std::fprintf(stderr, "large_batch: argument %d ('%s') must be a positive integer\n", i, argv[i]);
      usage();
      return 2;
    }
  }
  a.n = values[0];
  a.d = values[1];
  a.workspace = static_cast<std::size_t>(values[2]) << 20;
  a.panel_rows = values[3];
  if (a.name == "all") {
    std::printf("# %-16s %7s %4s %10s %10s %10s %14s  %s\n", "case", "N", "D", "wall_s", "peak_MiB",
                "above_MiB", "value", "check");
    std::fflush(stdout);
    return run_all(argv[0], argc, argv);
  }
  try {
    return run_case(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "large_batch %s: %s\n", a.name.c_str(), e.what());
    return 1;
  }
}
