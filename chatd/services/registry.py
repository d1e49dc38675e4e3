"""The services that declare ops, and the merged op table the protocol layer receives."""

from __future__ import annotations

from typing import Final

from chatd.protocol.envelope import OpSpec
from chatd.services.accounts import AccountService
from chatd.services.chat import ChatService
from chatd.services.feedback import FeedbackService
from chatd.services.matching import MatchService
from chatd.services.media import MediaService
from chatd.services.moderation import ModerationService
from chatd.services.ops import op_specs
from chatd.services.privacy import PrivacyService
from chatd.services.push import PushService
from chatd.services.social import SocialService

__all__ = ["MOD_OPS", "OPS", "SERVICES"]

SERVICES: Final = (AccountService, ChatService, MatchService, SocialService, PrivacyService,
                   ModerationService, PushService, MediaService, FeedbackService)
#: Every op of the wire protocol: name → fields and who may call it.
OPS: Final[dict[str, OpSpec]] = op_specs(*SERVICES)
#: The ops that answer ``forbidden`` to anyone whose role is not ``moderator``.
MOD_OPS: Final = tuple(name for name, spec in OPS.items() if spec.auth == "moderator")
