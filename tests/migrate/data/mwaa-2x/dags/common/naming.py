"""A helper module the DAG files import (no DAG of its own)."""


def table_name(base: str) -> str:
    return f"analytics_{base}"
