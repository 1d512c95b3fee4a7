"""Providers claiming outcomes, one decision at a time per participant, and the
programme office working through its review queue."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pathways.simulate.base import Player
from pathways.simulate.programme import OFFICE
from pathways.simulate.story import Claim, Participant

ROUND_NAMES = {1: "first", 2: "second"}


class Claiming(Player):
    decision_patience: float

    # --- claims -------------------------------------------------------------------------

    def claims_round(self, round_: int) -> Callable[[Participant], Awaitable[None]]:
        async def step(participant: Participant) -> None:
            for claim in participant.claims:
                if claim.round == round_:
                    await self.submit(participant, claim)

        return step

    def claim_body(self, participant: Participant, claim: Claim) -> dict[str, Any]:
        body: dict[str, Any] = {
            "participant_id": self.participant_id(participant.key),
            "type": claim.type,
            "achieved_on": claim.achieved_on.isoformat(),
        }
        if claim.episode is not None:
            body["employment_id"] = self.platform.episodes[(participant.key, claim.episode)]
        if claim.evidence:
            body["evidence"] = [e.body() for e in claim.evidence]
        return body

    async def submit(self, participant: Participant, claim: Claim) -> None:
        """Post a claim and wait for the rules' decision before the participant's next
        one: a later claim's decision can rest on this one (once per type, job start)."""
        who = self.who(claim.claimant)
        answer = await self.gateway.call(
            who,
            "POST",
            "/v1/outcome-claims",
            json=self.claim_body(participant, claim),
            expect=(201,),
        )
        self.platform.claims[claim.key] = answer["id"]
        deadline = time.monotonic() + self.decision_patience
        delay = 0.05
        while answer["status"] == "submitted" and time.monotonic() < deadline:
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
            answer = await self.gateway.call(who, "GET", f"/v1/outcome-claims/{answer['id']}")
        got = (answer["status"], tuple(answer["reasons"]))
        if got != (claim.decision, claim.reasons):
            self.fail(
                "claim decision",
                claim.key,
                f"expected {(claim.decision, claim.reasons)}, got {got}",
            )

    async def review_queue(self, round_: int) -> None:
        """The programme office works through every claim in review."""
        name = f"programme office reviews, {ROUND_NAMES[round_]} round"
        office = self.who(OFFICE)
        started = time.monotonic()
        waiting = await self.list_all(
            office, "/v1/outcome-claims", {"status": "review", "programme": self.platform.programme}
        )
        planned = {
            self.platform.claims[c.key]: c
            for _, c in self.story.claims()
            if c.round == round_ and c.decision == "review" and c.key in self.platform.claims
        }
        for claim_id in planned.keys() - {item["id"] for item in waiting}:
            self.fail(name, planned[claim_id].key, "expected in review, not in the queue")

        async def decide(item: dict[str, Any]) -> None:
            claim = planned.get(item["id"])
            if claim is None:
                raise RuntimeError("in review, but the story never sent it there")
            decision = claim.review_decision or "reject"
            reason = (
                "Evidence checked with the employer by phone."
                if decision == "validate"
                else "Self-declaration not supported on follow-up."
            )
            answer = await self.gateway.call(
                office,
                "POST",
                f"/v1/outcome-claims/{item['id']}/decision",
                json={"decision": decision, "reason": reason},
            )
            if answer["status"] != claim.final:
                self.fail(name, claim.key, f"status {answer['status']}, expected {claim.final}")

        def subject(item: dict[str, Any]) -> str:
            claim = planned.get(item["id"])
            return claim.key if claim is not None else f"claim {item['id']}"

        await self.phase(name, waiting, decide, subject)
        self.phases[-1] = (name, len(waiting), time.monotonic() - started)
