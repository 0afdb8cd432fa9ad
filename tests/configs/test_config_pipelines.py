"""Every config's data pipelines and data preprocessor are unchanged by
config refactors: their resolved values are compared with dumps recorded
under tests/data/config_pipelines/.

Re-record (only when a pipeline change is intended, and say so in the
commit): ``python tests/configs/test_config_pipelines.py [CONFIG ...]``.
"""
import difflib
import glob
import inspect
import os.path as osp
import pprint
import sys

import pytest

# tests/configs/ -> the repository (also run as a script to record dumps)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DUMPS = osp.join(ROOT, 'tests', 'data', 'config_pipelines')
KEYS = ('train_pipeline', 'val_pipeline', 'test_pipeline',
        'train_dataloader.dataset.pipeline',
        'val_dataloader.dataset.pipeline',
        'test_dataloader.dataset.pipeline', 'data_preprocessor',
        'model.data_preprocessor')


def all_configs() -> list:
    return sorted(
        osp.relpath(p, ROOT)
        for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                           recursive=True))


def dump_path(config: str) -> str:
    return osp.join(DUMPS, osp.relpath(config, 'configs') + '.txt')


def _lookup(cfg, key):
    for part in key.split('.'):
        if not isinstance(cfg, dict) or part not in cfg:
            return None
        cfg = cfg[part]
    return cfg


def _with_defaults(pre: dict, scope: str) -> dict:
    """A data preprocessor config with its constructor defaults filled in,
    so restating (or dropping) a default does not count as a change."""
    from mmengine.registry import DefaultScope
    if scope == 'mmdet':
        from mmdet.registry import MODELS
    else:
        from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope(scope):
        cls = MODELS.get(pre['type'])
    full = {
        name: p.default
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    full.update(pre)
    return full


def _normalise(value, scope: str):
    """Drop ``_scope_`` tags naming the config's default scope (inheriting an
    ``mmpretrain::`` base adds them) and read tuples as lists: neither
    changes what the transforms or the preprocessor do."""
    if isinstance(value, dict):
        return {k: _normalise(v, scope) for k, v in value.items()
                if not (k == '_scope_' and v == scope)}
    if isinstance(value, (list, tuple)):
        return [_normalise(v, scope) for v in value]
    return value


def dump(config: str) -> str:
    """The resolved pipelines / preprocessor of ``config`` as sorted text."""
    from mmengine.config import Config
    cfg = Config.fromfile(osp.join(ROOT, config)).to_dict()
    scope = cfg.get('default_scope') or 'mmdet'
    out = {}
    for key in KEYS:
        value = _lookup(cfg, key)
        if value is None:
            continue
        if key.endswith('data_preprocessor') and 'type' in value:
            value = _with_defaults(value, scope)
        out[key] = _normalise(value, scope)
    return pprint.pformat(out, width=79, sort_dicts=True) + '\n'


def test_every_config_has_a_recorded_dump():
    missing = [c for c in all_configs() if not osp.exists(dump_path(c))]
    assert not missing, (
        f'no recorded pipeline dump for {missing}: record it with '
        f'`python tests/configs/test_config_pipelines.py {" ".join(missing)}`')


@pytest.mark.parametrize('config', all_configs())
def test_pipelines_unchanged(config):
    path = dump_path(config)
    if not osp.exists(path):
        pytest.skip('not recorded (see the test above)')
    with open(path) as f:
        want = f.read()
    got = dump(config)
    assert got == want, ''.join(difflib.unified_diff(
        want.splitlines(True), got.splitlines(True), path, config))


def test_dump_sees_a_changed_value(tmp_path):
    """Negative control: a child changing one view parameter shows up in
    the dump."""
    base = 'configs/vicreg/vicreg_resnet50_1xb128-coslr-230e_unlabeled.py'
    child = tmp_path / 'child.py'
    child.write_text(
        f'_base_ = [{osp.join(ROOT, base)!r}]\n'
        'train_pipeline = _base_.train_pipeline\n'
        'train_pipeline[0].type = "LoadImageFromFileX"\n'
        'train_dataloader = dict(dataset=dict(pipeline=train_pipeline))\n')
    assert dump(str(child)) != dump(base)


if __name__ == '__main__':
    import projects.compat  # noqa: F401  (compatibility fixes first)
    for config in sys.argv[1:] or all_configs():
        config = osp.relpath(osp.abspath(config), ROOT)
        path = dump_path(config)
        import os
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(dump(config))
        print('recorded', path)
