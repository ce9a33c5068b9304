"""The system DB's transactions from several threads wait for each other instead of failing.

Each thread has its own connection (the tick, the trade stream's fills, the control socket).
A deferred BEGIN that reads and then writes after another connection wrote was answered
"database is locked" at once (no busy wait): 700 of 1,200 such transactions failed before
``atomic()`` began them IMMEDIATE.
"""

from __future__ import annotations

import threading

from db.system import SystemStore


def test_read_then_write_transactions_from_four_threads_all_commit(tmp_path):
    store = SystemStore(tmp_path / "system.db")
    errors: list[str] = []

    def work(k: int) -> None:
        for _ in range(150):
            try:
                with store.atomic():
                    before = store.get_setting(f"count{k}", "0")
                    store.set_setting(f"count{k}", str(int(before or 0) + 1))
            except Exception as e:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(e))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert errors == []
    assert [store.get_setting(f"count{k}") for k in range(4)] == ["150"] * 4


def test_a_failed_body_rolls_back_and_a_nested_one_is_a_savepoint(tmp_path):
    store = SystemStore(tmp_path / "system.db")
    try:
        with store.atomic():
            store.set_setting("a", "1")
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert store.get_setting("a") is None and not store.conn.in_transaction
    with store.atomic():
        store.set_setting("b", "1")
        try:
            with store.atomic():
                store.set_setting("c", "1")
                raise RuntimeError("inner")
        except RuntimeError:
            pass
    assert (store.get_setting("b"), store.get_setting("c")) == ("1", None)
