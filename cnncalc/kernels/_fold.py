"""``torch.nn.functional.unfold`` (im2col) and ``fold`` (col2im), numpy in and out.

unfold: (N, C, H, W) → (N, C·k_H·k_W, L), row c·k_H·k_W + i·k_W + j holding element (i, j) of
every sliding block (blocks in row-major order, L of them). fold sums such columns back into
an (N, C, *output_size) map; each is the other's gradient. One strided copy per kernel
element: the loops in Python run over the kernel, never over the data.
"""

import numpy as np

from ._common import as_float_array, ntuple


def _geometry(fname, spatial, kernel_size, dilation, padding, stride):
    k = ntuple(kernel_size, 2, "kernel_size", minimum=1)
    d = ntuple(dilation, 2, "dilation", minimum=1)
    p = ntuple(padding, 2, "padding", minimum=0)
    s = ntuple(stride, 2, "stride", minimum=1)
    blocks = tuple(
        (n + 2 * pi - di * (ki - 1) - 1) // si + 1 for n, ki, di, pi, si in zip(spatial, k, d, p, s)
    )
    if min(blocks) < 1:
        raise ValueError(
            f"{fname}: calculated shape of the array of sliding blocks is "
            f"{blocks}, but its components must be at least one"
        )
    return k, d, p, s, blocks


def _slices(i, j, k, d, s, blocks):
    return (
        slice(None),
        slice(None),
        slice(i * d[0], i * d[0] + (blocks[0] - 1) * s[0] + 1, s[0]),
        slice(j * d[1], j * d[1] + (blocks[1] - 1) * s[1] + 1, s[1]),
    )


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Sliding blocks of a (N, C, H, W) or (C, H, W) input as columns (im2col)."""
    x = as_float_array(input)
    unb = x.ndim == 3
    if unb:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"unfold: input must be 3-D or 4-D, got shape {x.shape}")
    k, d, p, s, blocks = _geometry("unfold", x.shape[2:], kernel_size, dilation, padding, stride)
    xp = np.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])])
    N, C = x.shape[:2]
    cols = np.empty((N, C, k[0], k[1], *blocks), x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            cols[:, :, i, j] = xp[_slices(i, j, k, d, s, blocks)]
    out = cols.reshape(N, C * k[0] * k[1], blocks[0] * blocks[1])
    return out[0] if unb else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Columns (N, C·k_H·k_W, L) or (C·k_H·k_W, L) summed back into (N, C, *output_size)."""
    x = as_float_array(input)
    unb = x.ndim == 2
    if unb:
        x = x[None]
    if x.ndim != 3:
        raise ValueError(f"fold: input must be 2-D or 3-D, got shape {x.shape}")
    size = ntuple(output_size, 2, "output_size", minimum=1)
    k, d, p, s, blocks = _geometry("fold", size, kernel_size, dilation, padding, stride)
    N, rows, L = x.shape
    if rows % (k[0] * k[1]):
        raise ValueError(
            f"fold: expected size of input's dimension 1 to be divisible by the "
            f"product of kernel_size, but got {rows}"
        )
    if L != blocks[0] * blocks[1]:
        raise ValueError(
            f"fold: expected size of input's dimension 2 to match the calculated "
            f"number of sliding blocks {blocks[0]} * {blocks[1]} = "
            f"{blocks[0] * blocks[1]}, but got {L}"
        )
    C = rows // (k[0] * k[1])
    cols = x.reshape(N, C, k[0], k[1], *blocks)
    # room for every block, also blocks whose last rows overhang the padded map
    hp = max(size[0] + 2 * p[0], (blocks[0] - 1) * s[0] + d[0] * (k[0] - 1) + 1)
    wp = max(size[1] + 2 * p[1], (blocks[1] - 1) * s[1] + d[1] * (k[1] - 1) + 1)
    out = np.zeros((N, C, hp, wp), x.dtype)
    for i in range(k[0]):
        for j in range(k[1]):
            out[_slices(i, j, k, d, s, blocks)] += cols[:, :, i, j]
    out = np.ascontiguousarray(out[:, :, p[0] : p[0] + size[0], p[1] : p[1] + size[1]])
    return out[0] if unb else out


def unfold_backward(grad_output, input_size, kernel_size, dilation=1, padding=0, stride=1):
    """Gradient of ``unfold``: the columns' gradients folded back (``fold``)."""
    return fold(grad_output, tuple(input_size)[-2:], kernel_size, dilation, padding, stride)


def fold_backward(grad_output, kernel_size, dilation=1, padding=0, stride=1):
    """Gradient of ``fold``: the map's gradient unfolded (``unfold``)."""
    return unfold(grad_output, kernel_size, dilation, padding, stride)
