"""The container entrypoint: startup.sh, requirements.txt and plugins, the MWAA way."""
