"""The key service's errors, as one exception type for Client and
InMemoryKeyService alike."""

import grpc


class ServiceError(Exception):
    """A key service call ended with a gRPC status other than OK. `message`
    is the service's text: for the app's logs (the observer), never for the
    app's clients."""

    def __init__(self, code: grpc.StatusCode, message: str = "") -> None:
        super().__init__("%s: %s" % (code.name, message))
        self.code = code
        self.message = message
