"""The known-service table: by port (protocol-aware), by process name, and extra ports."""

from __future__ import annotations

from typing import List, Optional

import pytest

from collectors.ports.model import ServicePort
from collectors.ports.services import KNOWN_PROCESSES, classify

P, R, D = "plaintext_remote", "remote_service", "database"

CASES = [
    # protocol, port, name, exe, services, tags
    ("tcp", 23, None, None, ["telnet"], [P, R]),
    ("tcp", 21, "vsftpd", "/usr/sbin/vsftpd", ["ftp"], [P]),
    ("tcp", 2121, "vsftpd", "/usr/sbin/vsftpd", ["ftp"], [P]),  # moved port, known daemon
    ("tcp", 2323, "in.telnetd", None, ["telnet"], [P, R]),
    ("tcp", 514, None, None, ["rsh"], [P, R]),
    ("udp", 514, "rsyslogd", "/usr/sbin/rsyslogd", [], []),  # syslog, not rsh
    ("tcp", 80, "nginx", "/usr/sbin/nginx", ["http"], [P]),
    ("tcp", 443, "nginx", "/usr/sbin/nginx", [], []),
    ("tcp", 5901, "Xtigervnc", "/usr/bin/Xtigervnc", ["vnc"], [P, R]),
    ("tcp", 5907, None, None, [], []),
    ("udp", 623, None, None, ["ipmi-rmcp"], [R]),
    ("tcp", 3389, "xrdp", "/usr/sbin/xrdp", ["rdp"], [R]),
    ("udp", 3389, None, None, ["rdp"], [R]),
    ("tcp", 5938, "teamviewerd", "/opt/teamviewer/tv_bin/teamviewerd", ["teamviewer"], [R]),
    ("tcp", 7070, None, None, ["anydesk"], [R]),
    ("tcp", 4000, None, None, ["nomachine"], [R]),
    ("tcp", 3306, "mariadbd", "/usr/sbin/mariadbd", ["mysql"], [D]),
    ("tcp", 3307, "mysqld", None, ["mysql"], [D]),
    ("tcp", 5432, "postgres", "/usr/lib/postgresql/15/bin/postgres", ["postgresql"], [D]),
    ("tcp", 6379, "redis-server", "/usr/bin/redis-check-rdb", ["redis"], [D]),
    ("udp", 11211, "memcached", None, ["memcached"], [D]),
    ("tcp", 27018, None, None, ["mongodb"], [D]),
    ("tcp", 9200, "java", "/usr/share/elasticsearch/jdk/bin/java", ["elasticsearch"], [D]),
    ("tcp", 9000, "clickhouse-serv", None, ["clickhouse"], [D]),
    ("tcp", 9000, "php-fpm8.2", None, [], []),  # php-fpm's usual port is not a database
    ("tcp", 22, "sshd", "/usr/sbin/sshd", [], []),
]


@pytest.mark.parametrize(("protocol", "port", "name", "exe", "services", "tags"), CASES)
def test_classify(
    protocol: str, port: int, name: Optional[str], exe: Optional[str], services: List[str], tags: List[str]
) -> None:
    found = classify(protocol, port, name, exe)
    assert found.services == services
    assert found.tags == tags


def test_extra_port_adds_service_and_tag() -> None:
    vendor = ServicePort("vendor-ssh", "tcp", 2222, 2222, ("remote_service",))
    assert classify("tcp", 2222, "sshd", None, [vendor]).services == ["vendor-ssh"]
    assert classify("tcp", 2222, "sshd", None, [vendor]).tags == ["remote_service"]
    assert classify("udp", 2222, None, None, [vendor]).tags == []


def test_process_table_keys_are_lower_case() -> None:
    assert all(key == key.lower() for key in KNOWN_PROCESSES)
