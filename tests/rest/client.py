"""Drives ferry's REST API with kafka-connect-py (PyPI), a Kafka Connect client written for
Apache Kafka Connect, not for ferry. Usage: client.py <base-url> <topic> <out1> <out2> <count>.
Exits 0 after printing OK; any mismatch raises (non-zero exit, traceback on stderr)."""

import sys
import time

from kafka_connect import KafkaConnect

url, topic, out1, out2, count = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
kc = KafkaConnect(url=url)


def wait(what, check, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def state(name):
    return kc.get_connector_status(name)["connector"]["state"]


def config(out):
    return {
        "name": "py",
        "connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
        "tasks.max": "1",
        "topics": topic,
        "file": out,
    }


info = kc.get_cluster_info()
assert isinstance(info["version"], str) and "kafka_cluster_id" in info, info

created = kc.create_connector({"name": "py", "config": config(out1)})
assert created["name"] == "py" and created["type"] == "sink", created
wait("the records in the first file", lambda: len(lines(out1)) == count)
assert "py" in kc.list_connectors(), kc.list_connectors()
expanded = kc.list_connectors(expand="status")
assert expanded["py"]["status"]["connector"]["state"] == "RUNNING", expanded
assert kc.get_connector("py")["config"]["file"] == out1
assert kc.get_connector_config("py")["file"] == out1
assert state("py") == "RUNNING"
tasks = kc.list_connector_tasks("py")
assert tasks[0]["id"] == {"connector": "py", "task": 0}, tasks
assert kc.get_connector_task_status("py", 0)["state"] == "RUNNING"

updated = kc.update_connector("py", config(out2))
assert updated["config"]["file"] == out2, updated
assert kc.get_connector_config("py")["file"] == out2

kc.pause_connector("py")
wait("PAUSED", lambda: state("py") == "PAUSED")
kc.resume_connector("py")
wait("RUNNING after resume", lambda: state("py") == "RUNNING")

accepted = kc.restart_connector("py", include_tasks=True, only_failed=False)
assert accepted["tasks"][0]["state"] == "RESTARTING", accepted
assert kc.restart_connector("py") is None  # 204: Connect's plain restart
wait("RUNNING after restart", lambda: state("py") == "RUNNING")

plugins = kc.list_connector_plugins()
assert any(p["class"] == "org.apache.kafka.connect.file.FileStreamSinkConnector" for p in plugins), plugins
checked = kc.validate_connector_config("FileStreamSinkConnector", config(out2))
assert checked["error_count"] == 0, checked

kc.stop_connector("py")
wait("STOPPED", lambda: state("py") == "STOPPED")
kc.delete_connector("py")
assert "py" not in kc.list_connectors()
print("OK")
