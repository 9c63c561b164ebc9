"""The engine's one error type: a gRPC status code plus a message that says what was wrong and what
is accepted. The server maps it 1:1 to the call's status; anything else becomes INTERNAL."""

import grpc


class EngineError(Exception):
    """A failure the caller can act on; `code` is a grpc.StatusCode, callers branch on it."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)


def invalid(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.FAILED_PRECONDITION, message)


def not_found(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.ALREADY_EXISTS, message)


def aborted(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.ABORTED, message)


def permission_denied(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.PERMISSION_DENIED, message)


def data_loss(message: str) -> EngineError:
    return EngineError(grpc.StatusCode.DATA_LOSS, message)
