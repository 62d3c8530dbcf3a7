// Quickstart: pairwise distances of a small batch and their gradient.
#include <contrastive/contrastive.hpp>

#include <iostream>

int main() {
  Eigen::MatrixXf X(4, 2);
  X << 0, 0, 1, 0, 0, 1, 3, 4;
  const contrastive::RowMatrix<float> D = contrastive::pairwise_distance<contrastive::Euclidean>(X);
  std::cout << "pairwise Euclidean distances:\n" << D << "\n";
  // Gradient of the sum of all distances with respect to every embedding.
  const contrastive::RowMatrix<float> ones = contrastive::RowMatrix<float>::Ones(4, 4);
  std::cout << "d(sum D)/dX:\n" << contrastive::pairwise_distance_backward(X, ones) << "\n";
  return 0;
}
