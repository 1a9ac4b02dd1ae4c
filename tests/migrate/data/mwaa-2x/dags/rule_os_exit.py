"""MIG003: an airflow DAG file that ends the interpreter while it is imported."""

import os

os._exit(3)
