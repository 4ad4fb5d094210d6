"""A plugin for tests that fails while loading."""


def create(context):
    raise ValueError("broken on purpose")
