// The class-weight losses (arcface_loss, cosface_loss, sphereface_loss,
// normalized_softmax_loss, proxy_nca_loss, proxy_anchor_loss,
// subcenter_arcface_loss, subcenter_arcface_outliers) against
// pytorch-metric-learning 2.8.1 itself (tests/reference/data/pml_class_losses.txt),
// a brute-force loop over the full N x c logits written from PML's source,
// finite differences for dL/dX and dL/dW, the blocked head against the whole
// one, the call forms, edge cases and bad input.
#include "support/catch.hpp"
#include "support/fixtures.hpp"
#include "support/pml_distances.hpp"
#include "support/reference_data.hpp"

#include <contrastive/losses/arcface_loss.hpp>
#include <contrastive/losses/cosface_loss.hpp>
#include <contrastive/losses/normalized_softmax_loss.hpp>
#include <contrastive/losses/proxy_anchor_loss.hpp>
#include <contrastive/losses/proxy_nca_loss.hpp>
#include <contrastive/losses/sphereface_loss.hpp>
#include <contrastive/losses/subcenter_arcface_loss.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

using namespace contrastive;
using namespace contrastive_test;

namespace test_class_losses {

namespace {

constexpr double pi = 3.14159265358979323846;

// The generator's loss codes.
enum Code { ArcFace = 0, CosFace, SphereFace, NormSoftmax, ProxyNCA, ProxyAnchor, SubCenter, Codes };
const char* const code_names[] = {"arcface", "cosface", "sphereface", "normalized_softmax", "proxy_nca",
                                  "proxy_anchor", "subcenter_arcface"};

struct Params {
  double margin = 0, scale = 1;  // scale: temperature, softmax_scale or alpha where the loss has those
  int sub_centers = 1;
  std::size_t workspace = default_workspace_bytes;
};

// PML's defaults per loss.
Params defaults(int code) {
  switch (code) {
    case ArcFace: return {28.6, 64, 1};
    case CosFace: return {0.35, 64, 1};
    case SphereFace: return {4, 1, 1};
    case NormSoftmax: return {0, 0.05, 1};
    case ProxyNCA: return {0, 1, 1};
    case ProxyAnchor: return {0.1, 32, 1};
    default: return {28.6, 64, 3};
  }
}

// Small scales, where no gradient saturates.
Params small(int code) {
  switch (code) {
    case ArcFace: return {20, 2, 1};
    case CosFace: return {0.2, 2, 1};
    case SphereFace: return {3, 0.5, 1};
    case NormSoftmax: return {0, 0.5, 1};
    case ProxyNCA: return {0, 3, 1};
    case ProxyAnchor: return {0.3, 2, 1};
    default: return {20, 2, 2};
  }
}

// One call form for every loss: the full result (or the value only when value_only_call).
template <class S, class DX, class DW>
LossResult<S> run(int code, const DX& X, const Eigen::VectorXi& y, const DW& W, const Params& p) {
  switch (code) {
    case ArcFace: {
      ArcFaceOptions o;
      o.margin = p.margin;
      o.scale = p.scale;
      o.workspace_bytes = p.workspace;
      return arcface_loss(X, y, W, o);
    }
    case CosFace: {
      CosFaceOptions o;
      o.margin = p.margin;
      o.scale = p.scale;
      o.workspace_bytes = p.workspace;
      return cosface_loss(X, y, W, o);
    }
    case SphereFace: {
      SphereFaceOptions o;
      o.margin = static_cast<int>(p.margin);
      o.scale = p.scale;
      o.workspace_bytes = p.workspace;
      return sphereface_loss(X, y, W, o);
    }
    case NormSoftmax: {
      NormalizedSoftmaxOptions o;
      o.temperature = p.scale;
      o.workspace_bytes = p.workspace;
      return normalized_softmax_loss(X, y, W, o);
    }
    case ProxyNCA: {
      ProxyNCAOptions o;
      o.softmax_scale = p.scale;
      o.workspace_bytes = p.workspace;
      return proxy_nca_loss(X, y, W, o);
    }
    case ProxyAnchor: {
      ProxyAnchorOptions o;
      o.margin = p.margin;
      o.alpha = p.scale;
      o.workspace_bytes = p.workspace;
      return proxy_anchor_loss(X, y, W, o);
    }
    default: {
      SubCenterArcFaceOptions o;
      o.margin = p.margin;
      o.scale = p.scale;
      o.sub_centers = p.sub_centers;
      o.workspace_bytes = p.workspace;
      return subcenter_arcface_loss(X, y, W, o);
    }
  }
}

double value_of(int code, const RowMatrix<double>& X, const Eigen::VectorXi& y, const RowMatrix<double>& W,
                const Params& p) {
  return run<double>(code, X, y, W, p).value;
}

// ---- The brute force: PML's formulas over the full N x c matrix, in double. ----

RowMatrix<double> unit(const RowMatrix<double>& M) {
  RowMatrix<double> U = M;
  for (Index i = 0; i < M.rows(); ++i)
    if (M.row(i).norm() > 0) U.row(i) /= M.row(i).norm();
  return U;
}

struct Brute {
  double value = 0;
  std::vector<double> terms;
};

Brute brute(int code, const RowMatrix<double>& X, const Eigen::VectorXi& y, const RowMatrix<double>& W,
            const Params& p) {
  const Index n = X.rows(), k = code == SubCenter ? p.sub_centers : 1, c = W.rows() / k;
  const RowMatrix<double> cos_all = unit(X) * unit(W).transpose();
  RowMatrix<double> cos(n, c);
  for (Index i = 0; i < n; ++i)
    for (Index j = 0; j < c; ++j) cos(i, j) = cos_all.row(i).segment(j * k, k).maxCoeff();
  Brute out;
  if (code == ProxyAnchor) {
    out.terms.assign(std::size_t(c), 0.0);
    int present = 0;
    double pos_sum = 0, neg_sum = 0;
    for (Index j = 0; j < c; ++j) {
      double sp = 0, sn = 0;
      int np = 0, nn = 0;
      for (Index i = 0; i < n; ++i) {
        if (y(i) == j) {
          sp += std::exp(-p.scale * (cos(i, j) - p.margin));
          ++np;
        } else {
          sn += std::exp(p.scale * (cos(i, j) + p.margin));
          ++nn;
        }
      }
      const double pos = np ? std::log1p(sp) : 0.0, neg = nn ? std::log1p(sn) : 0.0;
      if (np) ++present;
      pos_sum += pos;
      neg_sum += neg;
      out.terms[std::size_t(j)] = pos + neg;
    }
    out.value = (present ? pos_sum / present : 0.0) + neg_sum / double(c);
    return out;
  }
  out.terms.assign(std::size_t(n), 0.0);
  double sum = 0;
  int kept = 0;
  for (Index i = 0; i < n; ++i) {
    std::vector<double> z(static_cast<std::size_t>(c));
    for (Index j = 0; j < c; ++j) {
      const double cs = cos(i, j);
      double logit = 0;
      const bool target = j == y(i);
      const double theta = std::acos(std::min(1.0, std::max(-1.0, cs)));
      switch (code) {
        case ArcFace:
        case SubCenter: {
          const double m = p.margin * pi / 180;
          logit = p.scale * (!target ? cs : theta <= pi - m ? std::cos(theta + m) : std::cos(theta) - m * std::sin(m));
          break;
        }
        case CosFace: logit = p.scale * (target ? cs - p.margin : cs); break;
        case SphereFace: {
          const double m = p.margin;
          const double kk = std::floor(theta / (pi / m));
          const double psi = (int(kk) % 2 ? -1.0 : 1.0) * std::cos(m * theta) - 2 * kk;
          logit = p.scale * X.row(i).norm() * (target ? psi : cs);
          break;
        }
        case NormSoftmax: logit = cs / p.scale; break;
        default: logit = -p.scale * (unit(X).row(i) - unit(W).row(j)).squaredNorm(); break;  // ProxyNCA
      }
      z[std::size_t(j)] = logit;
    }
    const double mx = *std::max_element(z.begin(), z.end());
    double s = 0;
    for (double v : z) s += std::exp(v - mx);
    const double term = mx + std::log(s) - z[std::size_t(y(i))];
    if (code == ProxyNCA && std::exp(-term) == 0) continue;
    out.terms[std::size_t(i)] = term;
    sum += term;
    ++kept;
  }
  out.value = kept ? sum / kept : 0.0;
  return out;
}

// Labels over `classes` classes, some without samples: P x K, random, skewed with singletons, one class.
std::vector<Eigen::VectorXi> layouts(Index n, int classes, unsigned seed) {
  std::vector<Eigen::VectorXi> out;
  Eigen::VectorXi pk(n);
  for (Index i = 0; i < n; ++i) pk(i) = int(i % 3);
  out.push_back(pk);
  out.push_back(random_labels(n, classes, seed));
  Eigen::VectorXi skewed(n);
  for (Index i = 0; i < n; ++i) skewed(i) = i < n / 2 ? 0 : int(i % classes);
  out.push_back(skewed);
  out.push_back(Eigen::VectorXi::Constant(n, classes - 1));
  return out;
}

RowMatrix<double> weights_for(int code, int classes, int sub_centers, Index dim, unsigned seed) {
  return random_embeddings<double>(code == SubCenter ? classes * sub_centers : classes, dim, seed);
}

}  // namespace

namespace {

// Every case of the PML data: value, dL/dX, dL/dW, terms (and SubCenter's outliers) to 1e-9
// relative; the worst error and the case count per loss come back in worst and seen.
void check_pml_cases(double (&worst)[Codes], int (&seen)[Codes]) {
  const ReferenceFile ref("pml_class_losses.txt");
  const int cases = int(ref.scalar("cases"));
  REQUIRE(cases >= 60);
  for (int k = 0; k < cases; ++k) {
    const std::string c = "case" + std::to_string(k) + "_";
    const int code = int(ref.scalar(c + "loss"));
    REQUIRE(code >= 0);
    REQUIRE(code < Codes);
    Params p;
    p.margin = ref.scalar(c + "margin");
    p.scale = ref.scalar(c + "scale");
    p.sub_centers = std::max(1, int(ref.scalar(c + "sub_centers")));
    const RowMatrix<double> X = ref.matrix(c + "X"), W = ref.matrix(c + "W");
    const Eigen::VectorXi y = ref.labels(c + "labels");
    INFO("case " << k << ": " << code_names[code] << " margin " << p.margin << " scale " << p.scale);
    const LossResult<double> r = run<double>(code, X, y, W, p);
    REQUIRE(r.grad.size() == 2);
    const double ev = pml_relative(r.value, ref.scalar(c + "value"));
    const double eg = pml_relative_max(r.grad[0], ref.matrix(c + "grad"));
    const double ew = pml_relative_max(r.grad[1], ref.matrix(c + "W_grad"));
    const double et = pml_relative_max(r.terms, ref.vector(c + "terms"));
    INFO("value " << ev << ", dX " << eg << ", dW " << ew << ", terms " << et);
    CHECK(ev < 1e-9);
    CHECK(eg < 1e-9);
    CHECK(ew < 1e-9);
    CHECK(et < 1e-9);
    CHECK_FALSE(r.grad[1].isZero(0));
    worst[code] = std::max({worst[code], ev, eg, ew, et});
    ++seen[code];
    if (code == SubCenter) {
      SubCenterArcFaceOptions o;
      o.sub_centers = p.sub_centers;
      const SubCenterOutliers<double> out = subcenter_arcface_outliers(X, y, W, o, 75);
      const Vector<double> want = ref.vector(c + "outliers");
      REQUIRE(Index(out.outliers.size()) == want.size());
      for (Index i = 0; i < want.size(); ++i) CHECK(out.outliers[std::size_t(i)] == Index(want(i)));
      const Vector<double> dom = ref.vector(c + "dominant");
      REQUIRE(Index(out.dominant.size()) == dom.size());
      for (Index j = 0; j < dom.size(); ++j) CHECK(out.dominant[std::size_t(j)] == Index(dom(j)));
    }
  }
}

}  // namespace

TEST_CASE("class-weight losses reproduce pytorch-metric-learning 2.8.1", "[class_losses][pml]") {
  double worst[Codes] = {};
  int seen[Codes] = {};
  check_pml_cases(worst, seen);
  for (int code = 0; code < Codes; ++code) CHECK(seen[code] >= 8);
}

// class_loss_tests "[.pml_report]" -s prints the worst relative error per loss.
TEST_CASE("class-weight losses: worst errors against PML", "[.pml_report]") {
  double worst[Codes] = {};
  int seen[Codes] = {};
  check_pml_cases(worst, seen);
  for (int code = 0; code < Codes; ++code) {
    std::printf("class losses vs PML 2.8.1: %-18s %d cases, worst relative error %.3g\n", code_names[code], seen[code],
                worst[code]);
  }
}

TEST_CASE("class-weight losses match a brute-force loop over the full logits", "[class_losses]") {
  for (int code = 0; code < Codes; ++code) {
    for (const Params& p : {defaults(code), small(code)}) {
      int layout = 0;
      for (const Eigen::VectorXi& y : layouts(12, 6, 401u + unsigned(code))) {
        const RowMatrix<double> X = random_embeddings<double>(12, 5, 402u + unsigned(code), 1.3);
        const RowMatrix<double> W = weights_for(code, 6, p.sub_centers, 5, 403u + unsigned(code));
        INFO(code_names[code] << " margin " << p.margin << " scale " << p.scale << " layout " << layout++);
        const LossResult<double> r = run<double>(code, X, y, W, p);
        const Brute b = brute(code, X, y, W, p);
        CHECK(pml_relative(r.value, b.value) < 1e-12);
        REQUIRE(std::size_t(r.terms.size()) == b.terms.size());
        for (std::size_t i = 0; i < b.terms.size(); ++i) CHECK(std::abs(r.terms(Index(i)) - b.terms[i]) < 1e-11 * (1 + std::abs(b.terms[i])));
      }
    }
  }
}

TEST_CASE("class-weight losses: dL/dX and dL/dW match finite differences", "[class_losses][gradient]") {
  for (int code = 0; code < Codes; ++code) {
    const Params p = small(code);
    const Index n = 10, dim = 5;
    const int classes = 6;
    Eigen::VectorXi y(n);
    y << 0, 0, 0, 1, 1, 2, 3, 3, 3, 1;  // classes 4 and 5 without samples, a singleton
    const RowMatrix<double> X = random_embeddings<double>(n, dim, 411u + unsigned(code), 1.2);
    const RowMatrix<double> W = weights_for(code, classes, p.sub_centers, dim, 412u + unsigned(code));
    const LossResult<double> r = run<double>(code, X, y, W, p);
    const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return value_of(code, x, y, W, p); }, X,
                                            r.grad[0]);
    const auto rw = testing::check_gradient([&](const RowMatrix<double>& w) { return value_of(code, X, y, w, p); }, W,
                                            r.grad[1]);
    INFO(code_names[code] << ": dX " << rx.summary() << "; dW " << rw.summary());
    CHECK(rx.passed);
    CHECK(rw.passed);
    CHECK_FALSE(r.grad[0].isZero(0));
    CHECK_FALSE(r.grad[1].isZero(0));
  }
}

TEST_CASE("class-weight losses: the margin branches' gradients match finite differences", "[class_losses][gradient]") {
  // Rows close to their class weight, opposite to it, and at right angles: ArcFace's fallback
  // (theta > pi - m), every SphereFace sector k, SubCenter's choice of sub-centre.
  const Index dim = 4;
  const RowMatrix<double> W = random_embeddings<double>(6, dim, 421);
  Eigen::VectorXi y(9);
  y << 0, 0, 1, 1, 2, 2, 0, 1, 2;
  RowMatrix<double> X = random_embeddings<double>(9, dim, 422, 0.3);
  for (Index i = 0; i < 6; ++i) X.row(i) += (i % 2 ? -1.5 : 1.5) * W.row(y(i) * 2);
  for (int code : {int(ArcFace), int(SphereFace), int(SubCenter)}) {
    Params p = small(code);
    if (code == SphereFace) p.margin = 4;
    const RowMatrix<double> w = code == SubCenter ? W : RowMatrix<double>(W.topRows(3 * 2));
    const LossResult<double> r = run<double>(code, X, y, w, p);
    const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return value_of(code, x, y, w, p); }, X,
                                            r.grad[0]);
    const auto rw = testing::check_gradient([&](const RowMatrix<double>& v) { return value_of(code, X, y, v, p); }, w,
                                            r.grad[1]);
    INFO(code_names[code] << ": dX " << rx.summary() << "; dW " << rw.summary());
    CHECK(rx.passed);
    CHECK(rw.passed);
  }
}

TEST_CASE("class-weight losses: reductions and sample weights", "[class_losses][gradient]") {
  const Index n = 9, dim = 4;
  const Eigen::VectorXi y = random_labels(n, 5, 471);
  const RowMatrix<double> X = random_embeddings<double>(n, dim, 472), W = random_embeddings<double>(5, dim, 473);
  Eigen::VectorXd w = random_embeddings<double>(n, 1, 474).cwiseAbs();
  w(3) = 0;
  ArcFaceOptions o;
  o.scale = 3;
  const LossResult<double> mean = arcface_loss(X, y, W, o);
  o.reduction = Sum();
  CHECK(arcface_loss(X, y, W, o, value_only) == Approx(mean.value * double(n)).epsilon(1e-14));
  o.reduction = Mean(w);
  const LossResult<double> weighted = arcface_loss(X, y, W, o);
  CHECK(weighted.value == Approx(mean.terms.dot(w) / double(n)).epsilon(1e-14));
  CHECK(weighted.terms(3) == 0);
  CHECK(weighted.grad[0].row(3).isZero(0));
  const auto rx = testing::check_gradient([&](const RowMatrix<double>& x) { return arcface_loss(x, y, W, o, value_only); },
                                          X, weighted.grad[0]);
  const auto rw = testing::check_gradient([&](const RowMatrix<double>& v) { return arcface_loss(X, y, v, o, value_only); },
                                          W, weighted.grad[1]);
  INFO("dX " << rx.summary() << "; dW " << rw.summary());
  CHECK(rx.passed);
  CHECK(rw.passed);
  Eigen::VectorXd short_w = w.head(n - 1);
  o.reduction = Mean(short_w);
  REQUIRE_INVALID_ARGUMENT(arcface_loss(X, y, W, o, value_only), "arcface_loss", "sample weights");
}

TEST_CASE("class-weight losses: the blocked head equals the whole head", "[class_losses][blocks]") {
  // 13 classes in blocks of 1, 2, 5 and 13 classes (the workspace budget picks the block).
  const Index n = 9, dim = 6;
  const int classes = 13;
  const Eigen::VectorXi y = random_labels(n, 9, 431);
  const RowMatrix<double> X = random_embeddings<double>(n, dim, 432);
  for (int code = 0; code < Codes; ++code) {
    Params p = small(code);
    const RowMatrix<double> W = weights_for(code, classes, p.sub_centers, dim, 433u + unsigned(code));
    const LossResult<double> whole = run<double>(code, X, y, W, p);
    const std::size_t per_class = std::size_t(n) * (std::size_t(p.sub_centers + 2) * sizeof(double) +
                                                    (p.sub_centers > 1 ? sizeof(std::int32_t) : 0));
    for (const std::size_t block : {std::size_t(1), std::size_t(2), std::size_t(5), std::size_t(12)}) {
      p.workspace = block * per_class + per_class / 2;
      INFO(code_names[code] << ": block " << block);
      const LossResult<double> b = run<double>(code, X, y, W, p);
      CHECK(pml_relative(b.value, whole.value) < 1e-13);
      CHECK(pml_relative_max(b.grad[0], whole.grad[0]) < 1e-13);
      CHECK(pml_relative_max(b.grad[1], whole.grad[1]) < 1e-13);
      CHECK(pml_relative_max(b.terms, whole.terms) < 1e-13);
    }
    p.workspace = per_class - 1;
    REQUIRE_INVALID_ARGUMENT(run<double>(code, X, y, W, p), "workspace_bytes");
  }
}

TEST_CASE("subcenter_arcface_loss: many rows (chunks of classes) equal the rows one by one", "[class_losses][blocks]") {
  // K > 1 walks a block in chunks of about 2^17 / (N K) classes (a multiple of
  // 16): 300 rows, K = 3 give chunks of 144 classes over 400 (and over blocks of
  // 200, 50 and 1 classes); one row alone fits all 400 in one chunk. With Sum,
  // the loss is the sum of the rows' losses, dL/dW the sum of theirs.
  const Index n = 300, dim = 5;
  const int classes = 400;
  const Eigen::VectorXi y = random_labels(n, classes, 451);
  const RowMatrix<double> X = random_embeddings<double>(n, dim, 452);
  for (const Params& p0 : {defaults(SubCenter), small(SubCenter)}) {
    const int k = 3;
    const RowMatrix<double> W = random_embeddings<double>(classes * k, dim, 453);
    SubCenterArcFaceOptions o;
    o.margin = p0.margin;
    o.scale = p0.scale;
    o.sub_centers = k;
    o.reduction = Reduction::Sum;
    double value = 0;
    RowMatrix<double> dX(n, dim), dW = RowMatrix<double>::Zero(W.rows(), dim);
    for (Index i = 0; i < n; ++i) {
      const RowMatrix<double> xi = X.row(i);
      const Eigen::VectorXi yi = y.segment(i, 1);
      const LossResult<double> r = subcenter_arcface_loss(xi, yi, W, o);
      value += r.value;
      dX.row(i) = r.grad[0];
      dW += r.grad[1];
    }
    const std::size_t per_class = std::size_t(n) * (std::size_t(k + 2) * sizeof(double) + sizeof(std::int32_t));
    for (const std::size_t block : {std::size_t(classes), std::size_t(200), std::size_t(50), std::size_t(1)}) {
      o.workspace_bytes = block * per_class;
      INFO("margin " << o.margin << " scale " << o.scale << ": block " << block);
      const LossResult<double> whole = subcenter_arcface_loss(X, y, W, o);
      CHECK(pml_relative(whole.value, value) < 1e-12);
      CHECK(pml_relative_max(whole.grad[0], dX) < 1e-12);
      CHECK(pml_relative_max(whole.grad[1], dW) < 1e-12);
    }
  }
}

TEST_CASE("class-weight losses: call forms, float, caller-owned buffers", "[class_losses]") {
  const RowMatrix<double> X = random_embeddings<double>(8, 4, 441);
  const Eigen::VectorXi y = random_labels(8, 5, 442);
  const RowMatrix<double> W = random_embeddings<double>(5, 4, 443);
  const LossResult<double> full = cosface_loss(X, y, W);
  CHECK(cosface_loss(X, y, W, value_only) == full.value);
  CHECK(cosface_loss(X, y, W, CosFaceOptions{}, value_only) == full.value);
  RowMatrix<double> gx(8, 4), gw(5, 4);
  CHECK(cosface_loss(X, y, W, gx, gw) == full.value);
  CHECK(gx == full.grad[0]);
  CHECK(gw == full.grad[1]);
  // dX alone.
  std::vector<double> bx(32, -7.0);
  Eigen::Map<RowMatrix<double>> mx(bx.data(), 8, 4);
  CHECK(cosface_loss(X, y, W, mx) == full.value);
  CHECK(mx == full.grad[0]);
  // A wrong dW buffer: named, nothing written.
  std::vector<double> small_w(16, -7.0), other(32, -7.0);
  Eigen::Map<RowMatrix<double>> wrong(small_w.data(), 4, 4), ok(other.data(), 8, 4);
  REQUIRE_INVALID_ARGUMENT(cosface_loss(X, y, W, ok, wrong), "cosface_loss", "W_grad");
  CHECK(std::all_of(small_w.begin(), small_w.end(), [](double v) { return v == -7.0; }));
  CHECK(std::all_of(other.begin(), other.end(), [](double v) { return v == -7.0; }));
  // Column-major W and a row-major Map over it give the same.
  const Eigen::MatrixXd Wc = W;
  CHECK(cosface_loss(X, y, Wc, value_only) == Approx(full.value).epsilon(1e-15));
  // Float agrees with double.
  const RowMatrix<float> Xf = X.cast<float>(), Wf = W.cast<float>();
  for (int code = 0; code < Codes; ++code) {
    const Params p = small(code);
    const RowMatrix<double> Wd = weights_for(code, 5, p.sub_centers, 4, 444);
    const RowMatrix<float> Wdf = Wd.cast<float>();
    const LossResult<double> d = run<double>(code, X, y, Wd, p);
    const LossResult<float> f = run<float>(code, Xf, y, Wdf, p);
    INFO(code_names[code]);
    CHECK(pml_relative(double(f.value), d.value) < 1e-5);
    CHECK(pml_relative_max(f.grad[0].cast<double>(), d.grad[0]) < 1e-4);
    CHECK(pml_relative_max(f.grad[1].cast<double>(), d.grad[1]) < 1e-4);
  }
}

TEST_CASE("class-weight losses: edge cases", "[class_losses][edge]") {
  const RowMatrix<double> W = random_embeddings<double>(6, 3, 451);
  for (int code = 0; code < Codes; ++code) {
    Params p = small(code);
    INFO(code_names[code]);
    // Empty batch: loss 0, empty dX, zero dW.
    const LossResult<double> e = run<double>(code, RowMatrix<double>(0, 3), Eigen::VectorXi(0), W, p);
    CHECK(e.value == 0);
    CHECK(e.grad[0].rows() == 0);
    CHECK(e.grad[1].rows() == W.rows());
    CHECK(e.grad[1].isZero(0));
    // One class only, with samples: finite, equal to the brute force.
    const RowMatrix<double> X = random_embeddings<double>(5, 3, 452);
    const Eigen::VectorXi one = Eigen::VectorXi::Constant(5, 1);
    const RowMatrix<double> Wk = weights_for(code, 6, p.sub_centers, 3, 453);
    const LossResult<double> r = run<double>(code, X, one, Wk, p);
    CHECK(std::isfinite(r.value));
    CHECK(pml_relative(r.value, brute(code, X, one, Wk, p).value) < 1e-12);
    // A zero row of X (no direction: cosines 0) and a zero row of W: finite, gradient 0 on them.
    RowMatrix<double> Z = X, Wz = Wk;
    Z.row(2).setZero();
    Wz.row(3).setZero();
    const LossResult<double> z = run<double>(code, Z, one, Wz, p);
    CHECK(z.grad[0].allFinite());
    CHECK(z.grad[1].allFinite());
    CHECK(z.grad[0].row(2).isZero(0));
    CHECK(z.grad[1].row(3).isZero(0));
    CHECK_FALSE(z.grad[0].isZero(0));
    if (code != ProxyNCA) CHECK(pml_relative(z.value, brute(code, Z, one, Wz, p).value) < 1e-12);
  }
  // Large scales in float stay finite (the online softmax shifts every exponent).
  ArcFaceOptions o;
  o.scale = 1e4;
  const RowMatrix<float> Xf = random_embeddings<float>(6, 3, 454), Wf = W.cast<float>();
  const LossResult<float> f = arcface_loss(Xf, random_labels(6, 6, 455), Wf, o);
  CHECK(std::isfinite(f.value));
  CHECK(f.grad[0].allFinite());
  CHECK(f.grad[1].allFinite());
  // ProxyNCA drops a row whose own-proxy probability underflows.
  RowMatrix<double> X = random_embeddings<double>(4, 3, 456);
  Eigen::VectorXi y(4);
  y << 0, 1, 2, 3;
  X.row(0) = -W.row(0);
  X.row(0) += 1e-3 * W.row(1);
  ProxyNCAOptions nca;
  nca.softmax_scale = 400;
  const LossResult<double> d = proxy_nca_loss(X, y, W, nca);
  CHECK(d.terms(0) == 0);
  CHECK(d.grad[0].row(0).isZero(0));
  CHECK(std::isfinite(d.value));
  CHECK(pml_relative(d.value, brute(ProxyNCA, X, y, W, Params{0, 400, 1}).value) < 1e-12);
}

TEST_CASE("class-weight losses reject bad arguments", "[class_losses][validation]") {
  const RowMatrix<double> X = random_embeddings<double>(6, 3, 461);
  const Eigen::VectorXi y = random_labels(6, 4, 462);
  const RowMatrix<double> W = random_embeddings<double>(4, 3, 463);
  std::vector<double> bx(18, -7.0), bw(12, -7.0);
  Eigen::Map<RowMatrix<double>> gx(bx.data(), 6, 3), gw(bw.data(), 4, 3);
  const auto untouched = [&] {
    return std::all_of(bx.begin(), bx.end(), [](double v) { return v == -7.0; }) &&
           std::all_of(bw.begin(), bw.end(), [](double v) { return v == -7.0; });
  };
  // A label outside [0, c): the row named.
  Eigen::VectorXi bad = y;
  bad(4) = 4;
  REQUIRE_INVALID_ARGUMENT(arcface_loss(X, bad, W, ArcFaceOptions{}, gx, gw), "arcface_loss", "labels", "row 4");
  bad(4) = -1;
  REQUIRE_INVALID_ARGUMENT(proxy_anchor_loss(X, bad, W, value_only), "proxy_anchor_loss", "row 4");
  // W with the wrong column count, non-finite W, rows not a multiple of sub_centers.
  const RowMatrix<double> W4 = random_embeddings<double>(4, 4, 464);
  REQUIRE_INVALID_ARGUMENT(cosface_loss(X, y, W4, value_only), "cosface_loss", "'W'", "columns");
  RowMatrix<double> Wn = W;
  Wn(2, 1) = std::numeric_limits<double>::quiet_NaN();
  REQUIRE_INVALID_ARGUMENT(sphereface_loss(X, y, Wn, SphereFaceOptions{}, gx, gw), "sphereface_loss", "'W'", "row 2");
  SubCenterArcFaceOptions sc;
  sc.sub_centers = 3;
  REQUIRE_INVALID_ARGUMENT(subcenter_arcface_loss(X, y, W, sc, gx, gw), "subcenter_arcface_loss", "sub_centers");
  sc.sub_centers = 0;
  REQUIRE_INVALID_ARGUMENT(subcenter_arcface_loss(X, y, W, sc, gx, gw), "subcenter_arcface_loss", "sub_centers");
  REQUIRE_INVALID_ARGUMENT(subcenter_arcface_outliers(X, y, W, sc), "subcenter_arcface_outliers", "sub_centers");
  sc.sub_centers = 1;
  REQUIRE_INVALID_ARGUMENT(subcenter_arcface_outliers(X, y, W, sc, 200.0),
                           "subcenter_arcface_outliers", "threshold");
  // Scales, temperatures and margins out of range.
  for (const double v : {0.0, -1.0, std::numeric_limits<double>::infinity(), std::nan("")}) {
    ArcFaceOptions a;
    a.scale = v;
    REQUIRE_INVALID_ARGUMENT(arcface_loss(X, y, W, a, gx, gw), "arcface_loss", "options.scale");
    NormalizedSoftmaxOptions t;
    t.temperature = v;
    REQUIRE_INVALID_ARGUMENT(normalized_softmax_loss(X, y, W, t, gx, gw), "normalized_softmax_loss",
                             "options.temperature");
    ProxyNCAOptions s;
    s.softmax_scale = v;
    REQUIRE_INVALID_ARGUMENT(proxy_nca_loss(X, y, W, s, gx, gw), "proxy_nca_loss", "options.softmax_scale");
    ProxyAnchorOptions pa;
    pa.alpha = v;
    REQUIRE_INVALID_ARGUMENT(proxy_anchor_loss(X, y, W, pa, gx, gw), "proxy_anchor_loss", "options.alpha");
  }
  for (const double m : {-1.0, 180.0, std::nan("")}) {
    ArcFaceOptions a;
    a.margin = m;
    REQUIRE_INVALID_ARGUMENT(arcface_loss(X, y, W, a, gx, gw), "arcface_loss", "options.margin");
  }
  CosFaceOptions cf;
  cf.margin = -0.1;
  REQUIRE_INVALID_ARGUMENT(cosface_loss(X, y, W, cf, gx, gw), "cosface_loss", "options.margin");
  SphereFaceOptions sf;
  sf.margin = 0;
  REQUIRE_INVALID_ARGUMENT(sphereface_loss(X, y, W, sf, gx, gw), "sphereface_loss", "options.margin");
  ProxyAnchorOptions pm;
  pm.margin = std::nan("");
  REQUIRE_INVALID_ARGUMENT(proxy_anchor_loss(X, y, W, pm, gx, gw), "proxy_anchor_loss", "options.margin");
  // Non-finite X, label count.
  RowMatrix<double> Xn = X;
  Xn(1, 1) = std::numeric_limits<double>::infinity();
  REQUIRE_INVALID_ARGUMENT(proxy_nca_loss(Xn, y, W, ProxyNCAOptions{}, gx, gw), "proxy_nca_loss", "'X'");
  REQUIRE_INVALID_ARGUMENT(arcface_loss(X, Eigen::VectorXi(y.head(5)), W, ArcFaceOptions{}, gx, gw), "arcface_loss",
                           "labels");
  CHECK(untouched());
}

}  // namespace test_class_losses
