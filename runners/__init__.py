"""The `track` command line and the process runner: thin over the `tracker` library."""
