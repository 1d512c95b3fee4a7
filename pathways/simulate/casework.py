"""Providers' casework: attachments (waiting out casework's lag), assessments, jobs
and exits in the order they happened, and the CRMs' bulk session syncs."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Any

from pathways.simulate.base import Missing, Player, expect_field
from pathways.simulate.client import ApiError, decode
from pathways.simulate.programme import GROWTH, INGEUS, OFFICE
from pathways.simulate.story import Participant, SessionVersion, SyncItem


class Casework(Player):
    attach_patience: float
    catch_up_patience: float
    lag_retries: int
    sync_counts: dict[str, int]
    _attached: dict[str, asyncio.Event]

    def last_to_attach(self, participants: Sequence[Participant]) -> Participant | None:
        """Someone whose attachment is recorded after all other casework: once the
        outcomes service has accrued for it, it has heard everything casework said
        before (events leave casework's outbox, and reach outcomes, in order)."""
        quiet = [p for p in participants if not p.episodes and not p.mistakes]
        return max(quiet, key=lambda p: p.attached_on, default=None)

    async def attach_and_casework(self, participant: Participant) -> None:
        try:
            await self.attach(participant)
        finally:
            # Attached, or failed for good (recorded): either way its sessions may go.
            self._attached[participant.key].set()
        await self.casework(participant)

    async def outcomes_caught_up(self, participant: Participant) -> None:
        """Wait until the programme office's statement shows ``participant``'s attachment.

        Claims rest on facts outcomes learns by events (attachments, jobs, their ends).
        It waits a while for a missing fact (§8), but on a loaded machine events can lag
        by minutes; so, like a CRM that claims once the statement shows the attachment,
        the simulator waits for the last one before claiming.
        """
        started = time.monotonic()
        task = self.progress.add_task("outcomes service catching up", total=1)
        office = self.who(OFFICE)
        params = {
            "programme": self.platform.programme,
            "period": participant.attached_on.strftime("%Y-%m"),
            "provider_id": self.who(participant.provider).partner_id,
        }
        try:
            wanted = self.participant_id(participant.key)
            deadline = time.monotonic() + self.catch_up_patience
            while True:
                statement = await self.gateway.call(
                    office, "GET", "/v1/payments/statement", params=params
                )
                if any(line["participant_id"] == wanted for line in statement["lines"]):
                    break
                if time.monotonic() > deadline:
                    self.fail("outcomes catching up", participant.key, "no attachment accrued")
                    break
                await asyncio.sleep(1.0)
        except (ApiError, Missing) as exc:
            self.fail("outcomes catching up", participant.key, str(exc))
        self.progress.advance(task)
        self.phases.append(("outcomes service caught up", 1, time.monotonic() - started))

    async def attach(self, participant: Participant) -> None:
        referral_id = self.referral_id(participant.referral)
        body = {
            "referral_id": referral_id,
            "attached_on": participant.attached_on.isoformat(),
            "key_worker": participant.key_worker,
        }
        if "wrong_provider_attach" in participant.mistakes:
            other = GROWTH if participant.provider == INGEUS else INGEUS
            await self.gateway.call(
                self.who(other), "POST", "/v1/participants", json=body, expect=(404,)
            )
        provider = self.who(participant.provider)
        # Casework learns of the referral by an event; it waits a few seconds for it (§8).
        # Should the lag be longer, a provider's CRM tries again a little later.
        deadline = time.monotonic() + self.attach_patience
        delay = 1.0
        while True:
            response = await self.gateway.send(
                provider, "POST", "/v1/participants", json=body, idempotent=True
            )
            if response.status_code != 404 or time.monotonic() > deadline:
                break
            self.lag_retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 8.0)
        if response.status_code != 201:
            raise ApiError("POST", "/v1/participants", response.status_code, decode(response))
        answer = response.json()
        self.platform.participants[participant.key] = answer["id"]
        if answer["status"] != "active" or answer["attached_on"] != body["attached_on"]:
            self.fail("attachment", participant.key, f"unexpected participant {answer['status']}")
        if "retry_attach" in participant.mistakes:
            again = await self.gateway.call(
                provider, "POST", "/v1/participants", json=body, expect=(200,)
            )
            if again["id"] != answer["id"]:
                self.fail("attachment retry", participant.key, "a retry made a second participant")

    async def casework(self, participant: Participant) -> None:
        """Assessments, employment and the exit, in the order they happened."""
        participant_id = self.participant_id(participant.key)
        provider = self.who(participant.provider)
        base = f"/v1/participants/{participant_id}"
        if "bad_score" in participant.mistakes:
            bad = participant.initial.body()
            bad["barriers"]["confidence"] = 7
            answer = await self.gateway.call(
                provider, "POST", f"{base}/assessments", json=bad, expect=(422,)
            )
            expect_field(answer, "barriers.confidence")
        steps: list[tuple[int, date, int, Callable[[], Awaitable[None]]]] = []

        def add(day: date, order: int, action: Callable[[], Awaitable[None]]) -> None:
            first = int(not steps)  # the initial assessment is added first
            steps.append((1 - first, day, order, action))

        for assessment in participant.assessments:

            async def assess(assessment=assessment) -> None:
                await self.gateway.call(
                    provider, "POST", f"{base}/assessments", json=assessment.body(), expect=(201,)
                )
                if assessment.kind == "initial" and "second_initial" in participant.mistakes:
                    await self.gateway.call(
                        provider,
                        "POST",
                        f"{base}/assessments",
                        json=assessment.body(),
                        expect=(409,),
                    )

            add(assessment.assessed_on, 1, assess)
        for index, episode in enumerate(participant.episodes):

            async def start(index=index, episode=episode) -> None:
                answer = await self.gateway.call(
                    provider, "POST", f"{base}/employment", json=episode.body(), expect=(201,)
                )
                self.platform.episodes[(participant.key, index)] = answer["id"]

            add(episode.started_on, 0, start)
            if episode.ended_on is not None:

                async def end(index=index, episode=episode) -> None:
                    episode_id = self.platform.episodes[(participant.key, index)]
                    assert episode.ended_on is not None
                    await self.gateway.call(
                        provider,
                        "POST",
                        f"{base}/employment/{episode_id}/end",
                        json={"ended_on": episode.ended_on.isoformat()},
                    )

                add(episode.ended_on, 2, end)
        if participant.exit is not None:
            left_on, reason = participant.exit

            async def leave() -> None:
                answer = await self.gateway.call(
                    provider,
                    "POST",
                    f"{base}/exit",
                    json={"left_on": left_on.isoformat(), "reason": reason},
                )
                if answer.get("left_on") != left_on.isoformat():
                    self.fail("exit", participant.key, "left_on not recorded")

            add(left_on, 3, leave)
        # The initial assessment first (it is the one at attachment), then by date; an
        # episode may end after the exit (in-work support goes on).
        steps.sort(key=lambda s: (s[0], s[1], s[2]))
        for _, _, _, action in steps:
            await action()

    # --- session syncs ------------------------------------------------------------------

    async def sync_sessions(self) -> None:
        started = time.monotonic()
        total = sum(len(batch) for batches in self.story.syncs.values() for batch in batches)
        task = self.progress.add_task("session syncs (bulk)", total=total)
        await asyncio.gather(
            *(
                self.sync_provider(handle, batches, task)
                for handle, batches in self.story.syncs.items()
            )
        )
        self.phases.append(("session syncs (bulk)", total, time.monotonic() - started))

    def session_item(self, version: SessionVersion) -> dict[str, Any]:
        item: dict[str, Any] = {
            "external_id": version.external_id,
            "participant_id": self.platform.participants.get(version.participant),
            "occurred_at": version.occurred_at.isoformat(),
            "kind": version.kind,
            "attendance": version.attendance,
            "modified_at": version.modified_at.isoformat(),
        }
        if version.duration_minutes is not None:
            item["duration_minutes"] = version.duration_minutes
        if version.notes is not None:
            item["notes"] = version.notes
        return item

    async def sync_provider(self, handle: str, batches: list[list[SyncItem]], task: Any) -> None:
        """One CRM's syncs, one call after another (their order is the point)."""
        who = self.who(handle)
        for number, batch in enumerate(batches, 1):
            subject = f"{handle} sync {number}"
            size = len(batch)
            for key in {item.version.participant for item in batch}:
                await self._attached[key].wait()
            try:
                known = [i for i in batch if i.version.participant in self.platform.participants]
                if len(known) < len(batch):
                    # Not attached after all (a failure already recorded): leave them out.
                    self.fail("session sync", subject, f"{len(batch) - len(known)} items left out")
                    batch = known
                items = [self.session_item(item.version) for item in batch]
                answer = await self.gateway.call(
                    who,
                    "POST",
                    "/v1/sessions/bulk",
                    json={"sessions": items},
                    idempotent=True,  # an upsert by external_id (§3)
                )
                results = answer["results"]
                if len(results) != len(batch):
                    self.fail("session sync", subject, f"{len(results)} results for {len(batch)}")
                for item, result in zip(batch, results, strict=False):
                    status = result["status"]
                    self.sync_counts[status] = self.sync_counts.get(status, 0) + 1
                    if status != item.expected or result["external_id"] != item.version.external_id:
                        self.fail(
                            "session sync",
                            f"{subject} {item.version.external_id}",
                            f"expected {item.expected}, got {status} ({result.get('error')})",
                        )
            except ApiError as exc:
                self.fail("session sync", subject, str(exc))
            except Missing as exc:
                self.fail("session sync", subject, f"skipped: {exc}")
            self.progress.advance(task, size)

    async def check_sessions(self, per_provider: int = 5) -> int:
        """The sessions stored for a few participants per provider whose syncs carried
        edits or stale copies: each the last version sent that was newer (§3)."""
        checked = 0
        for handle, batches in self.story.syncs.items():
            final: dict[str, SessionVersion] = {}
            edited: list[str] = []
            for batch in batches:
                for item in batch:
                    version = item.version
                    if item.expected in ("created", "updated"):
                        final[version.external_id] = version
                    if item.expected in ("updated", "stale") and version.participant not in edited:
                        edited.append(version.participant)
            for key in edited[:per_provider]:
                participant_id = self.platform.participants.get(key)
                if participant_id is None:
                    continue
                stored = await self.gateway.call(
                    self.who(handle), "GET", f"/v1/participants/{participant_id}/sessions"
                )
                want = sorted(
                    (v for v in final.values() if v.participant == key),
                    key=lambda v: (v.occurred_at, v.external_id),
                )
                got = [
                    (s["external_id"], s["attendance"], s["notes"], s["modified_at"])
                    for s in stored["items"]
                ]
                expected = [(v.external_id, v.attendance, v.notes, v.modified_at) for v in want]
                same = len(got) == len(expected) and all(
                    g[:3] == e[:3] and datetime.fromisoformat(g[3]) == e[3]
                    for g, e in zip(got, expected, strict=False)
                )
                if not same:
                    self.fail("stored sessions", key, "not the latest version of each session")
                checked += 1
        return checked
