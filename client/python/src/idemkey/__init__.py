"""idemkey: the Python client and middleware of the idemkey Idempotency-Key
service (docs/semantics.md).

    from idemkey import Client, IdempotencyCore, MiddlewareOptions
    from idemkey.wsgi import IdempotencyMiddleware      # or idemkey.asgi
    app.wsgi_app = IdempotencyMiddleware(app.wsgi_app, IdempotencyCore(
        Client("127.0.0.1:50051"), MiddlewareOptions(require_key=True)))
"""

from idemkey.client import Client, new_attempt_id
from idemkey.core import (Action, Decision, Execution, IdempotencyCore,
                          IncomingRequest, RejectReason, Rejection)
from idemkey.errors import ServiceError
from idemkey.fingerprint import fingerprint
from idemkey.options import (Event, EventKind, MiddlewareOptions, RequestInfo,
                             org_id_header_tenant)
from idemkey.tenant import tenant_name_for

__all__ = [
    "Action", "Client", "Decision", "Event", "EventKind", "Execution",
    "IdempotencyCore", "IncomingRequest", "MiddlewareOptions", "RejectReason",
    "Rejection", "RequestInfo", "ServiceError", "fingerprint",
    "new_attempt_id", "org_id_header_tenant", "tenant_name_for",
]
