"""A tiny vendored dependency of the Python sample app."""

__version__ = "1.2.0"


def hello(name):
    return "Hello from greeting %s: %s" % (__version__, name)
