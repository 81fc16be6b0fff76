"""Stage 6, reproduction: the model's fingerprint, its lineage, and `verify`, which rebuilds a commit to compare.

fingerprint and lineage (what a run must give back, and where it came from),
verify and its steps (checkout, environment, inputs, pinned_data, pipeline,
compare, in a scratch workspace), code (which files a piece of code imports:
what a model and the image ship, what each DVC stage depends on).
"""
