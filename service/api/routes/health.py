from typing import Any

from fastapi import APIRouter, Request

from service.api.deps import LiveRegistryDep
from service.api.responses import OrjsonResponse

router = APIRouter(tags=["operations"])

# Both probes are async: they only read memory, so they answer on the event loop instead of
# queueing for the thread pool behind large predictions (a probe that times out under load
# gets a healthy replica restarted or taken out of the load balancer).


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: registry database reachable, models loaded, reload failures",
    description="`status` is `ready` when the registry database answered the last poll and "
    "every alias's version loaded; `degraded` (HTTP 200, so a load balancer keeps the "
    "replica) when the database is unavailable or a version failed to load but some "
    "versions still answer; `unavailable` (HTTP 503) when no default request could be "
    "answered: the database is unavailable and nothing is loaded, or no version an alias "
    "(or a model's latest) points at could load; `draining` (HTTP 503) once the process "
    "received SIGTERM: it still answers for the drain period, but balancers should send no "
    "new requests.",
)
async def readyz(request: Request, live: LiveRegistryDep) -> OrjsonResponse:
    status: dict[str, Any] = live.status()
    if request.app.state.drain.active:  # shutting down: balancers stop routing here
        return OrjsonResponse({**status, "status": "draining"}, status_code=503)
    return OrjsonResponse(status, status_code=503 if status["status"] == "unavailable"
                          else 200)
