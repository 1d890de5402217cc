"""From inputs to verdicts: load(), the Predictor, preparation of inputs, results and what is written."""
