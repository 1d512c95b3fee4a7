"""What the providers claim for each participant, and how: job starts (and the
claims that fail a rule: hours below the minimum, a job from before attachment, no
evidence, sent twice), sustainment at 13, 26 and 50 weeks, qualifications,
volunteering and education, some on the participant's word alone (to review)."""

from __future__ import annotations

from datetime import date, timedelta

from pathways.simulate.draws import Context, pick
from pathways.simulate.programme import GROWTH, INGEUS, SUPPORT_WEEKS
from pathways.simulate.records import Claim, Evidence, Participant
from pathways.simulate.rules import first_sustained_on


class Claims(Context):
    def evidence(self, kinds: tuple[str, ...], achieved_on: date) -> tuple[Evidence, ...]:
        out = []
        for kind in kinds:
            n = self.numbers(f"evidence:{kind}")
            dated = min(self.timeline.as_of, achieved_on + timedelta(days=self.rng.randint(7, 35)))
            prefix = {
                "payslip": "PS",
                "employer_confirmation": "EC",
                "hmrc_rti": "RTI",
                "certificate": "CERT",
                "self_declaration": "SD",
            }[kind]
            out.append(Evidence(kind, f"{prefix}-{n:07d}", dated))
        return tuple(out)

    def claim(
        self,
        participant: Participant,
        round_: int,
        type_: str,
        achieved_on: date,
        kinds: tuple[str, ...],
        *,
        episode: int | None = None,
        intent: str = "validated",
        review_decision: str | None = None,
        claimant: str | None = None,
    ) -> Claim:
        claim = Claim(
            key=f"{participant.key}-C{len(participant.claims) + 1}",
            round=round_,
            type=type_,
            achieved_on=achieved_on,
            episode=episode,
            evidence=self.evidence(kinds, achieved_on),
            claimant=claimant or participant.provider,
            review_decision=review_decision,
            intent=intent,
        )
        participant.claims.append(claim)
        return claim

    def strong_evidence(self) -> tuple[str, ...]:
        return pick(
            self.rng,
            {
                ("payslip",): 0.5,
                ("employer_confirmation",): 0.22,
                ("hmrc_rti",): 0.18,
                ("payslip", "self_declaration"): 0.1,
            },
        )

    def claims(self, participant: Participant) -> None:
        rng = self.rng
        as_of = self.timeline.as_of
        plan = self.plans.pop(participant.key)
        job_start_valid = False
        job_start_on: date | None = None
        if "before_attachment" in plan:
            episode = plan["before_attachment"]
            start = participant.episodes[episode].started_on
            self.claim(
                participant,
                1,
                "job_start",
                start,
                ("payslip",),
                episode=episode,
                intent="outside_support_window",
            )
            if rng.random() < 0.5:
                self.claim(
                    participant,
                    2,
                    "sustained_13",
                    min(as_of, start + timedelta(days=13 * 7 + rng.randint(0, 14))),
                    ("payslip",),
                    intent="no_job_start",
                )
        if "mini" in plan and rng.random() < 0.7:
            episode = plan["mini"]
            self.claim(
                participant,
                1,
                "job_start",
                participant.episodes[episode].started_on,
                ("payslip",),
                episode=episode,
                intent="hours_below_minimum",
            )
        if "job" in plan:
            episode = plan["job"]
            start = participant.episodes[episode].started_on
            job_start_on = start
            r = rng.random()
            if r < 0.86:
                self.claim(
                    participant, 1, "job_start", start, self.strong_evidence(), episode=episode
                )
                job_start_valid = True
                if rng.random() < 0.025:  # the CRM sends it again
                    self.claim(
                        participant,
                        1,
                        "job_start",
                        start,
                        ("payslip",),
                        episode=episode,
                        intent="duplicate_outcome",
                    )
            elif r < 0.94:  # only the participant's word for it: the programme office decides
                decision = "validate" if rng.random() < 0.85 else "reject"
                self.claim(
                    participant,
                    1,
                    "job_start",
                    start,
                    ("self_declaration",),
                    episode=episode,
                    intent="review",
                    review_decision=decision,
                )
                job_start_valid = decision == "validate"
                if not job_start_valid and rng.random() < 0.6:
                    self.claim(participant, 2, "job_start", start, ("payslip",), episode=episode)
                    job_start_valid = True
            else:  # sent without evidence, then again with a payslip
                self.claim(
                    participant,
                    1,
                    "job_start",
                    start,
                    (),
                    episode=episode,
                    intent="missing_evidence",
                )
                if rng.random() < 0.9:
                    self.claim(participant, 2, "job_start", start, ("hmrc_rti",), episode=episode)
                    job_start_valid = True
        self.other_outcomes(participant)
        if job_start_on is None:
            return
        spans = participant.spans()
        reached: dict[int, date | None] = {
            weeks: first_sustained_on(spans, job_start_on, weeks) for weeks in (13, 26, 50)
        }
        if not job_start_valid:
            if reached[13] is not None and rng.random() < 0.3:
                achieved = reached[13] + timedelta(days=rng.randint(0, 10))
                if achieved <= as_of:
                    self.claim(
                        participant,
                        2,
                        "sustained_13",
                        achieved,
                        ("payslip",),
                        intent="no_job_start",
                    )
            return
        for weeks in (13, 26, 50):
            first_day = reached[weeks]
            if first_day is None:
                if weeks == 26 and reached[13] is not None and rng.random() < 0.1:
                    # Claimed too soon after the job ended: not 26 weeks out of 30.
                    achieved = job_start_on + timedelta(days=26 * 7 + rng.randint(0, 20))
                    if achieved <= as_of:
                        self.claim(
                            participant,
                            2,
                            "sustained_26",
                            achieved,
                            ("payslip",),
                            intent="not_sustained",
                        )
                continue
            lag = rng.randint(0, 7) if rng.random() < 0.7 else rng.randint(8, 21)
            achieved = first_day + timedelta(days=lag)
            if achieved > as_of:
                continue  # achieved after as_of: cannot be claimed yet
            episode = max(
                (i for i, e in enumerate(participant.episodes) if e.started_on < achieved),
                key=lambda i: participant.episodes[i].started_on,
            )
            kinds = pick(
                rng,
                {
                    ("payslip",): 0.55,
                    ("hmrc_rti",): 0.3,
                    ("employer_confirmation",): 0.1,
                    ("self_declaration",): 0.05,
                },
            )
            if kinds == ("self_declaration",):
                decision = "validate" if rng.random() < 0.9 else "reject"
                self.claim(
                    participant,
                    2,
                    f"sustained_{weeks}",
                    achieved,
                    kinds,
                    episode=episode if rng.random() < 0.8 else None,
                    intent="review",
                    review_decision=decision,
                )
            else:
                self.claim(
                    participant,
                    2,
                    f"sustained_{weeks}",
                    achieved,
                    kinds,
                    episode=episode if rng.random() < 0.8 else None,
                )

    def other_outcomes(self, participant: Participant) -> None:
        """Qualifications, volunteering and education, claimed in the first round."""
        rng = self.rng
        attached = participant.attached_on
        if rng.random() < 0.09:
            late = (self.timeline.as_of - attached).days - SUPPORT_WEEKS * 7
            if late >= 1 and rng.random() < 0.03:
                # Gained after the support period: outside_support_window.
                self.claim(
                    participant,
                    1,
                    "qualification",
                    attached + timedelta(days=SUPPORT_WEEKS * 7 + rng.randint(1, min(late, 25))),
                    ("certificate",),
                    intent="outside_support_window",
                )
            else:
                self.claim(
                    participant,
                    1,
                    "qualification",
                    attached + timedelta(days=rng.randint(30, 600)),
                    ("certificate",),
                )
        if rng.random() < 0.04:
            if rng.random() < 0.3:
                decision = "validate" if rng.random() < 0.8 else "reject"
                self.claim(
                    participant,
                    1,
                    "volunteering_start",
                    attached + timedelta(days=rng.randint(20, 500)),
                    ("self_declaration",),
                    intent="review",
                    review_decision=decision,
                )
            else:
                self.claim(
                    participant,
                    1,
                    "volunteering_start",
                    attached + timedelta(days=rng.randint(20, 500)),
                    ("employer_confirmation",),
                )
        if rng.random() < 0.03:
            self.claim(
                participant,
                1,
                "education_start",
                attached + timedelta(days=rng.randint(20, 500)),
                ("certificate",),
            )
        elif rng.random() < 0.004:
            # The other provider's CRM posts a claim against this participant's id:
            # accepted (201), then rejected not_attached.
            other = GROWTH if participant.provider == INGEUS else INGEUS
            self.claim(
                participant,
                1,
                "education_start",
                attached + timedelta(days=rng.randint(20, 300)),
                ("certificate",),
                intent="not_attached",
                claimant=other,
            )
