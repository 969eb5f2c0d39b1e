"""Prediction from stored posterior draws: the loaded posterior, its compiled kernel and
the predictive distribution beyond two moments (numpy/numba only, never PyMC)."""
