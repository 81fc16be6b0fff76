"""Prefect flows: thin orchestration over the plain functions in `gigmatch`.

The training and monitoring flows arrive with their issues; the data stage is
run by DVC (`dvc.yaml`) through the `gigmatch data` commands.
"""
