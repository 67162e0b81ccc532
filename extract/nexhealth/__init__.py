"""NexHealth Synchronizer API connector (one institution per connection, read per location)."""
