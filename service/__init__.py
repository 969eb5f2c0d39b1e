"""HTTP service for uncertainty-aware material surrogates. It reads fits as artifacts and
never imports PyMC, PyTensor, ArviZ or `training` (an import contract checks it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml is the one place the version is written.
    __version__ = version("material-surrogate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
