"""A data folder belongs to one mode: demo algorithms and bars never meet a real account."""

import pytest

from app.config import load_settings
from app.engine.facade import EngineError
from app.engine.runner import build_engine, claim_data_folder
from db.system import SystemStore


def test_default_data_folders_are_per_mode(tmp_path):
    keys = {"APCA_API_KEY_ID": "PK" "TESTTESTTESTTEST00", "APCA_API_SECRET_KEY": "not-real"}
    demo = load_settings(tmp_path / "none.toml", env={})
    paper = load_settings(tmp_path / "none.toml", env=keys)
    live = load_settings(tmp_path / "none.toml", env=keys | {"AUTOTRADER_MODE": "live"})
    assert demo.data_path.name == "demo" and paper.data_path.name == "paper"
    assert live.data_path.name == "live"
    assert len({demo.system_db_path, paper.system_db_path, live.system_db_path}) == 3
    explicit = load_settings(tmp_path / "none.toml", env={"AUTOTRADER_DATA_DIR": str(tmp_path)})
    assert explicit.data_path == tmp_path


def test_a_folder_that_ran_the_demo_refuses_paper(data_dir):
    system = SystemStore(data_dir / "system.db")
    claim_data_folder(system, "demo", data_dir)
    claim_data_folder(system, "demo", data_dir)  # the same mode again is fine
    with pytest.raises(EngineError, match="holds a DEMO session; it cannot run in PAPER"):
        claim_data_folder(system, "paper", data_dir)
    with pytest.raises(EngineError, match="holds a DEMO session; it cannot run in LIVE"):
        claim_data_folder(system, "live", data_dir)
    system.close()


def test_build_engine_claims_the_folder_for_the_demo(data_dir):
    settings = load_settings(data_dir / "none.toml", env={"AUTOTRADER_DATA_DIR": str(data_dir)})
    engine, _ = build_engine(settings)
    engine.close()
    system = SystemStore(data_dir / "system.db")
    assert system.get_setting("data_mode") == "demo"
    system.set_setting("data_mode", "paper")
    system.close()
    with pytest.raises(EngineError, match="holds a PAPER session; it cannot run in DEMO"):
        build_engine(settings)
