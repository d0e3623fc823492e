"""The copyright file of the centre's private environment, from the metadata of what is installed in it.

    python3 packaging/venv_copyright.py VENV PREFIX HEADER OUT

VENV is the environment as built (e.g. debian/tillsyn-central/usr/lib/tillsyn-central), PREFIX the
path it is installed at without the leading slash (usr/lib/tillsyn-central), HEADER the project's
own DEP-5 copyright file, which OUT repeats before one ``Files:`` paragraph per distribution in the
environment: its files (from its RECORD), the copyright lines of its licence files, its licence
(License-Expression, else License, else the trove classifiers) and the text of its licence files. A
licence Debian keeps in /usr/share/common-licenses is named by that path instead of repeated.

Run by the interpreter the environment was made with (importlib.metadata of the standard library).
A distribution whose licence cannot be told stops the build with its name: never a guess.
"""

from __future__ import annotations

import re
import sys
import textwrap
from importlib.metadata import Distribution, distributions
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

# trove classifiers that name one licence (a classifier list does not say "and" or "or")
CLASSIFIERS = {
    "MIT License": "MIT",
    "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": "Apache-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "ISC License (ISCL)": "ISC",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "BSD License": "BSD",  # the variant is told by the text (bsd_variant)
}
# SPDX identifiers whose DEP-5 short names differ (DEP-5 calls the MIT licence Expat)
DEP5_NAMES = {
    "MIT": "Expat",
    "LGPL-2.1-only": "LGPL-2.1",
    "LGPL-2.1-or-later": "LGPL-2.1+",
    "LGPL-3.0-only": "LGPL-3",
    "LGPL-3.0-or-later": "LGPL-3+",
    "GPL-2.0-only": "GPL-2",
    "GPL-2.0-or-later": "GPL-2+",
    "GPL-3.0-only": "GPL-3",
    "GPL-3.0-or-later": "GPL-3+",
}
# full licence texts Debian ships in /usr/share/common-licenses: (file, markers all found in the text)
COMMON = (
    ("Apache-2.0", ("Apache License", "Version 2.0, January 2004", "TERMS AND CONDITIONS FOR USE")),
    ("LGPL-3", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 3, 29 June 2007")),
    ("LGPL-2.1", ("GNU LESSER GENERAL PUBLIC LICENSE", "Version 2.1, February 1999")),
    ("GPL-3", ("GNU GENERAL PUBLIC LICENSE", "Version 3, 29 June 2007", "TERMS AND CONDITIONS")),
    ("GPL-2", ("GNU GENERAL PUBLIC LICENSE", "Version 2, June 1991", "TERMS AND CONDITIONS")),
    ("MPL-2.0", ("Mozilla Public License Version 2.0", "1. Definitions")),
)
COMMON_FOR = {"Apache-2.0": "Apache-2.0", "LGPL-3": "LGPL-3", "LGPL-3+": "LGPL-3", "MPL-2.0": "MPL-2.0"}
# a copyright notice: "Copyright", "(c)" or "©" first, a year in it (not the licence's own words
# about copyright notices, nor the template "Copyright [yyyy] [name of copyright owner]")
COPYRIGHT_LINE = re.compile(r"^\s*(copyright\b|\(c\)|©).*\b\d{4}\b", re.IGNORECASE)


class LicenceError(Exception):
    pass


Node = Union[str, Tuple[str, List["Node"]]]  # a licence, or ("and" | "or", its terms)
OPERATORS = ("AND", "OR", "WITH")


def parse_spdx(expression: str) -> Node:
    """An SPDX licence expression as a tree; "AND" binds closer than "OR"."""
    tokens = [t.upper() if t.upper() in OPERATORS else t for t in re.findall(r"\(|\)|[^\s()]+", expression)]

    def terms(operator: str, parse_term: Callable[[], Node]) -> Node:
        found = [parse_term()]
        while tokens and tokens[0] == operator:
            tokens.pop(0)
            found.append(parse_term())
        return (operator.lower(), found) if len(found) > 1 else found[0]

    def atom() -> Node:
        if not tokens or tokens[0] in (*OPERATORS, ")"):
            raise LicenceError(f"a licence is missing in {expression!r}")
        first = tokens.pop(0)
        if first == "(":
            inner = terms("OR", lambda: terms("AND", atom))
            if not tokens or tokens.pop(0) != ")":
                raise LicenceError(f"unbalanced parentheses in {expression!r}")
            return inner
        if tokens and tokens[0] == "WITH":
            tokens.pop(0)
            if not tokens or tokens[0] in (*OPERATORS, "(", ")"):
                raise LicenceError(f"an exception is missing after WITH in {expression!r}")
            return f"{DEP5_NAMES.get(first, first)} with {tokens.pop(0)} exception"
        return DEP5_NAMES.get(first, first)

    tree = terms("OR", lambda: terms("AND", atom))
    if tokens:
        raise LicenceError(f"cannot read the licence expression {expression!r}")
    return tree


def dep5_expression(expression: str) -> str:
    """An SPDX expression in DEP-5's words: "or" and "and" ("and" binds closer; a comma ends a
    group), DEP-5 short names. ``MPL-2.0 AND (Apache-2.0 OR MIT)`` -> ``Apache-2.0 or Expat, and MPL-2.0``."""
    tree = parse_spdx(expression)
    if isinstance(tree, str):
        return tree
    kind, terms = tree
    if kind == "or":
        if not all(isinstance(t, str) or (t[0] == "and" and all(isinstance(u, str) for u in t[1])) for t in terms):
            raise LicenceError(f"cannot say {expression!r} in DEP-5")
        return " or ".join(t if isinstance(t, str) else " and ".join(t[1]) for t in terms)  # type: ignore[arg-type]
    groups = [t for t in terms if not isinstance(t, str)]
    if len(groups) > 1 or any(not isinstance(u, str) for g in groups for u in g[1]):
        raise LicenceError(f"cannot say {expression!r} in DEP-5 (more than one group of alternatives)")
    plain = " and ".join(t for t in terms if isinstance(t, str))
    return f"{' or '.join(groups[0][1])}, and {plain}" if groups else plain  # type: ignore[arg-type]


def licence_files(dist: Distribution) -> List[Tuple[str, str]]:
    """(name, text) of the distribution's licence files, where its metadata says they are."""
    found = []
    for name in dist.metadata.get_all("License-File") or []:
        text = dist.read_text(f"licenses/{name}")  # metadata 2.4 and later
        if text is None:
            text = dist.read_text(name)
        if text is None:
            raise LicenceError(f"{dist.metadata['Name']}: its licence file {name} is not installed")
        found.append((name, text))
    return found


def bsd_variant(texts: Sequence[str]) -> str:
    joined = " ".join(" ".join(t.split()) for t in texts)
    if "Redistributions in binary form" not in joined:
        raise LicenceError("a BSD licence classifier without a BSD licence text")
    return "BSD-3-Clause" if "Neither the name" in joined else "BSD-2-Clause"


def licence_of(dist: Distribution, texts: Sequence[str]) -> str:
    """The distribution's licence as an SPDX expression, in the order PEP 639 gives."""
    meta = dist.metadata
    name = meta["Name"]
    if meta.get("License-Expression"):
        return str(meta["License-Expression"]).strip()
    declared = (meta.get("License") or "").strip()
    if declared and declared.upper() != "UNKNOWN" and "\n" not in declared and len(declared) <= 80:
        short = re.sub(r"\s+License$", "", declared)
        if re.fullmatch(r"[A-Za-z0-9.+-]+(\s+(AND|OR|and|or)\s+[A-Za-z0-9.+-]+)*", short):
            return short
    named = [c.rsplit(" :: ", 1)[-1] for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if len(named) == 1 and named[0] in CLASSIFIERS:
        spdx = CLASSIFIERS[named[0]]
        return bsd_variant(texts) if spdx == "BSD" else spdx
    raise LicenceError(
        f"{name} {dist.version}: its licence cannot be told from its metadata "
        f"(License-Expression: none, License: {declared[:60]!r}, classifiers: {named})"
    )


def common_licence(text: str) -> Optional[str]:
    flat = " ".join(text.split())
    for path, markers in COMMON:
        if all(" ".join(m.split()) in flat for m in markers):
            return path
    return None


def owned_paths(dists: Sequence[Distribution], site: Path, venv: Path) -> Dict[str, List[str]]:
    """Each distribution's files as the fewest patterns relative to the environment: a directory
    (``dir/*``) that holds only its files, else the file itself."""
    owner: Dict[PurePosixPath, str] = {}
    for dist in dists:
        for entry in dist.files or []:
            resolved = (site / str(entry)).resolve()
            if not resolved.exists():
                continue  # removed after installing (the other distributions' commands)
            try:
                relative = PurePosixPath(resolved.relative_to(venv.resolve()).as_posix())
            except ValueError:
                continue  # outside the environment: not shipped in it
            owner[relative] = dist.metadata["Name"]
    owners_below: Dict[Tuple[str, ...], Set[str]] = {}
    for path, name in owner.items():
        for depth in range(1, len(path.parts)):
            owners_below.setdefault(path.parts[:depth], set()).add(name)
    patterns: Dict[str, Set[str]] = {}
    for path, name in owner.items():
        for depth in range(1, len(path.parts) + 1):
            prefix = PurePosixPath(*path.parts[:depth])
            if depth == len(path.parts):
                patterns.setdefault(name, set()).add(str(prefix))
                break
            # lib/pythonX.Y/site-packages/<top>/ or deeper, holding only this distribution's files
            if depth >= 4 and owners_below[path.parts[:depth]] == {name}:
                patterns.setdefault(name, set()).add(f"{prefix}/*")
                break
    return {name: sorted(found) for name, found in patterns.items()}


def paragraph(field: str, lines: Sequence[str]) -> List[str]:
    """A DEP-5 field: the first line after the name, the rest indented, blank lines as " ."."""
    out = [f"{field}: {lines[0]}" if lines and lines[0] else f"{field}:"]
    for raw in lines[1:]:
        line = raw.expandtabs(8).rstrip()
        out.append(" " + line if line.strip() else " .")
    return out


def stanza(dist: Distribution, files: Sequence[str], venv: Path, prefix: str) -> List[str]:
    meta = dist.metadata
    name = meta["Name"]
    texts = licence_files(dist)
    expression = dep5_expression(licence_of(dist, [t for _, t in texts]))
    holders = []
    for _, text in texts:
        for line in text.splitlines():
            if COPYRIGHT_LINE.match(line) and "Free Software Foundation" not in line:
                holders.append(" ".join(line.split()))
    if not holders:
        authors = [str(meta[f]) for f in ("Author", "Author-email", "Maintainer", "Maintainer-email") if meta.get(f)]
        holders = [f"the {name} authors" + (f": {', '.join(authors)}" if authors else "")]
    body = [expression, f"{name} {dist.version}, as the metadata it installs says."]
    for file_name, text in texts:
        common = common_licence(text)
        body.append("")
        if common:
            body.append(f"{file_name}: the full text is in /usr/share/common-licenses/{common}.")
        else:
            body.append(f"{file_name}:")
            body.extend(text.strip("\n").splitlines())
    if not texts:
        common = next((COMMON_FOR[t] for t in re.split(r"[ ,]+", expression) if t in COMMON_FOR), None)
        if not common:
            raise LicenceError(f"{name} {dist.version}: no licence file installed, and {expression} is not in "
                               "/usr/share/common-licenses")  # fmt: skip
        body.extend(["", f"The full text is in /usr/share/common-licenses/{common}."])
    for grafted in [f for f in files if f.endswith(".libs/*")]:
        libraries = sorted(p.name for p in (venv / grafted[:-2]).iterdir())
        note = (
            f"{grafted[:-2].rsplit('/', 1)[-1]}/ holds shared libraries the wheel's build copied in from the system "
            f"it was built on ({', '.join(libraries)}): their own licences are not in {name}'s metadata and are not "
            "listed here."
        )
        body.extend(["", *textwrap.wrap(note, 78, break_on_hyphens=False)])
    return [
        *paragraph("Files", [f"{prefix}/{f}" for f in files]),
        *paragraph("Copyright", list(dict.fromkeys(holders))),
        *paragraph("License", body),
    ]


def generate(venv: Path, prefix: str, header: str) -> str:
    sites = sorted(venv.glob("lib/python3.*/site-packages"))
    if len(sites) != 1:
        raise LicenceError(f"{venv}: expected one lib/python3.X/site-packages, found {len(sites)}")
    dists = sorted(distributions(path=[str(sites[0])]), key=lambda d: str(d.metadata["Name"]).lower())
    if not dists:
        raise LicenceError(f"{sites[0]}: no distributions installed")
    files = owned_paths(dists, sites[0], venv)
    out = [header.rstrip("\n")]
    for dist in dists:
        name = dist.metadata["Name"]
        if name not in files:
            raise LicenceError(f"{name} {dist.version}: its RECORD names no file in {venv}")
        out.extend(["", *stanza(dist, files[name], venv, prefix)])
    return "\n".join(out) + "\n"


def main(argv: Sequence[str]) -> int:
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    venv, prefix, header, out = argv
    try:
        text = generate(Path(venv), prefix.strip("/"), Path(header).read_text())
    except LicenceError as err:
        print(f"venv_copyright.py: {err}", file=sys.stderr)
        return 1
    Path(out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
