"""rerun tracker: an event-sourced audit and experiment tracker for coding-agent benchmark reruns.

The library. Every command of the `track` CLI is a thin call into this package, and the same API
is usable from a notebook.
"""

__version__ = "0.1.0"
