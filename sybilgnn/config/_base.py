"""The base every configuration section shares: unknown keys are errors, assignments are
validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["_Section"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
