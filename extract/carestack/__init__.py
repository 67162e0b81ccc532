"""CareStack connector (partner API; contract not public, so unconfirmed details are settings)."""
