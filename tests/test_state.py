"""Sync state in SQLite: safe when many syncs start at once."""

from __future__ import annotations

import threading

from extract.state import SyncState


def test_many_syncs_can_create_the_state_store_at_once(tmp_path):
    for attempt in range(30):
        root = tmp_path / str(attempt)
        errors: list[Exception] = []

        def open_state(root=root, errors=errors) -> None:
            try:
                SyncState(root).cursor("od_a", "opendental", "patients")
            except Exception as error:  # collected: the assertion below names it
                errors.append(error)

        threads = [threading.Thread(target=open_state) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors, errors
