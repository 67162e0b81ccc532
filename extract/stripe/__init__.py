"""Stripe connector: charges, refunds, disputes, balance transactions and payouts of an account."""
