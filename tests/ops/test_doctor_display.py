"""``autotrader doctor`` on a Pi kiosk install: the screen output, the device, the rotation,
checked against fake /sys/class/drm and /dev/dri trees."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.config import Settings, UiSettings
from app.ops.doctor import Doctor, render
from tests.ops.test_display import FakeDrm, pi4, pi5


class Kiosk:
    def __init__(self, tmp: Path, drm: FakeDrm) -> None:
        self.etc = tmp / "etc/autotrader"
        self.run = tmp / "run/autotrader"
        self.etc.mkdir(parents=True)
        self.run.mkdir(parents=True)
        self.drm = drm
        self.data = tmp / "data"
        self.env_lines: list[str] = []
        self.write_env()

    def write_env(self, *lines: str) -> None:
        (self.etc / "autotrader.env").write_text("# kiosk settings\n" + "".join(
            line + "\n" for line in lines))

    def eglfs(self, device: str) -> None:
        (self.run / "eglfs.json").write_text(json.dumps({"device": device}))

    def findings(self) -> dict[str, list]:
        d = Doctor(Settings(data_dir=str(self.data)), offline=True, kiosk_dir=self.etc,
                   kiosk_run_dir=self.run, drm_root=self.drm.sys, dev_root=self.drm.dev)
        d.check_kiosk_display()
        out: dict[str, list] = {}
        for f in d.findings:
            out.setdefault(f.check, []).append(f)
        print(render(d.findings))  # what the owner sees, in the test log
        return out


def one(findings: dict[str, list], check: str):
    assert len(findings.get(check, [])) == 1, findings
    return findings[check][0]


def test_not_a_kiosk_install_says_nothing(tmp_path: Path) -> None:
    drm = pi4(tmp_path / "hw", dsi=True)
    d = Doctor(Settings(data_dir=str(tmp_path)), offline=True, kiosk_dir=tmp_path / "none",
               kiosk_run_dir=tmp_path / "none", drm_root=drm.sys, dev_root=drm.dev)
    d.check_kiosk_display()
    assert d.findings == []


def test_pi4_dsi_connected_is_fine_and_lists_the_connectors(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, pi4(tmp_path / "hw", dsi=True))
    k.eglfs(str(k.drm.dev / "by-path/platform-gpu-card"))
    f = k.findings()
    out = one(f, "screen output")
    assert out.level == "ok"
    assert "DSI-1 on card1 (connected 800x480" in out.message
    assert "HDMI-A-1 on card1 (disconnected" in out.message
    assert one(f, "screen").level == "ok"


def test_no_screen_connected_says_which_connectors_exist(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, pi5(tmp_path / "hw"))
    out = one(k.findings(), "screen output")
    # A warning: the kiosk waits for it at each start, and an upgrade must not roll back.
    assert out.level == "warn" and "no screen is connected" in out.message
    assert "DSI-1 on card2 (disconnected, drm-rp1-dsi)" in out.message
    assert "cable" in out.fix


def test_named_output_not_connected(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, pi4(tmp_path / "hw", dsi=True))
    k.write_env("AUTOTRADER_DISPLAY_OUTPUT=HDMI-A-1")
    out = one(k.findings(), "screen output")
    assert out.level == "warn" and "HDMI-A-1 is not connected" in out.message
    assert "(DSI-1)" in out.fix  # the one that is connected
    k.write_env("AUTOTRADER_DISPLAY_OUTPUT=HDMI-A-9")
    out = one(k.findings(), "screen output")
    assert out.level == "FAIL" and "names no connector" in out.message
    k.write_env("AUTOTRADER_DISPLAY_OUTPUT=DSI1")
    assert one(k.findings(), "screen output").level == "ok"


def test_no_kms_at_all(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, FakeDrm(tmp_path / "hw"))
    out = one(k.findings(), "screen output")
    assert out.level == "FAIL" and "vc4-kms-v3d" in out.fix


def test_render_only_device_is_named_as_such(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, pi4(tmp_path / "hw", dsi=True))
    k.eglfs(str(k.drm.dev / "card0"))  # the v3d GPU: "no screens available" in Qt
    out = one(k.findings(), "screen")
    assert out.level == "FAIL" and "render-only" in out.message


def test_missing_device(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, pi4(tmp_path / "hw", dsi=True))
    k.eglfs("/dev/dri/card7")
    out = one(k.findings(), "screen")
    assert out.level == "FAIL" and "card7" in out.message
    assert str(k.drm.dev / "card1") in out.fix


@pytest.mark.parametrize(("lines", "level", "words"), [
    (("QT_QPA_EGLFS_ROTATION=90", "QT_QPA_LIBINPUT_TOUCH_MATRIX=0 -1 1 1 0 0"), "ok", "90 degrees"),
    (('QT_QPA_EGLFS_ROTATION=-90', 'QT_QPA_LIBINPUT_TOUCH_MATRIX="0 1 0 -1 0 1"'), "ok",
     "270 degrees"),
    (("QT_QPA_EGLFS_ROTATION=270",), "FAIL", "-90"),
    (("QT_QPA_EGLFS_ROTATION=90",), "warn", "taps land in the wrong place"),
    (("QT_QPA_EGLFS_ROTATION=180", "QT_QPA_LIBINPUT_TOUCH_MATRIX=0 -1 1 1 0 0"), "warn",
     "expected '-1 0 1 0 -1 1'"),
])
def test_rotation_and_touch(tmp_path: Path, lines: tuple[str, ...], level: str,
                            words: str) -> None:
    k = Kiosk(tmp_path, pi5(tmp_path / "hw", dsi=True))
    k.write_env(*lines)
    out = one(k.findings(), "rotation")
    assert out.level == level and words in out.message


def test_no_rotation_set_is_not_reported(tmp_path: Path) -> None:
    k = Kiosk(tmp_path, pi4(tmp_path / "hw", hdmi=True))
    assert "rotation" not in k.findings()


def test_rotation_from_the_config_is_reported_over_the_env_file(tmp_path: Path) -> None:
    """[ui] rotation wins (the kiosk's guard applies it): doctor says so instead of judging the
    env file's lines, which are not used then."""
    k = Kiosk(tmp_path, pi4(tmp_path / "hw", dsi=True))
    k.write_env("QT_QPA_EGLFS_ROTATION=270")  # Qt would reject it, but it is not used
    d = Doctor(Settings(data_dir=str(k.data), sources={"ui.rotation": "env AUTOTRADER_UI_ROTATION"},
                        ui=UiSettings(rotation=180)), offline=True, kiosk_dir=k.etc,
               kiosk_run_dir=k.run, drm_root=k.drm.sys, dev_root=k.drm.dev)
    d.check_kiosk_display()
    rot = [f for f in d.findings if f.check == "rotation"]
    assert len(rot) == 1 and rot[0].level == "ok", rot
    assert "180 degrees from env AUTOTRADER_UI_ROTATION" in rot[0].message
