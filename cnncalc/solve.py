"""Inverse questions: which layer settings give a wanted size, which input sizes a net accepts.

- :func:`solve_layer`: given an input size and a target output size (a number, ``same`` = the
  input size, ``half`` = ⌈in/2⌉, ``double`` = 2·in), every (kernel, stride, padding,
  dilation) — or output_padding for a transposed conv — within kernel ≤ 11, stride ≤ 4,
  dilation ≤ 4, padding ≤ kernel (≤ kernel/2 for pooling, PyTorch's rule) that produces it.
  Pinned values are respected even outside those bounds. Simplest first: settings that read
  every input element before those that leave some unread (floor mode), then by dilation,
  kernel, stride, padding, output_padding.
- :func:`solve_sizes`: which square input sizes pass a whole spec without a refusal and
  without floor mode leaving any input row or column unread, and the smallest.

Sizes come from the same functions the analysis uses. Nothing here prints.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from cnncalc.arithmetic import conv_out, conv_transpose_out, dropped_by_floor, pool_out
from cnncalc.errors import ShapeError, SpecError, UsageError, show

KINDS = ("conv2d", "maxpool2d", "avgpool2d", "conv_transpose2d")
KERNELS, STRIDES, DILATIONS = range(1, 12), range(1, 5), range(1, 5)


def parse_target(text: str, n: int) -> int:
    """``same`` -> n, ``half`` -> ⌈n/2⌉ (what stride 2 with 'same'-style padding gives),
    ``double`` -> 2n, or a positive number."""
    key = text.strip().lower()
    if key == "same":
        return n
    if key == "half":
        return -(-n // 2)
    if key == "double":
        return 2 * n
    if key.isascii() and key.isdigit() and len(key) <= 30 and int(key) >= 1:
        return int(key)
    raise UsageError(
        f"--target {show(text)}: expected same, half, double or a size >= 1 (at most 30 digits)"
    )


@dataclass(frozen=True)
class Setting:
    """One way to get the target: a layer's fields, its output and what floor mode skips."""

    kernel: int
    stride: int
    padding: int
    dilation: int = 1
    output_padding: int = 0
    output: int = 0
    unread: int = 0  # input elements after the last window (floor mode)

    def call(self, kind: str, channels: str = "C_in, C_out") -> str:
        """The layer in PyTorch's (and the inline) syntax, e.g.
        ``conv2d(C_in, C_out, 3, stride=2, padding=1)``."""
        args = [channels] if kind.startswith("conv") else []
        args.append(str(self.kernel))
        default_stride = self.kernel if "pool" in kind else 1
        for name, value, default in (
            ("stride", self.stride, default_stride),
            ("padding", self.padding, 0),
            ("output_padding", self.output_padding, 0),
            ("dilation", self.dilation, 1),
        ):
            if value != default:
                args.append(f"{name}={value}")
        return f"{kind}({', '.join(args)})"


MAX_SEARCH = 1_000_000  # settings solve_layer tries


def _pick(pinned: int | None, default: range) -> range | list[int]:
    return default if pinned is None else [pinned]


def solve_layer(
    n: int,
    target: int,
    kind: str = "conv2d",
    kernel: int | None = None,
    stride: int | None = None,
    padding: int | None = None,
    dilation: int | None = None,
    output_padding: int | None = None,
    ceil_mode: bool = False,
) -> list[Setting]:
    """Every setting of one ``kind`` layer mapping size ``n`` to ``target`` (see module doc)."""
    if kind not in KINDS:
        raise UsageError(f"--type {kind!r}: expected one of {', '.join(KINDS)}")
    for name, value, low in (
        ("--input", n, 1),
        ("--kernel", kernel, 1),
        ("--stride", stride, 1),
        ("--dilation", dilation, 1),
        ("--padding", padding, 0),
        ("--output-padding", output_padding, 0),
    ):
        if value is not None and value < low:
            raise UsageError(f"{name} {value}: must be >= {low}")
    if kind == "avgpool2d" and dilation not in (None, 1):
        raise UsageError("--dilation: avgpool2d has no dilation")
    if output_padding not in (None, 0) and kind != "conv_transpose2d":
        raise UsageError("--output-padding applies to conv_transpose2d only")
    out: list[Setting] = []
    dilations = [1] if kind == "avgpool2d" else _pick(dilation, DILATIONS)
    combos = list(itertools.product(_pick(kernel, KERNELS), _pick(stride, STRIDES), dilations))
    # a huge pinned kernel (paddings up to it) or stride/dilation (output paddings below it)
    # would make the search below unbounded: count it first
    count = sum(
        len(_pick(padding, range((k // 2 if "pool" in kind else k) + 1)))
        * (len(_pick(output_padding, range(max(s, d)))) if kind == "conv_transpose2d" else 1)
        for k, s, d in combos
    )
    if count > MAX_SEARCH:
        raise UsageError(
            f"the pinned values leave {count:,} settings to try; at most "
            f"{MAX_SEARCH:,} (pin --padding too, or smaller values)"
        )
    for k, s, d in combos:
        k_eff = d * (k - 1) + 1
        pad_max = k // 2 if "pool" in kind else k
        for p in _pick(padding, range(pad_max + 1)):
            if kind == "conv_transpose2d":
                for op in _pick(output_padding, range(max(s, d))):
                    if op < max(s, d) and conv_transpose_out(n, k, s, p, op, d) == target:
                        out.append(Setting(k, s, p, d, op, target))
                continue
            if "pool" in kind:
                if p > k // 2:
                    continue  # PyTorch: pad should be at most half of effective kernel size
                size, _ = pool_out(n, k, s, p, d, ceil_mode)
            else:
                if k_eff > n + 2 * p:
                    continue
                size = conv_out(n, k, s, 2 * p, d)
            if size == target:
                lost = 0 if ceil_mode else dropped_by_floor(n, p, k_eff, s, size)
                out.append(Setting(k, s, p, d, 0, size, lost))
    return sorted(
        out,
        key=lambda c: (c.unread > 0, c.dilation, c.kernel, c.stride, c.padding, c.output_padding),
    )


# --------------------------------------------------------------------------- whole spec


@dataclass(frozen=True)
class SizeCheck:
    size: int
    ok: bool
    reason: str = ""  # why not: PyTorch's refusal, or the first floor-mode loss
    exact: bool = False  # also: every strided layer divides its input (no rounding anywhere)


def solve_sizes(spec, sizes: list[int], template: tuple[int, ...] | None = None) -> list[SizeCheck]:
    """For each size, run ``spec`` on the template shape with every spatial axis set to it."""
    from cnncalc.analysis import analyze

    shape = template or spec.input
    if shape is None or len(shape) < 2:
        raise UsageError(
            "give --input CxHxW (or an 'input' in the spec): its channels and rank "
            "are kept and --sizes replaces the spatial sizes"
        )
    out = []
    for size in sizes:
        trial = (shape[0],) + (size,) * (len(shape) - 1)
        try:
            a = analyze(spec, trial)
        except ShapeError as exc:
            out.append(SizeCheck(size, False, f"refused: {exc}"))
            continue
        losses = [f"{r.where}: {r.notes[0]}" for r in a.rows if r.drops_input]
        out.append(
            SizeCheck(
                size,
                not losses,
                f"loses data: {losses[0]}" if losses else "",
                exact=not losses and _strides_divide(a),
            )
        )
    return out


def _strides_divide(a) -> bool:
    """Every strided conv/pool gets an input its stride divides, so each map shrinks by
    exactly its stride (224 → 112 → … → 7): the sizes where skips and feature pyramids
    line up — multiples of 32 for ResNet-50."""
    for r in a.rows:
        stride = getattr(r.layer, "stride", None)
        if isinstance(stride, tuple) and any(n % s for n, s in zip(r.input_shape[1:], stride)):
            return False
    return True


def compact(values: list[int]) -> str:
    """``[32, 64, 96]`` -> ``32..96:32`` when evenly spaced (3 or more), else ``a, b, c``."""
    if len(values) >= 3:
        step = values[1] - values[0]
        if all(b - a == step for a, b in zip(values, values[1:])):
            return f"{values[0]}..{values[-1]}" + (f":{step}" if step != 1 else "")
    return ", ".join(map(str, values))


def sizes_report(checks: list[SizeCheck], fmt: str) -> str:
    """Valid sizes (compacted) and the smallest; JSON lists every size with its reason."""
    from cnncalc.report import render_records

    ok = [c.size for c in checks if c.ok]
    exact = [c.size for c in checks if c.exact]
    if fmt in ("json", "csv", "markdown"):
        objects = {
            "valid": ok,
            "smallest": ok[0] if ok else None,
            "exact": exact,
            "smallest_exact": exact[0] if exact else None,
            "sizes": [
                {"size": c.size, "ok": c.ok, "exact": c.exact, "reason": c.reason or None}
                for c in checks
            ],
        }
        rows = [
            [c.size, "yes" if c.ok else "no", "yes" if c.exact else "no", c.reason] for c in checks
        ]
        return render_records(("size", "ok", "exact", "reason"), rows, fmt, objects)
    bad = [c for c in checks if not c.ok]
    lines = [
        f"valid sizes ({len(ok)} of {len(checks)}): {compact(ok) if ok else 'none'}",
        f"smallest valid input: {ok[0] if ok else 'none'}",
        f"exact sizes, every stride dividing its input ({len(exact)}): "
        f"{compact(exact) if exact else 'none'}",
    ]
    refused = [c for c in bad if c.reason.startswith("refused")]
    lossy = [c for c in bad if not c.reason.startswith("refused")]
    if refused:
        lines.append(
            f"refused by PyTorch: {len(refused)}, e.g. {refused[0].size}: "
            f"{refused[0].reason.removeprefix('refused: ')}"
        )
    if lossy:
        lines.append(
            f"accepted but floor mode drops input: {len(lossy)}, e.g. {lossy[0].size}: "
            f"{lossy[0].reason.removeprefix('loses data: ')}"
        )
    return "\n".join(lines) + "\n"


def settings_report(
    found: list[Setting], kind: str, n: int, target: int, fmt: str, limit: int = 0
) -> str:
    """The settings as a table (simplest first), CSV, Markdown or JSON."""
    from cnncalc.report import render_records

    transposed = kind == "conv_transpose2d"
    headers = (
        ["kernel", "stride", "padding", "dilation"]
        + (["output_padding"] if transposed else ["unread"])
        + ["layer"]
    )
    shown = found if not limit or fmt == "json" else found[:limit]
    rows = [
        [
            c.kernel,
            c.stride,
            c.padding,
            c.dilation,
            c.output_padding if transposed else c.unread,
            c.call(kind),
        ]
        for c in shown
    ]
    objects: Any = {
        "type": kind,
        "input": n,
        "target": target,
        "settings": [
            {
                "kernel_size": c.kernel,
                "stride": c.stride,
                "padding": c.padding,
                "dilation": c.dilation,
                "output_padding": c.output_padding,
                "unread": c.unread,
            }
            for c in found
        ],
    }
    title = f"{kind}: {n} → {target}: {len(found)} setting{'s' * (len(found) != 1)}"
    text = render_records(headers, rows, fmt, objects, title if fmt == "table" else "")
    if fmt == "table" and len(shown) < len(found):
        text += f"… {len(found) - len(shown)} more (pin a value or raise --limit)\n"
    if fmt == "table" and any(c.unread for c in shown):
        text += "unread: input rows/columns floor mode never reads\n"
    return text


# --------------------------------------------------------------------------- the CLI's entry


def _one_size(text: str | None) -> int:
    """--input N, or a CxHxW shape as every other command takes it (its spatial sizes must
    agree: the layer settings solved for are the same on every axis)."""
    from cnncalc.spec import parse_shape

    usage = "solve without SPEC needs --input N (a spatial size, e.g. 56) or CxHxW"
    if text is None or len(text) > 100:  # sizes beyond 30 digits are not sizes
        raise UsageError(usage)
    try:
        shape = parse_shape(text, where="--input")
    except SpecError:
        raise UsageError(f"--input={text}: {usage}") from None
    spatial = set(shape[1:] if len(shape) > 1 else shape)
    if max(spatial) >= 10**30:
        raise UsageError(usage)
    if len(spatial) != 1:
        raise UsageError(
            f"--input={text}: the spatial sizes differ; solve one axis at a time (--input N)"
        )
    return spatial.pop()


def layer_command(
    input_text: str | None,
    target_text: str | None,
    kind: str,
    fmt: str,
    limit: int = 20,
    **pins: Any,
) -> str:
    """``cnncalc solve --input 56 --target same [...]`` -> text for stdout."""
    n = _one_size(input_text)
    if target_text is None:
        raise UsageError("solve without SPEC needs --target same|half|double|N")
    target = parse_target(target_text, n)
    found = solve_layer(n, target, kind, **pins)
    return settings_report(found, kind, n, target, fmt, limit)


MAX_SIZES = 10_000  # each size is a whole analysis of the spec


def sizes_command(spec, shape: tuple[int, ...] | None, sizes_text: str, fmt: str) -> str:
    """``cnncalc solve SPEC --sizes 32..512`` -> text for stdout."""
    from cnncalc.sweep import parse_items

    sizes = sorted(set(parse_items(sizes_text.replace(" ", ""), "--sizes", MAX_SIZES)))
    return sizes_report(solve_sizes(spec, sizes, shape), fmt)
