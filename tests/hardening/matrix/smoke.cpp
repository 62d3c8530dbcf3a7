// Instantiates every public function of the umbrella header for one scalar
// type (SMOKE_SCALAR) and checks each on a small input whose answer is known
// from its definition. Built in every configuration of the compiler matrix.
#include <contrastive/contrastive.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

namespace {

using namespace contrastive;
using S = SMOKE_SCALAR;

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "smoke FAILED: %s\n", what);
    ++failures;
  }
}

bool near(double a, double b, double tol = 1e-5) { return std::fabs(a - b) <= tol * (1 + std::fabs(b)); }

// Two points 3-4-5 apart, and two orthogonal unit vectors.
RowMatrix<S> points() {
  RowMatrix<S> X(2, 2);
  X << S(0), S(0), S(3), S(4);
  return X;
}

RowMatrix<S> orthogonal() {
  RowMatrix<S> X(2, 2);
  X << S(1), S(0), S(0), S(1);
  return X;
}

template <class Metric>
void metric_smoke(double expected_pq, const RowMatrix<S>& X) {
  const RowMatrix<S> D = pairwise_distance<Metric>(X);
  check(D.rows() == 2 && D(0, 0) == S(0) && near(double(D(0, 1)), expected_pq), "pairwise_distance(X)");
  const RowMatrix<S> Dxy = pairwise_distance<Metric>(X, X);
  check(near(double(Dxy(1, 0)), expected_pq), "pairwise_distance(X, Y)");
  const Vector<S> d = rowwise_distance<Metric>(X, X.colwise().reverse().eval());
  check(d.size() == 2, "rowwise_distance");
  const RowMatrix<S> ones = RowMatrix<S>::Ones(2, 2);
  const RowMatrix<S> g = pairwise_distance_backward<Metric>(X, ones);
  check(g.rows() == 2 && g.allFinite(), "pairwise_distance_backward(X)");
  const PairGradient<S> gxy = pairwise_distance_backward<Metric>(X, X, ones);
  check(gxy.dX.allFinite() && gxy.dY.allFinite(), "pairwise_distance_backward(X, Y)");
  const PairGradient<S> gr = rowwise_distance_backward<Metric>(X, X.colwise().reverse().eval(), Vector<S>::Ones(2));
  check(gr.dX.allFinite() && gr.dY.allFinite(), "rowwise_distance_backward");
  // The shipped checker on the sum of distances.
  auto f = [](const RowMatrix<S>& Z) { return pairwise_distance<Metric>(Z).sum(); };
  RowMatrix<S> Z(3, 2);
  Z << S(0.3), S(-1.2), S(2.0), S(0.5), S(-0.7), S(0.9);
  const RowMatrix<S> gz = pairwise_distance_backward<Metric>(Z, RowMatrix<S>::Ones(3, 3));
  check(testing::check_gradient(f, Z, gz).passed, "testing::check_gradient on pairwise_distance");
}

// The three forms of an X-based loss agree: value-only and buffer form against the full call.
template <class Full, class ValueOnly, class Into>
void loss_smoke(const char* name, Full&& full, ValueOnly&& value, Into&& into, Index rows, Index cols) {
  const LossResult<S> r = full();
  RowMatrix<S> g = RowMatrix<S>::Constant(rows, cols, S(-3));
  const S v_into = into(g);
  const bool ok = std::isfinite(r.value) && r.grad.size() >= 1 && r.grad[0].allFinite() && value() == r.value &&
                  v_into == r.value && g == r.grad[0];
  check(ok, name);
}

void losses_smoke() {
  RowMatrix<S> X(6, 3);
  X << S(0.1), S(0.9), S(-0.3), S(0.2), S(0.8), S(-0.1), S(-0.7), S(0.1), S(0.5), S(-0.6), S(0.3), S(0.4),
      S(0.5), S(-0.5), S(0.2), S(0.4), S(-0.6), S(0.1);
  Eigen::VectorXi labels(6);
  labels << 0, 0, 1, 1, 2, 2;
  const Index r = X.rows(), c = X.cols();
  TripletOptions t;
  t.margin = 0.5;
  loss_smoke("batch_all_triplet_loss", [&] { return batch_all_triplet_loss(X, labels, t); },
             [&] { return batch_all_triplet_loss(X, labels, t, value_only); },
             [&](RowMatrix<S>& g) { return batch_all_triplet_loss(X, labels, t, g); }, r, c);
  loss_smoke("batch_hard_triplet_loss", [&] { return batch_hard_triplet_loss(X, labels, t); },
             [&] { return batch_hard_triplet_loss(X, labels, t, value_only); },
             [&](RowMatrix<S>& g) { return batch_hard_triplet_loss(X, labels, t, g); }, r, c);
  loss_smoke("batch_semihard_triplet_loss", [&] { return batch_semihard_triplet_loss(X, labels, t); },
             [&] { return batch_semihard_triplet_loss(X, labels, t, value_only); },
             [&](RowMatrix<S>& g) { return batch_semihard_triplet_loss(X, labels, t, g); }, r, c);
  const Triplets mined = mine_triplets(X, labels, 0.5, NegativeKind::Hard | NegativeKind::SemiHard);
  loss_smoke("triplet_margin_loss(X, triplets)", [&] { return triplet_margin_loss(X, mined, t); },
             [&] { return triplet_margin_loss(X, mined, t, value_only); },
             [&](RowMatrix<S>& g) { return triplet_margin_loss(X, mined, t, g); }, r, c);
  const RowMatrix<S> P = X.colwise().reverse(), N = -X;
  RowMatrix<S> gp(r, c), gn(r, c);
  loss_smoke("triplet_margin_loss(A, P, N)", [&] { return triplet_margin_loss(X, P, N, t); },
             [&] { return triplet_margin_loss(X, P, N, t, value_only); },
             [&](RowMatrix<S>& g) { return triplet_margin_loss(X, P, N, t, g, gp, gn); }, r, c);
  ContrastiveOptions co;
  loss_smoke("batch_contrastive_loss", [&] { return batch_contrastive_loss(X, labels, co); },
             [&] { return batch_contrastive_loss(X, labels, co, value_only); },
             [&](RowMatrix<S>& g) { return batch_contrastive_loss(X, labels, co, g); }, r, c);
  Pairs pairs;
  pairs.add(0, 1, true);
  pairs.add(0, 2, false);
  loss_smoke("contrastive_loss(X, pairs)", [&] { return contrastive_loss(X, pairs, co); },
             [&] { return contrastive_loss(X, pairs, co, value_only); },
             [&](RowMatrix<S>& g) { return contrastive_loss(X, pairs, co, g); }, r, c);
  const Eigen::VectorXi similar = (labels.array() == 0).cast<int>();
  loss_smoke("contrastive_loss(X1, X2, similar)", [&] { return contrastive_loss(X, P, similar, co); },
             [&] { return contrastive_loss(X, P, similar, co, value_only); },
             [&](RowMatrix<S>& g) { return contrastive_loss(X, P, similar, co, g, gp); }, r, c);
  MarginOptions mo;
  loss_smoke("margin_loss", [&] { return static_cast<LossResult<S>>(margin_loss(X, labels, mo)); },
             [&] { return margin_loss(X, labels, mo, value_only); },
             [&](RowMatrix<S>& g) { return margin_loss(X, labels, mo, g); }, r, c);
  const Eigen::VectorXi y = 2 * similar.array() - 1;
  loss_smoke("cosine_embedding_loss", [&] { return cosine_embedding_loss(X, P, y, 0.1); },
             [&] { return cosine_embedding_loss(X, P, y, 0.1, value_only); },
             [&](RowMatrix<S>& g) { return cosine_embedding_loss(X, P, y, 0.1, g, gp); }, r, c);
  const Eigen::VectorXd score = labels.cast<double>() / 3.0;
  loss_smoke("similarity_regression_loss", [&] { return similarity_regression_loss<Cosine>(X, P, score); },
             [&] { return similarity_regression_loss<Cosine>(X, P, score, value_only); },
             [&](RowMatrix<S>& g) { return similarity_regression_loss<Cosine>(X, P, score, g, gp); }, r, c);
  NTXentOptions no;
  loss_smoke("ntxent_loss(views)", [&] { return ntxent_loss(X, P, 0.1, no); },
             [&] { return ntxent_loss(X, P, 0.1, no, value_only); },
             [&](RowMatrix<S>& g) { return ntxent_loss(X, P, 0.1, no, g, gp); }, r, c);
  loss_smoke("ntxent_loss(labels)", [&] { return ntxent_loss(X, labels, 0.1, no); },
             [&] { return ntxent_loss(X, labels, 0.1, no, value_only); },
             [&](RowMatrix<S>& g) { return ntxent_loss(X, labels, 0.1, no, g); }, r, c);
  SupConOptions so;
  loss_smoke("supcon_loss", [&] { return supcon_loss(X, labels, 0.1, so); },
             [&] { return supcon_loss(X, labels, 0.1, so, value_only); },
             [&](RowMatrix<S>& g) { return supcon_loss(X, labels, 0.1, so, g); }, r, c);
  // Classifier and miners.
  check(classify_negative(S(1), S(0.5), 0.2) == NegativeKind::Hard, "classify_negative hard");
  check(classify_negative(S(1), S(1.1), 0.2) == NegativeKind::SemiHard, "classify_negative semi-hard");
  check(classify_negative(S(1), S(1.5), 0.2) == NegativeKind::Easy, "classify_negative easy");
  check(classify_negative_absolute(S(0.5), 0.2, 1.0) == NegativeKind::SemiHard, "classify_negative_absolute");
  const NegativeStats<S> st = negative_stats(X, labels, 0.5);
  // 6 anchors, 1 positive each, 4 negatives each: 24 valid triplets.
  check(st.triplets() == 24, "negative_stats counts every valid triplet");
  check(mine_triplets(X, labels, 0.5, NegativeKinds::all()).size() == 24, "mine_triplets all kinds");
  check(mine_batch_hard(X, labels).size() == 6, "mine_batch_hard one per anchor");
  check(mine_semihard(X, labels).size() == 6, "mine_semihard one per positive pair");
  check(mine_easy_hard(X, labels).size() <= 6, "mine_easy_hard at most one per anchor");
  check(mine_pairs(X, labels, 0.0, 100.0).size() == 30, "mine_pairs: every ordered pair at these margins");
  check(negative_stats(X, labels, X, labels, 0.5).triplets() > 0, "negative_stats with a reference set");
}

}  // namespace

int main() {
  losses_smoke();
  metric_smoke<Euclidean>(5.0, points());
  metric_smoke<SquaredEuclidean>(25.0, points());
  metric_smoke<Cosine>(1.0, orthogonal());
  // Bad input throws std::invalid_argument.
  bool threw = false;
  try {
    (void)pairwise_distance(points(), RowMatrix<S>::Zero(2, 3));
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  check(threw, "pairwise_distance rejects mismatched columns");
  if (failures == 0) std::printf("smoke (%s): all checks passed\n", sizeof(S) == 4 ? "float" : "double");
  return failures == 0 ? 0 : 1;
}
