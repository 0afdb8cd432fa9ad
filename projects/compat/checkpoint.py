"""Checkpoint loading that works on torch >= 2.6 without giving up safety.

mmengine 0.10.7 calls ``torch.load(filename)``; since torch 2.6 that means
``weights_only=True`` and every runner checkpoint fails on
``mmengine.logging.HistoryBuffer``. Instead of turning ``weights_only`` off,
we register a local-file loader (mmengine's documented extension point,
``CheckpointLoader.register_scheme``) that keeps it on and allow-lists exactly
the extra types mmengine/mmdet/mmpretrain checkpoints contain. A file that
pickles anything else (e.g. a callable whose ``__reduce__`` runs a command) is
refused with :class:`UntrustedCheckpointError`.

torch < 2.6 has no ``safe_globals`` (2.5) or no ``(obj, name)`` entries in
it (2.4 and older); there :class:`_RestrictedUnpickler` unpickles with the
same allow-list plus torch's own weights-only one.

Opt-in for a file you trust: ``VICREG_DET_TRUST_CHECKPOINTS=1`` loads with
``weights_only=False`` (full pickle: it can run code).
"""
import _compat_pickle
import codecs
import collections
import os
import os.path as osp
import pickle
from typing import Any, Dict, Optional, Tuple

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.optim.scheduler import OneCycleParamScheduler
from mmengine.runner.checkpoint import CheckpointLoader

TRUST_ENV_VAR = 'VICREG_DET_TRUST_CHECKPOINTS'
# safe_globals with (obj, name) entries; older torch: _RestrictedUnpickler
TORCH_SAFE_GLOBALS = torch.__version__ >= '2.6'
# numpy 1.26 ships a numpy._core stub, so hasattr(np, '_core') cannot tell
NUMPY2 = np.lib.NumpyVersion(np.__version__) >= '2.0.0'


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint pickles a type outside the allow-list."""


_BUILTIN_STATISTICS = ('min', 'max', 'current', 'mean')


class _StaticMethodsOf:
    """Stands for a class whose static methods a checkpoint pickles.

    torch.save (pickle protocol 2) writes a static method as
    ``getattr(<class>, '<name>')``; allowing the class itself would also
    let a pickle instantiate it, so the class's name resolves to this
    stand-in, which only :func:`_restricted_getattr` can read (the listed
    names) and which cannot be called or instantiated.
    """

    def __init__(self, cls: type, names: Tuple[str, ...]) -> None:
        self.cls, self.names = cls, names

    @property
    def path(self) -> str:
        return f'{self.cls.__module__}.{self.cls.__qualname__}'

    def __repr__(self) -> str:
        return self.path

    def __call__(self, *args, **kwargs):  # a pickle's REDUCE
        raise UntrustedCheckpointError(
            f'{self.path} may not be instantiated in a checkpoint')


# mmengine's OneCycle schedulers keep their annealing function in their
# state_dict (``anneal_func``), so every runner checkpoint of a run that
# used OneCycleLR / OneCycleParamScheduler (and subclasses) holds it.
_ONE_CYCLE = _StaticMethodsOf(OneCycleParamScheduler,
                              ('_annealing_cos', '_annealing_linear'))


def _restricted_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` inside checkpoints.

    ``HistoryBuffer`` pickles its statistics methods as
    ``getattr(HistoryBuffer, 'mean')``, the OneCycle schedulers their
    annealing function as ``getattr(OneCycleParamScheduler,
    '_annealing_cos')``; a general ``getattr`` would let a pickle reach any
    attribute (e.g. ``ndarray.tofile``), so only these are allowed.
    """
    # _statistics_methods is only filled by the first HistoryBuffer(), so a
    # fresh process (e.g. tools/test.py) also needs the built-in names.
    if obj is HistoryBuffer and (name in _BUILTIN_STATISTICS
                                 or name in HistoryBuffer._statistics_methods):
        return getattr(obj, name)
    if isinstance(obj, _StaticMethodsOf) and name in obj.names:
        return getattr(obj.cls, name)
    raise UntrustedCheckpointError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _numpy_globals() -> list:
    core = np._core if NUMPY2 else np.core
    allowed = [np.ndarray, np.dtype]
    # numpy 2 pickles as numpy._core.*, numpy 1 as numpy.core.*: allow both.
    for mod in ('numpy._core', 'numpy.core'):
        allowed += [(core.multiarray._reconstruct,
                     f'{mod}.multiarray._reconstruct'),
                    (core.multiarray.scalar, f'{mod}.multiarray.scalar')]
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        allowed += [
            getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
        ]
    return allowed


ALLOWED_GLOBALS = [
    HistoryBuffer,
    (_restricted_getattr, 'builtins.getattr'),
    (_ONE_CYCLE, _ONE_CYCLE.path),
    *_numpy_globals(),
]


def _allowed_by_name() -> Dict[str, Any]:
    """Pickled name -> object: torch's weights-only allow-list, what newer
    torch adds to it by default (bytes, sets, complex; Counter, which
    MultiStepLR's state holds, before 2.4), and ours."""
    from torch._weights_only_unpickler import _get_allowed_globals
    allowed = dict(_get_allowed_globals())
    allowed.update({'_codecs.encode': codecs.encode,
                    'builtins.bytearray': bytearray, 'builtins.set': set,
                    'builtins.complex': complex,
                    'collections.Counter': collections.Counter})
    for entry in ALLOWED_GLOBALS:
        obj, name = entry if isinstance(entry, tuple) else (
            entry, f'{entry.__module__}.{entry.__name__}')
        allowed[name] = obj
    return allowed


class _RestrictedUnpickler(pickle._Unpickler):
    """Weights-only unpickling for torch < 2.6, as the ``Unpickler`` of the
    ``pickle_module`` given to ``torch.load(weights_only=False)``.

    Globals resolve only through :func:`_allowed_by_name` (nothing is
    imported), and BUILD only sets the state of instances of allowed
    classes: on a class object it would overwrite the class's attributes.
    The pure-Python unpickler, as the C one's BUILD cannot be intercepted.
    """

    dispatch = dict(pickle._Unpickler.dispatch)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.allowed = _allowed_by_name()
        self.classes = {
            obj for obj in self.allowed.values() if isinstance(obj, type)}

    def find_class(self, module: str, name: str) -> Any:
        if self.proto < 3 and self.fix_imports:  # as pickle's (torch.save
            # writes protocol 2: builtins are pickled as __builtin__)
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        try:
            return self.allowed[f'{module}.{name}']
        except KeyError:
            raise UntrustedCheckpointError(
                f'Unsupported global: GLOBAL {module}.{name} is not '
                'allowed') from None

    def load_build(self) -> None:
        inst = self.stack[-2]
        if type(inst) not in self.classes:
            raise UntrustedCheckpointError(
                f'setting the state of {inst!r} is not allowed')
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


class _RestrictedPickle:
    """The ``pickle_module`` for ``torch.load`` on torch < 2.6."""

    Unpickler = _RestrictedUnpickler

    @staticmethod
    def load(file, **kwargs) -> Any:  # torch's legacy (non-zip) format
        return _RestrictedUnpickler(file, **kwargs).load()


def trusted() -> bool:
    return os.environ.get(TRUST_ENV_VAR, '') not in ('', '0', 'false')


def safe_torch_load(file: Any, map_location: Optional[Any] = 'cpu') -> Any:
    """``torch.load`` with ``weights_only=True`` and the allow-list above.

    Raises:
        UntrustedCheckpointError: the file pickles a non-allowed global.
    """
    if trusted():
        return torch.load(file, map_location=map_location, weights_only=False)
    try:
        if not TORCH_SAFE_GLOBALS:
            return torch.load(file, map_location=map_location,
                              weights_only=False,
                              pickle_module=_RestrictedPickle)
        with torch.serialization.safe_globals(ALLOWED_GLOBALS):
            return torch.load(
                file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        name = file if isinstance(file, (str, os.PathLike)) else '<stream>'
        # what follows torch's 'WeightsUnpickler error:' names the refused
        # global; the message's first line is generic
        text = str(err)
        _, found, rest = text.partition('WeightsUnpickler error:')
        detail = ' '.join(rest.split('Check the documentation')[0].split()
                          if found else text.splitlines()[:1])
        raise UntrustedCheckpointError(
            f'Refusing to load checkpoint {name}: it contains objects '
            f'outside the allow-list of tensors, numpy arrays and mmengine '
            f'log buffers, so loading it could run arbitrary code.\n'
            f'Detail: {detail}\n'
            f'If you trust this file, set {TRUST_ENV_VAR}=1 and retry.'
        ) from None


@CheckpointLoader.register_scheme(prefixes='', force=True)
def load_from_local(filename: str, map_location=None) -> Any:
    """Replaces mmengine's local loader (same contract, safe load)."""
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return safe_torch_load(filename, map_location=map_location)
