"""The team stack on this machine: PostgreSQL, an S3 server, the MLflow and Prefect servers, a Prefect
worker and Prometheus, started as plain processes on loopback (`gigmatch stack up`), stopped by PID.

No containers: each server is the real one, installed from Debian or PyPI, so the lifecycle runs
against a team's topology on a laptop and in CI. `deploy/compose.yaml` describes the same topology
with upstream images for a host that runs containers.
"""
