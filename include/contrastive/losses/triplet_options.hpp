// Options shared by the triplet losses (triplet_margin_loss, batch_all_,
// batch_hard_ and batch_semihard_triplet_loss).
//
//   hinge term: [d(a,p) - d(a,n) + margin]+          (soft = false)
//   soft term:  softplus(d(a,p) - d(a,n) + margin)   (soft = true; margin 0: Hermans et al. 2017's soft margin)
//
// Defaults follow torch.nn.TripletMarginLoss and TensorFlow Addons (margin 1,
// mean reduction). pytorch-metric-learning's TripletMarginLoss uses margin 0.05
// and Reduction::MeanNonZero; its smooth_loss = True is soft = true with the
// same margin. (Before issue 13 soft ignored the margin: softplus(d_ap - d_an);
// set margin = 0 for that, e.g. TensorFlow Addons' triplet_hard_loss(soft=True).)
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/engine/workspace.hpp"

#include <cstddef>

namespace contrastive {

struct TripletOptions {
  double margin = 1.0;  // >= 0 and finite; inside the softplus when soft
  bool soft = false;    // softplus(d_ap - d_an + margin) instead of the hinge
  bool swap = false;    // torch's distance swap d_an := min(d_an, d_pn); explicit triplets only
  Reducer reduction = Reduction::Mean;
  std::size_t workspace_bytes = default_workspace_bytes;  // pairwise workspace of the batch forms
};

}  // namespace contrastive
