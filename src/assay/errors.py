"""The few exceptions assay raises. The CLI turns each into one line and exit code 1; tests let them raise.

Every message should name the fix ("... : use --port 8001"), not just the symptom.
"""


class AssayError(Exception):
    """Base class: a problem the user can act on. str(exc) is the one-line message shown."""


class PrerequisiteError(AssayError):
    """An optional dependency or system tool is missing; the message names the exact install command."""


class ModelNotFound(AssayError):
    """Unknown preset, missing GGUF, bad model path."""


class EngineStartError(AssayError):
    """The engine process could not start or exited during start-up (message quotes its log tail)."""


class EngineDied(AssayError):
    """An engine assay started died while serving (its exit signal and log tail are in the message). Not retried."""


class ModelChanged(AssayError):
    """The model behind a remote endpoint changed during a run (its server facts or probe answer moved)."""

    def __init__(self, message: str, suspect: list | None = None):
        super().__init__(message)
        self.suspect = list(suspect or [])  # (suite, sample_id) of answers written since the last good check


class EndpointUnreachable(AssayError):
    """An OpenAI-compatible endpoint did not answer (after bounded retries)."""


class RequestError(AssayError):
    """The server rejected a request (4xx) or kept failing (5xx/429 after retries). Never turned into answer text."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class DataError(AssayError):
    """A dataset file is missing, malformed, or needs the network that is not there."""


class RunMismatch(AssayError):
    """A stored run cannot be used as asked (different fingerprint, corrupt records)."""
