"""cnncalc's training-memory figures next to PyTorch's, for the zoo.

    python benchmarks/bench_memory.py [--batch 1 8] [--amp bfloat16] [--cpu] [--optimizer adam]

For every spec in examples/ (except LeNet-1998, whose layers are not torch layers), one
training step of the torchvision model (hand-built from the spec's rows for LeNet-5 and
U-Net) is measured: the distinct storages autograd saves (saved_tensors_hooks, parameters
and buffers excluded), the gradients after backward() and the optimizer state after one
step(). On the meta device by default (the same tensors are kept, nothing is computed);
``--cpu`` runs the real CPU kernels (needed for --amp: autocast follows the device).
Needs torch (and torchvision for the zoo models).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from cnncalc.analysis import analyze  # noqa: E402
from cnncalc.memory import memory  # noqa: E402
from cnncalc.report import human_bytes  # noqa: E402
from cnncalc.spec import load  # noqa: E402

MODELS = [
    "lenet5",
    "alexnet",
    "vgg16",
    "vgg16_bn",
    "resnet18",
    "resnet50",
    "mobilenet_v2",
    "squeezenet1_0",
    "googlenet",
    "densenet121",
    "unet",
]
MODELS += [
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_b3",
    "efficientnet_v2_s",
    "shufflenet_v2_x1_0",
    "mobilenet_v3_small",
    "mnasnet1_0",
]
TORCHVISION = set(MODELS) - {"lenet5", "unet"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--amp", default=None, choices=["float16", "bfloat16"])
    parser.add_argument("--cpu", action="store_true", help="run the CPU kernels, not meta")
    parser.add_argument("--models", nargs="+", default=MODELS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch
    from torch_memory import build, measure, torchvision_model

    device = "cpu" if args.cpu or args.amp else "meta"
    print(
        f"cnncalc vs PyTorch {torch.__version__} ({device}), optimizer {args.optimizer}, "
        f"{'autocast ' + args.amp if args.amp else 'float32'}"
    )
    w = max(14, *(len(name) for name in args.models))  # the model column
    print(
        f"{'model':{w}} {'batch':>5} {'saved (cnncalc)':>16} {'saved (torch)':>16} "
        f"{'grads':>6} {'optim':>6} {'out':>4} {'peak (cnncalc)':>15} {'s':>6}"
    )
    bad = 0
    for name in args.models:
        a = analyze(load(str(ROOT / "examples" / f"{name}.yaml")))
        for batch in args.batch:
            t0 = time.perf_counter()
            module = torchvision_model(name, device) if name in TORCHVISION else build(a, device)
            got = measure(module, a.input_shape, batch, args.optimizer, amp=args.amp)
            m = memory(a, batch, args.optimizer, args.amp).totals
            same = [
                m.saved_activation_bytes == got.saved_activation_bytes,
                m.gradient_bytes == got.gradient_bytes,
                m.optimizer_bytes == got.optimizer_bytes,
                m.output_bytes == got.output_bytes,
            ]
            bad += not all(same)
            marks = ["=" if s else "≠" for s in same]
            print(
                f"{name:{w}} {batch:5} {m.saved_activation_bytes:16,} "
                f"{got.saved_activation_bytes:16,} {marks[1]:>6} {marks[2]:>6} {marks[3]:>4} "
                f"{human_bytes(m.peak_bytes):>15} {time.perf_counter() - t0:6.1f}"
            )
    print("all equal to the byte" if not bad else f"{bad} row(s) differ")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
