"""Stage 5, monitoring: what served predictions and new batches look like next to the training data.

prediction_log (the format serving writes), log_cursor (which lines are
gated), frame (one row per job and candidate, from any source), rules (the
drift statistics and the verdict), gate (the drift gate end to end), scenarios
(simulated batches with a named shift, for drills and calibration).
"""
