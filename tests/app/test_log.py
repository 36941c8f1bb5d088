import json

from app.log import REDACTED, configure_logging, get_logger


def test_one_json_event_per_line_without_phi(capsys) -> None:
    configure_logging("INFO", json=True)
    get_logger("t").info(
        "hook.answered", hook_instance="abc", patient_id="MRN-12345", access_token="eyJsecret", cards=2
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["event"] == "hook.answered" and event["cards"] == 2 and event["hook_instance"] == "abc"
    assert event["patient_id"] == REDACTED and event["access_token"] == REDACTED
    assert "MRN-12345" not in lines[0] and "eyJsecret" not in lines[0]


def test_module_level_logger_follows_later_configuration_and_stream(capsys) -> None:
    log = get_logger("early")  # as a module would, at import time, before configuration
    configure_logging("INFO", json=True)
    capsys.readouterr()
    log.warning("late.event", patient_name="Jane Doe")
    event = json.loads(capsys.readouterr().err.strip())
    assert event["logger_name"] == "early"
    assert event["patient_name"] == REDACTED
