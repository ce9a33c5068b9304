"""PIN storage and lockout (Qt-free), on a real system DB and injected time."""

from __future__ import annotations

import pytest

from app.security import (
    FAILURES_KEY,
    PIN_HASH_KEY,
    SCRYPT_N,
    PinFormatError,
    PinGuard,
    hash_pin,
    lock_seconds,
    verify_hash,
)
from db.system import SystemStore
from tests.ui.conftest import FakeTime


def test_hash_is_salted_slow_and_verifies() -> None:
    a, b = hash_pin("1234"), hash_pin("1234")
    assert a != b  # a fresh salt each time
    assert a.startswith("scrypt$32768$8$1$")
    assert "1234" not in a
    assert verify_hash("1234", a) and verify_hash("1234", b)
    assert not verify_hash("1235", a)
    assert not verify_hash("1234", "garbage")


def test_pin_stored_only_as_hash(system_store: SystemStore) -> None:
    g = PinGuard(system_store)
    assert not g.is_set
    g.set_pin("908172")
    stored = system_store.get_setting(PIN_HASH_KEY)
    assert stored and "908172" not in stored
    rows = system_store.conn.execute("SELECT key, value FROM settings").fetchall()
    assert all("908172" not in str(v) for _, v in rows)
    assert g.check("908172").ok


@pytest.mark.parametrize("bad", ["", "123", "1234", "12345", "123456789", "12a456",
                                 " 123456"])
def test_pin_format(system_store: SystemStore, bad: str) -> None:
    with pytest.raises(PinFormatError):
        PinGuard(system_store).set_pin(bad)


def test_lock_seconds_doubles() -> None:
    assert [lock_seconds(n) for n in range(4, 9)] == [0, 30, 60, 120, 240]
    assert lock_seconds(100) == 86_400


def test_lockout_timing_and_restart(data_dir, system_store: SystemStore) -> None:
    now = FakeTime()
    g = PinGuard(system_store, now=now)
    g.set_pin("111111")
    for left in (4, 3, 2, 1):
        r = g.check("000000")
        assert not r.ok and r.locked_for == 0 and r.tries_left == left
        assert f"{left} tr" in r.message
    r = g.check("000000")  # 5th wrong try: locked for 30 s
    assert not r.ok and r.locked_for == 30 and "Locked for 30 s" in r.message
    # While locked even the right PIN is refused, and the refusal is not counted.
    now.advance(29)
    r = g.check("111111")
    assert not r.ok and 0 < r.locked_for <= 1 and r.message.startswith("Locked")
    assert int(system_store.get_setting(FAILURES_KEY)) == 5
    # A restart (a new guard on the same DB file) keeps the lock.
    g2 = PinGuard(SystemStore(data_dir / "system.db"), now=now)
    assert 0 < g2.locked_for() <= 1
    now.advance(1)
    assert g2.locked_for() == 0
    r = g2.check("000000")  # 6th miss: 60 s
    assert r.locked_for == 60
    now.advance(60)
    r = g2.check("000000")  # 7th: 120 s
    assert r.locked_for == 120
    now.advance(120)
    assert g2.check("111111").ok
    assert g2.failures == 0 and g2.locked_for() == 0


def test_clock_set_back_does_not_extend_lock(system_store: SystemStore) -> None:
    now = FakeTime()
    g = PinGuard(system_store, now=now)
    g.set_pin("111111")
    for _ in range(5):
        g.check("000000")
    now.advance(-10_000)  # the wall clock jumps back almost 3 hours
    assert g.locked_for() == 30


def test_existing_short_pin_still_unlocks_and_is_offered_an_upgrade(
        system_store: SystemStore) -> None:
    """PINs of 4 digits set before the 6-digit rule keep working; the unlock says to change
    it; a hash made with a lower cost is re-made with today's at the next unlock."""
    system_store.set_setting(PIN_HASH_KEY, hash_pin("2468", n=2**14))  # an older install
    g = PinGuard(system_store)
    r = g.check("2468")
    assert r.ok and r.upgrade and "6 to 8" in r.message
    stored = system_store.get_setting(PIN_HASH_KEY)
    assert stored.startswith(f"scrypt${SCRYPT_N}$8$1$") and verify_hash("2468", stored)
    assert not g.check("2469").ok
    g.set_pin("24681357")
    r = g.check("24681357")
    assert r.ok and not r.upgrade and r.message == ""
