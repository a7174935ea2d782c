"""An independent, deliberately naive reference for the arithmetic cnncalc does in closed form.

Nothing here imports cnncalc. Sizes are found by *enumerating* sliding-window positions, bins
and scatter targets, and receptive fields by propagating explicit sets of input indices back
through a chain of layers, so a shared closed-form mistake cannot hide in both places.

Conventions (PyTorch's): ``padding`` is per side; coordinates below are *padded* coordinates
unless stated (position 0 is the first left-padding element).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# --------------------------------------------------------------------------- sliding windows


def window_starts(n: int, k: int, s: int, pad_left: int, pad_right: int, d: int = 1) -> list[int]:
    """Starts (padded coords) of every window that fits entirely in the padded input."""
    padded = n + pad_left + pad_right
    span = d * (k - 1) + 1
    starts, x = [], 0
    while x + span <= padded:
        starts.append(x)
        x += s
    return starts


def conv_out(
    n: int, k: int, s: int = 1, pad_left: int = 0, pad_right: int | None = None, d: int = 1
) -> int:
    """Number of valid convolution windows (0 when the kernel does not fit)."""
    pad_right = pad_left if pad_right is None else pad_right
    return len(window_starts(n, k, s, pad_left, pad_right, d))


def pool_window_starts(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> list[int]:
    """Window starts of a PyTorch pooling layer along one axis.

    Floor mode: the windows that fit in the padded input. Ceil mode: windows keep coming at
    stride ``s`` while the previous ones leave part of the padded input uncovered (a window may
    overhang the padded end by fewer than ``s`` elements), except that a window starting in the
    right padding (start >= left padding + n) is dropped.
    """
    padded = n + 2 * p
    span = d * (k - 1) + 1
    if not ceil_mode:
        return window_starts(n, k, s, p, p, d)
    starts, x = [], 0
    while x + span <= padded + s - 1:
        if x < p + n:
            starts.append(x)
        x += s
    return starts


def pool_out(n: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    return len(pool_window_starts(n, k, s, p, d, ceil_mode))


def pool_ceil_dropped(n: int, k: int, s: int, p: int, d: int = 1) -> bool:
    """Whether ceil mode dropped a window because it would start in the right padding."""
    padded = n + 2 * p
    span = d * (k - 1) + 1
    x = 0
    while x + span <= padded + s - 1:
        if x >= p + n:
            return True
        x += s
    return False


def floor_unread(n: int, k: int, s: int, pad_left: int, pad_right: int, d: int = 1) -> int:
    """Real input elements (not padding) that no window reads (they lie after the last window).

    Enumerates the positions each window touches (all taps, dilation included) and counts the
    real input positions after the last one read.
    """
    starts = window_starts(n, k, s, pad_left, pad_right, d)
    if not starts:
        return 0
    last_read = max(x + t * d for x in starts for t in range(k))  # padded coords
    last_real = pad_left + n - 1
    return max(0, last_real - max(last_read, pad_left - 1))


def same_pads(k: int, d: int = 1) -> tuple[int, int]:
    """PyTorch's padding='same' at stride 1: the output length equals the input length.

    Found by search: the smallest left padding, with the rest on the right, such that the
    number of windows equals n (independent of n; PyTorch puts the odd element on the right).
    """
    span = d * (k - 1) + 1
    total = span - 1
    left = total // 2
    return left, total - left


# --------------------------------------------------------------------------- other layers


def adaptive_bins(n: int, out: int) -> list[tuple[int, int]]:
    """Bins as PyTorch defines them: start = floor(i*n/out), end = ceil((i+1)*n/out)."""
    bins = []
    for i in range(out):
        start = (i * n) // out
        end = ((i + 1) * n + out - 1) // out
        bins.append((start, end))
    return bins


def transposed_positions(n: int, k: int, s: int, d: int) -> set[int]:
    """Where a transposed conv scatters: input i, tap t lands at i*s + t*d (before cropping)."""
    return {i * s + t * d for i in range(n) for t in range(k)}


def conv_transpose_out(n: int, k: int, s: int, p: int, op: int, d: int = 1) -> int:
    """Scatter, then crop ``p`` on both sides and add ``op`` on the right."""
    full = max(transposed_positions(n, k, s, d)) + 1
    return full - 2 * p + op


def conv_transpose_scatter_count(spatial: tuple[int, ...], k: tuple[int, ...]) -> int:
    """Multiply-accumulates of a transposed conv per (in, out) channel pair: every input
    position scatters every tap (PyTorch's flop counter counts over input positions)."""
    count = 0
    for _ in range(math.prod(spatial)):
        for _ in range(math.prod(k)):
            count += 1
    return count


def nearest_out(n: int, scale: float) -> int:
    return math.floor(n * scale)


def conv_params(
    c_in: int, c_out: int, k: tuple[int, ...], groups: int = 1, bias: bool = True
) -> int:
    """Weight tensor (c_out, c_in/groups, *k) plus a bias per output channel."""
    return c_out * (c_in // groups) * math.prod(k) + (c_out if bias else 0)


def conv_transpose_params(
    c_in: int, c_out: int, k: tuple[int, ...], groups: int = 1, bias: bool = True
) -> int:
    """Weight tensor (c_in, c_out/groups, *k) plus a bias per output channel."""
    return c_in * (c_out // groups) * math.prod(k) + (c_out if bias else 0)


def conv_macs(out_shape: tuple[int, ...], c_in: int, k: tuple[int, ...], groups: int = 1) -> int:
    """Each output element sums c_in/groups × kernel-area products."""
    total = 0
    per_output = (c_in // groups) * math.prod(k)
    for _ in range(out_shape[0]):
        total += math.prod(out_shape[1:]) * per_output
    return total


# --------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class Win1d:
    """One layer along one axis: output o reads padded-free input indices o*s - p + t*d."""

    k: int
    s: int = 1
    p: int = 0
    d: int = 1


def influencing(chain: list[Win1d], unit: int) -> set[int]:
    """Network-input indices (padding included: may be negative or past the end) that can
    affect output ``unit`` of the last layer, by propagating the set back layer by layer."""
    current = {unit}
    for w in reversed(chain):
        current = {o * w.s - w.p + t * w.d for o in current for t in range(w.k)}
    return current


def receptive_field_1d(chain: list[Win1d]) -> tuple[int, int, int]:
    """(size, jump, start) by brute force: span of unit 0's field, the shift between the
    fields of units 0 and 1, and the first index of unit 0's field."""
    f0, f1 = influencing(chain, 0), influencing(chain, 1)
    return max(f0) - min(f0) + 1, min(f1) - min(f0), min(f0)


def influencing_2d(chain: list[tuple[Win1d, Win1d]], unit: tuple[int, int]) -> set[tuple[int, int]]:
    """The 2-D version, on explicit (row, column) pairs."""
    current = {unit}
    for wh, ww in reversed(chain):
        current = {
            (y * wh.s - wh.p + th * wh.d, x * ww.s - ww.p + tw * ww.d)
            for y, x in current
            for th in range(wh.k)
            for tw in range(ww.k)
        }
    return current


def receptive_field_2d(chain: list[tuple[Win1d, Win1d]]) -> tuple[tuple[int, int], ...]:
    """((size_h, size_w), (jump_h, jump_w), (start_h, start_w)) by brute force in 2-D."""
    f0 = influencing_2d(chain, (0, 0))
    f_down = influencing_2d(chain, (1, 0))
    f_right = influencing_2d(chain, (0, 1))
    ys = [y for y, _ in f0]
    xs = [x for _, x in f0]
    size = (max(ys) - min(ys) + 1, max(xs) - min(xs) + 1)
    jump = (min(y for y, _ in f_down) - min(ys), min(x for _, x in f_right) - min(xs))
    start = (min(ys), min(xs))
    return size, jump, start


# --------------------------------------------------------------------------- a direct conv


def cross_correlate_2d(image: list[list[int]], kernel: list[list[int]]) -> list[list[int]]:
    """The article's 2-D cross-correlation, written out (valid positions only)."""
    h, w = len(image), len(image[0])
    kh, kw = len(kernel), len(kernel[0])
    return [
        [
            sum(image[i + a][j + b] * kernel[a][b] for a in range(kh) for b in range(kw))
            for j in range(w - kw + 1)
        ]
        for i in range(h - kh + 1)
    ]
