"""Known services by port and by process name, and the tags they give a socket.

Tags are facts about what a socket looks like, not verdicts: the policy decides
whether, say, a database on a private address is acceptable.  Ports follow the
IANA service-name registry and the vendors' documentation cited per row.
"""

from __future__ import annotations

from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple

from collectors.ports.model import TAGS, Classification, ServicePort

PLAIN = "plaintext_remote"
REMOTE = "remote_service"
DB = "database"


def _row(service: str, protocol: str, first: int, last: Optional[int], *tags: str) -> ServicePort:
    return ServicePort(service, protocol, first, first if last is None else last, tags)


KNOWN_PORTS: Tuple[ServicePort, ...] = (
    # Plaintext remote access (M07): credentials and data cross the network in clear.
    _row("ftp", "tcp", 21, None, PLAIN),  # RFC 959
    _row("telnet", "tcp", 23, None, PLAIN, REMOTE),  # RFC 854
    _row("tftp", "udp", 69, None, PLAIN),  # RFC 1350
    _row("http", "tcp", 80, None, PLAIN),  # RFC 9110
    _row("http-alt", "tcp", 8080, None, PLAIN),
    _row("rexec", "tcp", 512, None, PLAIN, REMOTE),  # rexecd(8); 512/udp is biff, not rexec
    _row("rlogin", "tcp", 513, None, PLAIN, REMOTE),  # RFC 1282; 513/udp is rwho
    _row("rsh", "tcp", 514, None, PLAIN, REMOTE),  # rshd(8); 514/udp is syslog
    _row("vnc-http", "tcp", 5800, 5806, PLAIN, REMOTE),  # VNC Java viewer, display :0-:6
    _row("vnc", "tcp", 5900, 5906, PLAIN, REMOTE),  # RFC 6143, display :0-:6
    _row("x11", "tcp", 6000, 6009, PLAIN, REMOTE),  # X(7): display :n on 6000+n
    # Remote service and maintenance entrances (M11).
    _row("ipmi-rmcp", "udp", 623, None, REMOTE),  # IPMI v2.0 spec section 13 (RMCP/RMCP+)
    _row("ipmi-rmcp", "tcp", 623, None, REMOTE),
    _row("ipmi-rmcp-secure", "any", 664, None, REMOTE),  # ASF secure RMCP
    _row("rdp", "any", 3389, None, REMOTE),  # MS-RDPBCGR; xrdp
    _row("nomachine", "any", 4000, None, REMOTE),  # NoMachine NX default port
    _row("teamviewer", "any", 5938, None, REMOTE),  # TeamViewer ports documentation
    _row("anydesk", "tcp", 7070, None, REMOTE),  # AnyDesk direct-connection listener
    _row("webmin", "tcp", 10000, None, REMOTE),  # Webmin/Virtualmin miniserv
    _row("rustdesk", "tcp", 21118, None, REMOTE),  # RustDesk direct IP access
    # Databases and data stores (M07: not on public addresses).
    _row("mssql", "tcp", 1433, None, DB),
    _row("oracle", "tcp", 1521, None, DB),
    _row("etcd", "tcp", 2379, 2380, DB),
    _row("mysql", "tcp", 3306, None, DB),
    _row("mysqlx", "tcp", 33060, None, DB),
    _row("postgresql", "tcp", 5432, None, DB),
    _row("couchdb", "tcp", 5984, None, DB),
    _row("redis", "tcp", 6379, None, DB),
    _row("neo4j", "tcp", 7474, None, DB),
    _row("neo4j-bolt", "tcp", 7687, None, DB),
    _row("influxdb", "tcp", 8086, None, DB),
    _row("clickhouse-http", "tcp", 8123, None, DB),
    _row("solr", "tcp", 8983, None, DB),
    _row("cassandra", "tcp", 9042, None, DB),
    _row("elasticsearch", "tcp", 9200, None, DB),
    _row("elasticsearch-transport", "tcp", 9300, None, DB),
    _row("memcached", "any", 11211, None, DB),
    _row("mongodb", "tcp", 27017, 27019, DB),
    _row("rethinkdb", "tcp", 28015, None, DB),
)

# Process names (psutil ``name()``, i.e. /proc/<pid>/comm or the executable's base
# name) that identify a service whatever port it is moved to.
KNOWN_PROCESSES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    # Plaintext remote access.
    "telnetd": ("telnet", (PLAIN, REMOTE)),
    "in.telnetd": ("telnet", (PLAIN, REMOTE)),
    "utelnetd": ("telnet", (PLAIN, REMOTE)),
    "vsftpd": ("ftp", (PLAIN,)),
    "proftpd": ("ftp", (PLAIN,)),
    "pure-ftpd": ("ftp", (PLAIN,)),
    "in.ftpd": ("ftp", (PLAIN,)),
    "in.tftpd": ("tftp", (PLAIN,)),
    "rshd": ("rsh", (PLAIN, REMOTE)),
    "in.rshd": ("rsh", (PLAIN, REMOTE)),
    "rlogind": ("rlogin", (PLAIN, REMOTE)),
    "in.rlogind": ("rlogin", (PLAIN, REMOTE)),
    "rexecd": ("rexec", (PLAIN, REMOTE)),
    "in.rexecd": ("rexec", (PLAIN, REMOTE)),
    "xvnc": ("vnc", (PLAIN, REMOTE)),
    "xtigervnc": ("vnc", (PLAIN, REMOTE)),
    "xtightvnc": ("vnc", (PLAIN, REMOTE)),
    "x11vnc": ("vnc", (PLAIN, REMOTE)),
    "vino-server": ("vnc", (PLAIN, REMOTE)),
    "wayvnc": ("vnc", (PLAIN, REMOTE)),
    # Remote service tools.
    "xrdp": ("rdp", (REMOTE,)),
    "teamviewerd": ("teamviewer", (REMOTE,)),
    "anydesk": ("anydesk", (REMOTE,)),
    "nxd": ("nomachine", (REMOTE,)),
    "nxserver.bin": ("nomachine", (REMOTE,)),
    "rustdesk": ("rustdesk", (REMOTE,)),
    "cockpit-ws": ("cockpit", (REMOTE,)),
    "ipmi_sim": ("ipmi-rmcp", (REMOTE,)),
    # Databases.
    "mysqld": ("mysql", (DB,)),
    "mariadbd": ("mysql", (DB,)),
    "postgres": ("postgresql", (DB,)),
    "postmaster": ("postgresql", (DB,)),
    "redis-server": ("redis", (DB,)),
    "valkey-server": ("redis", (DB,)),
    "keydb-server": ("redis", (DB,)),
    "mongod": ("mongodb", (DB,)),
    "mongos": ("mongodb", (DB,)),
    "memcached": ("memcached", (DB,)),
    "couchdb": ("couchdb", (DB,)),
    "influxd": ("influxdb", (DB,)),
    "clickhouse-server": ("clickhouse", (DB,)),
    "clickhouse-serv": ("clickhouse", (DB,)),  # comm is cut at 15 characters (proc(5))
    "etcd": ("etcd", (DB,)),
    "sqlservr": ("mssql", (DB,)),
    "tnslsnr": ("oracle", (DB,)),
}


def _process_key(name: Optional[str], exe: Optional[str]) -> Iterable[str]:
    if name:
        yield name.lower()
    if exe:
        yield exe.rstrip("/").rsplit("/", 1)[-1].lower()


def classify(
    protocol: str,
    port: int,
    process_name: Optional[str] = None,
    exe: Optional[str] = None,
    extra: Sequence[ServicePort] = (),
) -> Classification:
    """Services a socket matches by port (known table, then ``extra``) and by owner's name."""
    services: List[str] = []
    tags: Set[str] = set()
    for row in (*KNOWN_PORTS, *extra):
        if row.matches(protocol, port):
            if row.service not in services:
                services.append(row.service)
            tags.update(row.tags)
    for key in _process_key(process_name, exe):
        known = KNOWN_PROCESSES.get(key)
        if known is not None:
            if known[0] not in services:
                services.append(known[0])
            tags.update(known[1])
    return Classification(services, [tag for tag in TAGS if tag in tags])
