"""Layers that only move elements, forward and backward: ``channel_shuffle``,
``pixel_shuffle`` / ``pixel_unshuffle``, ``permute``, ``unflatten``, and torchvision's
``stochastic_depth`` (the identity at inference). Plain numpy: each is one reshape/transpose
copy, and each backward is the inverse move."""

import numpy as np

from ._common import as_float_array


def channel_shuffle(input, groups):
    """``F.channel_shuffle``: channels viewed as (groups, C/groups), transposed, flattened."""
    x = as_float_array(input)
    if x.ndim < 3:
        raise ValueError(f"channel_shuffle: expects input with > 2 dims, got {x.shape}")
    n, c = x.shape[:2]
    if groups < 1 or c % groups:
        raise ValueError(f"channel_shuffle: groups {groups} must divide the {c} channels")
    y = x.reshape(n, groups, c // groups, *x.shape[2:]).swapaxes(1, 2)
    return np.ascontiguousarray(y).reshape(x.shape)


def channel_shuffle_backward(grad_output, groups):
    """The inverse shuffle: (C/groups, groups) transposed back."""
    g = as_float_array(grad_output, "grad_output")
    return channel_shuffle(g, g.shape[1] // groups)


def pixel_shuffle(input, upscale_factor):
    """``F.pixel_shuffle``: (N, C·r², H, W) → (N, C, H·r, W·r)."""
    x = as_float_array(input)
    r = int(upscale_factor)
    if x.ndim != 4 or r < 1 or x.shape[1] % (r * r):
        raise ValueError(f"pixel_shuffle: needs (N, C·{r}², H, W), got {x.shape}")
    n, c, h, w = x.shape
    y = x.reshape(n, c // (r * r), r, r, h, w).transpose(0, 1, 4, 2, 5, 3)
    return np.ascontiguousarray(y).reshape(n, c // (r * r), h * r, w * r)


def pixel_unshuffle(input, downscale_factor):
    """``F.pixel_unshuffle``: (N, C, H·r, W·r) → (N, C·r², H, W)."""
    x = as_float_array(input)
    r = int(downscale_factor)
    if x.ndim != 4 or r < 1 or x.shape[2] % r or x.shape[3] % r:
        raise ValueError(f"pixel_unshuffle: needs (N, C, H·{r}, W·{r}), got {x.shape}")
    n, c, h, w = x.shape
    y = x.reshape(n, c, h // r, r, w // r, r).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(y).reshape(n, c * r * r, h // r, w // r)


def pixel_shuffle_backward(grad_output, upscale_factor):
    return pixel_unshuffle(grad_output, upscale_factor)


def pixel_unshuffle_backward(grad_output, downscale_factor):
    return pixel_shuffle(grad_output, downscale_factor)


def permute(input, dims):
    """``torch.permute`` as a contiguous copy."""
    x = as_float_array(input)
    dims = tuple(d % x.ndim for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute: dims {dims} are not a permutation of {x.ndim} dims")
    return np.ascontiguousarray(np.transpose(x, dims))


def permute_backward(grad_output, dims):
    """The inverse permutation."""
    g = as_float_array(grad_output, "grad_output")
    dims = tuple(d % g.ndim for d in dims)
    return np.ascontiguousarray(np.transpose(g, np.argsort(dims)))


def unflatten(input, dim, sizes):
    """``torch.unflatten``: dim split into ``sizes`` (one may be -1)."""
    x = as_float_array(input)
    d = dim % x.ndim
    return x.reshape(x.shape[:d] + tuple(sizes) + x.shape[d + 1 :])


def unflatten_backward(grad_output, input_shape):
    g = as_float_array(grad_output, "grad_output")
    return g.reshape(tuple(input_shape))


def stochastic_depth(input, p, mode, training=False):
    """``torchvision.ops.stochastic_depth`` at inference: the identity.

    ``training=True`` raises NotImplementedError (the kernels run inference)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(
            f"stochastic_depth: drop probability has to be between 0 and 1, but got {p}"
        )
    if mode not in ("batch", "row"):
        raise ValueError(
            f"stochastic_depth: mode has to be either 'batch' or 'row', but got {mode}"
        )
    if training:
        raise NotImplementedError("stochastic_depth: only inference (training=False)")
    return as_float_array(input)


def stochastic_depth_backward(grad_output):
    return as_float_array(grad_output, "grad_output")
