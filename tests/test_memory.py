"""Training memory (cnncalc/memory.py) against hand counts of what PyTorch keeps.

Every expected figure is worked out by hand from PyTorch's documented behaviour (what each
op's backward needs, measured once on PyTorch's CPU kernels — see tests/test_memory_torch.py,
which compares with PyTorch itself when it is installed).
"""

from __future__ import annotations

import json

import pytest

from cnncalc.analysis import analyze
from cnncalc.cli import main
from cnncalc.memory import fit, memory, sweep
from cnncalc.spec import load, parse_text

F32 = 4


def mem(
    text: str,
    shape=(3, 8, 8),
    batch: int = 2,
    optimizer: str = "adam",
    amp=None,
    dtype: str = "float32",
):
    return memory(analyze(load(text), shape, batch=batch, dtype=dtype), None, optimizer, amp)


def saved_per_row(m) -> list[int]:
    return [r.saved_activation_bytes for r in m.rows]


# --------------------------------------------------------------------------- what ops keep

X = 2 * 3 * 8 * 8 * F32  # the input, batch 2
C = 2 * 4 * 6 * 6 * F32  # a 4×6×6 map after conv2d(out_channels=4, kernel_size=3)


def test_conv_keeps_its_input_relu_its_output_maxpool_input_and_int64_indices():
    m = mem("conv2d(out_channels=4, kernel_size=3) relu maxpool2d(2)")
    # conv: the input (its weight is a parameter); relu: its output; maxpool: its input (the
    # relu output, already kept) and 2×4×3×3 int64 indices
    assert saved_per_row(m) == [X, C, 2 * 4 * 3 * 3 * 8]
    assert m.totals.saved_activation_bytes == X + C + 576


def test_batchnorm_keeps_input_and_two_float32_statistics_per_channel():
    m = mem("conv2d(out_channels=4, kernel_size=3) batchnorm2d relu(inplace=True)")
    # bn: its input + save_mean + save_invstd (4 channels each); relu_: its result, which is
    # the batch-norm's output modified in place
    assert saved_per_row(m) == [X, C + 2 * 4 * F32, C]
    assert m.rows[2].output_bytes == 0  # in place: no new tensor


def test_a_tensor_kept_by_several_ops_counts_once():
    spec = parse_text("""
input: [3, 8, 8]
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, padding: 1}
  - {type: relu}
  - concat: [[{type: conv2d, out_channels: 2, kernel_size: 1}],
             [{type: conv2d, out_channels: 2, kernel_size: 3, padding: 1}]]
""")
    m = memory(analyze(spec, batch=2))
    relu_out = 2 * 4 * 8 * 8 * F32
    # the ReLU output is kept by the ReLU and by both convolutions: once; concat keeps nothing
    assert saved_per_row(m) == [X, relu_out, 0, 0, 0]


def test_in_place_activations_that_keep_a_copy():
    # hardswish_/silu_/relu6_ need the original input: autograd keeps a copy of it (a new
    # tensor); the next conv keeps the modified tensor
    for act in ("silu(True)", "hardswish(True)", "relu6(True)", "mish(True)"):
        m = mem(
            f"conv2d(out_channels=4, kernel_size=3) {act} conv2d(out_channels=4, kernel_size=3)"
        )
        assert saved_per_row(m) == [X, C, C], act
    # out of place they keep their input (the conv output); the next conv keeps their output
    m = mem("conv2d(out_channels=4, kernel_size=3) silu conv2d(out_channels=4, kernel_size=3)")
    assert saved_per_row(m) == [X, C, C]


def test_dropout_keeps_its_noise_in_the_input_dtype():
    assert (
        saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) dropout"))[1] == C
    )  # CPU: input * noise
    assert (
        saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) dropout2d"))[1] == 2 * 4 * F32
    )  # N×C×1×1
    assert (
        saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) dropout(0.0)"))[1] == 0
    )  # returns its input
    assert (
        saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) dropout(1.0)"))[1] == F32
    )  # × a 0-d zero


def test_pools_and_shape_layers():
    assert saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) avgpool2d(2)"))[1] == C
    assert (
        saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) adaptive_avgpool2d(1)"))[1] == 0
    )  # a mean
    assert saved_per_row(mem("conv2d(out_channels=4, kernel_size=3) adaptive_avgpool2d(3)"))[1] == C
    assert saved_per_row(
        mem("conv2d(out_channels=4, kernel_size=3) upsample(scale_factor=2) zeropad2d(1)")
    )[1:] == [0, 0]
    # flatten is a view: the linear keeps the conv output's storage, kept by nobody before
    assert saved_per_row(
        mem("conv2d(out_channels=4, kernel_size=3) flatten linear(out_features=5)")
    ) == [X, 0, C]


def test_a_layer_on_the_network_input_without_parameters_keeps_nothing():
    # the input needs no gradient, so the ReLU records no backward; the conv keeps its input
    m = mem("relu conv2d(out_channels=4, kernel_size=3)")
    assert saved_per_row(m) == [0, X]


def test_padding_modes_keep_the_padded_input():
    padded = 2 * 4 * 8 * 8 * F32
    refl = mem(
        "conv2d(out_channels=4, kernel_size=1) conv2d(out_channels=4, kernel_size=3, padding=1, padding_mode='reflect')",
        (3, 6, 6),
    )
    circ = mem(
        "conv2d(out_channels=4, kernel_size=1) conv2d(out_channels=4, kernel_size=3, padding=1, padding_mode='circular')",
        (3, 6, 6),
    )
    first = 2 * 3 * 6 * 6 * F32
    assert saved_per_row(refl) == [first, 2 * 4 * 6 * 6 * F32 + padded]
    assert saved_per_row(circ) == [first, padded]


# --------------------------------------------------------------------------- owned state


def test_optimizer_state_as_torch_optim_stores_it():
    # linear(out_features=10) on 5 features: weight 50 + bias 10 = 60 parameters in 2 tensors
    grads = 60 * F32
    assert mem("linear(out_features=10)", (5,), optimizer="sgd").totals.optimizer_bytes == 0
    assert (
        mem("linear(out_features=10)", (5,), optimizer="momentum").totals.optimizer_bytes == grads
    )
    for opt in ("adam", "adamw"):  # exp_avg, exp_avg_sq and a 0-d float32 step per tensor
        assert (
            mem("linear(out_features=10)", (5,), optimizer=opt).totals.optimizer_bytes
            == 2 * grads + 8
        )
    m = mem("linear(out_features=10, bias=False)", (5,))
    assert (m.totals.gradient_bytes, m.totals.optimizer_bytes) == (200, 404)


def test_batchnorm_buffers_include_the_int64_counter():
    m = mem("conv2d(out_channels=4, kernel_size=3) batchnorm2d")
    assert m.totals.buffer_bytes == 2 * 4 * F32 + 8  # running mean/var + num_batches_tracked
    assert m.totals.parameter_bytes == (4 * 3 * 9 + 4 + 2 * 4) * F32


def test_frozen_parameters_get_no_gradient_nor_state():
    m = memory(analyze(load("examples/lenet5_1998.yaml")))
    rbf = m.rows[-1]
    assert rbf.row.type == "rbf"
    assert (rbf.parameter_bytes, rbf.gradient_bytes, rbf.optimizer_bytes) == (840 * F32, 0, 0)


def test_resnet18_gradients_and_adam_state():
    # torchvision's resnet18: 11,689,512 parameters in 62 tensors
    m = memory(analyze(load("examples/resnet18.yaml")))
    assert m.totals.gradient_bytes == 11_689_512 * F32
    assert m.totals.optimizer_bytes == 2 * 11_689_512 * F32 + 62 * 4
    # 20 batch-norms: running mean and var over 4,800 channels, and 20 int64 counters
    assert m.totals.buffer_bytes == 2 * 4_800 * F32 + 20 * 8


# --------------------------------------------------------------------------- precision


def test_amp_keeps_low_precision_copies_of_conv_inputs_and_weights():
    m = mem("conv2d(out_channels=4, kernel_size=3) relu", amp="bfloat16")
    # conv: a bfloat16 copy of the float32 input and of its weight; relu: its bf16 output
    assert saved_per_row(m) == [X // 2 + 4 * 3 * 9 * 2, 2 * 4 * 6 * 6 * 2]
    m = mem(
        "conv2d(out_channels=4, kernel_size=3) relu conv2d(out_channels=4, kernel_size=3)",
        amp="float16",
    )
    weight2 = 4 * 4 * 9 * 2
    assert m.rows[0].saved_activation_bytes == X // 2 + 4 * 3 * 9 * 2
    assert m.rows[2].saved_activation_bytes == weight2  # its input is already float16
    # master weights, gradients and optimizer state stay float32
    assert m.totals.gradient_bytes == (4 * 3 * 9 + 4 + 4 * 4 * 9 + 4) * F32


def test_amp_batchnorm_statistics_stay_float32():
    m = mem("conv2d(out_channels=4, kernel_size=3) batchnorm2d", amp="bfloat16")
    assert m.rows[1].saved_activation_bytes == 2 * 4 * 6 * 6 * 2 + 2 * 4 * F32


def test_dtype_scales_everything():
    a, b = (
        mem("conv2d(out_channels=4, kernel_size=3) batchnorm2d relu"),
        mem("conv2d(out_channels=4, kernel_size=3) batchnorm2d relu", dtype="float64"),
    )
    assert b.totals.saved_activation_bytes == 2 * a.totals.saved_activation_bytes
    assert b.totals.gradient_bytes == 2 * a.totals.gradient_bytes
    # the counter stays int64; Adam's step counters stay float32 (4 bytes each)
    assert b.totals.buffer_bytes == 2 * 4 * 8 + 8


# --------------------------------------------------------------------------- peaks and totals


@pytest.mark.parametrize(
    "model",
    [
        "lenet5",
        "resnet18",
        "googlenet",
        "densenet121",
        "unet",
        "convnext_tiny",
        "efficientnet_b0",
        "shufflenet_v2_x1_0",
    ],
)
def test_rows_add_up_and_peaks_bound_what_is_held(model):
    m = memory(analyze(load(f"examples/{model}.yaml"), None, batch=2))
    t = m.totals
    for key in (
        "parameter_bytes",
        "buffer_bytes",
        "gradient_bytes",
        "optimizer_bytes",
        "saved_activation_bytes",
    ):
        assert sum(getattr(r, key) for r in m.rows) == getattr(t, key), key
    assert t.peak_bytes == max(r.peak_bytes for r in m.rows)
    # at the end of the forward pass every kept tensor is held, with the weights and state
    assert t.peak_bytes >= t.state_bytes + t.saved_activation_bytes
    # and at the end of backward every gradient
    assert t.peak_bytes >= t.state_bytes + t.gradient_bytes + t.input_bytes + t.output_bytes
    assert t.inference_peak_bytes >= (
        t.parameter_bytes + t.buffer_bytes + t.input_bytes + t.output_bytes
    )
    assert t.inference_peak_bytes < t.peak_bytes


def test_inference_peak_of_a_chain_by_hand():
    # conv2d(out_channels=4, kernel_size=3) then relu (out of place), batch 2: while the relu runs the input (held by
    # the caller), the conv output and the relu output are alive
    m = mem("conv2d(out_channels=4, kernel_size=3) relu")
    weights = (4 * 3 * 9 + 4) * F32
    assert m.totals.inference_peak_bytes == weights + X + C + C
    m = mem("conv2d(out_channels=4, kernel_size=3) relu(inplace=True)")
    assert m.totals.inference_peak_bytes == weights + X + C


def test_sweep_and_fit_agree_with_single_batches():
    a = analyze(load("examples/resnet18.yaml"))
    rows = sweep(a, [1, 8, 32])
    assert [r.totals.peak_bytes for r in rows] == [
        memory(a, b).totals.peak_bytes for b in (1, 8, 32)
    ]
    assert rows[0].totals.peak_bytes < rows[1].totals.peak_bytes < rows[2].totals.peak_bytes
    budget = 2 * 2**30
    found = fit(a, budget)
    assert found.memory.totals.peak_bytes <= budget < found.next_peak
    assert memory(a, found.batch + 1).totals.peak_bytes == found.next_peak


# --------------------------------------------------------------------------- CLI


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_json_keys(capsys):
    code, out, err = run(
        capsys, "memory", "examples/lenet5.yaml", "-b", "8", "-f", "json", "--optimizer", "momentum"
    )
    assert code == 0, err
    obj = json.loads(out)
    keys = {
        "parameter_bytes",
        "buffer_bytes",
        "gradient_bytes",
        "optimizer_bytes",
        "saved_activation_bytes",
        "output_bytes",
        "peak_bytes",
    }
    assert keys <= set(obj["layers"][0]) and keys <= set(obj["totals"])
    assert obj["batch"] == 8 and obj["optimizer"] == "momentum"
    assert obj["totals"]["gradient_bytes"] == 61_706 * F32
    assert obj["totals"]["optimizer_bytes"] == 61_706 * F32
    assert obj["totals"]["output_bytes"] == 8 * 10 * F32


def test_cli_fit_prints_the_table_at_the_largest_batch(capsys):
    code, out, err = run(capsys, "memory", "examples/resnet18.yaml", "--fit", "2GiB", "-f", "json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["batch"] == obj["fit"]["batch"]
    assert obj["totals"]["peak_bytes"] <= 2 * 2**30 < obj["fit"]["next_batch_peak_bytes"]
    code, out, err = run(capsys, "memory", "examples/resnet18.yaml", "--fit", "2GiB")
    assert code == 0 and f"the largest batch is {obj['batch']}" in out


def test_cli_batch_sweep(capsys):
    code, out, err = run(capsys, "memory", "examples/lenet5.yaml", "-b", "1,8", "-f", "csv")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("batch,saved_activation_bytes")
    assert [line.split(",")[0] for line in lines[1:]] == ["1", "8"]


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["--fit", "1KiB"], 1, "not even batch 1 fits"),
        (["--fit", "lots"], 2, "--fit 'lots'"),
        (["--dtype", "int8"], 2, "training memory needs a floating dtype"),
        (["--amp", "bfloat16", "--dtype", "float16"], 2, "float32 master weights"),
        (["--optimizer", "lion"], 2, "lion"),
    ],
)
def test_cli_bad_input_is_one_line(capsys, args, code, text):
    got, out, err = run(capsys, "memory", "examples/lenet5.yaml", *args)
    assert got == code
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and text in err


def test_cli_training_columns_on_shapes_and_params(capsys):
    code, out, err = run(
        capsys, "shapes", "examples/resnet18.yaml", "--training", "-d", "1", "-f", "json"
    )
    assert code == 0, err
    obj = json.loads(out)
    full = memory(analyze(load("examples/resnet18.yaml")))
    # folded blocks sum their layers: the rows still add up to the totals
    assert (
        sum(r["saved_activation_bytes"] for r in obj["layers"])
        == obj["totals"]["saved_activation_bytes"]
        == full.totals.saved_activation_bytes
    )
    assert obj["totals"]["peak_bytes"] == full.totals.peak_bytes
    code, out, err = run(capsys, "params", "examples/lenet5.yaml", "--training", "-f", "csv")
    assert code == 0 and out.splitlines()[0].endswith("saved,grads + optim,train peak")


# --------------------------------------------------------------------------- today's CNNs
# Batch 2, input 3×8×8: conv2d(3, 4, 3) makes a 4×6×6 map (C bytes in float32).
H = 2 * 4 * 6 * 6 * 2  # that map in bfloat16 / float16


def test_group_norm_keeps_its_input_and_mean_and_rstd_per_sample_and_group():
    # native_group_norm: the conv output, mean and rstd, each N × groups = 2 × 2 float32
    m = mem("conv2d(3, 4, 3) group_norm(2)")
    assert saved_per_row(m) == [X, C + 2 * (2 * 2) * F32]
    assert m.rows[1].output_bytes == C  # a new tensor
    assert m.rows[1].parameter_bytes == m.rows[1].gradient_bytes == 2 * 4 * F32
    assert (
        saved_per_row(mem("conv2d(3, 4, 3) group_norm(1, affine=False)"))[1]
        == C + 2 * (2 * 1) * F32
    )


def test_layer_norm_keeps_mean_and_rstd_per_leading_position():
    # over the last k sizes of 4×6×6: one mean and one rstd per position of the others
    assert saved_per_row(mem("conv2d(3, 4, 3) layer_norm(6)"))[1] == C + 2 * (2 * 4 * 6) * F32
    assert saved_per_row(mem("conv2d(3, 4, 3) layer_norm((6, 6))"))[1] == C + 2 * (2 * 4) * F32
    assert (
        saved_per_row(mem("conv2d(3, 4, 3) layer_norm((4, 6, 6), bias=False)"))[1]
        == C + 2 * 2 * F32
    )
    # channels-last as in ConvNeXt: the permute is a view, the norm keeps the conv output
    m = mem("conv2d(3, 4, 3) permute((0, 2, 3, 1)) layer_norm(4)")
    assert saved_per_row(m) == [X, 0, C + 2 * (2 * 6 * 6) * F32]
    assert m.rows[1].output_bytes == 0
    # layer_norm2d: the same, over the 4 channels at each of the 6×6 positions
    m = mem("conv2d(3, 4, 3) layer_norm2d")
    assert saved_per_row(m) == [X, C + 2 * (2 * 6 * 6) * F32]
    assert m.rows[1].output_bytes == C


def test_norm_statistics_follow_the_weights_dtype_under_autocast():
    # beside float32 weights, CPU's mixed-type kernels keep float32 statistics; a norm
    # without weights keeps them in its input's dtype (bfloat16 after an autocast conv)
    def norm_row(layer: str) -> int:
        return saved_per_row(mem(f"conv2d(3, 4, 3) {layer}", amp="bfloat16"))[1]

    assert norm_row("group_norm(2)") == H + 2 * (2 * 2) * F32
    assert norm_row("group_norm(2, affine=False)") == H + 2 * (2 * 2) * 2
    assert norm_row("layer_norm(6)") == H + 2 * (2 * 4 * 6) * F32
    assert norm_row("layer_norm(6, elementwise_affine=False)") == H + 2 * (2 * 4 * 6) * 2
    assert norm_row("batchnorm2d(affine=False)") == H + 2 * 4 * F32  # running stats: float32
    assert norm_row("batchnorm2d(affine=False, track_running_stats=False)") == H + 2 * 4 * 2


def test_instance_norm_is_a_batch_norm_over_samples_times_channels():
    # the input viewed as 1 × (N·C = 8) × 6 × 6: save_mean and save_invstd over 8; with
    # affine the weight repeated N times, with running stats the mean and var repeated too
    def norm_row(layer: str) -> int:
        return saved_per_row(mem(f"conv2d(3, 4, 3) {layer}"))[1]

    assert norm_row("instance_norm2d") == C + 2 * 8 * F32
    assert norm_row("instance_norm2d(affine=True)") == C + 3 * 8 * F32
    assert norm_row("instance_norm2d(track_running_stats=True)") == C + 4 * 8 * F32
    assert norm_row("instance_norm2d(4, 1e-5, 0.1, True, True)") == C + 5 * 8 * F32
    m = mem("conv2d(3, 4, 3) instance_norm2d(track_running_stats=True)")
    assert m.rows[1].buffer_bytes == 2 * 4 * F32 + 8  # running mean, var, int64 counter


def test_batchnorm3d_keeps_input_and_two_statistics_per_channel():
    # 3×8×8 seen as 1×3×8×8; conv3d(1, 4, 3) makes 4×1×6×6 (C bytes); the unflatten on the
    # network input records nothing
    m = mem("unflatten(1, (1, 3)) conv3d(1, 4, 3) batchnorm3d")
    assert saved_per_row(m) == [0, X, C + 2 * 4 * F32]
    assert m.rows[2].buffer_bytes == 2 * 4 * F32 + 8


def test_stochastic_depth_keeps_its_noise_and_layer_scale_its_input():
    # training mode: input * noise keeps the noise: N×1×1×1 (row) or 1×1×1×1 (batch)
    assert saved_per_row(mem("conv2d(3, 4, 3) stochastic_depth(0.1, 'row')"))[1] == 2 * F32
    assert saved_per_row(mem("conv2d(3, 4, 3) stochastic_depth(0.1, 'batch')"))[1] == F32
    m = mem("conv2d(3, 4, 3) stochastic_depth(0.0, 'row')")  # returns its input
    assert (saved_per_row(m)[1], m.rows[1].output_bytes) == (0, 0)
    # layer_scale * x keeps x for the parameter's gradient
    m = mem("conv2d(3, 4, 3) layer_scale")
    assert saved_per_row(m) == [X, C]
    assert m.rows[1].gradient_bytes == 4 * F32


def test_layer_scale_under_autocast_computes_in_float32():
    m = mem("conv2d(3, 4, 3) layer_scale conv2d(4, 4, 3)", amp="bfloat16")
    # conv: bf16 copies of the input and weight; layer scale: its bf16 input, a float32
    # product (the parameter's dtype); the next conv: bf16 copies of that and of its weight
    assert saved_per_row(m) == [X // 2 + 4 * 3 * 9 * 2, H, H + 4 * 4 * 9 * 2]
    assert m.rows[1].output_bytes == C


def test_shuffles_copy_and_permute_and_unflatten_are_views():
    m = mem(
        "conv2d(3, 8, 3) channel_shuffle(2) pixel_shuffle(2) pixel_unshuffle(2) "
        "permute((0, 1, 3, 2)) unflatten(1, (2, 4)) flatten(1, 2) conv2d(8, 4, 1)"
    )
    eight = 2 * 8 * 6 * 6 * F32  # 8×6×6, and 2×12×12 after the pixel shuffle
    assert [r.output_bytes for r in m.rows[1:7]] == [eight, eight, eight, 0, 0, 0]
    # none keeps anything; the last conv keeps the pixel unshuffle's tensor, through views
    assert saved_per_row(m) == [X, 0, 0, 0, 0, 0, 0, eight]
