"""Orchestration around the domain stages: Prefect flows, MLflow I/O, the Evidently page, runtime settings.

training (the training flow), monitoring (the monitoring flow), tracking and
export (MLflow runs, models, registry, bundles), evidently_report (the drift
gate's HTML page), settings (where things run and are stored). DVC runs the
stage graph (`dvc.yaml`) through the `gigmatch` commands; the flows do the work
inside and around its stages.
"""
