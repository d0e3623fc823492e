"""Read sshd's effective configuration: ``sshd -T`` when it answers, else the files themselves.

``sshd -T`` (and ``-C`` for each configured connection when the files have ``Match`` blocks) is
what sshd would really do.  It needs the host keys, so it answers only as root and with sshd
installed; otherwise the files are parsed with their ``Include``s and ``Match`` blocks, and
``source`` and ``source_note`` say so.  All file access goes through the :class:`Context`.
"""

from __future__ import annotations

import glob
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

from collectors.base import Context, describe_os_error
from collectors.sshd import facts
from collectors.sshd.crypto import KINDS, not_modern
from collectors.sshd.parse_config import Directive, Folded, directives, fold
from collectors.sshd.parse_sshd_t import parse_sshd_t
from evidence.model import Gap, Outcome

MAX_INCLUDE_DEPTH = 16  # sshd's own limit (servconf.c, SERVCONF_MAX_DEPTH)
MAX_FILE = 256 * 1024


def _read_tree(ctx: Context, main: str) -> Tuple[List[Directive], List[str], List[Gap], str]:
    """Directives of ``main`` with Includes expanded in place; files read; gaps; and whether the
    main file was ``read``, is ``missing`` or ``unreadable``."""
    files: List[str] = []
    gaps: List[Gap] = []
    base = os.path.dirname(main) or "/etc/ssh"

    def read(path: str, depth: int) -> List[Directive]:
        try:
            text = ctx.read_text(path, MAX_FILE)
        except OSError as err:
            if path != main:
                gaps.append(Gap(f"sshd configuration {path}", describe_os_error(err, path)))
            raise
        files.append(path)
        found, problems = directives(text, path)
        gaps.extend(Gap(f"line of {path}", p) for p in problems[:5])
        out: List[Directive] = []
        for item in found:
            if item.keyword != "include":
                out.append(item)
                continue
            if depth >= MAX_INCLUDE_DEPTH:
                gaps.append(Gap(f"Include at {item.source}", f"nested deeper than {MAX_INCLUDE_DEPTH}: not followed"))
                continue
            for pattern in item.args:
                absolute = pattern if pattern.startswith("/") else f"{base}/{pattern}"
                for match in sorted(glob.glob(str(ctx.path(absolute)))):
                    inner = "/" + os.path.relpath(match, ctx.root)
                    try:
                        out.extend(read(inner, depth + 1))
                    except OSError:
                        continue
        return out

    try:
        return read(main, 0), files, gaps, "read"
    except OSError as err:
        state = "missing" if isinstance(err, FileNotFoundError) else "unreadable"
        return [], files, [Gap(f"sshd configuration {main}", describe_os_error(err, main))], state


def _sshd_t(ctx: Context, binary: str, main: str, context: Optional[Mapping[str, str]] = None) -> Any:
    argv = [binary, "-T", "-f", str(ctx.path(main))]
    if context is not None:
        argv += ["-C", f"user={context['user']},host={context['host']},addr={context['address']}"]
    return ctx.command(argv)


def _label(context: Mapping[str, str]) -> str:
    return f"user {context['user']} from {context['address']} ({context['host']})"


def _from_sshd_t(ctx: Context, main: str, folded: Folded, gaps: List[Gap]) -> Optional[Dict[str, Any]]:
    settings = ctx.settings
    binary = str(settings["sshd_binary"])
    done = _sshd_t(ctx, binary, main)
    if not done.ok:
        return {"why": done.describe_failure(": line ")}
    parsed = parse_sshd_t(done.text)
    if not parsed.values:
        return {"why": f"{os.path.basename(binary)} -T printed no configuration"}
    if parsed.bad_lines:
        gaps.append(Gap("sshd -T output", f"{parsed.bad_lines} lines not of the form 'keyword value'"))
    assumed: List[str] = []
    contexts = [{"context": "global", **facts.authentication(parsed.values, assumed, False)}]
    if folded.matches:
        for wanted in settings["match_contexts"]:
            answer = _sshd_t(ctx, binary, main, wanted)
            entry: Dict[str, Any] = {"context": _label(wanted)}
            if answer.ok:
                entry.update(facts.authentication(parse_sshd_t(answer.text).values, assumed, False))
            else:
                gaps.append(Gap(f"sshd -T -C for {_label(wanted)}", answer.describe_failure()))
                entry.update({name: None for name, _ in facts.AUTH_KEYS})
                entry.update(permit_root_login=None, authentication_methods=None, password_login_possible=None)
            contexts.append(entry)
    # A block no configured connection falls in (Match Address 10.0.0.0/8, Match User deploy) is
    # judged too, as if it matched, over sshd's effective global values: it lets someone in.
    contexts += _blocks(folded, parsed.values, False)
    return {"values": parsed.values, "contexts": contexts, "assumed": assumed}


def _blocks(folded: Folded, values: Mapping[str, List[str]], fill: bool) -> List[Dict[str, Any]]:
    """Each Match block as a context of its own: its settings over the global ``values``."""
    return [
        {
            "context": f"Match {block.criteria} ({block.source})",
            **facts.authentication({**values, **block.values}, [], fill),
        }
        for block in folded.matches
    ]


def _from_files(folded: Folded) -> Dict[str, Any]:
    assumed: List[str] = []
    contexts = [{"context": "global", **facts.authentication(folded.values, assumed, True)}]
    contexts += _blocks(folded, folded.values, True)
    return {"values": folded.values, "contexts": contexts, "assumed": assumed}


def collect(ctx: Context) -> Outcome:
    main = str(ctx.settings["config_file"])
    items, files, gaps, main_state = _read_tree(ctx, main)
    folded = fold(items)
    chosen: Optional[Dict[str, Any]] = None
    note: Optional[str] = None
    if ctx.settings["use_sshd_t"]:
        chosen = _from_sshd_t(ctx, main, folded, gaps)
        if chosen is not None and "why" in chosen:
            note = f"sshd -T did not answer ({chosen['why']}); the files were parsed instead"
            chosen = None
    else:
        note = "use_sshd_t is off; the files were parsed"
    if chosen is None:
        if main_state != "read":  # never the defaults for a file that could not be read
            if main_state == "missing" and note and "not found" in note:
                return Outcome.not_present(f"no sshd: {main} does not exist and sshd is not installed")
            return Outcome.from_parts({"source": None, "config_file": main}, gaps)
        chosen = _from_files(folded)
    fill = note is not None
    values: Mapping[str, List[str]] = chosen["values"]
    offered = facts.algorithms(values, fill, chosen["assumed"])
    observed: Dict[str, Any] = {
        "source": "files" if fill else "sshd -T",
        "source_note": note,
        "config_file": main,
        "files": files,
        **{k: v for k, v in chosen["contexts"][0].items() if k != "context"},
        "contexts": chosen["contexts"],
        "ciphers": offered.get("ciphers"),
        "macs": offered.get("macs"),
        "kex_algorithms": offered.get("kexalgorithms"),
        "not_modern": not_modern(offered),
        "listen": facts.listen(values, fill),
        **facts.principals(values),
        "match_blocks": len(folded.matches),
        "defaults_assumed": sorted(set(chosen["assumed"])),
    }
    missing = [KINDS[k] for k in ("ciphers", "macs", "kexalgorithms") if k not in offered]
    if missing:
        gaps.append(Gap("offered algorithms", f"sshd -T did not list {', '.join(missing)}"))
        observed["not_modern"] = observed["not_modern"] + [None]
    return Outcome.from_parts(observed, gaps)


def summary(observed: Mapping[str, Any]) -> str:
    """One line for the ``collect`` table."""
    if "password_authentication" not in observed:
        return ""
    word = {True: "on", False: "off", None: "unknown"}
    weak = [a for a in observed.get("not_modern") or [] if a]
    return (
        f"from {observed.get('source')}: password {word[observed.get('password_authentication')]},"
        f" root login {observed.get('permit_root_login')}, {len(weak)} algorithms not modern"
    )
