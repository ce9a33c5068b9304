"""The kiosk's pre-start screen detection, against fake /sys/class/drm and /dev/dri trees shaped
like a Pi 4's and a Pi 5's, and the rotation/touch settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.ops import display as d

ROOT = Path(__file__).resolve().parents[2]


class FakeDrm:
    """``sys/class/drm`` and ``dev/dri`` as the kernel and udev lay them out."""

    def __init__(self, base: Path) -> None:
        self.sys = base / "sys/class/drm"
        self.dev = base / "dev/dri"
        self.sys.mkdir(parents=True)
        (self.dev / "by-path").mkdir(parents=True)
        (self.sys / "version").write_text("drm 1.1.0 20060810\n")

    def card(self, n: int, driver: str, bus: str, *, render: int | None = None) -> str:
        card = f"card{n}"
        dev = self.sys.parent.parent / "devices/platform" / bus
        (dev / "drm" / card).mkdir(parents=True)
        drivers = self.sys.parent.parent / "bus/platform/drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        os.symlink(drivers, dev / "driver")
        os.symlink(dev / "drm" / card, self.sys / card)
        os.symlink(dev, dev / "drm" / card / "device")
        (self.dev / card).write_text("")
        os.symlink(f"../{card}", self.dev / "by-path" / f"platform-{bus}-card")
        if render is not None:
            (self.dev / f"renderD{render}").write_text("")
            os.symlink(f"../renderD{render}", self.dev / "by-path" / f"platform-{bus}-render")
        return card

    def connector(self, card: str, name: str, status: str = "disconnected",
                  modes: tuple[str, ...] = ()) -> Path:
        c = self.sys / f"{card}-{name}"
        c.mkdir()
        (c / "status").write_text(status + "\n")
        (c / "modes").write_text("".join(m + "\n" for m in modes))
        (c / "enabled").write_text("enabled\n" if status == "connected" else "disabled\n")
        return c

    def plug(self, card: str, name: str, modes: tuple[str, ...]) -> None:
        c = self.sys / f"{card}-{name}"
        (c / "status").write_text("connected\n")
        (c / "modes").write_text("".join(m + "\n" for m in modes))


def pi4(base: Path, *, dsi: bool = False, hdmi: bool = False) -> FakeDrm:
    """Pi 4: card0 the render-only v3d GPU, card1 vc4 with two HDMI ports and the DSI port."""
    t = FakeDrm(base)
    t.card(0, "v3d", "fec00000.v3d", render=128)
    vc4 = t.card(1, "vc4-drm", "gpu")
    t.connector(vc4, "HDMI-A-1", "connected" if hdmi else "disconnected",
                ("1920x1080", "1280x720") if hdmi else ())
    t.connector(vc4, "HDMI-A-2")
    t.connector(vc4, "DSI-1", "connected" if dsi else "disconnected",
                ("800x480",) if dsi else ())
    return t


def pi5(base: Path, *, dsi: bool = False, hdmi: bool = False) -> FakeDrm:
    """Pi 5: v3d render-only, vc4 (HDMI only) on axi:gpu, the DSI panel on RP1's own DRM
    device (drm-rp1-dsi), probed last."""
    t = FakeDrm(base)
    t.card(0, "v3d", "1002000000.v3d", render=128)
    vc4 = t.card(1, "vc4-drm", "axi:gpu")
    t.connector(vc4, "HDMI-A-1", "connected" if hdmi else "disconnected",
                ("3840x2160", "1920x1080") if hdmi else ())
    t.connector(vc4, "HDMI-A-2")
    rp1 = t.card(2, "drm-rp1-dsi", "1f00130000.dsi")
    t.connector(rp1, "DSI-1", "connected" if dsi else "disconnected",
                ("720x1280",) if dsi else ())
    return t


def prepare(t: FakeDrm, out: Path, *extra: str) -> int:
    return d.main(["prepare", "--sys", str(t.sys), "--dev", str(t.dev), "--out", str(out),
                   "--wait", "0", *extra])


def test_pi4_dsi_touchscreen(tmp_path: Path) -> None:
    t = pi4(tmp_path, dsi=True)
    cons = d.scan(t.sys)
    assert [(c.card, c.name) for c in cons] == [("card1", "DSI-1"), ("card1", "HDMI-A-1"),
                                                ("card1", "HDMI-A-2")]
    chosen = d.choose(cons)
    assert chosen is not None and chosen.name == "DSI-1" and chosen.driver == "vc4-drm"
    assert chosen.size == (800, 480)
    out = tmp_path / "run/eglfs.json"
    assert prepare(t, out) == 0
    cfg = json.loads(out.read_text())
    # The stable link of card1, never the render-only card0.
    assert cfg["device"] == str(t.dev / "by-path/platform-gpu-card")
    assert os.path.realpath(cfg["device"]) == str(t.dev / "card1")
    assert cfg["outputs"] == [{"name": "DSI1", "mode": "preferred", "primary": True},
                              {"name": "HDMI1", "mode": "off"},
                              {"name": "HDMI2", "mode": "off"}]
    assert cfg["hwcursor"] is False


def test_pi4_hdmi_monitor(tmp_path: Path) -> None:
    t = pi4(tmp_path, hdmi=True)
    out = tmp_path / "eglfs.json"
    assert prepare(t, out) == 0
    cfg = json.loads(out.read_text())
    assert os.path.realpath(cfg["device"]) == str(t.dev / "card1")
    primary = [o for o in cfg["outputs"] if o.get("primary")]
    assert primary == [{"name": "HDMI1", "mode": "preferred", "primary": True}]
    assert {o["name"] for o in cfg["outputs"] if o["mode"] == "off"} == {"HDMI2", "DSI1"}


def test_pi5_dsi_on_rp1_is_its_own_device(tmp_path: Path) -> None:
    t = pi5(tmp_path, dsi=True)
    out = tmp_path / "eglfs.json"
    assert prepare(t, out) == 0
    cfg = json.loads(out.read_text())
    assert cfg["device"] == str(t.dev / "by-path/platform-1f00130000.dsi-card")
    assert os.path.realpath(cfg["device"]) == str(t.dev / "card2")
    # Only the outputs of that device: vc4's HDMI ports are another device.
    assert cfg["outputs"] == [{"name": "DSI1", "mode": "preferred", "primary": True}]
    chosen = d.choose(d.scan(t.sys))
    assert chosen is not None and chosen.driver == "drm-rp1-dsi"
    assert d.suggested_rotation(chosen.size) == 90  # Touch Display 2 is portrait


def test_card_numbers_follow_the_probe_order_but_the_link_does_not(tmp_path: Path) -> None:
    """The same Pi 4 with vc4 probed first: vc4 is card0 now; the by-path name is unchanged."""
    t = FakeDrm(tmp_path)
    vc4 = t.card(0, "vc4-drm", "gpu")
    t.card(1, "v3d", "fec00000.v3d", render=128)
    t.connector(vc4, "DSI-1", "connected", ("800x480",))
    out = tmp_path / "eglfs.json"
    assert prepare(t, out) == 0
    assert json.loads(out.read_text())["device"] == str(t.dev / "by-path/platform-gpu-card")


def test_without_a_by_path_link_the_card_node_is_used(tmp_path: Path) -> None:
    t = pi4(tmp_path, dsi=True)
    for link in (t.dev / "by-path").iterdir():
        link.unlink()
    assert d.stable_device("card1", t.dev) == t.dev / "card1"


def test_nothing_connected_fails_after_the_wait_and_names_the_connectors(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = pi4(tmp_path)
    out = tmp_path / "eglfs.json"
    assert prepare(t, out) == d.EXIT_NO_SCREEN
    assert not out.exists()
    said = capsys.readouterr().out
    assert "no screen connected" in said
    assert "DSI-1 on card1 (disconnected" in said and "HDMI-A-1 on card1" in said


def test_no_drm_at_all_says_to_turn_on_kms(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    t = FakeDrm(tmp_path)
    assert prepare(t, tmp_path / "eglfs.json") == d.EXIT_NO_SCREEN
    assert "vc4-kms-v3d" in capsys.readouterr().out


def test_two_outputs_dsi_wins_unless_one_is_named(tmp_path: Path) -> None:
    t = pi4(tmp_path, dsi=True, hdmi=True)
    out = tmp_path / "eglfs.json"
    assert prepare(t, out) == 0
    outputs = json.loads(out.read_text())["outputs"]
    assert outputs[0] == {"name": "DSI1", "mode": "preferred", "primary": True}
    assert {"name": "HDMI1", "mode": "off"} in outputs  # the second screen stays dark
    for name in ("HDMI-A-1", "HDMI1", "card1-HDMI-A-1"):
        assert prepare(t, out, "--output", name) == 0
        outputs = json.loads(out.read_text())["outputs"]
        assert outputs[0] == {"name": "HDMI1", "mode": "preferred", "primary": True}
        assert {"name": "DSI1", "mode": "off"} in outputs


def test_the_named_output_comes_from_the_environment(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    t = pi5(tmp_path, dsi=True, hdmi=True)
    out = tmp_path / "eglfs.json"
    monkeypatch.setenv("AUTOTRADER_DISPLAY_OUTPUT", "HDMI-A-1")
    assert prepare(t, out) == 0
    cfg = json.loads(out.read_text())
    assert os.path.realpath(cfg["device"]) == str(t.dev / "card1")
    assert cfg["outputs"] == [{"name": "HDMI1", "mode": "preferred", "primary": True},
                              {"name": "HDMI2", "mode": "off"}]
    # A named output that is not plugged in is waited for, not swapped for another.
    monkeypatch.setenv("AUTOTRADER_DISPLAY_OUTPUT", "HDMI-A-2")
    assert prepare(t, out) == d.EXIT_NO_SCREEN


def test_a_slow_screen_is_waited_for_with_a_message(tmp_path: Path) -> None:
    t = pi5(tmp_path)
    now = [0.0]
    said: list[str] = []

    def sleep(s: float) -> None:
        now[0] += s
        if now[0] >= 40:  # Touch Display 2 lights up after 40 s
            t.plug("card2", "DSI-1", ("720x1280",))

    chosen, _ = d.wait_for_output(t.sys, None, 90, said.append, sleep=sleep,
                                  monotonic=lambda: now[0])
    assert chosen is not None and (chosen.card, chosen.name) == ("card2", "DSI-1")
    assert 40 <= now[0] <= 41
    waits = [m for m in said if "waiting for a screen" in m]
    assert 2 <= len(waits) <= 4  # at the start, then every 15 s: not once a second
    assert "up to 90 s" in waits[0]
    assert said[-1].startswith("screen found after 40 s")


def test_the_wait_ends_at_the_time_set(tmp_path: Path) -> None:
    t = pi4(tmp_path)
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    chosen, cons = d.wait_for_output(t.sys, None, 30, lambda m: None, sleep=sleep,
                                     monotonic=lambda: now[0])
    assert chosen is None and len(cons) == 3
    assert 30 <= now[0] < 31


def test_bad_wait_setting_is_a_config_error(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    t = pi4(tmp_path, dsi=True)
    monkeypatch.setenv("AUTOTRADER_DISPLAY_WAIT", "-5")
    assert d.main(["prepare", "--sys", str(t.sys), "--dev", str(t.dev),
                   "--out", str(tmp_path / "x.json")]) == d.EXIT_CONFIG


def test_console_message_is_written_to_the_console(tmp_path: Path) -> None:
    t = pi4(tmp_path)
    console = tmp_path / "tty1"
    console.write_text("")
    assert prepare(t, tmp_path / "x.json", "--console", str(console)) == d.EXIT_NO_SCREEN
    assert "no screen connected" in console.read_text()


@pytest.mark.parametrize(("kernel", "qt"), [
    ("DSI-1", "DSI1"), ("DSI-2", "DSI2"), ("HDMI-A-1", "HDMI1"), ("HDMI-A-2", "HDMI2"),
    ("DP-1", "DP1"), ("eDP-1", "eDP1"), ("DVI-D-1", "DVI1"), ("Composite-1", "Composite1"),
    ("DPI-1", "DPI1"),
])
def test_qt_output_names(kernel: str, qt: str) -> None:
    assert d.qt_output_name(kernel) == qt


# --- the display guard ----------------------------------------------------------------------
def test_guard_refuses_when_another_program_holds_the_screen(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "eglfs.json"
    cfg.write_text(json.dumps({"device": "/dev/dri/by-path/platform-gpu-card"}))
    monkeypatch.setenv("QT_QPA_PLATFORM", "eglfs")
    seen: list[str] = []
    monkeypatch.setattr(d, "display_busy", lambda dev: seen.append(dev) or True)
    monkeypatch.setattr(os, "execvp", lambda *a: pytest.fail("must not start the app"))
    assert d.main(["guard", "--config", str(cfg), "--", "true"]) == d.EXIT_DISPLAY_BUSY
    assert seen == ["/dev/dri/by-path/platform-gpu-card"]
    assert "another program holds the screen" in capsys.readouterr().err


def test_guard_runs_the_app_when_the_screen_is_free(tmp_path: Path) -> None:
    cfg = tmp_path / "eglfs.json"
    dev = tmp_path / "card1"
    dev.write_text("")  # not a DRM device: cannot tell, so the app is started
    cfg.write_text(json.dumps({"device": str(dev)}))
    env = dict(os.environ, QT_QPA_PLATFORM="eglfs", PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "app.ops.display", "guard", "--config", str(cfg),
                        "--", "sh", "-c", "echo started $0 $1", "run", "--kiosk"],
                       capture_output=True, text=True, env=env, timeout=30, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "started run --kiosk"


def test_guard_without_a_screen_config_is_a_config_error(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QT_QPA_PLATFORM", "eglfs")
    assert d.main(["guard", "--config", str(tmp_path / "none.json"), "--", "true"]) == \
        d.EXIT_CONFIG


def test_display_busy_cannot_tell_on_a_plain_file(tmp_path: Path) -> None:
    f = tmp_path / "card0"
    f.write_text("")
    assert d.display_busy(f) is None
    assert d.display_busy(tmp_path / "missing") is None


# --- rotation -------------------------------------------------------------------------------
def _apply(m: tuple[float, ...], u: float, v: float) -> tuple[float, float]:
    a, b, c, dd, e, f = m
    return (a * u + b * v + c, dd * u + e * v + f)


def test_qt_rotation_values_are_ones_qt_accepts() -> None:
    assert [d.qt_rotation(r) for r in d.ROTATIONS] == [0, 90, 180, -90]
    with pytest.raises(ValueError):
        d.qt_rotation(45)


@pytest.mark.parametrize(("deg", "expected"), [
    (0, "1 0 0 0 1 0"), (90, "0 -1 1 1 0 0"), (180, "-1 0 1 0 -1 1"), (270, "0 1 0 -1 0 1"),
])
def test_touch_matrices(deg: int, expected: str) -> None:
    assert d.format_matrix(d.touch_matrix(deg)) == expected


@pytest.mark.parametrize("deg", d.ROTATIONS)
def test_touch_follows_the_picture(deg: int) -> None:
    """A clockwise turn of the picture: the panel's top-left corner goes to the top-right
    after 90, to the bottom-right after 180, to the bottom-left after 270; the centre stays;
    every corner stays a corner (nothing lands off screen)."""
    m = d.touch_matrix(deg)
    top_left = {0: (0, 0), 90: (1, 0), 180: (1, 1), 270: (0, 1)}[deg]
    assert _apply(m, 0, 0) == pytest.approx(top_left)
    assert _apply(m, 0.5, 0.5) == pytest.approx((0.5, 0.5))
    corners = {(0, 0), (1, 0), (0, 1), (1, 1)}
    assert {tuple(round(x, 9) for x in _apply(m, *p)) for p in corners} == corners


def test_quarter_turns_compose() -> None:
    def compose(m1, m2):  # m2 after m1
        return lambda u, v: _apply(m2, *_apply(m1, u, v))

    for p in [(0.1, 0.7), (0.9, 0.2)]:
        assert compose(d.touch_matrix(90), d.touch_matrix(90))(*p) == \
            pytest.approx(_apply(d.touch_matrix(180), *p))
        assert compose(d.touch_matrix(90), d.touch_matrix(270))(*p) == pytest.approx(p)


def test_rotation_env_sets_both_together() -> None:
    assert d.rotation_env(270) == {"QT_QPA_EGLFS_ROTATION": "-90",
                                   "QT_QPA_LIBINPUT_TOUCH_MATRIX": "0 1 0 -1 0 1"}
    assert d.suggested_rotation((720, 1280)) == 90
    assert d.suggested_rotation((800, 480)) == 0
    assert d.suggested_rotation(None) == 0


def test_touch_matrix_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert d.main(["touch-matrix", "180"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "QT_QPA_EGLFS_ROTATION=180", "QT_QPA_LIBINPUT_TOUCH_MATRIX=-1 0 1 0 -1 1"]


# --- rotation from the config ([ui] rotation) -----------------------------------------------
def _guard_env(tmp_path: Path, config: str | None, **extra: str) -> dict[str, str]:
    cfg = tmp_path / "eglfs.json"
    dev = tmp_path / "card1"
    dev.write_text("")
    cfg.write_text(json.dumps({"device": str(dev)}))
    conf = tmp_path / "autotrader.toml"
    conf.write_text(config or "")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTOTRADER_", "QT_"))}
    env.update(QT_QPA_PLATFORM="eglfs", PYTHONPATH=str(ROOT), AUTOTRADER_CONFIG=str(conf),
               QT_QPA_EGLFS_KMS_CONFIG=str(cfg), **extra)
    return env


def _run_guard(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The guard as the unit runs it; the 'app' prints the rotation settings it was given."""
    show = 'echo "R=$QT_QPA_EGLFS_ROTATION M=$QT_QPA_LIBINPUT_TOUCH_MATRIX"'
    return subprocess.run([sys.executable, "-m", "app.ops.display", "guard", "--", "sh", "-c",
                           show], capture_output=True, text=True, env=env, timeout=30, cwd=ROOT)


def test_rotation_from_the_config_file_wins_over_autotrader_env(tmp_path: Path) -> None:
    """The installer wrote 90 (a portrait panel); the owner set 270 in the config: both the
    picture (Qt's -90) and the touch turn to 270, and the journal says what was replaced."""
    env = _guard_env(tmp_path, "[ui]\nrotation = 270\n", QT_QPA_EGLFS_ROTATION="90",
                     QT_QPA_LIBINPUT_TOUCH_MATRIX="0 -1 1 1 0 0")
    r = _run_guard(env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == f"R=-90 M={d.format_matrix(d.touch_matrix(270))}"
    assert f"rotation 270 from {tmp_path / 'autotrader.toml'}" in lines[0]
    assert "instead of autotrader.env's" in lines[0]
    assert "QT_QPA_EGLFS_ROTATION=90" in lines[0]


def test_rotation_from_the_environment(tmp_path: Path) -> None:
    r = _run_guard(_guard_env(tmp_path, None, AUTOTRADER_UI_ROTATION="180"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "R=180 M=-1 0 1 0 -1 1"
    assert "rotation 180 from env AUTOTRADER_UI_ROTATION" in r.stdout


def test_no_rotation_in_the_config_leaves_autotrader_env_alone(tmp_path: Path) -> None:
    env = _guard_env(tmp_path, "[ui]\nidle_lock_seconds = 60\n", QT_QPA_EGLFS_ROTATION="90",
                     QT_QPA_LIBINPUT_TOUCH_MATRIX="0 -1 1 1 0 0")
    r = _run_guard(env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "R=90 M=0 -1 1 1 0 0"


@pytest.mark.parametrize("config", ["[ui]\nrotation = 45\n", "[ui\nrotation = 90\n"])
def test_a_bad_config_does_not_stop_the_guard(tmp_path: Path, config: str) -> None:
    """A rotation Qt cannot do, or a broken file: the app starts (and reports the config
    error itself, with its line); nothing is rotated by the guard."""
    r = _run_guard(_guard_env(tmp_path, config))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "R= M="
    assert d.configured_rotation({"AUTOTRADER_CONFIG": str(tmp_path / "autotrader.toml")}) \
        is None


def test_rotation_zero_in_the_config_turns_a_rotated_install_back(tmp_path: Path) -> None:
    (tmp_path / "autotrader.toml").write_text("")
    env = {"AUTOTRADER_UI_ROTATION": "0", "QT_QPA_EGLFS_ROTATION": "90",
           "AUTOTRADER_CONFIG": str(tmp_path / "autotrader.toml")}
    said = d.apply_configured_rotation(env)
    assert env["QT_QPA_EGLFS_ROTATION"] == "0"
    assert env["QT_QPA_LIBINPUT_TOUCH_MATRIX"] == "1 0 0 0 1 0"
    assert said is not None and said.startswith("rotation 0 from env")
