"""Request dependencies as Annotated aliases (FastAPI full-stack template style)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.model_cache import LiveRegistry, ModelCache
from service.settings import Settings


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.session_factory() as session:
        yield session


def get_cache(request: Request) -> ModelCache:
    return request.app.state.model_cache


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_live_registry(request: Request) -> LiveRegistry:
    return request.app.state.live_registry


SessionDep = Annotated[Session, Depends(get_session)]
CacheDep = Annotated[ModelCache, Depends(get_cache)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
LiveRegistryDep = Annotated[LiveRegistry, Depends(get_live_registry)]
