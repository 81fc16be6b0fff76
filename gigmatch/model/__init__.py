"""Stage 3, the model: features and an estimator as one pipeline, how it ranks and explains, and its bundle.

What training fits, registers and exports, and what serving loads: pipeline
(assemble, score, the types skops may trust), ranking and explain (ranked
candidates with reasons), bundle (the exported model, loaded without MLflow).
"""
