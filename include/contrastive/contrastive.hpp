// The one include: metrics, losses, mining and the gradient checker.
#pragma once

#include "contrastive/core/loss_result.hpp"
#include "contrastive/core/types.hpp"
#include "contrastive/core/validation.hpp"
#include "contrastive/losses/ntxent_loss.hpp"
#include "contrastive/losses/supcon_loss.hpp"
#include "contrastive/metrics/cosine.hpp"
#include "contrastive/metrics/distance.hpp"
#include "contrastive/metrics/euclidean.hpp"
#include "contrastive/metrics/squared_euclidean.hpp"
#include "contrastive/mining/mine_triplets.hpp"
#include "contrastive/mining/negative_kind.hpp"
#include "contrastive/mining/negative_stats.hpp"
#include "contrastive/mining/pair_miners.hpp"
#include "contrastive/mining/reference_set.hpp"
#include "contrastive/mining/selection_miners.hpp"
#include "contrastive/testing/gradient_check.hpp"
