"""Playing a story through the gateway, as the programme's partners would.

The story runs in rounds, in the order things happen in a programme: referrals, the
second referrals of people already referred, the providers' and referrers' decisions,
re-referrals; then attachments, casework (assessments, jobs, exits), the CRMs' session
syncs; then outcome claims, the programme office's review queue, later claims, reviews
again. Within a round many people are handled at once (a bounded pool of workers);
each person's own steps stay in order.

Every answer is checked against the story as it comes back (a referral's status, a
claim's decision, each sync item's status, the ``4xx`` a partner's mistake must get),
and anything unexpected is recorded as a :class:`Failure` without stopping the run.
"""

from __future__ import annotations

import asyncio
import time

from pathways.simulate.base import (
    Failure,
    Missing,
    NoProgress,
    Platform,
    Progress,
    RunResult,
    subject_of,
)
from pathways.simulate.casework import Casework
from pathways.simulate.claiming import ROUND_NAMES, Claiming
from pathways.simulate.client import ApiError, Credentials, Gateway
from pathways.simulate.programme import OFFICE, partner_specs, programme_definition
from pathways.simulate.referring import Referring
from pathways.simulate.story import Referral, Refusal, Story

__all__ = ["Failure", "Missing", "Platform", "RunResult", "Simulation"]


class Simulation(Referring, Casework, Claiming):
    """One run of a story: :meth:`run` plays it all and returns what happened."""

    def __init__(
        self,
        story: Story,
        gateway: Gateway,
        *,
        admin_token: str,
        programme_code: str,
        concurrency: int = 24,
        progress: Progress | None = None,
        attach_patience: float = 600.0,
        decision_patience: float = 120.0,
        catch_up_patience: float = 600.0,
    ) -> None:
        self.story = story
        self.gateway = gateway
        self.admin = Credentials("admin", "admin", admin_token)
        self.programme_code = programme_code
        self.concurrency = concurrency
        self.progress: Progress = progress or NoProgress()
        self.attach_patience = attach_patience
        self.decision_patience = decision_patience
        self.catch_up_patience = catch_up_patience
        self.platform = Platform()
        self.failures: list[Failure] = []
        self.phases: list[tuple[str, int, float]] = []
        self.lag_retries = 0
        self.sync_counts: dict[str, int] = {}
        self._attached: dict[str, asyncio.Event] = {}

    # --- the whole run ------------------------------------------------------------------

    async def run(self) -> RunResult:
        story = self.story
        started = time.monotonic()
        await self.setup()
        self.phases.append(
            ("partners and programme", len(self.platform.partners), time.monotonic() - started)
        )
        wave1: list[Referral | Refusal] = [*story.referrals_in_wave(1), *story.refusals]
        wave1.sort(key=lambda r: (r.referral if isinstance(r, Refusal) else r).referred_on)
        await self.phase("referrals", wave1, self.refer_first, subject_of)
        await self.phase(
            "second referrals (duplicates)",
            story.referrals_in_wave(2),
            self.refer_duplicate,
            subject_of,
        )
        fates = [r for r in story.referrals_in_wave(1) if r.fate in ("declined", "withdrawn")]
        await self.phase("declines and withdrawals", fates, self.settle, subject_of)
        await self.phase("re-referrals", story.referrals_in_wave(3), self.refer_again, subject_of)
        # Casework hears of referrals by events, in the order they were sent: attach in
        # that order too, so each attachment finds its referral already known.
        posted = {subject_of(r): i for i, r in enumerate([*wave1, *story.referrals_in_wave(3)])}
        ordered = sorted(story.participants, key=lambda p: posted[p.referral.key])
        last = self.last_to_attach(ordered)
        # The CRMs sync sessions while key workers carry on: each sync call goes once
        # everyone in it has been attached.
        self._attached = {p.key: asyncio.Event() for p in ordered}
        syncing = asyncio.create_task(self.sync_sessions())
        await self.phase(
            "attachments and casework",
            [p for p in ordered if p is not last],
            self.attach_and_casework,
            subject_of,
        )
        if last is not None:
            await self.phase("the last attachment", [last], self.attach_and_casework, subject_of)
        await syncing
        if last is not None:
            await self.outcomes_caught_up(last)
        for round_ in (1, 2):
            name = f"claims, {ROUND_NAMES[round_]} round"
            await self.phase(name, ordered, self.claims_round(round_), subject_of)
            await self.review_queue(round_)
        late = [p for p in ordered if "withdraw_after_attach" in p.mistakes]
        await self.phase("late withdrawals (refused)", late, self.late_withdrawal, subject_of)
        await self.verify()
        return RunResult(
            self.platform,
            self.failures,
            self.phases,
            self.lag_retries,
            self.sync_counts,
            time.monotonic() - started,
        )

    # --- partners and the programme -----------------------------------------------------

    async def setup(self) -> None:
        for spec in partner_specs():
            body = await self.gateway.call(
                self.admin,
                "POST",
                "/admin/partners",
                json={"name": f"{spec.name} ({self.programme_code})", "kind": spec.kind},
                expect=(201,),
            )
            self.platform.partners[spec.handle] = Credentials(
                spec.handle, spec.kind, body["api_key"], body["id"]
            )
        ids = self.platform.provider_ids()
        # A code already taken (an earlier run on this platform) gets a suffix.
        for attempt in range(1, 100):
            code = self.programme_code if attempt == 1 else f"{self.programme_code}-{attempt}"
            response = await self.gateway.send(
                self.admin, "POST", "/admin/programmes", json=programme_definition(code, ids)
            )
            if response.status_code == 201:
                self.platform.programme = code
                return
            if response.status_code != 409:
                raise ApiError("POST", "/admin/programmes", response.status_code, response.text)
        raise RuntimeError("no free programme code")

    # --- checking what the platform holds -----------------------------------------------

    async def verify(self) -> None:
        """Every referral's and claim's final status, as the programme office sees them,
        and the sessions stored for a sample of participants whose syncs were edited."""
        started = time.monotonic()
        office = self.who(OFFICE)
        code = self.platform.programme
        referrals = {
            r["id"]: r["status"]
            for r in await self.list_all(office, "/v1/referrals", {"programme": code})
        }
        for referral in self.story.referrals:
            referral_id = self.platform.referrals.get(referral.key)
            if referral_id is None:
                continue  # its failure is already recorded
            status = referrals.get(referral_id)
            if status != referral.final_status:
                self.fail(
                    "final referral status",
                    referral.key,
                    f"{status}, expected {referral.final_status}",
                )
        claims = {
            c["id"]: (c["status"], tuple(c["reasons"]))
            for c in await self.list_all(office, "/v1/outcome-claims", {"programme": code})
        }
        for _, claim in self.story.claims():
            claim_id = self.platform.claims.get(claim.key)
            if claim_id is None:
                continue
            if claim_id not in claims:
                # A claim on someone else's participant is filed under no programme.
                body = await self.gateway.call(office, "GET", f"/v1/outcome-claims/{claim_id}")
                claims[claim_id] = (body["status"], tuple(body["reasons"]))
            reasons = (
                claim.reasons if claim.final == "rejected" and claim.decision == "rejected" else ()
            )
            if claims[claim_id] != (claim.final, reasons):
                self.fail(
                    "final claim status",
                    claim.key,
                    f"{claims[claim_id]}, expected {(claim.final, reasons)}",
                )
        checked = await self.check_sessions()
        self.phases.append(
            (
                "checking final statuses",
                len(referrals) + len(claims) + checked,
                time.monotonic() - started,
            )
        )
