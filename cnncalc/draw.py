"""Diagrams of a network: SVG and PNG drawn by cnncalc itself, Mermaid and DOT text for docs.

Two styles, from the same analysis rows:

* ``maps`` (chains, the LeNet/AlexNet figures): every shape-changing or weighted layer is a
  feature-map cuboid scaled by channels (thickness), height and width (square roots, so a
  224-pixel map and a 7-pixel one both stay visible); shape-preserving layers without
  parameters (activations, dropout) are folded into the label of the box before them; flat
  vectors are thin bars.
* ``graph`` (branches: residual, concat, multiply, side outputs): a layered layout — each
  row's rank is the longest path from the input, rows of a rank sit side by side in the order
  a barycentre sweep finds, edges that skip ranks run along the right of the nodes they pass.

One layout is a list of primitives (:class:`Box`, :class:`Poly`, :class:`Path`,
:class:`Label`) rendered to SVG text or, with Pillow (``pip install '.[png]'``), to PNG;
no system binary (Graphviz) is needed. Nothing here prints.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from cnncalc.analysis import Analysis
from cnncalc.errors import UsageError, printable

STYLES = ("auto", "maps", "graph")
TEXT_FORMATS = ("svg", "png", "mermaid", "dot")

FILL = {  # by type family, light tones that print well
    "conv": "#cfe0f3",
    "pool": "#d8ecd0",
    "norm": "#fbe8b5",
    "linear": "#e4d4f4",
    "merge": "#f6cfcf",
    "act": "#eeeeee",
    "drop": "#f5f5f5",
    "shape": "#ffffff",
    "input": "#ffffff",
}


def family(kind: str) -> str:
    if kind.startswith(("conv", "subsample")):
        return "conv"
    if "pool" in kind:
        return "pool"
    if kind.startswith(("batchnorm", "groupnorm", "layernorm", "instancenorm")):
        return "norm"
    if kind in ("linear", "rbf"):
        return "linear"
    if kind in ("add", "concat", "mul"):
        return "merge"
    if "dropout" in kind:
        return "drop"
    if kind in ("flatten", "narrow", "identity", "upsample") or kind.startswith("zeropad"):
        return "shape"
    return "act"


# --------------------------------------------------------------------------- primitives


@dataclass(frozen=True)
class Box:
    x: float
    y: float
    w: float
    h: float
    fill: str = "#ffffff"
    stroke: str = "#333333"
    radius: float = 0


@dataclass(frozen=True)
class Poly:
    points: tuple[tuple[float, float], ...]
    fill: str
    stroke: str = "#333333"


@dataclass(frozen=True)
class Path:
    points: tuple[tuple[float, float], ...]
    stroke: str = "#555555"
    arrow: bool = True


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    size: float = 11
    anchor: str = "middle"  # start | middle | end
    bold: bool = False


@dataclass
class Drawing:
    width: float
    height: float
    items: list = field(default_factory=list)
    title: str = ""


CHAR = 0.6  # average glyph width / font size (sans-serif)


def text_width(text: str, size: float = 11) -> float:
    return len(text) * size * CHAR


# --------------------------------------------------------------------------- nodes


@dataclass
class Node:
    """One drawn item: a row (or a folded block), the rows it reads, its label lines."""

    key: int
    lines: list[str]
    kind: str
    shape: tuple[int, ...]
    inputs: list[int]


def _dims(shape: tuple[int, ...]) -> str:
    return "×".join(map(str, shape))


def nodes(a: Analysis, depth: int | None = None) -> list[Node]:
    """Rows as nodes, wired by ``Row.inputs``; with ``depth``, rows nested deeper are folded
    into their block (one node per block, as ``--depth`` folds the table)."""
    level = None if depth is None else depth - 1
    owner: dict[int, int] = {-1: -1}
    out: dict[int, Node] = {}
    blocks: dict[str, int] = {}  # folded block path -> its node
    for r in a.rows:
        if level is not None and r.depth > level:
            path = r.blocks[level]
            if path not in blocks:
                blocks[path] = r.index
                out[r.index] = Node(
                    r.index, [path, a.block_kinds.get(path, "block")], "block", r.output_shape, []
                )
            node = out[blocks[path]]
            node.shape = r.output_shape
        else:
            name = printable(r.name or "")
            node = out[r.index] = Node(r.index, [name, r.type], r.type, r.output_shape, [])
        owner[r.index] = node.key
        for i in r.inputs:
            if owner[i] != node.key and owner[i] not in node.inputs:
                node.inputs.append(owner[i])
    for n in out.values():
        n.lines = [line for line in n.lines if line] + [_dims(n.shape)]
    return list(out.values())


def is_chain(ns: list[Node]) -> bool:
    prev = -1
    for n in ns:
        if n.inputs != [prev]:
            return False
        prev = n.key
    return True


# --------------------------------------------------------------------------- maps style


def _folds(kind: str) -> bool:
    return kind != "block" and (family(kind) in ("act", "drop") or kind == "identity")


def maps_layout(a: Analysis, ns: list[Node]) -> Drawing:
    """Feature-map cuboids left to right (chains only)."""
    stages: list[tuple[list[str], tuple[int, ...], str]] = [
        (["input", _dims(a.input_shape)], a.input_shape, "input")
    ]
    for n in ns:
        if _folds(n.kind) and n.shape == stages[-1][1] and len(stages) > 1:
            lines = stages[-1][0]
            lines[-2] = f"{lines[-2]} + {n.lines[-2]}"
            continue
        stages.append((list(n.lines), n.shape, n.kind))
    spatial = [s[1][1:] for s in stages if len(s[1]) > 1]
    max_hw = max([max(sh) for sh in spatial] + [1])
    max_c = max([s[1][0] for s in stages if len(s[1]) > 1] + [1])
    max_f = max([s[1][0] for s in stages if len(s[1]) == 1] + [1])
    geo = []
    for _, shape, _ in stages:
        if len(shape) > 1:
            h = 14 + 150 * math.sqrt(shape[1] / max_hw)
            depth = (14 + 70 * math.sqrt(shape[-1] / max_hw)) if len(shape) > 2 else 0
            t = 3 + 40 * math.sqrt(shape[0] / max_c)
        else:
            h, depth, t = 14 + 150 * math.sqrt(shape[0] / max_f), 0, 7
        geo.append((t, h, depth * 0.5))
    label_size = 10.5
    top = 30 + max(g[2] for g in geo)
    mid = top + max(g[1] for g in geo) / 2
    items: list = []
    x = 24.0
    centres = []
    for (lines, _, kind), (t, h, off) in zip(stages, geo):
        span = max(t + off, *(text_width(s, label_size) for s in lines))
        bx = x + (span - t - off) / 2
        y = mid - h / 2
        fill = FILL[family(kind) if kind != "input" else "input"]
        if off:
            items.append(
                Poly(
                    ((bx, y), (bx + off, y - off), (bx + t + off, y - off), (bx + t, y)),
                    _shade(fill, 0.93),
                )
            )
            items.append(
                Poly(
                    (
                        (bx + t, y),
                        (bx + t + off, y - off),
                        (bx + t + off, y + h - off),
                        (bx + t, y + h),
                    ),
                    _shade(fill, 0.85),
                )
            )
        items.append(Box(bx, y, t, h, fill))
        centres.append((bx, bx + t + off, x + span / 2))
        for k, line in enumerate(lines):
            items.append(
                Label(
                    x + span / 2,
                    mid + max(g[1] for g in geo) / 2 + 18 + 14 * k,
                    line,
                    label_size,
                    bold=k == 0,
                )
            )
        x += span + 34
    for (_, right, _), (left, _, _) in zip(centres, centres[1:]):
        items.append(Path(((right + 4, mid), (left - 4, mid))))
    height = mid + max(g[1] for g in geo) / 2 + 18 + 14 * max(len(s[0]) for s in stages) + 8
    return Drawing(x, height, items, a.name or "")


def _shade(colour: str, factor: float) -> str:
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return "#" + "".join(f"{int(v * factor):02x}" for v in (r, g, b))


# --------------------------------------------------------------------------- graph style


NODE_H, RANK_GAP, NODE_GAP, FONT = 46.0, 30.0, 18.0, 10.5


def graph_layout(a: Analysis, ns: list[Node]) -> Drawing:
    """Layered layout: rank = longest path from the input; barycentre ordering per rank."""
    src = Node(-1, ["input", _dims(a.input_shape)], "input", a.input_shape, [])
    every = [src, *ns]
    rank = {-1: 0}
    for n in ns:
        rank[n.key] = 1 + max(rank[i] for i in n.inputs)
    ranks: dict[int, list[Node]] = {}
    for n in every:
        ranks.setdefault(rank[n.key], []).append(n)
    width = {n.key: max(90.0, max(text_width(s, FONT) for s in n.lines) + 14) for n in every}
    # a fork spreads its next-rank children under it; a chain keeps its column; a merge sits
    # under the mean of its inputs; then each rank is pushed apart where boxes would overlap
    children: dict[int, list[Node]] = {}
    for n in ns:
        for i in n.inputs:
            if rank[n.key] == rank[i] + 1:
                children.setdefault(i, []).append(n)
    pos: dict[int, float] = {-1: 0.0}
    for k in sorted(ranks)[1:]:
        want: dict[int, float] = {}
        for n in ranks[k]:
            parent = n.inputs[0]
            kids = children.get(parent, [])
            if len(n.inputs) == 1 and len(kids) > 1 and n in kids:
                total = sum(width[c.key] for c in kids) + NODE_GAP * (len(kids) - 1)
                x = pos[parent] - total / 2
                for c in kids:
                    if c is n:
                        break
                    x += width[c.key] + NODE_GAP
                want[n.key] = x + width[n.key] / 2
            else:
                want[n.key] = sum(pos[i] for i in n.inputs) / len(n.inputs)
        row = sorted(ranks[k], key=lambda n: want[n.key])
        ranks[k] = row
        edge = -math.inf
        for n in row:
            pos[n.key] = max(want[n.key], edge + width[n.key] / 2)
            edge = pos[n.key] + width[n.key] / 2 + NODE_GAP
        drift = sum(pos[n.key] - want[n.key] for n in row) / len(row)
        for n in row:
            pos[n.key] -= drift
    left = min(pos[k] - width[k] / 2 for k in pos)
    right = max(pos[k] + width[k] / 2 for k in pos)
    shift = 24 - left
    y_of = {k: 24 + r * (NODE_H + RANK_GAP) for k, r in rank.items()}
    items: list = []
    lanes: dict[int, int] = {}
    extra = 0.0
    for n in ns:  # edges first, under the boxes
        for i in n.inputs:
            x0, x1 = pos[i] + shift, pos[n.key] + shift
            y0, y1 = y_of[i] + NODE_H, y_of[n.key]
            if rank[n.key] - rank[i] == 1:
                items.append(
                    Path(((x0, y0), (x0, y0 + RANK_GAP / 2), (x1, y1 - RANK_GAP / 2), (x1, y1)))
                )
                continue
            between = [m for r in range(rank[i] + 1, rank[n.key]) for m in ranks[r]]
            blocking = [
                pos[m.key] + shift + width[m.key] / 2
                for m in between
                if abs(pos[m.key] + shift - x0) < width[m.key] / 2 + 6
            ]
            if not blocking:  # a free column: straight down, then across to the target
                items.append(
                    Path(((x0, y0), (x0, y1 - RANK_GAP / 3), (x1, y1 - RANK_GAP / 3), (x1, y1)))
                )
                continue
            lane = lanes.get(rank[i], 0)
            lanes[rank[i]] = lane + 1
            xr = max(blocking) + 12 + 8 * lane
            extra = max(extra, xr - (right + shift) + 10)
            items.append(
                Path(
                    (
                        (x0, y0),
                        (x0, y0 + RANK_GAP / 3),
                        (xr, y0 + RANK_GAP / 3),
                        (xr, y1 - RANK_GAP / 3),
                        (x1, y1 - RANK_GAP / 3),
                        (x1, y1),
                    )
                )
            )
    for n in every:
        x, y, w = pos[n.key] + shift - width[n.key] / 2, y_of[n.key], width[n.key]
        fill = (
            FILL.get(family(n.kind), "#ffffff")
            if n.kind not in ("input", "block")
            else ("#ffffff" if n.kind == "input" else "#e8eef7")
        )
        items.append(Box(x, y, w, NODE_H, fill, radius=6))
        for k, line in enumerate(n.lines):
            items.append(Label(x + w / 2, y + 14 + 13 * k, line, FONT, bold=k == 0))
    height = 24 + (max(rank.values()) + 1) * (NODE_H + RANK_GAP)
    return Drawing(right - left + 48 + max(extra, 0), height, items, a.name or "")


def layout(a: Analysis, style: str = "auto", depth: int | None = None) -> Drawing:
    if style not in STYLES:
        raise UsageError(f"--style {style!r}: must be one of {', '.join(STYLES)}")
    ns = nodes(a, depth)
    chain = is_chain(ns)
    if style == "maps" and not chain:
        raise UsageError("--style maps draws chains only; this network branches (use graph)")
    if style == "maps" or (style == "auto" and chain):
        return maps_layout(a, ns)
    return graph_layout(a, ns)


# --------------------------------------------------------------------------- renderers


def to_svg(d: Drawing) -> str:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{d.width:.0f}" '
        f'height="{d.height:.0f}" viewBox="0 0 {d.width:.0f} {d.height:.0f}" '
        'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#555555"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    if d.title:
        out.append(f"<title>{html.escape(d.title)}</title>")
    for it in d.items:
        if isinstance(it, Box):
            out.append(
                f'<rect x="{it.x:.1f}" y="{it.y:.1f}" width="{it.w:.1f}" '
                f'height="{it.h:.1f}" rx="{it.radius:.0f}" fill="{it.fill}" '
                f'stroke="{it.stroke}"/>'
            )
        elif isinstance(it, Poly):
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
            out.append(f'<polygon points="{pts}" fill="{it.fill}" stroke="{it.stroke}"/>')
        elif isinstance(it, Path):
            pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in it.points)
            arrow = ' marker-end="url(#arrow)"' if it.arrow else ""
            out.append(
                f'<polyline points="{pts}" fill="none" stroke="{it.stroke}" '
                f'stroke-width="1.2"{arrow}/>'
            )
        elif isinstance(it, Label):
            weight = ' font-weight="bold"' if it.bold else ""
            out.append(
                f'<text x="{it.x:.1f}" y="{it.y:.1f}" font-size="{it.size}" '
                f'text-anchor="{it.anchor}"{weight}>{html.escape(it.text)}</text>'
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def to_png(d: Drawing, path: str, scale: float = 2.0) -> None:
    """Rasterise the same primitives with Pillow (anti-aliased by drawing at ``scale``)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise UsageError(
            "PNG output needs Pillow: pip install 'cnncalc[png]' (or write .svg)"
        ) from None
    # very tall graphs (DenseNet-121: ~430 boxes) are drawn at a lower scale: at most ~40
    # megapixels, so the image stays a few megabytes and opens in any viewer
    s = min(scale, math.sqrt(40e6 / max(1.0, d.width * d.height)))
    img = Image.new("RGB", (max(1, round(d.width * s)), max(1, round(d.height * s))), "white")
    draw = ImageDraw.Draw(img)
    fonts: dict[tuple[float, bool], object] = {}

    def font(size: float, bold: bool):
        key = (size, bold)
        if key not in fonts:
            name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
            try:
                fonts[key] = ImageFont.truetype(name, round(size * s))
            except OSError:
                fonts[key] = ImageFont.load_default(round(size * s))
        return fonts[key]

    def sc(points):
        return [(x * s, y * s) for x, y in points]

    for it in d.items:
        if isinstance(it, Box):
            draw.rounded_rectangle(
                (it.x * s, it.y * s, (it.x + it.w) * s, (it.y + it.h) * s),
                radius=it.radius * s,
                fill=it.fill,
                outline=it.stroke,
                width=max(1, round(s)),
            )
        elif isinstance(it, Poly):
            draw.polygon(sc(it.points), fill=it.fill, outline=it.stroke, width=max(1, round(s)))
        elif isinstance(it, Path):
            pts = sc(it.points)
            draw.line(pts, fill=it.stroke, width=max(1, round(1.2 * s)), joint="curve")
            if it.arrow and len(pts) > 1:
                (x0, y0), (x1, y1) = pts[-2], pts[-1]
                ang = math.atan2(y1 - y0, x1 - x0)
                size = 6 * s
                tip = [
                    (x1, y1),
                    (x1 - size * math.cos(ang - 0.45), y1 - size * math.sin(ang - 0.45)),
                    (x1 - size * math.cos(ang + 0.45), y1 - size * math.sin(ang + 0.45)),
                ]
                draw.polygon(tip, fill=it.stroke)
        elif isinstance(it, Label):
            anchor = {"start": "ls", "middle": "ms", "end": "rs"}[it.anchor]
            draw.text(
                (it.x * s, it.y * s),
                it.text,
                fill="#111111",
                font=font(it.size, it.bold),
                anchor=anchor,
            )
    img.save(path)


def to_mermaid(a: Analysis, depth: int | None = None) -> str:
    ns = nodes(a, depth)
    lines = ["flowchart TD", f'  n_in["input<br/>{_dims(a.input_shape)}"]']
    for n in ns:
        text = "<br/>".join(html.escape(s).replace('"', "&quot;") for s in n.lines)
        lines.append(f'  n{n.key}["{text}"]')
    for n in ns:
        for i in n.inputs:
            lines.append(f"  {'n_in' if i < 0 else f'n{i}'} --> n{n.key}")
    return "\n".join(lines) + "\n"


def to_dot(a: Analysis, depth: int | None = None) -> str:
    ns = nodes(a, depth)

    def q(text: str) -> str:
        return text.replace("\\", "\\\\").replace('"', '\\"')

    lines = [
        f'digraph "{q(a.name or "network")}" {{',
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
        f'  n_in [label="input\\n{_dims(a.input_shape)}", fillcolor="#ffffff"];',
    ]
    for n in ns:
        fill = FILL.get(family(n.kind), "#ffffff") if n.kind != "block" else "#e8eef7"
        lines.append(
            f'  n{n.key} [label="{q(chr(10).join(n.lines))}", fillcolor="{fill}"];'.replace(
                "\n", "\\n"
            )
        )
    for n in ns:
        for i in n.inputs:
            lines.append(f"  {'n_in' if i < 0 else f'n{i}'} -> n{n.key};")
    return "\n".join(lines + ["}"]) + "\n"


def render(
    a: Analysis, fmt: str, out: str | None = None, style: str = "auto", depth: int | None = None
) -> str | None:
    """Text for ``mermaid``/``dot``/``svg`` (returned, or written to ``out``); ``png`` needs
    ``out``. Returns the text when it is not written to a file."""
    if fmt not in TEXT_FORMATS:
        raise UsageError(f"--format {fmt!r}: must be one of {', '.join(TEXT_FORMATS)}")
    if fmt == "mermaid":
        text = to_mermaid(a, depth)
    elif fmt == "dot":
        text = to_dot(a, depth)
    else:
        d = layout(a, style, depth)
        if fmt == "png":
            if out is None:
                raise UsageError("PNG output needs -o FILE.png")
            to_png(d, out)
            return None
        text = to_svg(d)
    if out is None:
        return text
    try:
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {out}: {exc}") from None
    return None


def format_for(path: str | None, given: str | None) -> str:
    """The output format: ``--format`` when given, else from ``-o``'s suffix, else SVG."""
    if given:
        return given
    if path:
        suffix = path.rsplit(".", 1)[-1].lower() if "." in path else ""
        known = {
            "svg": "svg",
            "png": "png",
            "mmd": "mermaid",
            "mermaid": "mermaid",
            "dot": "dot",
            "gv": "dot",
        }
        if suffix not in known:
            raise UsageError(
                f"-o {path}: cannot tell the format from the suffix; use .svg, "
                ".png, .mmd or .dot, or --format"
            )
        return known[suffix]
    return "svg"


__all__ = ["Drawing", "layout", "nodes", "render", "to_dot", "to_mermaid", "to_png", "to_svg"]
