"""The one torch.autograd.Function every loss runs through, and tensor <-> numpy."""
import numpy as np
import torch


def embeddings_array(owner, embeddings):
    if not isinstance(embeddings, torch.Tensor):
        raise ValueError(f"{owner}: argument 'embeddings' must be a torch.Tensor, got {type(embeddings).__name__}")
    if embeddings.dim() != 2:
        raise ValueError(f"{owner}: argument 'embeddings' must be 2-D (N x D), got {embeddings.dim()}-D")
    if embeddings.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"{owner}: argument 'embeddings' must be float32 or float64, got {embeddings.dtype}")
    return embeddings.detach().cpu().numpy()  # a view on CPU; the extension copies non-contiguous rows once


def integer_array(owner, name, values):
    if isinstance(values, torch.Tensor):
        if values.dtype.is_floating_point or values.dtype.is_complex:
            raise ValueError(f"{owner}: argument '{name}' must be an integer tensor, got {values.dtype}")
        return values.detach().cpu().numpy().astype(np.int64, copy=False).reshape(-1)
    return np.asarray(values, dtype=np.int64).reshape(-1)


class LibraryLoss(torch.autograd.Function):
    """forward(ctx, call, embeddings, parameter): call(need_grad) -> (value, dL/dX, dL/dparameter)."""

    @staticmethod
    def forward(ctx, call, embeddings, parameter):
        need_x = embeddings.requires_grad
        need_p = parameter is not None and parameter.requires_grad
        value, grad_x, grad_p = call(need_x or need_p)
        ctx.grad_x = None if grad_x is None or not need_x else torch.from_numpy(grad_x).to(embeddings.device)
        ctx.grad_p = None
        if grad_p is not None and need_p:
            ctx.grad_p = torch.from_numpy(np.ascontiguousarray(grad_p)).to(parameter.device, parameter.dtype)
            ctx.grad_p = ctx.grad_p.reshape(parameter.shape)
        return torch.tensor(value, dtype=embeddings.dtype, device=embeddings.device)

    @staticmethod
    def backward(ctx, grad_output):
        if getattr(ctx, "create_graph", False):
            raise RuntimeError("contrastive.torch: second derivatives are not implemented")
        gx = None if ctx.grad_x is None else ctx.grad_x * grad_output
        gp = None if ctx.grad_p is None else ctx.grad_p * grad_output.to(ctx.grad_p.dtype)
        return None, gx, gp


def run(call, embeddings, parameter=None):
    """The loss value as a 0-dim tensor in autograd; gradients only when autograd wants them."""
    wants = torch.is_grad_enabled() and (
        embeddings.requires_grad or (parameter is not None and parameter.requires_grad))
    if not wants:
        value, _, _ = call(False)
        return torch.tensor(value, dtype=embeddings.dtype, device=embeddings.device)
    return LibraryLoss.apply(call, embeddings, parameter)
