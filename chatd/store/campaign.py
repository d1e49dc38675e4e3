"""Records of marketing SMS campaigns (the ``campaigns`` table), shared by every store."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["CAMPAIGN_STATES", "Campaign", "CampaignBusy", "CampaignState"]

#: ``running`` until the sender ends it: ``done`` (every recipient tried), ``cancelled`` (an
#: operator), ``interrupted`` (the sending process stopped), ``failed`` (the SMS provider kept
#: failing).
CampaignState = Literal["running", "done", "cancelled", "interrupted", "failed"]
CAMPAIGN_STATES: Final = ("running", "done", "cancelled", "interrupted", "failed")


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    actor: str  # who started it: ``cli`` or ``api:<key name>``
    body: str  # the text as sent (filtered, with the unsubscribe hint)
    created_at: int
    finished_at: int | None = None
    recipients: int = 0  # consenting users when it started
    sent: int = 0
    failed: int = 0
    state: str = "running"

    def wire(self) -> dict[str, object]:
        return {"id": self.id, "actor": self.actor, "text": self.body,
                "created_at": self.created_at, "finished_at": self.finished_at,
                "recipients": self.recipients, "sent": self.sent, "failed": self.failed,
                "state": self.state}


@dataclass(frozen=True, slots=True)
class CampaignBusy:
    """Why :meth:`Store.start_campaign` started nothing: another campaign is running."""

    running: str  # its id
