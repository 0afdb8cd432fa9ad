"""The live Slurm cluster of the ``slurm``-marked tests."""
import os
import shutil
import subprocess

import pytest


def _cluster_partition():
    """The partition to use, or pytest.skip with the reason."""
    for tool in ('sinfo', 'srun', 'scontrol'):
        if shutil.which(tool) is None:
            pytest.skip(f'{tool} not found: no Slurm here '
                        f'(tools/setup_local_slurm.sh sets one up)')
    try:
        res = subprocess.run(['sinfo', '-h', '-o', '%P %a %T'],
                             capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip('sinfo timed out: the Slurm controller is not responding')
    if res.returncode != 0:
        pytest.skip(f'Slurm cluster not responding: {res.stderr.strip()} '
                    f'(run tools/setup_local_slurm.sh)')
    usable = [line.split() for line in res.stdout.splitlines()
              if len(line.split()) == 3 and line.split()[1] == 'up'
              and line.split()[2] in ('idle', 'mixed', 'allocated')]
    if not usable:
        pytest.skip(f'no partition with a usable node: {res.stdout!r}')
    wanted = os.environ.get('SLURM_TEST_PARTITION')
    names = [p for p, _, _ in usable]
    if wanted:
        if wanted not in [n.rstrip('*') for n in names]:
            pytest.skip(f'partition {wanted} (SLURM_TEST_PARTITION) is not '
                        f'usable; usable: {names}')
        return wanted
    default = [n for n in names if n.endswith('*')]
    return (default or names)[0].rstrip('*')


@pytest.fixture(scope='module')
def partition():
    return _cluster_partition()
