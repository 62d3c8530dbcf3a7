// A two-layer perceptron written with Eigen, with its exact backward pass:
//
//   H = relu(X W1 + b1)        X: N x in, W1: in x hidden
//   Z = H W2 + b2              W2: hidden x out
//   E = Z / |Z| row-wise       (when `normalize`; embeddings on the unit sphere)
//
// The loss gives dL/dE for a batch; backward() turns it into the gradients of
// W1, b1, W2, b2. Rows are samples, as in the library.
#pragma once

#include <contrastive/contrastive.hpp>

#include <array>
#include <cmath>
#include <random>

namespace digits {

using contrastive::Index;
using Matrix = contrastive::RowMatrix<float>;

struct MlpParameters {
  Matrix W1, b1, W2, b2;  // biases are 1 x n rows

  std::array<Matrix*, 4> list() { return {&W1, &b1, &W2, &b2}; }
  std::array<const Matrix*, 4> list() const { return {&W1, &b1, &W2, &b2}; }
  static std::array<bool, 4> is_weight() { return {true, false, true, false}; }
};

class Mlp {
 public:
  // What forward() keeps for backward().
  struct Cache {
    Matrix X, H, Z, E;
  };

  Mlp(Index inputs, Index hidden, Index outputs, bool normalize, std::mt19937& rng)
      : normalize_(normalize) {
    // He initialisation for the ReLU layer, Glorot-like for the linear output.
    p_.W1 = gaussian(inputs, hidden, std::sqrt(2.0 / static_cast<double>(inputs)), rng);
    p_.b1 = Matrix::Zero(1, hidden);
    p_.W2 = gaussian(hidden, outputs, std::sqrt(1.0 / static_cast<double>(hidden)), rng);
    p_.b2 = Matrix::Zero(1, outputs);
  }

  Matrix forward(const Matrix& X, Cache* cache = nullptr) const {
    Cache local;
    Cache& c = cache ? *cache : local;
    c.X = X;
    c.H = ((X * p_.W1).rowwise() + p_.b1.row(0)).cwiseMax(0.0f);
    c.Z = (c.H * p_.W2).rowwise() + p_.b2.row(0);
    if (!normalize_) {
      c.E = c.Z;
    } else {
      // A zero row stays zero (norm clamped), as the library treats zero vectors.
      const Eigen::VectorXf norms = c.Z.rowwise().norm().cwiseMax(kTinyNorm);
      c.E = norms.cwiseInverse().asDiagonal() * c.Z;
    }
    return c.E;
  }

  // Gradients of the parameters given dL/dE of the batch that made `cache`.
  MlpParameters backward(const Cache& c, const Matrix& dE) const {
    Matrix dZ;
    if (!normalize_) {
      dZ = dE;
    } else {
      // d(z/|z|) = (I - e e^T) dz / |z|: remove the radial part, divide by the norm.
      const Eigen::VectorXf norms = c.Z.rowwise().norm().cwiseMax(kTinyNorm);
      const Eigen::VectorXf radial = c.E.cwiseProduct(dE).rowwise().sum();
      dZ = norms.cwiseInverse().asDiagonal() * (dE - radial.asDiagonal() * c.E);
    }
    MlpParameters g;
    g.W2 = c.H.transpose() * dZ;
    g.b2 = dZ.colwise().sum();
    // relu'(pre) is 1 exactly where H > 0.
    const Matrix dH = (dZ * p_.W2.transpose()).cwiseProduct((c.H.array() > 0.0f).cast<float>().matrix());
    g.W1 = c.X.transpose() * dH;
    g.b1 = dH.colwise().sum();
    return g;
  }

  MlpParameters& parameters() { return p_; }
  const MlpParameters& parameters() const { return p_; }

 private:
  static constexpr float kTinyNorm = 1e-12f;

  static Matrix gaussian(Index rows, Index cols, double stddev, std::mt19937& rng) {
    std::normal_distribution<float> normal(0.0f, static_cast<float>(stddev));
    Matrix m(rows, cols);
    for (Index i = 0; i < rows; ++i)
      for (Index j = 0; j < cols; ++j) m(i, j) = normal(rng);
    return m;
  }

  MlpParameters p_;
  bool normalize_;
};

}  // namespace digits
