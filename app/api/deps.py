"""``Annotated`` dependency aliases: what a route needs, declared in its signature.

Every dependency is ``async def``: FastAPI runs plain ``def`` dependencies in a thread pool, a
thread hop per dependency per request that the hook latency budget cannot afford. The ``*Caller``
aliases verify the CDS client's JWT for the endpoint being called; they run before
the body is parsed, so an unauthenticated caller never gets a validation message.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from app.api.errors import ApiError
from app.api.hook_flow import HookFlow
from app.api.runtime import Runtime
from app.api.security import audiences, authenticate
from app.settings import Settings
from cds_hooks import VerifiedToken

AuthorizationHeader = Annotated[str | None, Header(alias="Authorization",
                                                   description="Bearer <JWT signed by the CDS client>")]


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime  # type: ignore[no-any-return]


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_settings_of_app(runtime: RuntimeDep) -> Settings:
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings_of_app)]


async def get_flow(runtime: RuntimeDep) -> HookFlow:
    if runtime.flow is None:
        raise ApiError(503, "transient", "the service is starting; try again shortly")
    return runtime.flow


FlowDep = Annotated[HookFlow, Depends(get_flow)]


async def discovery_caller(runtime: RuntimeDep, authorization: AuthorizationHeader = None) -> VerifiedToken | None:
    return await authenticate(runtime.verifier, authorization, audiences(runtime.settings))


async def service_caller(service_id: str, runtime: RuntimeDep,
                         authorization: AuthorizationHeader = None) -> VerifiedToken | None:
    return await authenticate(runtime.verifier, authorization, audiences(runtime.settings, service_id))


async def feedback_caller(service_id: str, runtime: RuntimeDep,
                          authorization: AuthorizationHeader = None) -> VerifiedToken | None:
    return await authenticate(runtime.verifier, authorization,
                              audiences(runtime.settings, service_id, feedback=True))


DiscoveryCaller = Annotated[VerifiedToken | None, Depends(discovery_caller)]
ServiceCaller = Annotated[VerifiedToken | None, Depends(service_caller)]
FeedbackCaller = Annotated[VerifiedToken | None, Depends(feedback_caller)]
