"""``chatd admin``: roles, word lists and marketing campaigns, directly on the store a node is
configured with.

Running nodes need no signal: they poll the store's word-list version every
``wordlist_poll_interval`` (1 s) and rebuild, so a change made here is live within about a
second on every node. Every change is validated and tried on the effective filter first, and
recorded with the actor ``cli`` in the audit log. A campaign is sent by this process, through
the configured SMS provider, checked by the effective word filter (see
:mod:`chatd.services.campaigns`).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TextIO

from chatd.config import Config
from chatd.errors import ChatError
from chatd.services.campaigns import CampaignService
from chatd.services.phones import normalize_phone
from chatd.services.text import TextGate
from chatd.services.wordlists import effective_filter, export_text, fold, validate_change
from chatd.store import AuditEntry, Campaign, Store, WordChange
from filters import LiveFilter, WordFilter, WordListError
from filters.wordlist import load_paths

__all__ = ["Admin", "AdminError"]

ACTOR = "cli"


class AdminError(Exception):
    """A refused admin command; the message is for the operator."""


class Admin:
    def __init__(self, config: Config, out: TextIO = sys.stdout) -> None:
        from chatd.backends import load_filter, make_store

        self.config = config
        self.store: Store = make_store(config)
        self._base = load_filter
        self.out = out

    async def __aenter__(self) -> Admin:
        await self.store.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()

    def _now(self) -> int:
        return int(time.time() * 1000)

    async def set_role(self, raw_phone: str, role: str) -> None:
        try:
            phone = normalize_phone(raw_phone)
        except ChatError as exc:
            raise AdminError(exc.msg) from None
        user = await self.store.get_user_by_phone(phone)
        if user is None:
            raise AdminError("no account has this phone")
        await self.store.set_role(user.id, role)
        await self.store.add_audit(AuditEntry(self._now(), ACTOR, f"role.{role}", user.id))
        print(f"user {user.id} is now {role}", file=self.out)

    async def effective(self) -> tuple[WordFilter, int]:
        changes = await self.store.word_changes()
        base = await asyncio.to_thread(self._base, self.config)
        f = await asyncio.to_thread(effective_filter, base, changes)
        return f, max((c.version for c in changes), default=0)

    async def change(self, op: str, word: str, category: str = "", action: str = "") -> int:
        return await self.changes([(op, word, category, action)])

    async def changes(self, items: list[tuple[str, str, str, str]]) -> int:
        """Validate all, try them together on the effective filter, then store them."""
        try:
            checked = [validate_change(*item) for item in items]
        except ChatError as exc:
            raise AdminError(exc.msg) from None
        current, version = await self.effective()
        trial = fold(checked)
        try:
            await asyncio.to_thread(current.with_changes, list(trial.add.values()),
                                    sorted(trial.remove), sorted(trial.allow_add),
                                    sorted(trial.allow_remove))
        except WordListError as exc:
            raise AdminError(str(exc)) from None
        now = self._now()
        for c in checked:
            version = await self.store.add_word_change(
                WordChange(c.op, c.word, c.category, c.action, ACTOR, now))
        print(f"word lists at version {version} ({len(checked)} change(s))", file=self.out)
        return version

    async def import_file(self, path: Path) -> int:
        try:
            entries, allow = await asyncio.to_thread(load_paths, [path])
        except WordListError as exc:
            raise AdminError(str(exc)) from None
        items: list[tuple[str, str, str, str]] = [
            ("add", e.word, e.category, str(e.action)) for e, _, _ in entries]
        items += [("allow_add", w, "", "") for w, _, _ in allow]
        if not items:
            raise AdminError("the file holds no entries")
        return await self.changes(items)

    async def export(self, out: Path | None) -> None:
        f, version = await self.effective()
        text = export_text(f, f"chatd word lists, store version {version}")
        if out is None:
            self.out.write(text)
        else:
            await asyncio.to_thread(out.write_text, text, encoding="utf-8")
            print(f"{len(f)} entries, {len(f.allow_words())} allow words -> {out}",
                  file=self.out)

    async def version(self) -> None:
        f, version = await self.effective()
        print(f"version {version} filter {f.version} entries {len(f)} "
              f"allow {len(f.allow_words())}", file=self.out)

    async def lint(self, corpus: Path) -> int:
        """``python -m filters lint`` over the effective lists."""
        f, version = await self.effective()
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "effective.txt"
            await asyncio.to_thread(path.write_text, export_text(f, f"store version {version}"),
                                    encoding="utf-8")
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "filters", "lint", "--words", str(path),
                                 "--corpus", str(corpus)], capture_output=True, text=True)
        self.out.write(done.stdout)
        if done.stderr:
            print(done.stderr, file=sys.stderr, end="")
        return done.returncode

    # --- campaigns -----------------------------------------------------------------------

    async def campaign_send(self, path: Path, campaign_id: str | None = None) -> int:
        """Send the text of ``path`` to every consenting user, here and now; 0 when done."""
        from chatd.backends import make_sms_provider

        text = await asyncio.to_thread(path.read_text, encoding="utf-8")
        f, _ = await self.effective()
        sms = make_sms_provider(self.config)
        try:
            service = CampaignService(self.store, sms, TextGate(LiveFilter(f)),
                                      self.config.campaign_rate_per_second)
            try:
                campaign, created = await service.create(ACTOR, text, campaign_id)
            except ChatError as exc:
                raise AdminError(_refusal(exc)) from None
            if not created:
                print(f"campaign {campaign.id} was started before; nothing sent again",
                      file=self.out)
                self._print_campaign(campaign)
                return 0 if campaign.state == "done" else 1
            await self.store.add_audit(AuditEntry(self._now(), ACTOR, "campaign.start",
                                                  campaign.id,
                                                  f"recipients={campaign.recipients}"))
            print(f"campaign {campaign.id}: {campaign.recipients} recipients, at most "
                  f"{self.config.campaign_rate_per_second:g} SMS a second", file=self.out)
            last = time.monotonic()

            def progress(sent: int, failed: int) -> None:
                nonlocal last
                if time.monotonic() - last >= 10:
                    last = time.monotonic()
                    print(f"  {sent} sent, {failed} failed", file=self.out, flush=True)

            ended = await service.run(campaign, progress)
            self._print_campaign(ended)
            return 0 if ended.state == "done" else 1
        finally:
            await sms.close()

    async def campaign_show(self, campaign_id: str) -> None:
        campaign = await self.store.get_campaign(campaign_id)
        if campaign is None:
            raise AdminError("no such campaign")
        self._print_campaign(campaign)

    async def campaign_cancel(self, campaign_id: str) -> None:
        """End a running campaign (its sender stops within a second), or one a crashed
        process left ``running``."""
        campaign = await self.store.end_campaign(campaign_id, "cancelled", self._now())
        if campaign is None:
            raise AdminError("no such campaign")
        await self.store.add_audit(AuditEntry(self._now(), ACTOR, "campaign.cancel",
                                              campaign.id, f"state={campaign.state}"))
        self._print_campaign(campaign)

    def _print_campaign(self, c: Campaign) -> None:
        print(f"campaign {c.id} {c.state}: {c.sent} sent, {c.failed} failed of "
              f"{c.recipients} recipients (by {c.actor})", file=self.out)


def _refusal(exc: ChatError) -> str:
    category = exc.details.get("category")
    return f"{exc.msg} (category {category})" if category else exc.msg
