"""``BaseAgent``: the guide's self-healing agent base class (BaseAgent V2).

Subclasses implement ``initialize()`` and ``execute_core_function(**kwargs)``. The
registry builds an agent from its manifest in this order:

1. ``agent = cls()`` (the guide's classes take no arguments);
2. ``agent.bind(AgentContext(...))``: the manifest name, the validated ``config``,
   the store engine, the clock and the retry policy of the manifest;
3. ``await agent.initialize()`` must return True before the agent takes traffic.

A class may declare ``config_model`` (a pydantic model): the manifest's ``spec.config``
is validated with it and stored in ``self.config``; without one, ``self.config`` is the
plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from devskyy.adapters.clock import Clock, SystemClock
from devskyy.model.manifests import RetrySpec

if TYPE_CHECKING:
    from sqlalchemy import Engine


@dataclass
class AgentContext:
    """What the runtime hands an agent before ``initialize()``."""

    name: str
    config: dict[str, Any] = field(default_factory=dict)
    engine: Engine | None = None
    clock: Clock = field(default_factory=SystemClock)
    retry: RetrySpec = field(default_factory=RetrySpec)
    state_dir: Path = field(default_factory=lambda: Path(".devskyy"))


class AgentStatus(str, Enum):
    """The guide's status levels."""

    HEALTHY = "healthy"
    DEGRADED = "degraded"
    RECOVERING = "recovering"
    FAILED = "failed"
    INITIALIZING = "initializing"


class BaseAgent:
    """Base class of every agent. See the module docstring for the life cycle."""

    AgentStatus: ClassVar[type[AgentStatus]] = AgentStatus
    config_model: ClassVar[type[BaseModel] | None] = None

    def __init__(self, agent_name: str, version: str = "1.0.0") -> None:
        self.agent_name = agent_name
        self.version = version
        self.status: AgentStatus = AgentStatus.INITIALIZING
        self.context = AgentContext(name=agent_name)
        self.config: Any = {}

    @property
    def name(self) -> str:
        """The manifest name once bound, else the display name."""
        return self.context.name

    @property
    def clock(self) -> Clock:
        return self.context.clock

    def bind(self, context: AgentContext) -> None:
        """Receive the manifest name, config, store and clock (before ``initialize``)."""
        self.context = context
        model = type(self).config_model
        self.config = model.model_validate(context.config) if model else dict(context.config)

    async def initialize(self) -> bool:
        """Prepare resources; return True when ready. The default has nothing to prepare."""
        self.status = AgentStatus.HEALTHY
        return True

    async def execute_core_function(self, **kwargs: Any) -> dict[str, Any]:
        """The agent's work: JSON-serializable keyword arguments in, a JSON dict out."""
        raise NotImplementedError(f"{type(self).__name__} must define execute_core_function")

    async def shutdown(self) -> None:
        """Release resources; called when the agent is replaced or the runtime stops."""

    async def health_check(self) -> dict[str, Any]:
        """Status and identity (the runtime extends this with metrics)."""
        return {
            "agent_name": self.agent_name,
            "name": self.name,
            "version": self.version,
            "status": self.status.value,
        }
