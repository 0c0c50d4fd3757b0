"""A finding of the lint, and the one line it is written as.

Every rule yields :class:`Finding` records and the command line prints each as one
line; the witness goes on that line as compact JSON, so it can be pasted as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One defect of the document: where it is, what is wrong, and an instance that shows it."""

    level: Level
    rule: str
    location: str  # JSON pointer into the document as written
    message: str
    witness: Any = None

    def __str__(self) -> str:
        line = f"{self.level}: {self.rule} at {self.location}: {self.message}"
        if self.witness is not None:
            line += f"; witness: {compact_json(self.witness)}"
        return line


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def one_line(text: str, limit: int) -> str:
    """``text`` with its whitespace runs made single spaces, cut to ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
