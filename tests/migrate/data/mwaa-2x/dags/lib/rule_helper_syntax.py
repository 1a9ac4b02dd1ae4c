"""MIG090: a helper module (no DAG in it) that does not parse."""


def broken(:
    return 1
