"""The demo group's simulators: every vendor served from ONE world, so the same patient's card
payment is in the PMS ledger, the processor and a payout, and the same caller is a patient.

``DEMO_CREDENTIALS`` are the values of the environment variables ``config/demo_org.yaml``
names; they open only these local simulators and are not secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulators.world import World

DEMO_CREDENTIALS = {
    "OD_DEVELOPER_KEY": "demo-developer-key",
    "OD_RIVERSIDE_CUSTOMER_KEY": "cust-riverside",
    "OD_LAKESIDE_CUSTOMER_KEY": "cust-lakeside",
    "NEXHEALTH_API_KEY": "demo-nexhealth-api-key",
    "CARESTACK_ACCOUNT_ID": "cs-account-1001",
    "CARESTACK_ACCOUNT_KEY": "demo-carestack-account-key",
    "CARESTACK_VENDOR_KEY": "demo-carestack-vendor-key",
    "STRIPE_API_KEY": "sk_test_demo",
    "QUICKBOOKS_CLIENT_ID": "demo-qbo-client",
    "QUICKBOOKS_CLIENT_SECRET": "demo-qbo-secret",
    "QUICKBOOKS_REFRESH_TOKEN": "demo-qbo-refresh-token",
    "TWILIO_ACCOUNT_SID": "AC" + "d" * 32,
    "TWILIO_AUTH_TOKEN": "demo-twilio-auth-token",
}


def _opendental(world: World, rps: float | None) -> Any:
    from simulators.opendental.app import OpenDentalSimSettings, create_app

    settings = OpenDentalSimSettings(
        developer_key=DEMO_CREDENTIALS["OD_DEVELOPER_KEY"],
        requests_per_second=rps,
        throttle_burst=5.0,
    )
    return create_app(world, settings)


def _nexhealth(world: World, rps: float | None) -> Any:
    from simulators.nexhealth.app import NexHealthSimSettings, create_app

    settings = NexHealthSimSettings(
        api_keys={DEMO_CREDENTIALS["NEXHEALTH_API_KEY"]: None},
        requests_per_second=rps,
        appointments_requests_per_second=rps,
        throttle_burst=5.0,
    )
    return create_app(world, settings)


def _twilio(world: World, rps: float | None) -> Any:
    from simulators.twilio.app import TwilioSimSettings, create_app
    from simulators.twilio.records import DEMO_REMINDER_RATE, PhoneSettings

    settings = TwilioSimSettings(
        account_sid=DEMO_CREDENTIALS["TWILIO_ACCOUNT_SID"],
        auth_token=DEMO_CREDENTIALS["TWILIO_AUTH_TOKEN"],
        requests_per_second=rps,
        throttle_burst=5.0,
        # Appointment reminders that patients answer (Chairside writes the answers back).
        phone=PhoneSettings(reminder_rate=DEMO_REMINDER_RATE),
    )
    return create_app(world, settings)


def _carestack(world: World, rps: float | None) -> Any:
    from simulators.carestack.app import CareStackSimSettings, create_app

    settings = CareStackSimSettings(
        vendor_key=DEMO_CREDENTIALS["CARESTACK_VENDOR_KEY"],
        account_keys={
            DEMO_CREDENTIALS["CARESTACK_ACCOUNT_ID"]: DEMO_CREDENTIALS["CARESTACK_ACCOUNT_KEY"]
        },
        requests_per_second=rps,
    )
    return create_app(world, settings)


def _stripe(world: World, rps: float | None) -> Any:
    from simulators.stripe.app import StripeSimSettings, create_app

    settings = StripeSimSettings(
        api_key=DEMO_CREDENTIALS["STRIPE_API_KEY"], requests_per_second=rps
    )
    return create_app(world, settings)


def _quickbooks(world: World, rps: float | None) -> Any:
    from simulators.quickbooks.app import QuickBooksSimSettings, create_app

    settings = QuickBooksSimSettings(
        client_id=DEMO_CREDENTIALS["QUICKBOOKS_CLIENT_ID"],
        client_secret=DEMO_CREDENTIALS["QUICKBOOKS_CLIENT_SECRET"],
        initial_refresh_token=DEMO_CREDENTIALS["QUICKBOOKS_REFRESH_TOKEN"],
    )
    return create_app(world, settings)


# Vendor -> builds its app for the demo world; rps None = unthrottled.
DEMO_APPS: dict[str, Callable[[World, float | None], Any]] = {
    "opendental": _opendental,
    "carestack": _carestack,
    "nexhealth": _nexhealth,
    "twilio": _twilio,
    "stripe": _stripe,
    "quickbooks": _quickbooks,
}
