"""A module shipped in plugins.zip; the container tier's DAG imports it."""

MARK = "plugin-from-plugins-zip"
