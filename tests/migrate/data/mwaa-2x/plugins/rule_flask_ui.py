"""MIG040: an Airflow 2 UI plugin (a Flask blueprint and an AppBuilder menu link)."""

from airflow.plugins_manager import AirflowPlugin
from flask import Blueprint

status_page = Blueprint("status_page", __name__, url_prefix="/status")


class StatusPlugin(AirflowPlugin):
    name = "status_ui"
    flask_blueprints = [status_page]
    appbuilder_menu_items = [{"name": "Status", "href": "/status"}]
