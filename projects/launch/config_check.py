"""Config checks that run before anything is built (no data is read, no
model is constructed), so a typo fails in seconds, not after the data has
been indexed or hours into a run.

- :func:`check_cfg_options`: every ``--cfg-options`` key must name a key of
  the loaded config, except a new last component that does not look like a
  typo of an existing one, or a top-level ``Runner`` argument
  (``train_dataloader.dataset.listing_cache=...``, ``randomness.seed=0``
  adds a constructor argument; ``train_cfg.max_epoch=5`` is refused with
  "did you mean 'max_epochs'"). A value whose type cannot replace the
  existing one (text for a number, a scalar for a dict) is refused too.
- :func:`check_config_paths`: ``data_root``, ``ann_file``, ``data_prefix``
  of the datasets the tool will use, evaluator ``ann_file``s and
  ``load_from`` must exist; the error names the config key and the path.
  (A missing ``init_cfg=Pretrained`` checkpoint is reported by the detection
  configs' ``PretrainedBackboneCheckHook`` before the first iteration.)
- :func:`check_num_classes`: the detector head's ``num_classes`` must equal
  the number of classes in each used dataset's ``metainfo``.
"""
import difflib
import os.path as osp
from typing import Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config


class ConfigCheckError(ValueError):
    """The config (or a --cfg-options override) is wrong."""


_MISSING = object()


def _child(node, part):
    if isinstance(node, dict):
        return node.get(part, _MISSING)
    if isinstance(node, (list, tuple)) and part.isdigit():
        i = int(part)
        return node[i] if i < len(node) else _MISSING
    return _MISSING


def _closest(part: str, node) -> str:
    if isinstance(node, dict):
        match = difflib.get_close_matches(part, [str(k) for k in node], 1,
                                          0.6)
        if match:
            return f"; did you mean '{match[0]}'?"
        keys = ', '.join(sorted(str(k) for k in node)[:20])
        return f'; keys there: {keys}'
    if isinstance(node, (list, tuple)):
        return f'; that list has {len(node)} items'
    return f'; that value is a {type(node).__name__}, not a dict'


def _type_problem(old, new) -> Optional[str]:
    if old is None or new is None:
        return None
    num = (int, float)
    if isinstance(old, bool) != isinstance(new, bool) and (
            isinstance(old, str) or isinstance(new, str)):
        return f'expects {type(old).__name__}, got {new!r}'
    if isinstance(old, num) and not isinstance(new, num):
        return f'expects a number, got {new!r}'
    if isinstance(old, str) and isinstance(new, (num, dict)) and \
            not isinstance(new, bool):
        return f'expects text, got {new!r}'
    if isinstance(old, dict) and not isinstance(new, dict):
        return f'is a dict ({", ".join(list(old)[:6])}), got {new!r}'
    return None


def _runner_args() -> set:
    import inspect

    from mmengine.runner import Runner
    return set(inspect.signature(Runner.__init__).parameters) - {'self'}


def check_cfg_options(cfg: Config, cfg_options: Optional[dict]) -> None:
    """Raise :class:`ConfigCheckError` listing every bad override."""
    problems: List[str] = []
    for key, value in (cfg_options or {}).items():
        parts = key.split('.')
        node = cfg._cfg_dict if isinstance(cfg, Config) else cfg
        for depth, part in enumerate(parts):
            nxt = _child(node, part)
            if nxt is _MISSING:
                if depth == 0 and part in _runner_args():
                    break  # e.g. randomness.seed=0 where no base sets it
                where = '.'.join(parts[:depth]) or '<top level>'
                last = depth == len(parts) - 1
                if last and isinstance(node, dict) and not \
                        difflib.get_close_matches(part, list(node), 1, 0.8):
                    break  # a new key (e.g. a constructor argument)
                problems.append(f"'{key}': no key '{part}' in {where}"
                                f'{_closest(part, node)}')
                break
            if depth == len(parts) - 1:
                why = _type_problem(nxt, value)
                if why:
                    problems.append(f"'{key}' {why} (now {nxt!r})")
            node = nxt
    if problems:
        raise ConfigCheckError(
            'unknown or mistyped --cfg-options:\n  ' + '\n  '.join(problems))


def _is_remote(path: str) -> bool:
    return '://' in path


def _datasets(cfg: dict, key: str) -> Iterator[Tuple[str, dict]]:
    """(key, dataset cfg) for a dataset and the ones it wraps."""
    if not isinstance(cfg, dict):
        return
    yield key, cfg
    if isinstance(cfg.get('dataset'), dict):
        yield from _datasets(cfg['dataset'], f'{key}.dataset')
    for i, ds in enumerate(cfg.get('datasets') or []):
        yield from _datasets(ds, f'{key}.datasets.{i}')


def _dataset_paths(ds: dict, key: str) -> Iterator[Tuple[str, str]]:
    root = ds.get('data_root')
    if isinstance(root, str) and root and not _is_remote(root):
        yield f'{key}.data_root', root

    def join(p):
        return osp.join(root, p) if root and not osp.isabs(p) else p

    ann = ds.get('ann_file')
    if isinstance(ann, str) and ann and not _is_remote(ann):
        yield f'{key}.ann_file', join(ann)
    prefix = ds.get('data_prefix')
    items = prefix.items() if isinstance(prefix, dict) else \
        [(None, prefix)]
    for name, p in items:
        if isinstance(p, str) and p and not _is_remote(p):
            yield (f'{key}.data_prefix' + (f'.{name}' if name else ''),
                   join(p))


def _walk(node, key: str) -> Iterator[Tuple[str, dict]]:
    if isinstance(node, dict):
        yield key, node
        for k, v in node.items():
            yield from _walk(v, f'{key}.{k}')
    elif isinstance(node, (list, tuple)):
        for i, v in enumerate(node):
            yield from _walk(v, f'{key}.{i}')


def _splits(cfg: Config, mode: str) -> List[str]:
    if mode == 'test':
        return ['test']
    splits = ['train']
    if cfg.get('val_cfg') is not None and cfg.get('val_dataloader'):
        splits.append('val')
    return splits


def check_config_paths(cfg: Config, mode: str = 'train') -> None:
    """Raise ``FileNotFoundError`` naming each config key whose local path
    does not exist (for the dataloaders/evaluators of ``mode``)."""
    missing = []
    for split in _splits(cfg, mode):
        loader = cfg.get(f'{split}_dataloader') or {}
        for key, ds in _datasets(loader.get('dataset'),
                                 f'{split}_dataloader.dataset'):
            for k, path in _dataset_paths(ds, key):
                if not osp.exists(path):
                    missing.append(f'{k} = {path}')
        evaluator = cfg.get(f'{split}_evaluator')
        for k, ev in _walk(evaluator, f'{split}_evaluator'):
            ann = ev.get('ann_file')
            if isinstance(ann, str) and ann and not _is_remote(ann) and \
                    not osp.exists(ann):
                missing.append(f'{k}.ann_file = {ann}')
    load_from = cfg.get('load_from')
    if isinstance(load_from, str) and load_from and \
            not _is_remote(load_from) and not osp.isfile(load_from):
        missing.append(f'load_from = {load_from}')
    if missing:
        raise FileNotFoundError(
            'paths in the config do not exist:\n  ' + '\n  '.join(missing))


def _head_num_classes(model: dict) -> List[Tuple[str, int]]:
    found = []
    # detector.*: mmdet's semi-supervised wrappers (SoftTeacher)
    for key in ('roi_head.bbox_head', 'bbox_head',
                'detector.roi_head.bbox_head', 'detector.bbox_head'):
        node = model
        for part in key.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        heads = node if isinstance(node, (list, tuple)) else [node]
        for i, head in enumerate(heads):
            if isinstance(head, dict) and isinstance(
                    head.get('num_classes'), int):
                suffix = f'.{i}' if isinstance(node, (list, tuple)) else ''
                found.append((f'model.{key}{suffix}.num_classes',
                              head['num_classes']))
    return found


def _registered_classes(dataset_type, cfg: Config):
    """The classes in a registered dataset class's ``METAINFO`` (e.g.
    CompetitionDataset's 100), or None."""
    if not isinstance(dataset_type, str):
        return None
    from mmengine.registry import DATASETS
    scope = cfg.get('default_scope')
    if scope and '.' not in dataset_type:
        dataset_type = f'{scope}.{dataset_type}'  # no default scope set yet
    try:
        dataset_class = DATASETS.get(dataset_type)
    except KeyError:
        return None
    return (getattr(dataset_class, 'METAINFO', None) or {}).get('classes')


def check_num_classes(cfg: Config, mode: str = 'train') -> None:
    """Raise :class:`ConfigCheckError` if a detection head's num_classes
    differs from a used dataset's ``metainfo['classes']``."""
    # Not mmdet's NumClassCheckHook: it checks at before_train_epoch, after
    # the datasets (and their annotation index) are built; this is earlier.
    heads = _head_num_classes(cfg.get('model') or {})
    if not heads:
        return
    problems = []
    for split in _splits(cfg, mode):
        loader = cfg.get(f'{split}_dataloader') or {}
        for key, ds in _datasets(loader.get('dataset'),
                                 f'{split}_dataloader.dataset'):
            classes = (ds.get('metainfo') or {}).get(
                'classes', _registered_classes(ds.get('type'), cfg))
            if not isinstance(classes, Sequence) or isinstance(classes, str):
                continue
            for head_key, n in heads:
                if n != len(classes):
                    problems.append(
                        f'{head_key} = {n} but {key} has {len(classes)} '
                        f'classes (its metainfo.classes or its type\'s '
                        f'METAINFO)')
    if problems:
        raise ConfigCheckError('class count mismatch:\n  ' +
                               '\n  '.join(problems))


def check_config(cfg: Config, mode: str = 'train') -> None:
    """All pre-build checks of a loaded config (after command-line edits)."""
    check_num_classes(cfg, mode)
    check_config_paths(cfg, mode)
