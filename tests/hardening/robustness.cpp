// The robustness table of docs/robustness.md, verified: every loss and metric,
// float and double, every metric, under each condition of the table. Checks
//   - the value, every gradient and every term are finite (no NaN, no Inf);
//   - gradients have the shape of their embeddings;
//   - where the condition leaves the loss's set empty (its documentation says
//     so: no valid triplet, no positive pair, a single row, no rows), the loss
//     is exactly 0 and every gradient entry exactly 0;
//   - under Cosine, scaling every input by 1e-6 or 1e6 leaves the value
//     unchanged (relative 1e-4 in float, 1e-9 in double): the metric only sees directions;
//   - metrics: coincident rows have distance 0 and, under Euclidean, a zero
//     gradient; zero rows have Cosine distance 1 and a zero gradient.
// Prints the table (one row per function, one column per condition) and
// exits non-zero if any check failed. Built and run by tests/hardening/matrix.sh.
#include <contrastive/contrastive.hpp>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

using namespace contrastive;

namespace {

enum Condition { Coincident, ZeroRows, Tiny, Huge, Extremes, SingleClass, AllUnique, OneRow, NoRows, kConditions };
const char* const condition_names[] = {"coincident points", "zero vectors", "x 1e-6", "x 1e6",
                                       "float extremes", "single class", "all-unique labels", "N = 1", "N = 0"};

// Outcome per (function, condition): all checks passed, and whether the loss was exactly zero.
struct Cell {
  int runs = 0, failures = 0, zero = 0;
  std::string first_failure;
};
std::map<std::string, std::vector<Cell>> table;
std::vector<std::string> order;

Cell& cell(const std::string& fn, Condition c) {
  if (!table.count(fn)) {
    table[fn] = std::vector<Cell>(kConditions);
    order.push_back(fn);
  }
  return table[fn][c];
}

void record(const std::string& fn, Condition c, bool ok, bool zero, const std::string& why) {
  Cell& k = cell(fn, c);
  ++k.runs;
  if (zero) ++k.zero;
  if (!ok) {
    ++k.failures;
    if (k.first_failure.empty()) k.first_failure = why;
  }
}

template <class S>
RowMatrix<S> base(Index n, Index d) {
  RowMatrix<S> X(n, d);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < d; ++j) X(i, j) = static_cast<S>(std::sin(1.7 * double(i + 1) + 0.9 * double(j * j + 1)));
  return X;
}

// The embeddings and labels of one condition (8 rows of 4 columns, 3 classes, unless the condition says otherwise).
template <class S>
void make(Condition c, RowMatrix<S>& X, Eigen::VectorXi& labels) {
  Index n = c == OneRow ? 1 : c == NoRows ? 0 : 8;
  X = base<S>(n, 4);
  labels.resize(n);
  for (Index i = 0; i < n; ++i) labels(i) = static_cast<int>(i % 3);
  switch (c) {
    case Coincident: for (Index i = 1; i < n; ++i) X.row(i) = X.row(0); break;
    case ZeroRows: X.row(1).setZero(); X.row(4).setZero(); X.row(6).setZero(); break;
    case Tiny: X *= static_cast<S>(1e-6); break;
    case Huge: X *= static_cast<S>(1e6); break;
    case Extremes:  // denormal, smallest normal and the largest magnitude whose squared distances stay finite
      X(0, 0) = std::numeric_limits<S>::denorm_min();
      X(1, 1) = std::numeric_limits<S>::min();
      X(2, 2) = static_cast<S>(sizeof(S) == 4 ? 1e8 : 1e60);
      X(3, 3) = -static_cast<S>(sizeof(S) == 4 ? 1e8 : 1e60);
      X.row(5) = X.row(0) * std::numeric_limits<S>::denorm_min();
      break;
    case SingleClass: labels.setConstant(4); break;
    case AllUnique: for (Index i = 0; i < n; ++i) labels(i) = static_cast<int>(i); break;
    default: break;
  }
}

template <class S>
bool all_finite(const LossResult<S>& r) {
  if (!std::isfinite(r.value) || !r.terms.allFinite()) return false;
  for (const auto& g : r.grad)
    if (!g.allFinite()) return false;
  return true;
}

template <class S>
bool all_zero(const LossResult<S>& r) {
  if (r.value != S(0)) return false;
  for (const auto& g : r.grad)
    if (!(g.array() == S(0)).all()) return false;
  return true;
}

// A loss as the sweep calls it: X (and X2 for pair losses: X's rows rotated by one), labels.
template <class S>
struct Loss {
  std::string name;
  std::function<LossResult<S>(const RowMatrix<S>&, const Eigen::VectorXi&)> call;
  int grads;          // number of embedding arguments
  unsigned empty_at;  // conditions under which the loss's set is empty: loss 0, zero gradient
};

constexpr unsigned bit(Condition c) { return 1u << c; }
constexpr unsigned batch_empty = bit(OneRow) | bit(NoRows);

template <class S>
RowMatrix<S> rotate(const RowMatrix<S>& X) {
  RowMatrix<S> Y(X.rows(), X.cols());
  for (Index i = 0; i < X.rows(); ++i) Y.row(i) = X.row((i + 1) % X.rows());
  return Y;
}

template <class S, class M>
std::vector<Loss<S>> losses() {
  const std::string m = std::string("<") + M::name + ">";
  TripletOptions t;
  t.margin = 0.2;
  TripletOptions soft;
  soft.soft = true;
  const unsigned no_triplet = batch_empty | bit(SingleClass) | bit(AllUnique);
  std::vector<Loss<S>> v;
  v.push_back({"batch_all_triplet_loss" + m, [t](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return batch_all_triplet_loss<M>(X, l, t); }, 1, no_triplet});
  v.push_back({"batch_hard_triplet_loss" + m, [t](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return batch_hard_triplet_loss<M>(X, l, t); }, 1, no_triplet});
  v.push_back({"batch_hard_triplet_loss" + m + " soft", [soft](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return batch_hard_triplet_loss<M>(X, l, soft); }, 1, no_triplet});
  v.push_back({"batch_semihard_triplet_loss" + m, [t](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return batch_semihard_triplet_loss<M>(X, l, t); }, 1, no_triplet});
  v.push_back({"triplet_margin_loss" + m + " (mined triplets)", [t](const RowMatrix<S>& X, const Eigen::VectorXi& l) {
                 return triplet_margin_loss<M>(X, mine_triplets<M>(X, l, 0.2, NegativeKinds::all()), t); }, 1, no_triplet});
  v.push_back({"triplet_margin_loss" + m + " (A, P, N)", [t](const RowMatrix<S>& X, const Eigen::VectorXi&) {
                 return triplet_margin_loss<M>(X, rotate(X), rotate(rotate(X)), t); }, 3, bit(NoRows)});
  v.push_back({"batch_contrastive_loss" + m, [](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return batch_contrastive_loss<M>(X, l); }, 1, batch_empty});
  v.push_back({"contrastive_loss" + m + " (X1, X2, similar)", [](const RowMatrix<S>& X, const Eigen::VectorXi& l) {
                 const Eigen::VectorXi similar = (l.array() == 0).template cast<int>();
                 return contrastive_loss<M>(X, rotate(X), similar); }, 2, bit(NoRows)});
  v.push_back({"margin_loss" + m, [](const RowMatrix<S>& X, const Eigen::VectorXi& l) {
                 return static_cast<LossResult<S>>(margin_loss<M>(X, l)); }, 1, batch_empty});
  v.push_back({"similarity_regression_loss" + m, [](const RowMatrix<S>& X, const Eigen::VectorXi& l) {
                 const Eigen::VectorXd target = l.template cast<double>() * 0.25;
                 return similarity_regression_loss<M>(X, rotate(X), target); }, 2, bit(NoRows)});
  v.push_back({"ntxent_loss" + m + " (labels)", [](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return ntxent_loss<M>(X, l, 0.1); }, 1, no_triplet});
  v.push_back({"ntxent_loss" + m + " (two views)", [](const RowMatrix<S>& X, const Eigen::VectorXi&) { return ntxent_loss<M>(X, rotate(X), 0.1); }, 2, batch_empty});
  v.push_back({"supcon_loss" + m, [](const RowMatrix<S>& X, const Eigen::VectorXi& l) { return supcon_loss<M>(X, l, 0.1, SupConOptions{}); }, 1, no_triplet});
  if (std::is_same<M, Cosine>::value) {
    v.push_back({"cosine_embedding_loss", [](const RowMatrix<S>& X, const Eigen::VectorXi& l) {
                   const Eigen::VectorXi y = 2 * (l.array() == 0).template cast<int>() - 1;
                   return cosine_embedding_loss(X, rotate(X), y, 0.1); }, 2, bit(NoRows)});
  }
  return v;
}

template <class S, class M>
void sweep_losses() {
  const double tol = sizeof(S) == 4 ? 1e-4 : 1e-9;
  for (const Loss<S>& loss : losses<S, M>()) {
    for (int ci = 0; ci < kConditions; ++ci) {
      const Condition c = static_cast<Condition>(ci);
      RowMatrix<S> X;
      Eigen::VectorXi labels;
      make<S>(c, X, labels);
      LossResult<S> r;
      try {
        r = loss.call(X, labels);
      } catch (const std::exception& e) {
        record(loss.name, c, false, false, std::string("threw: ") + e.what());
        continue;
      }
      bool ok = all_finite(r);
      std::string why = ok ? "" : "non-finite value, gradient or term";
      if (static_cast<int>(r.grad.size()) != loss.grads) { ok = false; why = "wrong number of gradients"; }
      for (const auto& g : r.grad)
        if (g.rows() != X.rows() || g.cols() != X.cols()) { ok = false; why = "gradient of the wrong shape"; }
      const bool zero = all_zero(r);
      if ((loss.empty_at & bit(c)) && !zero) { ok = false; why = "empty set but non-zero loss or gradient"; }
      if (std::is_same<M, Cosine>::value && (c == Tiny || c == Huge)) {
        RowMatrix<S> scaled;
        Eigen::VectorXi l0;
        make<S>(c, scaled, l0);  // the condition's labels
        const RowMatrix<S> unscaled = base<S>(8, 4);
        const S v0 = loss.call(unscaled, l0).value;
        if (std::fabs(double(r.value - v0)) > tol * (1 + std::fabs(double(v0)))) { ok = false; why = "Cosine value changed under scaling"; }
      }
      record(loss.name, c, ok, zero, why);
    }
  }
}

template <class S, class M>
void sweep_metric() {
  const std::string fn = std::string("pairwise / rowwise distance and backward <") + M::name + ">";
  for (int ci = 0; ci < kConditions; ++ci) {
    const Condition c = static_cast<Condition>(ci);
    if (c == SingleClass || c == AllUnique) continue;  // metrics take no labels
    RowMatrix<S> X;
    Eigen::VectorXi labels;
    make<S>(c, X, labels);
    const Index n = X.rows();
    bool ok = true;
    std::string why;
    try {
      const RowMatrix<S> D = pairwise_distance<M>(X);
      const RowMatrix<S> ones = RowMatrix<S>::Ones(n, n);
      const RowMatrix<S> G = pairwise_distance_backward<M>(X, ones);
      const Vector<S> d = rowwise_distance<M>(X, rotate(X));
      const PairGradient<S> g = rowwise_distance_backward<M>(X, rotate(X), Vector<S>::Ones(n));
      if (!D.allFinite() || !G.allFinite() || !d.allFinite() || !g.dX.allFinite() || !g.dY.allFinite()) { ok = false; why = "non-finite"; }
      if (D.rows() != n || G.rows() != n || G.cols() != X.cols()) { ok = false; why = "wrong shape"; }
      if (c == Coincident) {
        if (!(D.array() == S(0)).all()) { ok = false; why = "coincident rows at non-zero distance"; }
        if (!std::is_same<M, Cosine>::value && !(G.array() == S(0)).all()) { ok = false; why = "coincident rows with non-zero gradient"; }
      }
      if (c == ZeroRows && std::is_same<M, Cosine>::value) {
        if (D(1, 0) != S(1) || D(1, 4) != S(1) || !(G.row(1).array() == S(0)).all()) { ok = false; why = "zero vector: Cosine distance not 1 or gradient not 0"; }
      }
    } catch (const std::exception& e) {
      ok = false;
      why = std::string("threw: ") + e.what();
    }
    record(fn, c, ok, false, why);
  }
}

template <class S>
void sweep_scalar() {
  sweep_metric<S, Euclidean>();
  sweep_metric<S, SquaredEuclidean>();
  sweep_metric<S, Cosine>();
  sweep_losses<S, Euclidean>();
  sweep_losses<S, SquaredEuclidean>();
  sweep_losses<S, Cosine>();
}

}  // namespace

int main() {
  sweep_scalar<float>();
  sweep_scalar<double>();
  int failures = 0, runs = 0;
  std::printf("| function (float and double) |");
  for (const char* c : condition_names) std::printf(" %s |", c);
  std::printf("\n|---|");
  for (int c = 0; c < kConditions; ++c) std::printf("---|");
  std::printf("\n");
  for (const std::string& fn : order) {
    std::printf("| %s |", fn.c_str());
    for (const Cell& k : table[fn]) {
      runs += k.runs;
      failures += k.failures;
      if (k.runs == 0) std::printf(" n/a |");
      else if (k.failures) std::printf(" FAILED: %s |", k.first_failure.c_str());
      else if (k.zero == k.runs) std::printf(" 0, zero grad |");
      else std::printf(" finite |");
    }
    std::printf("\n");
  }
  std::printf("\nrobustness: %d checks, %d failed\n", runs, failures);
  return failures == 0 ? 0 : 1;
}
