"""Stage 2, features: the match frame (one row per job and candidate) and the transformer inside every model.

match_frame (the model's input columns), names (the features and what they
mean), transformer (`MatchFeatures`, fitted on training rows), skills and text
(the feature arithmetic), lookups (what a fitted transformer reuses between
requests).
"""
