"""Attachment, key-worker sessions, barrier assessments and employment."""
