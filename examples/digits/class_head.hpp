// The class-weight matrix W of the class-weight losses (ArcFace, CosFace, ...):
// one row per class (sub_centers rows per class for SubCenterArcFace), drawn
// from a unit normal as pytorch-metric-learning initialises it, and trained
// with the example's Adam alongside the MLP (no weight decay: the losses use
// W's directions only).
#pragma once

#include "adam.hpp"
#include "mlp.hpp"

#include <random>

namespace digits {

class ClassHead {
 public:
  ClassHead(Index rows, Index dim, double learning_rate, std::mt19937& rng) : adam_(learning_rate, 0.0) {
    std::normal_distribution<float> normal(0.0f, 1.0f);
    params_.W1.resize(rows, dim);
    for (Index i = 0; i < params_.W1.size(); ++i) params_.W1.data()[i] = normal(rng);
    grads_.W1.setZero(rows, dim);
  }

  const Matrix& W() const { return params_.W1; }
  Matrix& dW() { return grads_.W1; }
  void set_learning_rate(double learning_rate) { adam_.set_learning_rate(learning_rate); }
  // One Adam step on W with the gradient left in dW().
  void step() { adam_.step(params_, grads_); }

 private:
  // The example's Adam steps MlpParameters; W rides in its first matrix, the others stay empty.
  MlpParameters params_, grads_;
  Adam adam_;
};

}  // namespace digits
