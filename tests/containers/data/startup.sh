#!/bin/sh
# Exported for the component that runs this script (MWAA semantics).
export CONTAINER_TIER_STARTUP="ran-in-$MWAA_AIRFLOW_COMPONENT"
