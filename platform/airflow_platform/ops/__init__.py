"""Day-2 operations of an environment: status, Airflow CLI access, API tokens, hibernation,
metadata snapshots. The MWAA counterparts are get-environment, create-cli-token and the
snapshot MWAA takes before an update."""
