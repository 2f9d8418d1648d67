"""The one error a tenant template raises, with its stable codes."""

from __future__ import annotations

TEMPLATE_SYNTAX_ERROR = "TEMPLATE_SYNTAX_ERROR"
TEMPLATE_UNSAFE = "TEMPLATE_UNSAFE"
TEMPLATE_TOO_LARGE = "TEMPLATE_TOO_LARGE"
TEMPLATE_OUTPUT_TOO_LARGE = "TEMPLATE_OUTPUT_TOO_LARGE"
TEMPLATE_NUMBER_TOO_LARGE = "TEMPLATE_NUMBER_TOO_LARGE"
TEMPLATE_TIMEOUT = "TEMPLATE_TIMEOUT"
TEMPLATE_UNDEFINED = "TEMPLATE_UNDEFINED_PLACEHOLDER"
TEMPLATE_RENDER_ERROR = "TEMPLATE_RENDER_ERROR"


class TemplateProblem(Exception):
    """A template that cannot be compiled or rendered; code is stable, message is for humans.

    Messages name the problem and the line, never a placeholder's value.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
