"""Meetings: kinds, lifecycle, invitations, registrations, attendance, minutes, surveys."""
