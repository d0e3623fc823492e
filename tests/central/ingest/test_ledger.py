"""The evidence ledger: tampering straight in the database is found by ``verify_store`` and by
``tillsyn-central verify`` run as a real process, on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Dict, Set, Tuple

from fastapi.testclient import TestClient
from sqlalchemy import ColumnElement, Connection, select, update

from central.db.engine import write_tx
from central.db.report_bodies import body_of
from central.db.schema import agents, reports
from central.ingest.ledger import GENESIS, body_hash, entry_hash
from central.ingest.ledger_check import verify_store
from central.runtime.service import Centre
from evidence.signing import sign
from tests.central.conftest import Node, cli_env, new_token, run_cli


def verify(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = run_cli(cli_env(tmp_path, url), ["verify", *args])[0]
    return result


def _where(agent_id: str, index: int) -> ColumnElement[bool]:
    return (reports.c.agent_id == agent_id) & (reports.c.chain_index == index)


def _body(conn: Connection, agent_id: str, index: int) -> bytes:
    """The body's signed bytes (a tamperer writes them back changed, raw: a form the store reads too)."""
    return body_of(conn, agent_id, conn.execute(select(reports.c.body).where(_where(agent_id, index))).scalar_one())


def _forge(conn: Connection, agent_id: str) -> None:
    """What a forger without the node's key can do best: change entry 2's body and recompute
    every hash after it and the recorded head, so only the signature can tell."""
    body = _body(conn, agent_id, 2).replace(b'"sockets":[]', b'"sockets":[ ]')
    conn.execute(update(reports).where(_where(agent_id, 2)).values(body=body, body_sha256=body_hash(body)))
    prev = GENESIS
    rows = conn.execute(
        select(reports.c.chain_index, reports.c.body_sha256, reports.c.signature)
        .where(reports.c.agent_id == agent_id)
        .order_by(reports.c.chain_index)
    ).all()
    for index, digest, signature in rows:
        new = entry_hash(prev, agent_id, index, digest, signature)
        conn.execute(update(reports).where(_where(agent_id, index)).values(entry_hash=new))
        prev = new
    conn.execute(update(agents).where(agents.c.id == agent_id).values(ledger_head=prev))


def _insert(conn: Connection, agent_id: str) -> None:
    """What a forger can do to slip in an entry the node signed (a copy of entry 1) after entry 1:
    move the later entries up one place, chain the new one properly to entry 1's hash, and record
    the longer chain and its head in the node record; no stored hash of the others changes."""
    for index in (3, 2):  # one at a time: the pair of node and index is unique
        conn.execute(update(reports).where(_where(agent_id, index)).values(chain_index=index + 1))
    first = conn.execute(select(reports).where(_where(agent_id, 1))).one()._asdict()
    new = entry_hash(first["entry_hash"], agent_id, 2, first["body_sha256"], first["signature"])
    del first["id"]
    conn.execute(reports.insert().values({**first, "chain_index": 2, "seq": 99, "entry_hash": new}))
    head = conn.execute(select(reports.c.entry_hash).where(_where(agent_id, 4))).scalar_one()
    conn.execute(update(agents).where(agents.c.id == agent_id).values(ledger_length=4, ledger_head=head))


def test_tampering_is_found_entry_by_entry(client: TestClient, centre: Centre, tmp_path: Path) -> None:
    secret = new_token(centre)
    names = ["intact", "body", "middle", "last", "swap", "signature", "forged", "inserted"]
    nodes: Dict[str, Node] = {}
    for name in names:
        node = Node(client, hostname=name)
        node.enrol(secret)
        for _ in range(3):
            assert node.send(node.report()).status_code == 200
        nodes[name] = node
    url = centre.config.db_url

    ok = verify(tmp_path, url)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "verified 8 node chain(s): all intact\n", "")

    ids = {name: node.agent_id for name, node in nodes.items()}
    with write_tx(centre.engine) as conn:
        body = bytearray(_body(conn, ids["body"], 2))
        body[body.index(b'"seq":2') + 6] = ord("7")  # one byte: seq 2 becomes 7
        conn.execute(update(reports).where(_where(ids["body"], 2)).values(body=bytes(body)))
        conn.execute(reports.delete().where(_where(ids["middle"], 2)))
        conn.execute(reports.delete().where(_where(ids["last"], 3)))
        # Swap entries 1 and 2 (through a free index: the pair is unique).
        conn.execute(update(reports).where(_where(ids["swap"], 1)).values(chain_index=-1))
        conn.execute(update(reports).where(_where(ids["swap"], 2)).values(chain_index=1))
        conn.execute(update(reports).where(_where(ids["swap"], -1)).values(chain_index=2))
        other = sign(nodes["signature"].key, b"some other bytes")
        conn.execute(update(reports).where(_where(ids["signature"], 2)).values(signature=other))
        _forge(conn, ids["forged"])
        _insert(conn, ids["inserted"])

    checked, problems = verify_store(centre.engine)
    assert checked == 8
    found: Dict[str, Set[Tuple[object, str]]] = {}
    for p in problems:
        found.setdefault(p.agent_id, set()).add((p.chain_index, p.problem.split(" (")[0].split(":")[0]))
    by_name = {name: found.get(agent_id, set()) for name, agent_id in ids.items()}
    assert by_name["intact"] == set()
    assert by_name["body"] == {(2, "body does not match its recorded hash"), (2, "signature")}
    # entry n's hash is recomputed from the stored hash of the entry before it (none stores that)
    assert by_name["middle"] == {
        (3, "expected entry 2, found 3"),
        (3, "entry hash does not match its contents and entry 1's hash"),
        (None, "chain has 2 entries, the node record says 3"),
    }
    assert by_name["last"] == {(None, "chain has 2 entries, the node record says 3")}
    assert by_name["swap"] == {
        (1, "entry hash does not match its contents and the genesis hash"),
        (2, "entry hash does not match its contents and entry 1's hash"),
        (3, "entry hash does not match its contents and entry 2's hash"),
    }
    assert by_name["signature"] == {(2, "entry hash does not match its contents and entry 1's hash"), (2, "signature")}
    # the inserted entry is signed and chained, the node record agrees: only its successors' hashes tell
    assert by_name["inserted"] == {
        (3, "entry hash does not match its contents and entry 2's hash"),
        (4, "entry hash does not match its contents and entry 3's hash"),
    }
    hashes = {i: h for (a, i), h in _entry_hashes(centre).items() if a == ids["middle"]}
    (middle,) = [p.problem for p in problems if p.agent_id == ids["middle"] and p.problem.startswith("entry hash")]
    recomputed = entry_hash(hashes[1], ids["middle"], 3, *_signed(centre, ids["middle"], 3))
    assert middle == (
        f"entry hash does not match its contents and entry 1's hash: stored {hashes[3]}, recomputed {recomputed} "
        "(this entry changed, or the entry before it changed, removed, inserted or moved)"
    )
    assert by_name["forged"] == {(2, "signature")}
    reasons = {p.problem for p in problems if p.agent_id == ids["forged"]}
    assert reasons == {"signature: signature does not match the body and the node's key"}
    last = [p.problem for p in problems if p.agent_id == ids["last"]]
    assert last == ["chain has 2 entries, the node record says 3 (entry 3 removed at the end)"]

    broken = verify(tmp_path, url)
    assert broken.returncode == 1, broken.stderr
    lines = broken.stdout.splitlines()
    assert lines[-1] == f"verified 8 node chain(s): {len(problems)} problem(s)"
    assert len(lines) == len(problems) + 1
    assert all(line.startswith("BROKEN ") for line in lines[:-1])
    assert not any(ids["intact"] in line for line in lines)
    report_ids = _report_ids(centre)
    for name, index in (("body", 2), ("middle", 3), ("swap", 1), ("signature", 2), ("forged", 2), ("inserted", 3)):
        prefix = f"BROKEN {ids[name]} entry {index} (report {report_ids[ids[name], index]}): "
        assert any(line.startswith(prefix) for line in lines), (name, lines)
    assert f"BROKEN {ids['last']}: chain has 2 entries, the node record says 3 (entry 3 removed at the end)" in lines

    only, one = run_cli(
        cli_env(tmp_path, url), ["verify", "--agent", ids["intact"]], ["verify", "--agent", ids["forged"]]
    )
    assert (only.returncode, only.stdout) == (0, "verified 1 node chain(s): all intact\n")
    assert one.returncode == 1
    assert one.stdout.splitlines() == [
        f"BROKEN {ids['forged']} entry 2 (report {report_ids[ids['forged'], 2]}): "
        "signature: signature does not match the body and the node's key",
        "verified 1 node chain(s): 1 problem(s)",
    ]


def _entry_hashes(centre: Centre) -> Dict[Tuple[str, int], str]:
    with centre.engine.connect() as conn:
        rows = conn.execute(select(reports.c.agent_id, reports.c.chain_index, reports.c.entry_hash)).all()
    return {(a, i): h for a, i, h in rows}


def _signed(centre: Centre, agent_id: str, index: int) -> Tuple[str, str]:
    with centre.engine.connect() as conn:
        row = conn.execute(select(reports.c.body_sha256, reports.c.signature).where(_where(agent_id, index))).one()
    return row.body_sha256, row.signature


def _report_ids(centre: Centre) -> Dict[Tuple[str, int], str]:
    with centre.engine.connect() as conn:
        rows = conn.execute(select(reports.c.agent_id, reports.c.chain_index, reports.c.report_id)).all()
    return {(a, i): r for a, i, r in rows}


def test_an_unknown_node_or_an_empty_store(centre: Centre, tmp_path: Path) -> None:
    url = centre.config.db_url
    empty, unknown = run_cli(cli_env(tmp_path, url), ["verify"], ["verify", "--agent", "nosuchnode"])
    assert (empty.returncode, empty.stdout) == (0, "verified 0 node chain(s): all intact\n")
    assert unknown.returncode == 2, unknown.stdout
    assert "no node 'nosuchnode'" in unknown.stderr
