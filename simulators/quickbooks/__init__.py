"""QuickBooks Online simulator (read side): the books derived from the processor's payouts."""
