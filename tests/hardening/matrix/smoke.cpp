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

}  // namespace

int main() {
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
