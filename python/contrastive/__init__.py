"""contrastive: the library's losses and miners from Python.

contrastive._contrastive is the pybind11 extension over numpy arrays;
contrastive.torch wraps it in torch.nn.Module losses and miners with
pytorch-metric-learning's names (docs/python.md).
"""
