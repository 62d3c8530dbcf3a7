// The class-weight losses at training-head sizes, single-threaded: fwd + bwd
// (value, dL/dX, dL/dW) and value only, against the bound measured in the same
// process: the products no implementation can skip, X W^T (N x c logits) and
// G W (N x c weights times W, for dL/dX), and also G^T X (for dL/dW).
//
//   class_heads                                   # N = 256, c = 10,000, D = 128, float, every loss
//   class_heads --classes 1000000 --once arcface  # one fwd + bwd of a million-class head (peak RSS:
//                                                 # /usr/bin/time -v class_heads ...)
// Options: --rows N, --classes c, --dim D, --reps R, --once LOSS (one call, no timing table).
#include <contrastive/contrastive.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace {

using contrastive::Index;
using Matrix = contrastive::RowMatrix<float>;

struct Setup {
  Index rows = 256, classes = 10000, dim = 128;
  int reps = 15;
  std::string once;
};

Matrix random_matrix(Index rows, Index cols, unsigned seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Matrix M(rows, cols);
  for (Index i = 0; i < M.size(); ++i) M.data()[i] = normal(gen);
  return M;
}

struct Loss {
  std::string name;
  std::function<contrastive::LossResult<float>(const Matrix&, const Eigen::VectorXi&, const Matrix&)> full;
  std::function<float(const Matrix&, const Eigen::VectorXi&, const Matrix&)> value;
};

template <class Options, class F>
Loss make(const std::string& name, F f, Options o = {}) {
  return {name, [f, o](const Matrix& X, const Eigen::VectorXi& y, const Matrix& W) { return f(X, y, W, o); },
          [f, o](const Matrix& X, const Eigen::VectorXi& y, const Matrix& W) {
            return f(X, y, W, o, contrastive::value_only);
          }};
}

#define CLASS_LOSS(fn) [](const auto& X, const auto& y, const auto& W, const auto&... rest) { return contrastive::fn(X, y, W, rest...); }

}  // namespace

int main(int argc, char** argv) {
  Setup s;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--rows") s.rows = std::atol(v.c_str());
    else if (a == "--classes") s.classes = std::atol(v.c_str());
    else if (a == "--dim") s.dim = std::atol(v.c_str());
    else if (a == "--reps") s.reps = std::atoi(v.c_str());
    else if (a == "--once") s.once = v;
    else {
      std::fprintf(stderr, "class_heads: unknown flag %s\n", a.c_str());
      return 2;
    }
  }
  Eigen::setNbThreads(1);
  const contrastive::SubCenterArcFaceOptions sub;
  const Index sub_rows = s.once.empty() || s.once == "subcenter_arcface" ? s.classes * sub.sub_centers : 0;
  std::vector<Loss> losses = {
      make<contrastive::ArcFaceOptions>("arcface", CLASS_LOSS(arcface_loss)),
      make<contrastive::CosFaceOptions>("cosface", CLASS_LOSS(cosface_loss)),
      make<contrastive::SphereFaceOptions>("sphereface", CLASS_LOSS(sphereface_loss)),
      make<contrastive::NormalizedSoftmaxOptions>("normalized_softmax", CLASS_LOSS(normalized_softmax_loss)),
      make<contrastive::ProxyNCAOptions>("proxy_nca", CLASS_LOSS(proxy_nca_loss)),
      make<contrastive::ProxyAnchorOptions>("proxy_anchor", CLASS_LOSS(proxy_anchor_loss)),
      make<contrastive::SubCenterArcFaceOptions>("subcenter_arcface", CLASS_LOSS(subcenter_arcface_loss)),
  };
  const Matrix X = random_matrix(s.rows, s.dim, 1);
  Eigen::VectorXi y(s.rows);
  std::mt19937 gen(2);
  std::uniform_int_distribution<int> pick(0, static_cast<int>(s.classes) - 1);
  for (Index i = 0; i < s.rows; ++i) y(i) = pick(gen);

  if (!s.once.empty()) {
    const auto it = std::find_if(losses.begin(), losses.end(), [&](const Loss& l) { return l.name == s.once; });
    if (it == losses.end()) {
      std::fprintf(stderr, "class_heads: unknown loss %s\n", s.once.c_str());
      return 2;
    }
    const Matrix W = random_matrix(it->name == "subcenter_arcface" ? sub_rows : s.classes, s.dim, 3);
    const auto a = std::chrono::steady_clock::now();
    const contrastive::LossResult<float> r = it->full(X, y, W);
    const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
    std::printf("%s: N = %ld, c = %ld, D = %ld, float, one thread: fwd + bwd %.3f s, value %.6g, |dW| %.6g; "
                "W is %.1f MiB\n",
                it->name.c_str(), static_cast<long>(s.rows), static_cast<long>(s.classes), static_cast<long>(s.dim),
                t, static_cast<double>(r.value), static_cast<double>(r.grad[1].norm()),
                static_cast<double>(W.size()) * sizeof(float) / (1 << 20));
    return 0;
  }

  const Matrix W = random_matrix(s.classes, s.dim, 3);
  const Matrix Wk = random_matrix(sub_rows, s.dim, 4);
  // The bound: the forward product, and the backward's products with a dense N x c weight matrix,
  // timed in the same repetitions as each loss (the machine's load then hits both alike).
  Matrix S, G, dX(s.rows, s.dim), dW;
  const auto bound = [&](const Matrix& w, double* parts) {
    S.resize(s.rows, w.rows());
    G = Matrix::Constant(s.rows, w.rows(), 1e-3f);
    dW.resize(w.rows(), s.dim);
    auto t0 = std::chrono::steady_clock::now();
    S.noalias() = X * w.transpose();
    auto t1 = std::chrono::steady_clock::now();
    dX.noalias() = G * w;
    auto t2 = std::chrono::steady_clock::now();
    dW.noalias() = G.transpose() * X;
    auto t3 = std::chrono::steady_clock::now();
    parts[0] = std::chrono::duration<double>(t1 - t0).count();
    parts[1] = std::chrono::duration<double>(t2 - t1).count();
    parts[2] = std::chrono::duration<double>(t3 - t2).count();
  };
  const auto seconds = [](const std::function<void()>& f) {
    const auto a = std::chrono::steady_clock::now();
    f();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count();
  };
  const auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("N = %ld, c = %ld, D = %ld, float, one thread; medians of %d repetitions, each timing the bound and\n"
              "the loss back to back (ratios: per repetition, then the median)\n",
              static_cast<long>(s.rows), static_cast<long>(s.classes), static_cast<long>(s.dim), s.reps);
  std::printf("%-18s %8s %8s %8s | %10s %7s %7s | %8s %7s\n", "loss", "XW^T ms", "GW ms", "G^TX ms", "fwd+bwd ms",
              "/2prod", "/3prod", "value ms", "/XW^T");
  volatile float sink = 0;
  for (const Loss& l : losses) {
    const Matrix& w = l.name == "subcenter_arcface" ? Wk : W;
    std::vector<double> f0, f1, f2, fb, v, r2, r3, rv;
    for (int r = 0; r <= s.reps; ++r) {
      double parts[3];
      bound(w, parts);
      const double tfb = seconds([&] { sink = sink + l.full(X, y, w).value; });
      const double tv = seconds([&] { sink = sink + l.value(X, y, w); });
      if (r == 0) continue;  // warm-up
      f0.push_back(parts[0]);
      f1.push_back(parts[1]);
      f2.push_back(parts[2]);
      fb.push_back(tfb);
      v.push_back(tv);
      r2.push_back(tfb / (parts[0] + parts[1]));
      r3.push_back(tfb / (parts[0] + parts[1] + parts[2]));
      rv.push_back(tv / parts[0]);
    }
    std::printf("%-18s %8.2f %8.2f %8.2f | %10.2f %7.2f %7.2f | %8.2f %7.2f\n", l.name.c_str(), median(f0) * 1e3,
                median(f1) * 1e3, median(f2) * 1e3, median(fb) * 1e3, median(r2), median(r3), median(v) * 1e3,
                median(rv));
  }
  return 0;
}
