"""CareStack partner API simulator: serves the world's CareStack offices (see ``app``)."""
