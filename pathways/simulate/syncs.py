"""The providers' CRMs syncing sessions in bulk: everything once in time order, then
edits, re-sends, stale copies arriving after newer ones, and a few items that must be
refused (another provider's participant, a date before the referral). The status the
contract gives each item (§3) is worked out here, in order, as the upsert rule says."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, time, timedelta

from pathways.simulate.draws import Context
from pathways.simulate.programme import INGEUS, PROVIDER_AREAS
from pathways.simulate.records import Participant, SessionVersion, SyncItem
from pathways.simulate.rules import UK


class Syncs(Context):
    def syncs(self) -> dict[str, list[list[SyncItem]]]:
        out: dict[str, list[list[SyncItem]]] = {}
        for provider in PROVIDER_AREAS:
            mine = [p for p in self.participants if p.provider == provider]
            others = [p for p in self.participants if p.provider != provider]
            out[provider] = self.sync_plan(mine, others)
        return out

    def changed(self, version: SessionVersion) -> SessionVersion | None:
        """A later edit of a session in the CRM (attendance corrected, notes added)."""
        rng = self.rng
        modified = version.modified_at + timedelta(
            days=rng.randint(1, 10), minutes=rng.randint(1, 600)
        )
        if modified.date() >= self.timeline.as_of:
            return None
        if version.attendance == "attended":
            return replace(
                version, modified_at=modified, notes=(version.notes or "") + " Follow-up booked."
            )
        return replace(
            version,
            modified_at=modified,
            attendance="attended",
            duration_minutes=45,
            notes="Attended late; rebooked slot used.",
        )

    def sync_plan(self, mine: list[Participant], others: list[Participant]) -> list[list[SyncItem]]:
        """The CRM's syncs: everything once in time order, then a second pass with
        edits, re-sends, and stale copies arriving after newer ones."""
        rng = self.rng
        first: list[SessionVersion] = []
        second: list[SessionVersion] = []
        for participant in mine:
            for version in participant.sessions:
                r = rng.random()
                edited = self.changed(version) if r < 0.083 else None
                if edited is not None and r < 0.03:  # edited later
                    first.append(version)
                    second.append(edited)
                elif edited is not None and r < 0.05:  # the edit arrives first
                    first.append(edited)
                    second.append(version)
                elif r < 0.08:  # sent again unchanged
                    first.append(version)
                    second.append(version)
                elif edited is not None:  # edited without touching modified_at
                    first.append(version)
                    second.append(replace(version, notes=(version.notes or "") + " (typo fixed)"))
                else:
                    first.append(version)
        first.sort(key=lambda v: (v.modified_at, v.external_id))
        second.sort(key=lambda v: (v.modified_at, v.external_id))
        errors: list[SessionVersion] = []
        crm = "ING" if mine and mine[0].provider == INGEUS else "TGC"
        if others:
            # A participant of the other provider: an error item, never a leak.
            stranger = others[0]
            errors.append(
                replace(
                    stranger.sessions[0],
                    external_id=f"{crm}-CRM-X1",
                    participant=stranger.key,
                )
            )
        if mine:
            # Dated before the referral: an error item; the rest of the batch applies.
            someone = mine[len(mine) // 2]
            before = datetime.combine(
                someone.referral.referred_on - timedelta(days=3), time(10), UK
            )
            errors.append(
                replace(
                    someone.sessions[0],
                    external_id=f"{crm}-CRM-X2",
                    occurred_at=before,
                    modified_at=before + timedelta(hours=2),
                )
            )
        sends = first[: len(first) // 2] + errors + first[len(first) // 2 :]
        if sends:
            # The same item twice in one call: the second is judged against the first.
            middle = len(sends) // 3
            sends.insert(middle + 1, sends[middle])
        sends += second
        stored: dict[str, SessionVersion] = {}
        error_ids = {e.external_id for e in errors}
        items = []
        for version in sends:
            if version.external_id in error_ids:
                items.append(SyncItem(version, "error"))
                continue
            current = stored.get(version.external_id)
            if current is None:
                expected = "created"
            elif version.modified_at < current.modified_at:
                expected = "stale"
            elif (
                version.modified_at == current.modified_at
                and version.content() == current.content()
            ):
                expected = "unchanged"
            else:
                expected = "updated"
            if expected in ("created", "updated"):
                stored[version.external_id] = version
            items.append(SyncItem(version, expected))
        batches = []
        while items:
            size = rng.randint(600, 1000)
            batches.append(items[:size])
            items = items[size:]
        return batches
