"""MIG041: a plugin module Airflow 3 cannot import (airflow.contrib is gone)."""

from airflow.contrib.hooks.ssh_hook import SSHHook
from airflow.plugins_manager import AirflowPlugin


class SshTools(AirflowPlugin):
    name = "ssh_tools"
    hooks = [SSHHook]
