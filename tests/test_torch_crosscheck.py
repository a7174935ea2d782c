"""Optional: cnncalc against real PyTorch layers on random configurations (skips without torch).

For each layer family, a seeded ``random.Random`` draws configurations — including invalid
ones — builds the torch module, runs a zero tensor of batch 1 through it, and compares:

- the output shape (without the batch) with cnncalc's;
- ``sum(p.numel() for p in m.parameters())`` with cnncalc's ``params`` and, for batch norm,
  ``sum(b.numel() for b in m.buffers())`` with its ``buffers``;
- for conv/linear layers, ``torch.utils.flop_counter`` FLOPs with cnncalc's ``flops``;
- rejection: a configuration torch refuses (ValueError/RuntimeError, at construction or in
  forward) must be refused by cnncalc (SpecError/ShapeError), and vice versa.

Every disagreement is listed in the assertion message: config, torch result, cnncalc result.
"""

from __future__ import annotations

import json
import random
import warnings

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from cnncalc.analysis import analyze  # noqa: E402
from cnncalc.errors import SpecError  # noqa: E402  (ShapeError is a SpecError)
from cnncalc.spec import parse_text  # noqa: E402

N_CONFIGS = 120


# --------------------------------------------------------------------------- harness


def torch_result(make, in_shape, flops: bool = False, batch: int = 1):
    """('ok', out_shape, params, buffers, flops) or ('error', message).

    An empty output (a 0 in the shape), which torch allows, counts as an error: cnncalc
    refuses output sizes below 1 on purpose (issue 2, bad input).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = make()
            module.eval()
            x = torch.zeros(batch, *in_shape)
            total_flops = None
            with torch.no_grad():
                if flops:
                    from torch.utils.flop_counter import FlopCounterMode

                    with FlopCounterMode(display=False) as counter:
                        y = module(x)
                    total_flops = counter.get_total_flops()
                else:
                    y = module(x)
    except (RuntimeError, ValueError, TypeError, IndexError) as exc:
        return ("error", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}")
    if 0 in y.shape[1:]:
        return ("error", f"empty output {tuple(y.shape[1:])}")
    params = sum(p.numel() for p in module.parameters())
    buffers = sum(b.numel() for b in module.buffers())
    return ("ok", tuple(y.shape[1:]), params, buffers, total_flops)


def cnncalc_result(layer: dict, in_shape):
    try:
        spec = parse_text(json.dumps({"layers": [layer]}))
        row = analyze(spec, tuple(in_shape)).rows[0]
    except SpecError as exc:
        return ("error", str(exc))
    return ("ok", tuple(row.output_shape), row.params, row.buffers, row.flops)


def compare(cases, *, buffers: bool = False, flops: bool = False, batch: int = 1) -> None:
    """cases: (layer dict, torch constructor, input shape). Collect every disagreement."""
    problems = []
    checked_ok = 0
    for layer, make, in_shape in cases:
        t = torch_result(make, in_shape, flops, batch)
        c = cnncalc_result(layer, in_shape)
        where = f"layer={layer} input={tuple(in_shape)}"
        if t[0] != c[0]:
            problems.append(f"{where}: torch {t} vs cnncalc {c}")
            continue
        if t[0] == "error":
            continue
        checked_ok += 1
        mismatch = t[1] != c[1] or t[2] != c[2]
        mismatch |= buffers and t[3] != c[3]
        mismatch |= flops and t[4] != c[4]
        if mismatch:
            problems.append(
                f"{where}: torch shape={t[1]} params={t[2]} buffers={t[3]} flops={t[4]} vs "
                f"cnncalc shape={c[1]} params={c[2]} buffers={c[3]} flops={c[4]}"
            )
    assert not problems, f"{len(problems)} disagreement(s):\n" + "\n".join(problems[:12])
    assert checked_ok > 0  # the generator produced some valid configurations


def size(rng: random.Random, dims: int, lo: int, hi: int, allow_int: bool = True):
    if allow_int and rng.random() < 0.5:
        v = rng.randint(lo, hi)
        return v, v
    t = tuple(rng.randint(lo, hi) for _ in range(dims))
    return list(t), t


# --------------------------------------------------------------------------- convolutions


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_conv(dims):
    rng = random.Random(1000 + dims)
    conv = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dims]
    cases = []
    for _ in range(N_CONFIGS):
        c_in, c_out = rng.randint(1, 6), rng.randint(1, 6)
        groups = rng.choice([1, 1, 2, 3])
        k_spec, k = size(rng, dims, 1, 5)
        s_spec, s = size(rng, dims, 1, 3)
        d_spec, d = size(rng, dims, 1, 3)
        mode = rng.choice(["int", "tuple", "same", "valid"])
        if mode == "int":
            p_spec = p = rng.randint(0, 3)
        elif mode == "tuple":
            p_spec, p = size(rng, dims, 0, 3, allow_int=False)
        else:
            p_spec = p = mode
        if mode == "same" and rng.random() < 0.7:
            s_spec = s = 1
        bias = rng.random() < 0.7
        n = [rng.randint(1, 10 if dims < 3 else 7) for _ in range(dims)]
        layer = {
            "type": f"conv{dims}d",
            "out_channels": c_out,
            "kernel_size": k_spec,
            "stride": s_spec,
            "padding": p_spec,
            "dilation": d_spec,
            "groups": groups,
            "bias": bias,
        }
        torch_c_in = c_in
        if rng.random() < 0.2:
            torch_c_in = layer["in_channels"] = c_in + rng.choice([0, 1])

        def make(c_in=torch_c_in, c_out=c_out, k=k, s=s, p=p, d=d, g=groups, b=bias):
            return conv(c_in, c_out, k, stride=s, padding=p, dilation=d, groups=g, bias=b)

        cases.append((layer, make, [c_in, *n]))
    compare(cases, flops=True)


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_transpose(dims):
    rng = random.Random(2000 + dims)
    conv = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[dims]
    cases = []
    for _ in range(N_CONFIGS):
        groups = rng.choice([1, 1, 2])
        c_in, c_out = rng.randint(1, 6), rng.randint(1, 6)
        k_spec, k = size(rng, dims, 1, 4)
        s_spec, s = size(rng, dims, 1, 3)
        d_spec, d = size(rng, dims, 1, 2)
        p_spec, p = size(rng, dims, 0, 3)
        op_spec, op = size(rng, dims, 0, 2)
        n = [rng.randint(1, 8) for _ in range(dims)]
        layer = {
            "type": f"conv_transpose{dims}d",
            "out_channels": c_out,
            "kernel_size": k_spec,
            "stride": s_spec,
            "padding": p_spec,
            "output_padding": op_spec,
            "dilation": d_spec,
            "groups": groups,
        }

        def make(c_in=c_in, c_out=c_out, k=k, s=s, p=p, op=op, d=d, g=groups):
            return conv(
                c_in, c_out, k, stride=s, padding=p, output_padding=op, dilation=d, groups=g
            )

        cases.append((layer, make, [c_in, *n]))
    compare(cases, flops=True)


# --------------------------------------------------------------------------- pooling


@pytest.mark.parametrize("kind", ["maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"])
def test_pool(kind):
    rng = random.Random(hash(kind) % 10_000 + 3000)
    dims = int(kind[-2])
    is_max = kind.startswith("max")
    cls = {
        "maxpool1d": nn.MaxPool1d,
        "maxpool2d": nn.MaxPool2d,
        "avgpool1d": nn.AvgPool1d,
        "avgpool2d": nn.AvgPool2d,
    }[kind]
    cases = []
    for _ in range(N_CONFIGS * 2):
        k_spec, k = size(rng, dims, 1, 5)
        s_spec, s = size(rng, dims, 1, 4) if rng.random() < 0.8 else (None, None)
        p_spec, p = size(rng, dims, 0, 3)
        ceil = rng.random() < 0.5
        n = [rng.randint(1, 12) for _ in range(dims)]
        layer = {"type": kind, "kernel_size": k_spec, "padding": p_spec, "ceil_mode": ceil}
        if s_spec is not None:
            layer["stride"] = s_spec
        if is_max:
            d_spec, d = size(rng, dims, 1, 3)
            layer["dilation"] = d_spec

            def make(k=k, s=s, p=p, d=d, ceil=ceil):
                return cls(k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
        else:
            cip = rng.random() < 0.5
            layer["count_include_pad"] = cip

            def make(k=k, s=s, p=p, ceil=ceil, cip=cip):
                return cls(k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip)

        cases.append((layer, make, [2, *n]))
    compare(cases)


@pytest.mark.parametrize(
    "kind", ["adaptive_avgpool1d", "adaptive_avgpool2d", "adaptive_maxpool1d", "adaptive_maxpool2d"]
)
def test_adaptive_pool(kind):
    rng = random.Random(4000 + len(kind))
    dims = int(kind[-2])
    cls = {
        "adaptive_avgpool1d": nn.AdaptiveAvgPool1d,
        "adaptive_avgpool2d": nn.AdaptiveAvgPool2d,
        "adaptive_maxpool1d": nn.AdaptiveMaxPool1d,
        "adaptive_maxpool2d": nn.AdaptiveMaxPool2d,
    }[kind]
    cases = []
    for _ in range(N_CONFIGS):
        if dims == 1 or rng.random() < 0.4:
            out_spec = out = rng.randint(1, 12)
        else:
            out = tuple(rng.choice([None, rng.randint(1, 12)]) for _ in range(dims))
            out_spec = list(out)
        n = [rng.randint(1, 15) for _ in range(dims)]
        layer = {"type": kind, "output_size": out_spec}
        cases.append((layer, lambda out=out: cls(out), [3, *n]))
    compare(cases)


# --------------------------------------------------------------------------- resizing, shape


def test_zeropad2d():
    rng = random.Random(5000)
    cases = []
    for _ in range(N_CONFIGS):
        if rng.random() < 0.3:
            pad = rng.randint(-2, 3)
            spec = pad
        else:
            pad = tuple(rng.randint(-3, 3) for _ in range(4))
            spec = list(pad)
        n = [rng.randint(1, 6), rng.randint(1, 6)]
        cases.append(
            ({"type": "zeropad2d", "padding": spec}, lambda pad=pad: nn.ZeroPad2d(pad), [2, *n])
        )
    compare(cases)


def test_upsample_nearest():
    rng = random.Random(6000)
    cases = []
    for _ in range(N_CONFIGS):
        dims = rng.choice([1, 2])
        n = [rng.randint(1, 9) for _ in range(dims)]
        if rng.random() < 0.5:
            if rng.random() < 0.5:
                sz = rng.randint(1, 20)
                spec = sz
            else:
                sz = tuple(rng.randint(1, 20) for _ in range(dims))
                spec = list(sz)
            layer = {"type": "upsample", "size": spec}

            def make(sz=sz):
                return nn.Upsample(size=sz, mode="nearest")
        else:
            f = rng.choice([0.5, 1.0, 1.5, 2.0, 3.0, 0.3, 1.7, 2.5])
            layer = {"type": "upsample", "scale_factor": f}

            def make(f=f):
                return nn.Upsample(scale_factor=f, mode="nearest")

        cases.append((layer, make, [2, *n]))
    compare(cases)


def test_flatten():
    rng = random.Random(7000)
    cases = []
    for _ in range(N_CONFIGS):
        rank = rng.randint(1, 4)
        in_shape = [rng.randint(1, 5) for _ in range(rank)]
        start, end = rng.randint(-3, 4), rng.randint(-3, 4)
        batched = rank + 1
        if start % batched == 0 or end % batched == 0:
            continue  # flattening the batch (dim 0, or -rank-1) is refused by cnncalc on purpose
        layer = {"type": "flatten", "start_dim": start, "end_dim": end}
        cases.append((layer, lambda a=start, b=end: nn.Flatten(a, b), in_shape))
    compare(cases)


def test_linear():
    rng = random.Random(8000)
    cases = []
    for _ in range(N_CONFIGS):
        rank = rng.randint(1, 3)
        in_shape = [rng.randint(1, 6) for _ in range(rank)]
        out = rng.randint(1, 9)
        bias = rng.random() < 0.7
        n_in = in_shape[-1] + (rng.choice([0, 0, 1]) if rng.random() < 0.3 else 0)
        layer = {"type": "linear", "out_features": out, "bias": bias}
        if n_in != in_shape[-1] or rng.random() < 0.3:
            layer["in_features"] = n_in
        cases.append((layer, lambda n=n_in, o=out, b=bias: nn.Linear(n, o, bias=b), in_shape))
    compare(cases, flops=True)


@pytest.mark.parametrize("kind", ["batchnorm1d", "batchnorm2d"])
def test_batchnorm(kind):
    rng = random.Random(9000 + len(kind))
    cls = nn.BatchNorm1d if kind == "batchnorm1d" else nn.BatchNorm2d
    cases = []
    for _ in range(N_CONFIGS):
        c = rng.randint(1, 8)
        rank = rng.choice([1, 2] if kind == "batchnorm1d" else [3, 3, 2])
        in_shape = [c] + [rng.randint(1, 5) for _ in range(rank - 1)]
        affine, track = rng.random() < 0.7, rng.random() < 0.7
        num = c + (rng.choice([1, -1]) if rng.random() < 0.2 and c > 1 else 0)
        if not (affine or track):
            num = c  # torch has no tensor to check num_features against; see below
        layer = {"type": kind, "affine": affine, "track_running_stats": track}
        if num != c or rng.random() < 0.5:
            layer["num_features"] = num

        def make(num=num, affine=affine, track=track):
            return cls(num, affine=affine, track_running_stats=track)

        cases.append((layer, make, in_shape))
    # batch 2: with batch statistics torch refuses one value per channel, a batch-1 artefact
    compare(cases, buffers=True, batch=2)


def test_batchnorm_num_features_checked_even_without_tensors():
    """torch.nn.BatchNorm2d(5, affine=False, track_running_stats=False) silently accepts 6
    channels (it holds no tensor to check); cnncalc checks a given num_features (issue 2)."""
    layer = {
        "type": "batchnorm2d",
        "num_features": 5,
        "affine": False,
        "track_running_stats": False,
    }
    assert cnncalc_result(layer, (6, 4, 4))[0] == "error"


def test_prelu():
    rng = random.Random(9500)
    cases = []
    for _ in range(N_CONFIGS):
        c = rng.randint(1, 6)
        in_shape = [c, rng.randint(1, 5), rng.randint(1, 5)]
        num = rng.choice([1, c, c + 1])
        cases.append(
            ({"type": "prelu", "num_parameters": num}, lambda num=num: nn.PReLU(num), in_shape)
        )
    compare(cases)


def test_dropout_p_field():
    """``Dropout(p=0.3)`` is PyTorch's spelling; it must not be read as padding."""
    cases = [({"type": "dropout", "p": 0.3}, lambda: nn.Dropout(p=0.3), [3, 4, 4])]
    compare(cases)


@pytest.mark.parametrize("dims", [1, 2])
def test_conv_padding_modes(dims):
    """Non-zero padding modes have their own limits in PyTorch: 'reflect' needs the padding
    smaller than the input, 'circular' at most the input size; 'replicate' has none."""
    rng = random.Random(9700 + dims)
    conv = {1: nn.Conv1d, 2: nn.Conv2d}[dims]
    cases = []
    for _ in range(N_CONFIGS):
        mode = rng.choice(["reflect", "replicate", "circular"])
        k = rng.randint(1, 4)
        p = rng.randint(0, 4)
        n = [rng.randint(1, 6) for _ in range(dims)]
        layer = {
            "type": f"conv{dims}d",
            "out_channels": 2,
            "kernel_size": k,
            "padding": p,
            "padding_mode": mode,
        }

        def make(k=k, p=p, mode=mode):
            return conv(1, 2, k, padding=p, padding_mode=mode)

        cases.append((layer, make, [1, *n]))
    compare(cases)
