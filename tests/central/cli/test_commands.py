"""``tillsyn-central`` as a real process: tokens, API keys, nodes, schema, and config errors that change nothing."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from central.api.app import create_app
from central.db import migrate
from central.db.schema import audit_log
from central.runtime.service import open_centre
from tests.central.conftest import Node, cli_env, make_config, run_cli
from tests.centre_process import free_port


def test_the_admin_commands_on_sqlite(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'central.db'}"
    env = cli_env(tmp_path, database_url)
    (fresh,) = run_cli(env, ["db", "current"])
    assert fresh.returncode == 2 and "no database at" in fresh.stderr
    assert not (tmp_path / "central.db").exists()  # looking did not create it
    upgraded, again = run_cli(env, ["db", "upgrade"]), run_cli(env, ["db", "current"])
    assert (upgraded[0].returncode, upgraded[0].stdout) == (0, f"schema at revision {migrate.head()}\n")
    assert again[0].stdout == f"schema at revision {migrate.head()} (newest {migrate.head()})\n"

    created, key = run_cli(
        env,
        ["token", "create", "--ttl", "2h", "--uses", "3", "--tenant", "acme", "--group", "web", "--label", "env=prod"],
        ["apikey", "create", "ci reader"],
    )
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("tse_") and created.stdout == secret + "\n"
    assert "shown once" in created.stderr and "valid until" in created.stderr
    assert key.returncode == 0, key.stderr
    api_secret = key.stdout.strip()
    assert api_secret.startswith("tsk_") and "API key" in key.stderr and "ci reader" in key.stderr

    tokens, keys = run_cli(env, ["token", "list"], ["apikey", "list"])
    listed = json.loads(tokens.stdout)
    assert [(t["max_uses"], t["uses"], t["tenant"], t["group_name"], t["labels"]) for t in listed] == [
        (3, 0, "acme", "web", {"env": "prod"})
    ]
    assert secret not in tokens.stdout and "token_hash" not in tokens.stdout
    assert [k["name"] for k in json.loads(keys.stdout)] == ["ci reader"]
    assert api_secret not in keys.stdout and "key_hash" not in keys.stdout
    token_id, key_id = listed[0]["id"], json.loads(keys.stdout)[0]["id"]

    # A node enrols with the printed token; the key reads the API.
    # (The app's lifespan stops the centre when the client closes.)
    with TestClient(create_app(open_centre(make_config(tmp_path, database_url)), duties=False)) as client:
        node = Node(client, hostname="web7")
        node.enrol(secret)
        clone = Node(client, machine_id=node.machine_id, hostname="web7-copy")
        assert clone.enrol(secret)["status"] == "clone_suspected"
        auth = {"Authorization": f"Bearer {api_secret}"}
        assert client.get("/api/v1/nodes", headers=auth).status_code == 200

        agents, conflicts, revoke_token, revoke_key = run_cli(
            env,
            ["agent", "list"],
            ["agent", "conflicts"],
            ["token", "revoke", token_id],
            ["apikey", "revoke", key_id],
        )
        nodes = {n["id"]: n for n in json.loads(agents.stdout)}
        assert nodes[node.agent_id]["hostname"] == "web7" and nodes[node.agent_id]["tenant"] == "acme"
        assert nodes[node.agent_id]["labels"] == {"env": "prod"} and nodes[node.agent_id]["conflict"]
        assert [
            (c["kind"], c["existing_agent_id"], c["new_agent_id"], c["hostname"]) for c in json.loads(conflicts.stdout)
        ] == [("machine_id_reused", node.agent_id, clone.agent_id, "web7-copy")]
        assert (revoke_token.returncode, revoke_key.returncode) == (0, 0)
        refused = client.get("/api/v1/nodes", headers=auth)
        assert refused.status_code == 401 and refused.json()["error"] == "unauthenticated"
        assert Node(client).enrol(secret, expect=403)["message"] == "enrolment token refused: revoked"

        (revoked,) = run_cli(env, ["agent", "revoke", clone.agent_id])
        assert revoked.returncode == 0, revoked.stderr
        answer = clone.send(clone.report())
        assert answer.status_code == 403 and answer.json()["error"] == "revoked"

    twice = run_cli(
        env,
        ["agent", "revoke", clone.agent_id],
        ["token", "revoke", token_id],
        ["apikey", "revoke", key_id],
        ["agent", "list"],
    )
    assert [p.returncode for p in twice[:3]] == [2, 2, 2]
    assert twice[0].stderr == f"tillsyn-central: no active node {clone.agent_id!r}\n"
    assert twice[1].stderr == f"tillsyn-central: no active token {token_id!r}\n"
    assert twice[2].stderr == f"tillsyn-central: no active API key {key_id!r}\n"
    states = {n["id"]: n["state"] for n in json.loads(twice[3].stdout)}
    assert states[clone.agent_id] == "revoked" and states[node.agent_id] != "revoked"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_schema_and_token_commands_on_postgresql(tmp_path: Path, database_url: str) -> None:
    env = cli_env(tmp_path, database_url)
    (fresh,) = run_cli(env, ["db", "current"])
    assert (fresh.returncode, fresh.stderr) == (0, "")
    assert f"no schema yet (newest {migrate.head()}); run: tillsyn-central db upgrade" in fresh.stdout
    assert run_cli(env, ["db", "upgrade"])[0].stdout == f"schema at revision {migrate.head()}\n"
    current, created = run_cli(env, ["db", "current"], ["token", "create", "--uses", "1", "--tenant", "acme"])
    assert current.stdout == f"schema at revision {migrate.head()} (newest {migrate.head()})\n"
    (listed,) = run_cli(env, ["token", "list"])
    tokens = json.loads(listed.stdout)
    assert [(t["max_uses"], t["uses"], t["tenant"]) for t in tokens] == [(1, 0, "acme")]
    assert created.stdout.strip() not in listed.stdout


def test_bad_arguments_exit_2_and_create_nothing(tmp_path: Path) -> None:
    db = tmp_path / "central.db"
    env = cli_env(tmp_path, f"sqlite:///{db}")
    run_cli(env, ["db", "upgrade"])
    cases = [
        (["token", "create", "--uses", "0"], "max uses must be at least 1"),
        (["token", "create", "--label", "env"], "--label 'env': use KEY=VALUE"),
        (["token", "create", "--tenant", "acme corp"], "tenant 'acme corp': use 1-128 of"),
        (["token", "create", "--group", "web\n"], "group 'web\\n': use 1-128 of"),
        (["token", "create", "--ttl", "soon"], "--ttl"),
        (["token", "revoke", "nosuchtoken"], "no active token 'nosuchtoken'"),
        (["apikey", "create", " "], "an API key needs a name"),
        (["agent", "revoke", "nosuchnode"], "no active node 'nosuchnode'"),
    ]
    results = run_cli(env, *[args for args, _ in cases])
    for (args, words), result in zip(cases, results):
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert words in result.stderr, (args, result.stderr)
        assert result.stdout == ""
    tokens, keys = run_cli(env, ["token", "list"], ["apikey", "list"])
    assert (json.loads(tokens.stdout), json.loads(keys.stdout)) == ([], [])


def test_a_broken_central_yaml_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    state = tmp_path / "state"
    cases = [
        (f"state_dir: {state}\nlisten:\n  hots: 0.0.0.0\n", "listen.hots: unknown setting"),
        (f"state_dir: {state}\nlimits:\n  max_body_bytes: lots\n", "limits.max_body_bytes"),
        (f"state_dir: {state}\nlisten: [unclosed\n", "line 3"),
        ("- a\n- b\n", "expected a mapping"),
        (f"state_dir: {state}\nheartbeat_interval_s: 1\n", "heartbeat_interval_s"),
        (f"state_dir: {state}\ndatabase_url: mysql://db/tillsyn\n", "unsupported database 'mysql'"),
    ]
    results = []
    for i, (text, _) in enumerate(cases):
        case = tmp_path / f"case{i}"
        case.mkdir()
        results += run_cli(cli_env(case, None, text), ["token", "create"])
    for (text, words), result, i in zip(cases, results, range(len(cases))):
        assert result.returncode == 2, (text, result.stderr)
        assert result.stderr.startswith(f"tillsyn-central: {tmp_path / f'case{i}' / 'central.yaml'}"), result.stderr
        assert words in result.stderr, (text, result.stderr)
        assert "Traceback" not in result.stderr and result.stdout == ""
    assert not state.exists()
    env = cli_env(tmp_path, None)
    (missing,) = run_cli(env, ["--config", str(tmp_path / "nope.yaml"), "token", "list"])
    assert missing.returncode == 2 and f"{tmp_path / 'nope.yaml'}: no such file" in missing.stderr
    (absent,) = run_cli(cli_env(tmp_path, f"sqlite:///{tmp_path / 'absent.db'}"), ["verify"])
    assert absent.returncode == 2 and f"no database at {tmp_path / 'absent.db'}" in absent.stderr
    assert not (tmp_path / "absent.db").exists()


def test_user_and_key_commands_keep_an_admin_and_are_audited(tmp_path: Path) -> None:
    """The CLI goes through the same rules as the dashboard: an admin stays, changes are in the trail."""
    database_url = f"sqlite:///{tmp_path / 'central.db'}"
    env = cli_env(tmp_path, database_url)
    password = tmp_path / "pw"
    password.write_text("a long enough password\n")
    pw = ["--password-file", str(password)]
    run_cli(env, ["db", "upgrade"])
    (alice,) = run_cli(env, ["user", "create", "alice", "--role", "admin", "--tenant", "*", *pw])
    assert alice.returncode == 0, alice.stderr
    demote, disable, no_tenant, key = run_cli(
        env,
        ["user", "set", "alice", "--role", "viewer"],
        ["user", "set", "alice", "--disable"],
        ["user", "create", "vera", "--role", "viewer", *pw],
        ["apikey", "create", "nightly", "--user", "alice"],
    )
    for refused in (demote, disable):
        assert refused.returncode == 2
        assert "alice is the last enabled admin: make another person admin first" in refused.stderr
    assert no_tenant.returncode == 2 and "grant at least one tenant ('*' for every tenant)" in no_tenant.stderr
    (listed,) = run_cli(env, ["apikey", "list"])
    (entry,) = json.loads(listed.stdout)
    assert (entry["name"], entry["username"]) == ("nightly", "alice")
    (revoked,) = run_cli(env, ["apikey", "revoke", entry["id"]])
    assert (key.returncode, revoked.returncode) == (0, 0)
    (users,) = run_cli(env, ["user", "list"])
    assert [(u["username"], u["role"], u["disabled_at"]) for u in json.loads(users.stdout)] == [
        ("alice", "admin", None)
    ]
    centre = open_centre(make_config(tmp_path, database_url))
    try:
        with centre.engine.connect() as conn:
            trail = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.object, audit_log.c.source))
            rows = [tuple(r) for r in trail if r.action.startswith("apikey.")]
    finally:
        centre.stop()
    actor = f"cli:{getpass.getuser()}"
    assert rows == [(actor, "apikey.create", "nightly", "cli"), (actor, "apikey.revoke", "nightly", "cli")]


def test_a_database_that_cannot_be_reached_is_exit_75_not_a_configuration_error(tmp_path: Path) -> None:
    """systemd restarts the centre after 75 (PostgreSQL still starting), but not after 2."""
    env = cli_env(tmp_path, f"postgresql://tillsyn@127.0.0.1:{free_port()}/tillsyn")
    for done in run_cli(env, ["serve"], ["db", "current"]):
        assert done.returncode == 75, done.stderr
        assert done.stderr.startswith("tillsyn-central: cannot use the database: ") and "Traceback" not in done.stderr
    wrong = run_cli(cli_env(tmp_path, "mysql://u@h/db"), ["db", "current"])[0]
    assert wrong.returncode == 2 and "database_url" in wrong.stderr
    unit = (Path(__file__).resolve().parents[3] / "packaging" / "systemd" / "tillsyn-central.service").read_text()
    assert "RestartPreventExitStatus=2\n" in unit and "Restart=on-failure" in unit
