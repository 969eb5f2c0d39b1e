"""The admin API on a listener of its own (SURROGATE_ADMIN_PORT), so that a network policy
can keep it from the clients that may predict.

Kubernetes NetworkPolicy (deploy/k8s/networkpolicy.yaml) admits traffic by port, not by
path: while /admin shares the predict port, whoever may predict can also reach the admin
API (its bearer token is then the only guard). With an admin port set, `surrogate-serve`
listens on both ports in one process, /admin is answered only on the admin port, and the
admin port answers nothing else (404 either way, as for any unknown path).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import error_response
from service.errors import NotFoundError


def is_admin_path(path: str) -> bool:
    return path == "/admin" or path.startswith("/admin/")


class AdminListenerGuard:
    """Pure-ASGI middleware: /admin on the admin port only, nothing else there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = getattr(scope["app"].state, "settings", None) \
            if scope["type"] == "http" else None
        port = settings.admin_port if settings is not None else None
        if port is not None:
            server = scope.get("server") or (None, None)
            if is_admin_path(scope["path"]) != (server[1] == port):
                await error_response(NotFoundError("not found on this port"))(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)
