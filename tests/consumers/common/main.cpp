// The smallest program a consumer writes: one include, one loss-sized call.
#include <contrastive/contrastive.hpp>

#include <iostream>

int main() {
  Eigen::MatrixXf X(3, 2);
  X << 0, 0, 3, 4, 1, 0;
  const contrastive::RowMatrix<float> D = contrastive::pairwise_distance(X);
  std::cout << "d(0,1) = " << D(0, 1) << "\n";
  return D(0, 1) == 5.0f ? 0 : 1;
}
