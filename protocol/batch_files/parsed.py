"""What every format parser returns: the items, the problems, the control totals."""

from dataclasses import dataclass, field
from typing import Any, NamedTuple

__all__ = ["BatchProblem", "ParsedBatch", "ProblemLog", "MAX_PROBLEMS", "finish"]

# A rejected file needs enough problems to fix it, not a copy of a million bad rows.
MAX_PROBLEMS = 100


class BatchProblem(NamedTuple):
    where: str  # "line 17", "item 3", "GrpHdr", "PmtInf P1", "PmtInf P1 CdtTrfTxInf 2", ...
    reason: str


@dataclass
class ParsedBatch:
    items: list[dict[str, Any]]  # normalized one-phase transfer dicts, in file order
    errors: list[BatchProblem]  # any error rejects the whole batch
    control: dict[str, int]  # {"count": int, "sum": int} computed from the items, minor units
    # format-specific (pain.001: ids for pain.002)
    meta: dict[str, Any] = field(default_factory=dict)


class ProblemLog:
    """Keeps the first MAX_PROBLEMS problems and counts the rest."""

    def __init__(self, limit: int = MAX_PROBLEMS):
        self._limit = limit
        self._kept: list[BatchProblem] = []
        self._dropped = 0

    def add(self, where: str, reason: str) -> None:
        if len(self._kept) < self._limit:
            self._kept.append(BatchProblem(where, reason))
        else:
            self._dropped += 1

    def __bool__(self) -> bool:
        return bool(self._kept)

    def problems(self) -> list[BatchProblem]:
        if not self._dropped:
            return list(self._kept)
        return [*self._kept, BatchProblem("batch", f"... and {self._dropped} more problems")]


def finish(items: list[dict[str, Any]], problems: ProblemLog,
           meta: dict[str, Any] | None = None) -> ParsedBatch:
    # Invalid amounts are normalized to 0 (an item status), so they add nothing to the sum.
    total = sum(item["amount"] or 0 for item in items)
    return ParsedBatch(items, problems.problems(), {"count": len(items), "sum": total}, meta or {})
