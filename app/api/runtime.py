"""What the routes share for the life of the app: settings, the JWT verifier and the hook flow.

Built by ``create_app`` and completed by its lifespan (models loaded, analysis service started);
routes reach it through the dependency aliases in ``app.api.deps``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from app.settings import Settings
from cds_hooks import JwtVerifier

if TYPE_CHECKING:
    from app.analysis import AnalysisService
    from app.api.hook_flow import HookFlow


@dataclass
class Runtime:
    """The app's long-lived collaborators (``verifier`` is None only when the demo turned auth off)."""

    settings: Settings
    verifier: JwtVerifier | None
    flow: HookFlow | None = None
    model_versions: dict[str, str] = field(default_factory=dict)

    @property
    def analysis(self) -> AnalysisService | None:
        return self.flow.analysis if self.flow is not None else None
