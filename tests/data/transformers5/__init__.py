"""Stand-in for transformers 5: every module and name the 4.x-era OpenMMLab
code imports exists, except that `transformers.modeling_utils` hands out None
for the base classes that moved in 5.x, so mmpretrain's BLIP fails as with
the real release (a TypeError at import)."""
import importlib, importlib.abc, importlib.machinery, sys, types
__version__ = '5.0.0'
__path__ = []


def _name(module, name):
    if name.startswith('__'):
        raise AttributeError(name)
    if name.endswith('_utils'):  # a submodule, as in the real package (torch
        # 2.1 reads transformers.configuration_utils.PretrainedConfig)
        return importlib.import_module(f'{module}.{name}')
    if module == 'transformers.modeling_utils':
        return None
    return type(name, (), {})


def __getattr__(name):
    return _name(__name__, name)


class _Stub(types.ModuleType):
    __path__ = []

    def __getattr__(self, name):
        return _name(self.__name__, name)


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        # submodules are lower case; `from transformers import Cls` must
        # not find a module named Cls
        if name.startswith('transformers.') and name.islower():
            return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec):
        return _Stub(spec.name)

    def exec_module(self, module):
        pass


sys.meta_path.insert(0, _Finder())
