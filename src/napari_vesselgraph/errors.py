"""User-facing errors. The CLI prints them as one line; widgets show them as notifications."""


class VesselGraphError(ValueError):
    """A problem the user can act on (bad input, bad file, mismatched checkpoint, ...)."""


class GraphFileError(VesselGraphError):
    """A graph file that cannot be read or written; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class GraphFileWarning(UserWarning):
    """A graph file was read, but had to be changed to be a valid graph (e.g. self loops dropped); the
    message names the file and what changed. The CLI prints it as one ``vesselgraph: warning:`` line."""


class Cancelled(Exception):
    """Raised inside long work when its cancel token is set."""
