"""What a failed export raises."""


class ExportError(ValueError):
    """The model cannot be exported as asked; nothing was written at the destination."""


class UnsupportedOpError(ExportError):
    """The model needs ops that LiteRT runs only with the Flex delegate or as custom ops.

    `ops` maps each such op to the Keras layers (by name) whose computation contains it,
    as far as the converter's name scopes tell.
    """

    def __init__(self, message, ops):
        super().__init__(message)
        self.ops = ops


class ParityError(ExportError):
    """The exported file does not compute what the Keras model computes."""

    def __init__(self, message, report):
        super().__init__(message)
        self.report = report
