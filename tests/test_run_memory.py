"""`cnncalc run`'s memory guard: its estimate is an upper bound of what a run allocates.

The reference is tracemalloc's peak over the second run of a spec (the first compiles):
numpy reports every array it allocates to tracemalloc, so the weights, activations, padded
copies and im2col buffers are all in it (numba-internal temporaries are not).
"""

import tracemalloc

import pytest

from cnncalc.analysis import analyze
from cnncalc.run import peak_estimate, run
from cnncalc.spec import load, parse_text


@pytest.mark.parametrize(
    "text,shape,batch",
    [
        ("examples/resnet18.yaml", (3, 48, 48), 2),
        ("examples/unet.yaml", (1, 32, 32), 1),
        ("examples/lenet5.yaml", None, 4),
        # a wide dense layer: its weights dominate (drawn in float32, not float64 then cast)
        ("flatten linear(out_features=3000)", (16, 16, 16), 1),
    ],
)
def test_the_estimate_bounds_the_allocated_peak(text, shape, batch):
    spec = load(text) if text.endswith(".yaml") else parse_text(text)
    estimate = peak_estimate(analyze(spec, shape, batch=batch))[0]
    run(spec, shape, batch=batch, threads=1)  # compiles what it needs
    tracemalloc.start()
    try:
        run(spec, shape, batch=batch, threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= estimate


def test_weights_are_drawn_in_the_target_dtype():
    # 16·16·16 × 3000 float32 weights = 49,152,000 B; a float64 draw would peak at 3× that
    spec = parse_text("flatten linear(out_features=3000)")
    run(spec, (16, 16, 16), threads=1)
    tracemalloc.start()
    try:
        run(spec, (16, 16, 16), threads=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    weights = 16 * 16 * 16 * 3000 * 4
    assert weights <= peak < 1.5 * weights
