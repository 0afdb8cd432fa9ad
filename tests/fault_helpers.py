"""Fault-injection helpers shared by the compat and reliability tests."""
import errno
import os


class RunsCode:
    """A pickle payload that would touch a marker file when loaded."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


class DiskFullFile:
    """Wraps an open file: ``write`` stores part of the data, then fails
    with ENOSPC, as a disk filling up mid-save does."""

    def __init__(self, f, keep_fraction: float = 0.5):
        self.f = f
        self.keep_fraction = keep_fraction

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def write(self, data):
        self.f.write(data[:int(len(data) * self.keep_fraction)])
        raise OSError(errno.ENOSPC, 'No space left on device')
