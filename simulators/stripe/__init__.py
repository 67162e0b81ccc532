"""Stripe-shaped card-processor simulator: the group's account derived from the seeded world."""
