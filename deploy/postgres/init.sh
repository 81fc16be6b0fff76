#!/usr/bin/env bash
# One PostgreSQL server, one database and one role per service, so that a leaked MLflow password
# cannot touch Prefect's state, plus a role Grafana reads MLflow's tables with and cannot write.
# The postgres image runs this once, on an empty data directory, as the superuser over the socket.
set -euo pipefail

# The passwords travel as psql variables and :'name' quotes them: no password can break the SQL.
psql --set=ON_ERROR_STOP=1 --no-psqlrc --username="$POSTGRES_USER" --dbname=postgres \
    --set=mlflow_password="$MLFLOW_DB_PASSWORD" \
    --set=prefect_password="$PREFECT_DB_PASSWORD" \
    --set=grafana_password="$GRAFANA_DB_PASSWORD" <<'SQL'
CREATE ROLE mlflow LOGIN PASSWORD :'mlflow_password';
CREATE ROLE prefect LOGIN PASSWORD :'prefect_password';
CREATE ROLE grafana LOGIN PASSWORD :'grafana_password';
-- Owners create their schema on first start (MLflow's and Prefect's migrations).
CREATE DATABASE mlflow OWNER mlflow;
CREATE DATABASE prefect OWNER prefect;
REVOKE ALL ON DATABASE mlflow, prefect FROM PUBLIC;
GRANT CONNECT ON DATABASE mlflow TO grafana;

\connect mlflow
-- MLflow creates its tables after this runs: grant SELECT on whatever the mlflow role creates later.
GRANT USAGE ON SCHEMA public TO grafana;
ALTER DEFAULT PRIVILEGES FOR ROLE mlflow IN SCHEMA public GRANT SELECT ON TABLES TO grafana;
SQL
