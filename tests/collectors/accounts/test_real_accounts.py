"""Accounts made by useradd/usermod in a test root, login records by lastlog and utmpdump, keys by
ssh-keygen: what a sysadmin would see, and what the shipped rules say of it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from collectors.accounts import SPEC
from evidence.model import Status
from tests.collectors.accounts.helpers import NOW, add_key, context, make_root, run, useradd, wtmp_login
from tests.evidence.shipped import judge, judge_shipped


def _by_user(observed: dict) -> dict:  # type: ignore[type-arg]
    return {a["user"]: a for a in observed["accounts"]}


def test_a_clean_node_passes(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    useradd(root, "-m", "-s", "/bin/bash", "-G", "sudo", "anna")
    run(["usermod", "--prefix", str(root), "-p", "$6$salt$hash", "anna"])
    add_key(root, "anna", "ed25519", None, 'from="198.51.100.0/24,192.0.2.1",no-agent-forwarding')
    add_key(root, "anna", "rsa", 3072)
    wtmp_login(root, "anna", "2026-11-30T10:00:00,000000+00:00")
    (root / "etc" / "sudoers").write_text(
        "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"
    )
    outcome = SPEC.collect(context(root))
    assert outcome.status is Status.COMPLETE, outcome.gaps
    anna = _by_user(outcome.observed)["anna"]
    assert (anna["uid"], anna["personal"], anna["password"], anna["locked"]) == (1000, True, "hash", False)
    assert anna["last_login"] == "2026-11-30T10:00:00Z" and anna["dormant"] is False
    assert anna["admin_groups"] == ["sudo"]
    keys = anna["authorized_keys"]
    assert keys["count"] == 2 and keys["types"] == ["ssh-ed25519", "ssh-rsa"]
    assert keys["keys"][0] == {
        "type": "ssh-ed25519",
        "bits": 256,
        "options": ["from", "no-agent-forwarding"],
        "from": ["198.51.100.0/24", "192.0.2.1"],
    }
    assert keys["keys"][1]["bits"] == 3072
    assert "laptop" not in str(outcome.observed) and "AAAA" not in str(outcome.observed)  # never keys or comments
    assert outcome.observed["admin_group_members"] == [{"group": "sudo", "user": "anna"}]
    assert [(r["group"], r["all_commands"], r["nopasswd"]) for r in outcome.observed["sudo_rules"]] == [
        (None, True, False),
        ("sudo", True, False),
    ]
    assert set(judge_shipped("accounts", outcome, NOW).values()) == {"passing"}


def test_extra_uid0_empty_password_nopasswd_and_dormant_fail(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    useradd(root, "-o", "-u", "0", "-g", "0", "-M", "-d", "/root", "-s", "/bin/bash", "toor")
    useradd(root, "-m", "-s", "/bin/bash", "bertil")
    run(["usermod", "--prefix", str(root), "-p", "", "bertil"])  # an empty password
    useradd(root, "-m", "-s", "/bin/bash", "-u", "1000", "-o", "cecilia")
    run(["usermod", "--prefix", str(root), "-p", "$6$x$y", "cecilia"])
    # cecilia last logged in in the spring, more than dormant_days (90) before NOW
    wtmp_login(root, "cecilia", "2026-04-01T08:00:00,000000+00:00")
    (root / "etc" / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n#includedir /etc/sudoers.d\n")
    (root / "etc" / "sudoers.d" / "90-cloud-init-users").write_text(
        "# Created by cloud-init\nbertil ALL=(ALL) NOPASSWD:ALL\n"
    )
    (root / "etc" / "sudoers.d" / "README.txt").write_text(
        "bertil ALL=(ALL) NOPASSWD:ALL\n"
    )  # has a '.': sudo skips it
    outcome = SPEC.collect(context(root))
    accounts = _by_user(outcome.observed)
    assert accounts["toor"]["uid"] == 0 and accounts["toor"]["personal"] is False
    assert accounts["bertil"]["password"] == "empty"
    assert outcome.observed["duplicate_uids"] == [
        {"uid": 0, "users": ["root", "toor"]},
        {"uid": 1000, "users": ["bertil", "cecilia"]},
    ]
    nopasswd = [r for r in outcome.observed["sudo_rules"] if r["nopasswd"]]
    assert nopasswd == [
        {
            "source": "/etc/sudoers.d/90-cloud-init-users:2",
            "runas": "ALL",
            "all_commands": True,
            "nopasswd": True,
            "tag": "NOPASSWD",
            "nopasswd_by": None,
            "user": "bertil",
            "group": None,
            "kind": "user",
        }
    ]
    assert accounts["cecilia"]["last_login"] == "2026-04-01T08:00:00Z" and accounts["cecilia"]["dormant"] is True
    assert SPEC.summary(outcome.observed) == (
        "4 login accounts, 2 with uid 0, 1 empty passwords, 1 dormant, 2 sudo rules (1 NOPASSWD)"
    )
    verdicts = judge_shipped("accounts", outcome, NOW)
    assert verdicts == {
        "accounts-no-extra-uid0": "failing",
        "accounts-no-shared-uid": "failing",
        "accounts-no-empty-password": "failing",
        "accounts-no-dormant": "failing",
        "accounts-sudo-needs-password": "failing",
    }


def test_locked_and_expired_accounts_are_closed_not_dormant(tmp_path: Path) -> None:
    """usermod -L puts '!' before the hash, usermod -e sets the expiry day in shadow: both are
    reported, and neither account counts as dormant (it cannot log in)."""
    root = make_root(tmp_path)
    for name in ("frida", "gustav"):
        useradd(root, "-m", "-s", "/bin/bash", "-p", "$6$salt$hash", name)
    run(["usermod", "--prefix", str(root), "-L", "frida"])
    run(["usermod", "--prefix", str(root), "-e", "2026-06-30", "gustav"])
    later = NOW.replace(year=2027)
    outcome = SPEC.collect(context(root, now=later))
    accounts = _by_user(outcome.observed)
    frida, gustav = accounts["frida"], accounts["gustav"]
    assert (frida["password"], frida["locked"], frida["expired"], frida["dormant"]) == ("locked", True, False, False)
    assert (gustav["password"], gustav["locked"], gustav["expires"]) == ("hash", False, "2026-06-30")
    assert gustav["expired"] is True and gustav["dormant"] is False
    assert set(judge_shipped("accounts", outcome, later).values()) == {"passing"}


def test_defaults_not_authenticate_is_a_rule_without_password(tmp_path: Path) -> None:
    """'Defaults:deploy !authenticate' lets deploy's rules run without a password, as NOPASSWD does;
    a rule's own PASSWD: tag wins over it, and other users' rules still ask (sudoers(5))."""
    root = make_root(tmp_path)
    (root / "etc" / "sudoers").write_text(
        "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n"
    )
    drop_in = root / "etc" / "sudoers.d" / "50-deploy"
    drop_in.write_text(
        "Defaults:deploy !authenticate\n"
        "deploy ALL=(root) /usr/bin/systemctl restart app\n"
        "deploy ALL=(root) PASSWD: /usr/bin/apt-get\n"
    )
    if shutil.which("visudo"):  # sudo's own parser accepts the files as written
        run(["visudo", "-c", "-q", "-f", str(root / "etc" / "sudoers")])
        run(["visudo", "-c", "-q", "-f", str(drop_in)])
    outcome = SPEC.collect(context(root))
    rules = [(r["user"] or r["group"], r["nopasswd"], r["nopasswd_by"]) for r in outcome.observed["sudo_rules"]]
    assert rules == [
        ("root", False, None),
        ("sudo", False, None),
        ("deploy", True, "/etc/sudoers.d/50-deploy:1 (Defaults !authenticate)"),
        ("deploy", False, None),
    ]
    said = judge("accounts", outcome, NOW)["accounts-sudo-needs-password"]
    assert said.verdict.value == "failing"
    assert said.message == (
        "a sudo rule in /etc/sudoers.d/50-deploy:2 for user deploy needs no password (all commands: no),"
        " through /etc/sudoers.d/50-deploy:1 (Defaults !authenticate)"
    )
    # for everyone, later in the main file: the group rule needs no password either
    (root / "etc" / "sudoers").write_text((root / "etc" / "sudoers").read_text() + "Defaults !authenticate\n")
    drop_in.unlink()
    rules = [(r["group"], r["nopasswd"]) for r in SPEC.collect(context(root)).observed["sudo_rules"]]
    assert rules == [(None, True), ("sudo", True)]


def test_never_logged_in_is_dormant_only_once_the_password_is_old(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    useradd(root, "-m", "-s", "/bin/bash", "-p", "$6$a$b", "david")  # password set today (useradd's day)
    today = _by_user(SPEC.collect(context(root)).observed)["david"]
    assert today["never_logged_in"] is True
    # useradd writes today's day into shadow; seen 100 days later the account is dormant
    from datetime import timedelta

    later = _by_user(SPEC.collect(context(root, now=NOW.replace(year=2027) + timedelta(days=100))).observed)["david"]
    assert later["dormant"] is True
    # a lastlog record (lastlog -S writes "now") ends "never"
    run(["lastlog", "-R", str(root), "-S", "-u", "david"])
    seen = _by_user(SPEC.collect(context(root, now=NOW.replace(year=2030))).observed)["david"]
    assert seen["never_logged_in"] is False and seen["last_login"] is not None


def test_unreadable_files_are_gaps_and_the_rules_are_unknown(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    useradd(root, "-m", "-s", "/bin/bash", "erik")
    (root / "etc" / "sudoers").write_text("root ALL=(ALL:ALL) ALL\n")
    for name in ("etc/shadow", "etc/sudoers", "var/log/lastlog", "var/log/wtmp"):
        os.unlink(root / name)
        (root / name).mkdir()  # reading a directory fails like an unreadable file (root reads any mode)
    outcome = SPEC.collect(context(root))
    assert outcome.status is Status.PARTIAL
    whats = {g.what for g in outcome.gaps}
    assert {"password state and expiry", "sudo rules in /etc/sudoers", "dormant accounts"} <= whats
    erik = _by_user(outcome.observed)["erik"]
    assert erik["password"] is None and erik["dormant"] is None
    verdicts = judge_shipped("accounts", outcome, NOW)
    assert verdicts["accounts-no-empty-password"] == "unknown"
    assert verdicts["accounts-sudo-needs-password"] == "unknown"
    assert verdicts["accounts-no-dormant"] == "unknown"
    assert verdicts["accounts-no-extra-uid0"] == "passing"  # passwd was read: that is known


def test_a_person_has_one_pseudonym_across_collectors(tmp_path: Path) -> None:
    """M13: the accounts list, a file_integrity change owned by the person (and their crontab's
    path), and sshd's AllowUsers and Match User block name the same pseudonym, so a finding can be
    followed up without the name leaving the node."""
    from agent.pseudonymise import Pseudonymiser
    from collectors.base import Context
    from collectors.file_integrity import SPEC as FILES
    from collectors.settings import validate
    from collectors.sshd import SPEC as SSHD
    from collectors.sshd.facts import principals

    root = make_root(tmp_path)
    useradd(root, "-m", "-s", "/bin/bash", "-U", "anna")  # with a user private group, as Debian does
    files = Context(
        root=root,
        settings=validate({"paths": ["/etc/sudoers.d", "/var/spool/cron/crontabs"]}, FILES.settings, "fi"),
        state_dir=tmp_path / "state",
        keep_state=True,
    )
    (root / "var" / "spool" / "cron" / "crontabs").mkdir(parents=True)
    FILES.collect(files)
    (root / "etc" / "sudoers.d" / "anna").write_text("anna ALL=(ALL) ALL\n")
    crontab = root / "var" / "spool" / "cron" / "crontabs" / "anna"  # as crontab(1) names it
    crontab.write_text("0 3 * * * /home/anna/bin/sync\n")
    os.chown(crontab, 1000, 1000)
    os.chown(root / "etc" / "sudoers.d" / "anna", 1000, 1000)
    changed = FILES.collect(files).observed
    pseudonyms = Pseudonymiser(b"k" * 32, is_system=lambda name: name == "root", is_person=lambda name: name == "anna")
    accounts = pseudonyms.apply(SPEC.collect(context(root)).observed)
    anna = pseudonyms.name("anna")
    assert anna.startswith("u-") and "anna" not in str(accounts)
    assert [a["user"] for a in accounts["accounts"]] == ["root", anna]
    changes = {c["path"]: c for c in pseudonyms.apply(changed)["changes"]}
    assert sorted(changes) == ["/etc/sudoers.d/anna", f"/var/spool/cron/crontabs/{anna}"]
    change = changes["/etc/sudoers.d/anna"]  # a drop-in's name is any name: kept
    assert (change["owner"], change["group"]) == (anna, anna)  # anna's user private group too
    assert changes[f"/var/spool/cron/crontabs/{anna}"]["owner"] == anna
    assert accounts["accounts"][1]["groups"] == [anna]
    assert pseudonyms.apply(principals({"allowusers": ["anna@10.0.0.0/8"]}))["allow_users"][0]["user"] == anna
    sshd_config = root / "etc" / "ssh" / "sshd_config"
    sshd_config.parent.mkdir(parents=True)
    sshd_config.write_text("PermitRootLogin no\nMatch User anna\n  PasswordAuthentication yes\n")
    sshd = Context(root=root, settings=validate({"use_sshd_t": False}, SSHD.settings, "sshd"))
    contexts = pseudonyms.apply(SSHD.collect(sshd).observed)["contexts"]
    assert contexts[1]["context"] == f"Match User {anna} (/etc/ssh/sshd_config:2)"
