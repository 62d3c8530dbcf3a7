// Adam (Kingma & Ba 2015) for the example's MLP.
#pragma once

#include "mlp.hpp"

#include <array>
#include <cmath>

namespace digits {

// Adam (Kingma & Ba 2015) over the four parameter matrices of the MLP.
class Adam {
 public:
  // weight_decay > 0 gives AdamW: decoupled decay of the weights, not the biases.
  explicit Adam(double learning_rate, double weight_decay = 0, double beta1 = 0.9, double beta2 = 0.999,
                double epsilon = 1e-8)
      : lr_(learning_rate), weight_decay_(weight_decay), beta1_(beta1), beta2_(beta2), epsilon_(epsilon) {}

  void set_learning_rate(double learning_rate) { lr_ = learning_rate; }

  void step(MlpParameters& params, const MlpParameters& grads) {
    const auto p = params.list();
    const auto g = grads.list();
    if (t_ == 0) {
      for (std::size_t k = 0; k < p.size(); ++k) {
        m_[k] = Matrix::Zero(p[k]->rows(), p[k]->cols());
        v_[k] = Matrix::Zero(p[k]->rows(), p[k]->cols());
      }
    }
    ++t_;
    // Bias corrections folded into the step size.
    const double correction1 = 1.0 - std::pow(beta1_, static_cast<double>(t_));
    const double correction2 = 1.0 - std::pow(beta2_, static_cast<double>(t_));
    const float step = static_cast<float>(lr_ * std::sqrt(correction2) / correction1);
    const float b1 = static_cast<float>(beta1_), b2 = static_cast<float>(beta2_);
    const float eps = static_cast<float>(epsilon_ * std::sqrt(correction2));
    const auto is_weight = params.is_weight();
    for (std::size_t k = 0; k < p.size(); ++k) {
      if (weight_decay_ > 0 && is_weight[k]) *p[k] *= static_cast<float>(1.0 - lr_ * weight_decay_);
      m_[k] = b1 * m_[k] + (1.0f - b1) * *g[k];
      v_[k] = b2 * v_[k] + (1.0f - b2) * g[k]->cwiseAbs2();
      p[k]->array() -= step * m_[k].array() / (v_[k].array().sqrt() + eps);
    }
  }

 private:
  double lr_, weight_decay_, beta1_, beta2_, epsilon_;
  long t_ = 0;
  std::array<Matrix, 4> m_, v_;
};

}  // namespace digits
