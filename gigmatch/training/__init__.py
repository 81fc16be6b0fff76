"""Stage 4, training: split by time, fit the models in params.yaml, evaluate them, and decide on the champion.

splits and fitting (evaluation sets, feature matrices, fitted models),
estimators (the kinds a model can be), ranking_metrics and evaluation (per-job
metrics, baselines, the oracle, slices, exposure fairness), reports (the DVC
metrics and plots), promotion (the champion gate, a pure rule).
"""
