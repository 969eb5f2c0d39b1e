"""Request dependencies as Annotated aliases (FastAPI full-stack template style).

They are `async def` on purpose: FastAPI runs a plain `def` dependency in the thread pool,
and a one-strain predict with five of them paid more for those thread hops than for the
prediction itself (benchmarks/http.py). None of them blocks.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from service.inference.interrupt import Interrupt
from service.prediction.admission import Work
from service.registry.cache import ModelCache
from service.registry.routing import LiveRegistry
from service.registry.unit_of_work import SessionFactory
from service.settings import Settings


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Creating a Session does not connect; most predicts are answered from memory and
    # never use it. Closing an unused session is free; a used one may talk to the
    # database (rollback, pool check-in), so it is closed off the event loop.
    session = request.app.state.session_factory()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


async def get_session_factory(request: Request) -> SessionFactory:
    """Where writes open their unit of work (service.registry.unit_of_work)."""
    return request.app.state.session_factory


async def get_cache(request: Request) -> ModelCache:
    return request.app.state.model_cache


async def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_live_registry(request: Request) -> LiveRegistry:
    return request.app.state.live_registry


INTERRUPT_KEY = "interrupt"  # key in the scope's state (service.api.interrupts)


def work_of(request: Request) -> Work:
    """The budgets, the heavy-work gate and this request's interrupt."""
    state = request.app.state
    interrupt: Interrupt | None = request.scope.get("state", {}).get(INTERRUPT_KEY)
    return Work(state.settings, state.work_gate, interrupt)


SessionDep = Annotated[Session, Depends(get_session)]
SessionFactoryDep = Annotated[SessionFactory, Depends(get_session_factory)]
CacheDep = Annotated[ModelCache, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LiveRegistryDep = Annotated[LiveRegistry, Depends(get_live_registry)]
