"""dagsync: mirror an S3 DAGs prefix (and MWAA's plugins.zip, requirements.txt and
startup.sh) into the shared sync root, atomically and incrementally.

Runs as the init container (`--once`) and as the sidecar (loop) of every Airflow pod.
Publishing follows the symlink-swap pattern: every change builds a complete new version
directory and `current` is re-pointed in one rename, so a reader that resolves `current`
once sees exactly one version, and every file read through `current` is complete.
"""
