"""Fitting heteroskedastic Bayesian neural networks in PyMC and registering the fits."""

import glob
import os

# PyTensor compiles C code and, installed from pip, cannot find a BLAS: it warns and runs
# about twice as slowly. Point it at Debian's OpenBLAS (scripts/system-deps.sh installs
# it) before anything imports PyTensor, unless the user chose flags themselves.
if "PYTENSOR_FLAGS" not in os.environ and glob.glob("/usr/lib/*/libopenblas.so"):
    os.environ["PYTENSOR_FLAGS"] = "blas__ldflags=-lopenblas"
