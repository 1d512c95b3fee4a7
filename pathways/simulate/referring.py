"""Referrers and providers deciding on referrals: first referrals (with a mistyped
NINO, a refused one without consent, network retries), second referrers' duplicates,
declines and withdrawals, re-referrals, and a withdrawal too late to be allowed."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pathways.simulate.base import Player, expect_field
from pathways.simulate.story import Participant, Referral, Refusal

DECLINE_REASONS = (
    "Did not attend the induction appointment.",
    "Chose not to take part.",
    "Could not be contacted after three attempts.",
)
WITHDRAW_REASONS = (
    "Person moved out of the area.",
    "Person started full-time education.",
    "Referred in error: already receiving similar support.",
)


class Referring(Player):
    def body(self, referral: Referral, **kwargs: Any) -> dict[str, Any]:
        return referral.body(self.platform.programme, **kwargs)

    async def post_referral(self, referral: Referral, expect: tuple[int, ...] = (201,)) -> dict:
        return await self.gateway.call(
            self.who(referral.referrer),
            "POST",
            "/v1/referrals",
            json=self.body(referral),
            expect=expect,
            idempotent=True,  # the same external_ref again is the same referral (§2)
        )

    async def decided(self, referral: Referral, answer: dict) -> dict:
        """The referral once decided: the answer may still say ``received`` (§2)."""
        deadline = time.monotonic() + 15
        while answer["status"] == "received" and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            answer = await self.gateway.call(
                self.who(referral.referrer), "GET", f"/v1/referrals/{answer['id']}"
            )
        return answer

    def check_decision(self, referral: Referral, answer: dict) -> None:
        provider = (
            self.platform.partners[referral.provider].partner_id if referral.provider else None
        )
        duplicate_of = (
            self.platform.referrals.get(referral.duplicate_of) if referral.duplicate_of else None
        )
        got = (
            answer["status"],
            tuple(answer["reasons"]),
            answer["provider_id"],
            answer["duplicate_of"],
        )
        want = (referral.decision, referral.reasons, provider, duplicate_of)
        if got != want:
            self.fail("referral decision", referral.key, f"expected {want}, got {got}")

    async def refer_first(self, item: Referral | Refusal) -> None:
        if isinstance(item, Refusal):
            answer = await self.gateway.call(
                self.who(item.referrer),
                "POST",
                "/v1/referrals",
                json=item.body(self.platform.programme),
                expect=(422,),
            )
            expect_field(answer, "consent.given")
            return
        referral = item
        if "typo_nino" in referral.mistakes:
            # A mistyped National Insurance number: refused, corrected, sent again.
            assert referral.sent_nino is not None
            typo = "D" + referral.sent_nino[1:]
            answer = await self.gateway.call(
                self.who(referral.referrer),
                "POST",
                "/v1/referrals",
                json=self.body(referral, nino=typo),
                expect=(422,),
            )
            expect_field(answer, "person.nino")
        answer = await self.decided(referral, await self.post_referral(referral))
        self.platform.referrals[referral.key] = answer["id"]
        self.check_decision(referral, answer)
        if "retry" in referral.mistakes:
            again = await self.post_referral(referral, expect=(200,))
            if again["id"] != answer["id"]:
                self.fail("referral retry", referral.key, "a retry made a second referral")

    async def refer_duplicate(self, referral: Referral) -> None:
        answer = await self.decided(referral, await self.post_referral(referral))
        self.platform.referrals[referral.key] = answer["id"]
        self.check_decision(referral, answer)

    async def settle(self, referral: Referral) -> None:
        """The provider records a decline, or the referrer withdraws (§2)."""
        referral_id = self.referral_id(referral)
        number = int(referral.key[1:])
        if referral.fate == "declined":
            assert referral.provider is not None
            who, action = self.who(referral.provider), "decline"
            reason = DECLINE_REASONS[number % len(DECLINE_REASONS)]
        else:
            who, action = self.who(referral.referrer), "withdraw"
            reason = WITHDRAW_REASONS[number % len(WITHDRAW_REASONS)]
        answer = await self.gateway.call(
            who, "POST", f"/v1/referrals/{referral_id}/{action}", json={"reason": reason}
        )
        if answer["status"] != referral.fate:
            self.fail(action, referral.key, f"status {answer['status']}, expected {referral.fate}")

    async def refer_again(self, referral: Referral) -> None:
        await self.refer_duplicate(referral)
        if referral.fate == "declined":
            await self.settle(referral)

    async def late_withdrawal(self, participant: Participant) -> None:
        """A referrer withdraws a referral its person has long since attached on: 409."""
        await self.gateway.call(
            self.who(participant.referral.referrer),
            "POST",
            f"/v1/referrals/{self.referral_id(participant.referral)}/withdraw",
            json={"reason": "Sent after the person had started."},
            expect=(409,),
        )
