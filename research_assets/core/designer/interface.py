"""What a designer is asked, what it answers, and the protocol every designer follows."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from research_assets.core.memory import ResearchMemory
from research_assets.core.spec import StrategySpec

if TYPE_CHECKING:
    from research_assets.core.data import DatasetInfo


@dataclass(frozen=True)
class DesignRequest:
    """What to design for: the research it becomes, the seed of all choices, an optional brief."""

    research_id: str
    seed: int
    brief: str | None = None


def _no_usage() -> dict[str, int | float]:
    return {"input_tokens": 0, "output_tokens": 0}


@dataclass(frozen=True)
class Design:
    """A designed spec, why it was chosen, who designed it and the tokens it cost."""

    spec: StrategySpec
    rationale: str
    designer: str = "offline"
    usage: dict[str, Any] = field(default_factory=_no_usage)


class Designer(Protocol):
    """Anything that designs the next spec from memory and the available datasets."""

    name: str

    def design(
        self, request: DesignRequest, memory: ResearchMemory, datasets: Sequence["DatasetInfo"]
    ) -> Design: ...


def available_datasets() -> list["DatasetInfo"]:
    """The datasets a designer may choose from (imported lazily: data loading is heavier)."""
    from research_assets.core.data import list_datasets

    return list_datasets()
