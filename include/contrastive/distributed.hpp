// Distributed (MPI) batch losses, miners and counters: each rank passes its
// own rows, every rank gets the result of the global batch
// (docs/distributed.md). Needs <mpi.h>; not included by contrastive.hpp.
// CMake: link contrastive::distributed (built when CONTRASTIVE_WITH_MPI finds MPI).
#pragma once

#include "contrastive/distributed/agreement.hpp"
#include "contrastive/distributed/communicator.hpp"
#include "contrastive/distributed/global_batch.hpp"
#include "contrastive/distributed/global_loss.hpp"
#include "contrastive/distributed/class_losses.hpp"
#include "contrastive/distributed/losses.hpp"
#include "contrastive/distributed/miners.hpp"
