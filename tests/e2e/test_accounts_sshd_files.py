"""M05 and M09 end to end: the real daemon reads a test root (accounts made by useradd, an sshd
configuration read by the real ``sshd -T``, watched files), reports to a real centre, and:

- a second uid-0 account turns ``accounts-no-extra-uid0`` failing,
- ``PermitRootLogin yes`` turns ``sshd-no-root-password-login`` failing,
- the edits turn ``files-unchanged`` failing at once (the file watch), with path, hash and owner,
  and passing again with the next report; an edit made while the agent is stopped is found at
  its start, and a maintenance window allowing the rule accepts it (no incident for it);
- ``tillsyn-agent check`` on the same root fails on the first two.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, List

import requests

from tests.centre_process import CentreProcess
from tests.collectors.accounts.helpers import make_root, run, useradd
from tests.collectors.sshd.helpers import sshd_binary
from tests.e2e.harness import AgentProcess, agent_yaml, wait_until

UID0, ROOT_LOGIN, FILES = "accounts-no-extra-uid0", "sshd-no-root-password-login", "files-unchanged"
SSHD = "HostKey {key}\nPermitRootLogin no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"


def _node_root(tmp: Path) -> Path:
    root = make_root(tmp)
    useradd(root, "-m", "-s", "/bin/bash", "-p", "$6$salt$hash", "anna")
    ssh = root / "etc" / "ssh"
    ssh.mkdir()
    key = ssh / "ssh_host_ed25519_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)])
    (ssh / "sshd_config").write_text(SSHD.format(key=key))
    (root / "etc" / "crontab").write_text("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n")
    return root


def test_uid0_root_login_and_file_edits_fail_and_are_found_after_a_stop(
    centre: CentreProcess, make_agent: Callable[..., AgentProcess], api_key: Dict[str, str], tmp_path: Path
) -> None:
    binary = sshd_binary()
    root = _node_root(tmp_path)
    extra = (
        "  accounts: {interval: 10}\n"
        f"  sshd: {{interval: 10, sshd_binary: {binary}}}\n"
        "  file_integrity: {interval: 10, paths: [/etc/passwd, /etc/shadow, /etc/ssh/sshd_config, /etc/crontab]}\n"
    )
    agent = make_agent(agent_yaml(extra=extra))
    agent.env["TILLSYN_ROOT"] = str(root)  # the daemon and check read the test root (run/check --root)
    agent.start()

    def finding(rule: str) -> Dict[str, Any]:
        found = centre.get(f"/api/v1/findings?node={agent.agent_id}&rule={rule}", api_key)
        return found[0] if found else {}

    def status_is(rule: str, wanted: str) -> Callable[[], bool]:
        return lambda: finding(rule).get("status") == wanted

    def shows(rule: str, wanted: str) -> Callable[[], str]:
        return lambda: f"{rule} {wanted}: {finding(rule)}\n{agent.tail()}"

    for rule in (UID0, ROOT_LOGIN, FILES):
        wait_until(status_is(rule, "passing"), 60, shows(rule, "passing"), 0.5)

    # The three changes, within the daemon's one-second debounce: one round reports them.
    changed = time.monotonic()
    useradd(root, "-o", "-u", "0", "-g", "0", "-M", "-d", "/root", "-s", "/bin/bash", "toor")
    sshd_config = root / "etc" / "ssh" / "sshd_config"
    sshd_config.write_text(sshd_config.read_text().replace("PermitRootLogin no", "PermitRootLogin yes"))
    crontab = root / "etc" / "crontab"
    crontab.write_text(crontab.read_text() + "*/5 * * * * root /tmp/fetch.sh\n")
    for rule in (UID0, ROOT_LOGIN, FILES):
        wait_until(status_is(rule, "failing"), 30, shows(rule, "failing"), 0.3)
    seconds = time.monotonic() - changed
    assert seconds < 10, f"the watch should report at once, not at the 10 s interval ({seconds:.1f} s)"

    uid0 = finding(UID0)
    assert uid0["severity"] == "critical" and uid0["controls"] == ["M05"]
    (extra_root,) = uid0["observed"]
    assert extra_root["uid"] == 0 and extra_root["shell"] == "/bin/bash"
    assert extra_root["user"].startswith("u-")  # pseudonymised (not an account of this host)
    # the rule's sentence, with the observed value in words
    assert f"account {extra_root['user']} has user id 0, the powers of root (shell /bin/bash)" in uid0["message"]
    login = finding(ROOT_LOGIN)
    assert login["observed"] == [{"context": "global", "permit_root_login": "yes"}], login
    assert "sshd lets root log in with a password (global: PermitRootLogin yes)" in login["message"], login
    files = finding(FILES)
    by_path = {c["path"]: c for c in files["observed"]}
    assert {"/etc/passwd", "/etc/ssh/sshd_config", "/etc/crontab"} <= set(by_path), files
    assert by_path["/etc/crontab"]["sha256"] == hashlib.sha256(crontab.read_bytes()).hexdigest()
    assert by_path["/etc/crontab"]["change"] == "modified" and by_path["/etc/crontab"]["owner"] == "root"
    assert by_path["/etc/crontab"]["actor_note"].startswith("who changed it is unknown")  # no auditd here
    assert "/etc/crontab was modified at " in files["message"], files
    assert f", now root:root mode 0644, SHA-256 {by_path['/etc/crontab']['sha256']}" in files["message"], files

    # The next report has no new change: the finding passes again (the ledger keeps the change).
    wait_until(status_is(FILES, "passing"), 30, lambda: f"{FILES} passing again: {finding(FILES)}", 0.5)

    # Changed while the agent is stopped, under a declared maintenance window that allows the rule:
    # found by its first run after the start, and accepted (no incident pages anyone for it).
    assert agent.stop() == 0
    centre.cli("window", "create", "--agent", agent.agent_id, "--for", "1h", "--reason", "CHG-7", "--allows", FILES)
    crontab.write_text(crontab.read_text().replace("/tmp/fetch.sh", "/usr/local/bin/fetch.sh"))
    agent.start()

    def latest_changes() -> Dict[str, Any]:
        response = requests.get(f"{centre.url}/api/v1/nodes/{agent.agent_id}", headers=api_key, timeout=10)
        evidence: List[Dict[str, Any]] = response.json()["evidence"]
        record: Any = next((e["record"] for e in evidence if e["collector"] == "file_integrity"), {})
        observed: Dict[str, Any] = (json.loads(record) if isinstance(record, str) else record).get("observed", {})
        return observed if observed.get("changes") else {}

    # the first report after the start holds the change (the next run, 10 s later, has none)
    after_start = wait_until(latest_changes, 40, lambda: f"the change made while stopped\n{agent.tail()}", 0.3)
    assert [c["path"] for c in after_start["changes"]] == ["/etc/crontab"]
    assert after_start["found_at_startup"] is True
    wait_until(status_is(FILES, "failing"), 20, lambda: f"{FILES} failing after start: {finding(FILES)}", 0.5)

    def file_incidents() -> List[Dict[str, Any]]:
        return [i for i in centre.get(f"/api/v1/incidents?node={agent.agent_id}", api_key) if i["rule_id"] == FILES]

    # The first edit's incident (no window then) was still open when the window began (a fix must
    # last resolve_after_s, 60 s, before the resolve notice): the window accepts it, and the edit
    # made under the window opens none.
    wait_until(lambda: file_incidents() and all(i["status"] == "resolved" for i in file_incidents()), 40, "resolved")
    (incident,) = file_incidents()
    shown: Any = centre.get(f"/api/v1/incidents/{incident['id']}", api_key)
    resolved = [e for e in shown["timeline"] if e["kind"] == "resolved"]
    assert len(resolved) == 1 and resolved[0]["detail"].startswith("accepted: maintenance window"), shown
    assert agent.stop() == 0

    # The agent's own check on the same root: the two M05 deviations fail it.
    checked = agent.cli("check", "--json")
    assert checked.returncode == 1, checked.stderr
    verdicts = {r["rule"]: r["verdict"] for r in json.loads(checked.stdout)}
    assert verdicts[UID0] == "failing" and verdicts[ROOT_LOGIN] == "failing"
    assert verdicts[FILES] == "passing"  # the daemon took the changes in; check leaves its baseline alone
