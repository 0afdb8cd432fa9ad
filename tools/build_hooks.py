"""setuptools command that ships the start-up hook's ``.pth`` file.

pyproject.toml names :class:`BuildPy` as ``build_py``
(``[tool.setuptools.cmdclass]``). Besides the packages it writes
``vicreg_det_startup.pth`` (one line that runs
``vicreg_det_startup.install()`` when that module can be found) to the root
of what gets installed, i.e. site-packages, for both ``pip install .`` and
``pip install -e .``, and pip records it so ``pip uninstall vicreg-det`` removes it.
"""
import os.path as osp
from setuptools.command.build_py import build_py

PTH_NAME = 'vicreg_det_startup.pth'
# Runs at every interpreter start, pip's included: an editable install whose
# checkout was moved or deleted must not print a traceback there, so the hook
# runs only if its module can be found (the shape of setuptools'
# distutils-precedence.pth).
PTH_LINE = ("import importlib.util; "
            "importlib.util.find_spec('vicreg_det_startup') and "
            "__import__('vicreg_det_startup').install()\n")


class BuildPy(build_py):

    def run(self):
        super().run()
        if getattr(self, 'editable_mode', False):
            # An editable wheel is assembled from the ``install`` command's
            # target (setuptools' editable_wheel points it at the unpacked
            # wheel) plus its own finder; build_lib is thrown away.
            root = self.get_finalized_command('install').install_lib
        else:
            root = self.build_lib
        self.mkpath(root)
        with open(osp.join(root, PTH_NAME), 'w') as f:
            f.write(PTH_LINE)
