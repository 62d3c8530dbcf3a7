// The same public call made from several threads at once, on shared const
// inputs, gives results bitwise identical to a single call. The library keeps
// no mutable global state; run under ThreadSanitizer by
// tests/hardening/sanitizers.sh tsan.
#include "hardening/workloads.hpp"
#include "support/catch.hpp"

#include <atomic>
#include <thread>
#include <vector>

using namespace contrastive_test;

namespace test_concurrency {

namespace {

constexpr int kThreads = 8;
constexpr int kRepeats = 3;

// Runs every workload from kThreads threads released together; thread t
// starts at workload t so different functions also overlap. Returns, per
// thread, the snapshots in workload order (last repeat; earlier repeats are
// compared inside the thread and a mismatch is recorded).
struct ThreadedRun {
  std::vector<std::vector<Snapshot>> results;
  std::vector<int> repeat_mismatches;
};

ThreadedRun run_threaded(const std::vector<Workload>& workloads) {
  const std::size_t count = workloads.size();
  ThreadedRun run;
  run.results.assign(kThreads, std::vector<Snapshot>(count));
  run.repeat_mismatches.assign(kThreads, 0);
  std::atomic<int> ready{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ++ready;
      while (ready.load() < kThreads) std::this_thread::yield();
      for (int r = 0; r < kRepeats; ++r) {
        for (std::size_t k = 0; k < count; ++k) {
          const std::size_t w = (k + static_cast<std::size_t>(t)) % count;
          Snapshot s = workloads[w].run();
          if (r > 0 && s != run.results[static_cast<std::size_t>(t)][w]) {
            ++run.repeat_mismatches[static_cast<std::size_t>(t)];
          }
          run.results[static_cast<std::size_t>(t)][w] = std::move(s);
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  return run;
}

}  // namespace

TEMPLATE_TEST_CASE("calls from several threads at once match a single call bitwise",
                   "[concurrency]", float, double) {
  const WorkloadInputs<TestType> inputs;
  const std::vector<Workload> workloads = all_workloads(inputs);
  REQUIRE(workloads.size() >= 39);

  std::vector<Snapshot> reference;
  for (const Workload& w : workloads) reference.push_back(w.run());

  const ThreadedRun run = run_threaded(workloads);
  for (int t = 0; t < kThreads; ++t) {
    CHECK(run.repeat_mismatches[static_cast<std::size_t>(t)] == 0);
    for (std::size_t w = 0; w < workloads.size(); ++w) {
      INFO("thread " << t << ", " << workloads[w].name);
      REQUIRE(!run.results[static_cast<std::size_t>(t)][w].bytes().empty());
      CHECK(run.results[static_cast<std::size_t>(t)][w] == reference[w]);
    }
  }
}

TEMPLATE_TEST_CASE("invalid input throws the same error from several threads at once",
                   "[concurrency]", float, double) {
  using contrastive::RowMatrix;
  RowMatrix<TestType> X = random_embeddings<TestType>(16, 4, 7);
  X(3, 2) = std::numeric_limits<TestType>::quiet_NaN();
  const RowMatrix<TestType>& shared = X;
  std::vector<std::string> messages(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      try {
        (void)contrastive::pairwise_distance(shared);
      } catch (const std::invalid_argument& e) {
        messages[static_cast<std::size_t>(t)] = e.what();
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (const std::string& m : messages) {
    CHECK_THAT(m, ContainsSubstring("row 3, column 2"));
    CHECK(m == messages[0]);
  }
}

}  // namespace test_concurrency
