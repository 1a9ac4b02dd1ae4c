"""MIG003: an airflow DAG file that calls sys.exit() at import time."""

import sys

if True:
    sys.exit(2)
