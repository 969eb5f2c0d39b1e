"""Prediction from stored posterior draws: the loaded posterior, its compiled kernels, the
predictive distribution beyond two moments and the curve model (numpy, scipy and Numba;
never PyMC)."""
