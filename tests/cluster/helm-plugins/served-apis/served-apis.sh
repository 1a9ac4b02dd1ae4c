#!/bin/sh
# The interpreter with PyYAML is the test suite's; it exports CLUSTER_TEST_PYTHON.
exec "${CLUSTER_TEST_PYTHON:?set by the cluster test tier}" "${HELM_PLUGIN_DIR}/served_apis.py" "$@"
