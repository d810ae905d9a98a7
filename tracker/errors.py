"""Errors the library raises; the CLI turns each into a one-line message and an exit code.

Messages say what happened in the library's words; what to type at the terminal about it is the
CLI's to add (`runners.cli.HINTS`), so a notebook user is never told to run a flag.
"""


class TrackerError(Exception):
    """Base of every error a user can act on (message says what was wrong and what to do)."""


class StoreConfigError(TrackerError):
    """The store URL is malformed or names something that is not a database."""


class StoreUnavailable(TrackerError):
    """The database could not be reached."""


class StoreNotFound(StoreConfigError):
    """A reader was pointed at a store that does not exist (no file, or a database without track's schema).

    Readers never create one: a typo in the URL must not look like an empty, intact store.
    """


class SchemaOutdated(TrackerError):
    """The database schema is older (or newer) than this version of track expects."""


class UnknownCampaign(TrackerError):
    """A campaign name the store does not know."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no campaign named {name!r} in this store")
        self.name = name


class UnknownValue(TrackerError):
    """A filter value the store or the vocabulary does not know: an error, never an empty result."""

    def __init__(self, what: str, value: str, known: list[str], where: str = "") -> None:
        listed = ", ".join(known) if known else "none"
        super().__init__(f"unknown {what} {value!r}{where} (known: {listed})")
        self.what, self.value, self.known = what, value, known


class UnsafeName(TrackerError):
    """A name from a file or the user that cannot become a file or folder name where the tool writes."""


class BenchNotFound(TrackerError):
    """The bench root holds no bench: the rerun cannot start anywhere."""


class ConcurrencyError(TrackerError):
    """An append expected a stream version that is no longer current."""

    def __init__(self, stream_id: str, expected: int | None, actual: int) -> None:
        super().__init__(
            f"stream {stream_id!r} is at version {actual}, but the append expected {expected}; "
            "reload the stream and retry"
        )
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class ProjectionOutOfStep(TrackerError):
    """A projection's checkpoint is ahead of the log, or points at an event the log no longer holds."""


class LogWouldBeLost(TrackerError):
    """A schema change would drop the event table of a store that holds events."""
