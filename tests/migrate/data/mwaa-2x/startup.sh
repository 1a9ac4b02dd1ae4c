#!/bin/bash
# MIG070, MIG071; TEAM is fine
export TEAM=analytics
export AIRFLOW_HOME=/usr/local/airflow
export AIRFLOW__WEBSERVER__WEB_SERVER_PORT=8081
