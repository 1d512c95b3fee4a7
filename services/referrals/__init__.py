"""Intake of referrals from Jobcentre Plus, probation and treatment services."""
