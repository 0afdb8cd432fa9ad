"""ResNet checkpoint layouts: this project (mmpretrain), torchvision/official.

mmpretrain's ``ResNet`` (and mmdet's) name their parameters exactly like
torchvision's (``conv1``, ``bn1``, ``layer1.0.conv1``, ``downsample.0/1``);
the official VICReg ``resnet50.pth`` uses the torchvision layout without
``fc``. So conversion is: strip/add the ``backbone.`` prefix, drop ``fc.*``,
and *verify* every tensor against the keys and shapes of a freshly built
``mmpretrain.models.ResNet`` of the right depth, failing loudly on any
missing, unexpected or mis-shaped tensor instead of loading half a model.
"""
import functools
import re
from collections import OrderedDict
from typing import Dict, Mapping, Optional, Tuple

import torch

BACKBONE_PREFIX = 'backbone.'
# (blocks per stage, bottleneck?) -> depth
_ARCHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}

StateDict = Dict[str, torch.Tensor]


class CheckpointConversionError(ValueError):
    """A state dict does not match the expected ResNet layout."""


def unwrap_state_dict(obj: Mapping) -> StateDict:
    """The tensor dict inside a checkpoint: ``state_dict`` (mmengine),
    ``model`` (official VICReg training checkpoint) or the dict itself;
    a DDP ``module.`` prefix is removed."""
    for key in ('state_dict', 'model'):
        if isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    state = OrderedDict()
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            raise CheckpointConversionError(f'{k!r} is a {type(v).__name__}, not a '
                                  'tensor: is this a model state dict?')
        state[k[len('module.'):] if k.startswith('module.') else k] = v
    return state


def infer_resnet_depth(state: Mapping[str, torch.Tensor]) -> int:
    """Depth of a torchvision-layout ResNet state dict (no prefix)."""
    blocks = []
    for stage in range(1, 5):
        ids = {int(m.group(1)) for k in state
               for m in [re.match(rf'layer{stage}\.(\d+)\.', k)] if m}
        blocks.append(max(ids) + 1 if ids else 0)
    bottleneck = 'layer1.0.conv3.weight' in state
    depth = _ARCHS.get((tuple(blocks), bottleneck))
    if depth is None:
        raise CheckpointConversionError(
            f'not a ResNet-18/34/50/101/152 state dict: blocks per stage '
            f'{blocks}, bottleneck={bottleneck}')
    return depth


@functools.lru_cache(maxsize=None)
def reference_resnet(depth: int) -> Dict[str, Tuple[torch.Size, torch.dtype]]:
    """Keys, shapes and dtypes of a fresh ``mmpretrain`` ``ResNet(depth)``
    state dict."""
    from mmpretrain.models import ResNet
    model = ResNet(depth=depth)
    return {k: (v.shape, v.dtype) for k, v in model.state_dict().items()}


def check_resnet_state(state: Mapping[str, torch.Tensor], depth: int,
                       what: str = 'state dict') -> None:
    """Raise :class:`CheckpointConversionError` unless ``state`` has exactly the keys
    and shapes of ``ResNet(depth)``."""
    ref = reference_resnet(depth)
    missing = sorted(set(ref) - set(state))
    unexpected = sorted(set(state) - set(ref))
    shapes = sorted(f'{k}: {tuple(state[k].shape)} != {tuple(ref[k][0])}'
                    for k in set(ref) & set(state)
                    if state[k].shape != ref[k][0])
    if missing or unexpected or shapes:
        def show(items):
            return ', '.join(items[:8]) + (
                f' ... (+{len(items) - 8})' if len(items) > 8 else '')
        raise CheckpointConversionError(
            f'{what} does not match ResNet-{depth}: '
            f'{len(missing)} missing [{show(missing)}], '
            f'{len(unexpected)} unexpected [{show(unexpected)}], '
            f'{len(shapes)} wrong shapes [{show(shapes)}]')


def torchvision_to_mmpretrain(state: Mapping[str, torch.Tensor],
                              depth: Optional[int] = None
                              ) -> Tuple[StateDict, int, list]:
    """Official-VICReg / torchvision ResNet -> ``backbone.``-prefixed state.

    Accepts a bare backbone (``resnet50.pth``), a torchvision model (``fc.*``
    dropped) or an official training checkpoint (``backbone.*`` taken,
    ``projector.*`` dropped).

    Returns:
        (state dict with ``backbone.`` keys, depth, dropped keys)
    """
    state = unwrap_state_dict(state)
    if any(k.startswith(BACKBONE_PREFIX) for k in state):
        return extract_backbone(state, depth)  # official training checkpoint
    dropped = [k for k in state if k.startswith('fc.')]
    state = OrderedDict(
        (k, v) for k, v in state.items() if not k.startswith('fc.'))
    depth = depth or infer_resnet_depth(state)
    check_resnet_state(state, depth, 'source backbone')
    out = OrderedDict((BACKBONE_PREFIX + k, v) for k, v in state.items())
    return out, depth, dropped


def extract_backbone(state: Mapping[str, torch.Tensor],
                     depth: Optional[int] = None
                     ) -> Tuple[StateDict, int, list]:
    """VICReg checkpoint -> its ``backbone.*`` tensors only (prefix kept, so
    mmdet loads it with ``init_cfg=dict(type='Pretrained', checkpoint=...,
    prefix='backbone.')``).

    Returns:
        (state dict with ``backbone.`` keys, depth, dropped keys)
    """
    state = unwrap_state_dict(state)
    backbone = OrderedDict((k[len(BACKBONE_PREFIX):], v)
                           for k, v in state.items()
                           if k.startswith(BACKBONE_PREFIX))
    if not backbone:
        raise CheckpointConversionError('no "backbone." tensors in this checkpoint')
    dropped = [k for k in state if not k.startswith(BACKBONE_PREFIX)]
    depth = depth or infer_resnet_depth(backbone)
    check_resnet_state(backbone, depth, 'VICReg backbone')
    out = OrderedDict((BACKBONE_PREFIX + k, v) for k, v in backbone.items())
    return out, depth, dropped


def mmpretrain_to_torchvision(state: Mapping[str, torch.Tensor],
                              depth: Optional[int] = None
                              ) -> Tuple[StateDict, int, list]:
    """This project's checkpoint -> torchvision / official-VICReg layout
    (no ``fc``; load into ``torchvision.models.resnetXX`` with
    ``strict=False``, or into the official ``resnet.py`` strictly).

    Returns:
        (torchvision-layout state dict, depth, dropped keys)
    """
    backbone, depth, dropped = extract_backbone(state, depth)
    out = OrderedDict(
        (k[len(BACKBONE_PREFIX):], v) for k, v in backbone.items())
    return out, depth, dropped


def load_file(path: str) -> Mapping:
    """Load a checkpoint with the safe, allow-listed loader."""
    from projects.compat import safe_torch_load
    return safe_torch_load(path)


def save_file(obj: Mapping, path: str) -> None:
    """``torch.save`` creating the parent folder."""
    import os
    import os.path as osp
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    torch.save(obj, path)


def describe(num: int, what: str, path: str, dropped: list) -> str:
    note = f'; dropped {len(dropped)}: {", ".join(dropped[:6])}' + (
        ' ...' if len(dropped) > 6 else '') if dropped else ''
    return f'saved {num} tensors ({what}) to {path}{note}'


def converter_main(description: str, convert, src_help: str,
                   dst_help: str, torchvision_layout: bool = False) -> None:
    """The command line shared by ``tools/model_converters/*.py``:
    ``SRC DST [--depth N]``, ``convert(state, depth)`` -> (state, depth,
    dropped), saved bare (torchvision layout) or as an mmengine-style
    ``dict(state_dict=..., meta=...)``; conversion errors exit with the file
    name and the reason."""
    import argparse
    import sys
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help=dst_help)
    parser.add_argument('--depth', type=int, help='ResNet depth (inferred)')
    args = parser.parse_args()
    try:
        state, depth, dropped = convert(load_file(args.src), args.depth)
    except CheckpointConversionError as err:
        sys.exit(f'error: {args.src}: {err}')
    if torchvision_layout:
        save_file(state, args.dst)
        what = f'ResNet-{depth}, torchvision layout'
    else:
        meta = dict(source=args.src, arch=f'ResNet-{depth}',
                    layout='mmpretrain')
        save_file(dict(state_dict=state, meta=meta), args.dst)
        what = f'ResNet-{depth}'
    print(describe(len(state), what, args.dst, dropped))
