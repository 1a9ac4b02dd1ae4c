#!/bin/bash
# MIG012: a template Airflow cannot parse
echo "{{ ds "
