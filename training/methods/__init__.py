"""One module per inference method; each `fit(bnn, model)` returns
(InferenceData, diagnostics, ADVI loss trace or None, chains)."""
