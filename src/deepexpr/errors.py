"""Errors raised for bad user input."""


class InputError(ValueError):
    """Bad input data or configuration.

    The message always names the offending file (or config key), the key or
    column involved, and what was expected, so users can fix it without
    reading a traceback.
    """

    def __init__(self, source, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")
