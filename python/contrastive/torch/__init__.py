"""torch.nn.Module losses, miners and distances with pytorch-metric-learning's
class names, arguments and defaults, computed by the contrastive library:

    from contrastive.torch import losses, miners, distances

Each loss is a torch.autograd.Function whose backward is the library's
analytic gradient times grad_output. CPU float32 / float64 embeddings (a CUDA
tensor is computed on a CPU copy, its gradient moved back). What cannot be
mapped exactly onto the library is rejected with a ValueError naming the
argument (docs/python.md lists the mapping).
"""
from . import distances, losses, miners  # noqa: F401

__all__ = ["distances", "losses", "miners"]
