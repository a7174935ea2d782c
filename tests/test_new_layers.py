

# --------------------------------------------------------------------------- measured fields


VOLUME = """
input: [2, 12, 14, 16]
layers:
  - {type: conv3d, out_channels: 4, kernel_size: 3, padding: 1, stride: 2}
  - {type: reflection_pad3d, padding: 1}
  - {type: maxpool3d, kernel_size: 3, stride: 1}
  - {type: conv_transpose3d, out_channels: 3, kernel_size: 3, stride: 2, padding: 1}
  - {type: avgpool3d, kernel_size: 2, stride: 1}
  - {type: upsample, scale_factor: 1.5, mode: trilinear}
"""

RESIZED = """
input: [3, 40, 40]
layers:
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1, name: a}
  - {type: conv2d, out_channels: 4, kernel_size: 3, stride: 2, padding: 1}
  - {type: upsample, size_of: a, mode: bicubic}
  - {type: replication_pad2d, padding: 2}
  - {type: conv2d, out_channels: 4, kernel_size: 5}
  - {type: circular_pad2d, padding: [1, 0, 0, 1]}
  - {type: upsample, size_of: input, mode: bilinear, align_corners: true}
  - {type: conv2d, out_channels: 2, kernel_size: 3, padding: 1}
"""


@pytest.mark.parametrize("text", [VOLUME, RESIZED], ids=["3-d", "resized"])
def test_measured_field_equals_the_analytic_one(text):
    """rf --empirical: back-propagation through conv3d_backward, the 3-D pools, the copying
    pads and every interpolation reaches exactly the analytic field (unit_field)."""
    from cnncalc.rf import measure

    e = measure(analyze(parse_text(text)))
    assert e.theoretical is not None and e.agrees, (e.theoretical, e.analytic_lo, e.analytic_hi)
