"""The local platform: the chart's components as processes on one machine.

Embedded services (PostgreSQL, a moto S3/SQS server, an OpenBao dev server) stand in for
Aurora, S3/SQS and Vault; the Airflow components and dagsync run exactly the commands
and environment the Helm chart renders, with only ports, paths, endpoints and
credentials mapped to local equivalents (see mapping.py).
"""
