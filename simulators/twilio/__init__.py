"""A Twilio-shaped phone system for the seeded world: call logs and text messages.

``data`` derives the calls and messages from the world with their ground truth (``records``
holds their shapes, ``sessions`` how each office's calls unfold), ``wire`` renders them as
Twilio's REST API shows them at one moment, and ``app`` serves them.
"""
