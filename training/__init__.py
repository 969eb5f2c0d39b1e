"""Fitting heteroskedastic Bayesian neural networks in PyMC and registering the fits."""

import glob
import os

# PyTensor compiles C code and, installed from pip, cannot find a BLAS: it warns and runs
# about twice as slowly. Point it at Debian's OpenBLAS (scripts/system-deps.sh installs
# it) before anything imports PyTensor, unless the user chose flags themselves.
if "PYTENSOR_FLAGS" not in os.environ and glob.glob("/usr/lib/*/libopenblas.so"):
    os.environ["PYTENSOR_FLAGS"] = "blas__ldflags=-lopenblas"

# The network's matrices are tiny (thousands of rows by tens of units): BLAS threads only
# add synchronisation, which made every log-density gradient several times slower
# (docs/calibration.md). Unless the user chose otherwise, use one BLAS thread per process.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
