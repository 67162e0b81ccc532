"""Twilio connector: call logs and text messages of the group's phone numbers."""
