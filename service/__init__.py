"""HTTP service for uncertainty-aware material surrogates (numpy only, never PyMC)."""
