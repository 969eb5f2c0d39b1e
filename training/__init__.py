"""Fitting heteroskedastic Bayesian neural networks in PyMC and registering the fits."""
