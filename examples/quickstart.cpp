// Quickstart: a batch of 6 embeddings in 2-D with labels, three losses, and one
// gradient step on the embeddings that lowers the loss.
#include <contrastive/contrastive.hpp>

#include <cstdio>

int main() {
  contrastive::RowMatrix<double> X(6, 2);  // one row per sample
  X << 0.0, 0.0,   0.9, 0.1,   0.1, 0.8,    // class 0, 1, 2 ...
       0.2, 0.1,   1.0, 0.3,   0.0, 1.1;    // ... and again
  Eigen::VectorXi labels(6);
  labels << 0, 1, 2, 0, 1, 2;

  contrastive::TripletOptions triplet;  // margin 1, mean over anchors
  const auto hard = contrastive::batch_hard_triplet_loss(X, labels, triplet);  // Euclidean by default
  const auto contrast = contrastive::batch_contrastive_loss(X, labels, contrastive::ContrastiveOptions{});
  const auto supcon = contrastive::supcon_loss<contrastive::Cosine>(X, labels, /*temperature=*/0.5);
  std::printf("batch-hard triplet %.4f  contrastive %.4f  supcon %.4f\n", hard.value, contrast.value,
              supcon.value);

  // hard.grad[0] is dL/dX, shaped like X: step against it and evaluate again.
  const contrastive::RowMatrix<double> stepped = X - 0.5 * hard.grad[0];
  const double after = contrastive::batch_hard_triplet_loss(stepped, labels, triplet, contrastive::value_only);
  std::printf("one gradient step (lr 0.5): batch-hard triplet %.4f -> %.4f\n", hard.value, after);
  return after < hard.value ? 0 : 1;
}
