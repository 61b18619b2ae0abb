"""JSON batches: transfer objects (as the `transfer` op takes them), one-phase only.

They come as the `items` list of `submit_batch`, or as content (uploaded parts)
holding one strict JSON array of those objects.
"""

from typing import Any

from .. import ProtocolError, codes, normalize_transfer
from ..codec import decode_strict_json

from .parsed import ParsedBatch, ProblemLog, finish

__all__ = ["parse_json"]

# Two-phase steps and chains have no meaning in a batch: mode decides atomicity.
_NOT_ONE_PHASE = ("pending", "post_pending_id", "void_pending_id", "linked")


def parse_json(content: bytes | None, items: list[Any] | None, max_items: int) -> ParsedBatch:
    problems = ProblemLog()
    if items is None:
        items = _load(content, problems)
    transfers: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        if index == max_items:
            problems.add(f"item {index}", f"more than {max_items} items")
            break
        try:
            transfers.append(_one_phase(normalize_transfer(item)))
        except ProtocolError as exc:
            problems.add(f"item {index}", exc.message)
    return finish(transfers, problems)


def _one_phase(transfer: dict[str, Any]) -> dict[str, Any]:
    for key in _NOT_ONE_PHASE:
        if transfer[key]:
            raise ProtocolError(codes.BAD_REQUEST,
                                f"{key}: only one-phase transfers are allowed in batches")
    return transfer


def _load(content: bytes | None, problems: ProblemLog) -> list[Any]:
    """The array in `content`, or [] after noting why there is none."""
    if content is None:
        problems.add("content", "no items and no content")
        return []
    try:
        value = decode_strict_json(content)  # the same strictness as the wire's JSON bodies
    except ProtocolError as exc:
        problems.add("content", exc.message)
        return []
    if type(value) is not list:
        problems.add("content", "must be a JSON array of transfer objects")
        return []
    return value
