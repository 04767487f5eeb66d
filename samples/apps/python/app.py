"""The Python sample app: uses its vendored dependency and prints one known line."""

import sys

import greeting

print(greeting.hello("python sample on Python %d.%d" % sys.version_info[:2]), flush=True)
