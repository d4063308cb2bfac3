#!/bin/bash
# Runs once, on an empty data volume: Airflow's metadata database and the warehouse, each with
# its own login. The warehouse's group roles are made here (CREATE ROLE needs a superuser);
# `tthc warehouse-roles` (airflow-init) then grants them on the warehouse's schemas.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v airflow_pw="$AIRFLOW_DB_PASSWORD" -v etl_pw="$TTHC_ETL_PASSWORD" -v reader_pw="$TTHC_READER_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_pw';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE tthc_loader NOLOGIN;
CREATE ROLE tthc_analyst NOLOGIN;
CREATE ROLE tthc_etl LOGIN PASSWORD :'etl_pw' IN ROLE tthc_loader;
CREATE ROLE tthc_reader LOGIN PASSWORD :'reader_pw' IN ROLE tthc_analyst;
CREATE DATABASE tthc_warehouse OWNER tthc_etl;
SQL
