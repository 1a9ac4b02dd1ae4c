"""MIG002: an airflow DAG file whose import never finishes."""

import time

while True:
    time.sleep(1)
