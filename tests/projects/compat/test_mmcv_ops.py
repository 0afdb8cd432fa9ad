"""mmcv ops on torchvision's kernels (projects/compat/mmcv_ops.py) against
goldens recorded with compiled mmcv 2.1.0 (tools/misc/mmcv_ops_goldens.py),
and a whole detector against mmcv's ops written from their formulas, on this
machine (convolutions round differently on other CPUs, so recorded detector
numbers do not carry over)."""
import importlib.util
import os
import os.path as osp
import subprocess
import sys
import types

import pytest
import torch
from process_helpers import ROOT

from projects.compat import mmcv_ops

_spec = importlib.util.spec_from_file_location(
    'mmcv_ops_goldens', osp.join(ROOT, 'tools', 'misc', 'mmcv_ops_goldens.py'))
goldens_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(goldens_tool)


@pytest.fixture(scope='module')
def goldens():
    return torch.load(goldens_tool.GOLDENS, weights_only=True)


def test_ops_match_compiled_goldens(goldens):
    """NMS indices identical (ties, offset, empty, batched, split path);
    RoIAlign forward and backward within 1e-5 relative."""
    assert goldens['meta']['recorded_with'].startswith('compiled')
    assert mmcv_ops.ops_backend() in ('torchvision', 'compiled')
    problems = goldens_tool.compare(goldens, mmcv_ops.torchvision_ext())
    assert problems == []


def test_reference_ops_match_compiled_goldens(goldens):
    """The from-formula reference the detector check trusts is mmcv's."""
    assert goldens_tool.compare(goldens, goldens_tool.reference_ext()) == []


@pytest.mark.slow
def test_detector_three_sgd_steps_match_the_reference():
    """Losses and gradients of each of three SGD steps of the demo Faster
    R-CNN: torchvision backend vs from-formula ops, same state and batch."""
    problems = goldens_tool.compare_detector(mmcv_ops.torchvision_ext(),
                                             goldens_tool.reference_ext())
    assert problems == []


def _variant(**ops) -> types.ModuleType:
    ext = mmcv_ops.torchvision_ext()
    for name, fn in ops.items():
        setattr(ext, name, fn)
    return ext


def test_negative_controls_the_comparison_sees(goldens):
    # torchvision's own NMS (stable order among tied scores) differs from
    # mmcv's on the tied cases, and ignoring offset=1 differs too.
    def plain_nms(boxes, scores, iou_threshold, offset=0):
        return torch.ops.torchvision.nms(boxes, scores, iou_threshold)

    problems = goldens_tool.compare(
        dict(goldens, roi_align=[]), _variant(nms=plain_nms))
    assert any('nms case' in p for p in problems)
    # RoIAlign with `aligned` ignored (always the legacy half-pixel-less
    # version) breaks forward and backward.
    forward, backward = mmcv_ops.roi_align_forward, mmcv_ops.roi_align_backward

    def forward_unaligned(*args, **kwargs):
        return forward(*args, **dict(kwargs, aligned=False))

    def backward_unaligned(*args, **kwargs):
        return backward(*args, **dict(kwargs, aligned=False))

    problems = goldens_tool.compare(
        dict(goldens, nms=[]), _variant(roi_align_forward=forward_unaligned,
                                        roi_align_backward=backward_unaligned))
    assert any('output' in p for p in problems)
    assert any('grad_input' in p for p in problems)


def _forward_unaligned(*args, **kwargs):
    return mmcv_ops.roi_align_forward(*args, **dict(kwargs, aligned=False))


def _backward_unaligned(*args, **kwargs):
    return mmcv_ops.roi_align_backward(*args, **dict(kwargs, aligned=False))


def _nms_other_offset(boxes, scores, iou_threshold, offset=0):
    return mmcv_ops.nms(boxes, scores, iou_threshold, offset=1 - offset)


@pytest.mark.slow
@pytest.mark.parametrize('wrong', [
    dict(roi_align_forward=_forward_unaligned,
         roi_align_backward=_backward_unaligned),
    dict(nms=_nms_other_offset)], ids=['roi_align_unaligned', 'nms_offset'])
def test_detector_check_sees_a_wrong_op(wrong):
    """Negative controls of the detector check (one step is enough)."""
    problems = goldens_tool.compare_detector(
        _variant(**wrong), goldens_tool.reference_ext(), steps=1)
    assert any('losses loss:' in p for p in problems), problems
    assert any('grads' in p for p in problems)


def test_uncovered_op_raises_a_clear_error():
    ext = mmcv_ops.torchvision_ext()
    with pytest.raises(mmcv_ops.MissingCompiledOpError,
                       match=r"'deform_conv_forward' needs mmcv's compiled.*"
                       r'--mmcv-from-source'):
        ext.deform_conv_forward(torch.zeros(1))
    with pytest.raises(mmcv_ops.MissingCompiledOpError, match='max'):
        ext.roi_align_forward(torch.zeros(1, 1, 4, 4), torch.zeros(1, 5),
                              torch.zeros(1, 1, 2, 2), torch.zeros(0),
                              torch.zeros(0), aligned_height=2,
                              aligned_width=2, spatial_scale=1.,
                              sampling_ratio=0,
                              pool_mode=mmcv_ops.MMCV_POOL_MAX, aligned=True)
    with pytest.raises(AttributeError):
        ext._private_name  # dunder/private lookups stay AttributeErrors


def _python(code: str, **env) -> str:
    res = subprocess.run([sys.executable, '-c', code], cwd=ROOT, text=True,
                         capture_output=True, env=dict(os.environ, **env))
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_forced_backend_and_call_recording(tmp_path):
    record = tmp_path / 'ops.txt'
    out = _python(
        'import projects.compat, torch\n'
        'from mmcv.ops import nms\n'
        'from projects.compat import ops_backend\n'
        'b = torch.tensor([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30.]])\n'
        'print(nms(b, torch.tensor([.9, .8, .7]), 0.5)[1].tolist())\n'
        'print(ops_backend())\n',
        **{mmcv_ops.BACKEND_ENV: 'torchvision',
           mmcv_ops.RECORD_ENV: str(record)})
    assert out.split('\n')[:2] == ['[0, 2]', 'torchvision']
    assert record.read_text().split() == ['nms']


def test_bad_backend_value_is_named():
    res = subprocess.run(
        [sys.executable, '-c', 'import projects.compat'], cwd=ROOT, text=True,
        capture_output=True,
        env=dict(os.environ, **{mmcv_ops.BACKEND_ENV: 'cuda'}))
    assert res.returncode != 0
    assert "VICREG_DET_MMCV_OPS='cuda'" in res.stderr
