"""Stage 6, reproduction: the model's fingerprint, its lineage, and `verify`, which rebuilds a commit to compare.

fingerprint and lineage (what a run must give back, committed and local, and where it
came from), tiers (exact or numerical: which one holds, or the figure that differs),
recording (the committed fingerprint changes only when the model does), differences
(a figure that differs), verify and its steps (checkout, environment, inputs,
pinned_data, pipeline, compare, in a scratch workspace), code (which files a piece of
code imports: what a model and the image ship, what each DVC stage depends on).
"""
