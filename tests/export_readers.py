"""Small readers of the solver formats, written from the manuals' grammar (not from our
writers), for the export tests.

Abaqus input syntax: a line starting with '**' is a comment; a keyword line starts with
'*', then the keyword, then ', PARAMETER[=value]' items (blanks ignored, case-insensitive);
data lines follow their keyword line, entries separated by commas; no line longer than
256 characters; an entry left empty between commas is absent. *UNIAXIAL TEST DATA for
Marlow: nominal stress, nominal strain[, nominal lateral strain, temperature, field
variables...]; the lateral strain may be left out only when *HYPERELASTIC has POISSON;
field variables need DEPENDENCIES=n on *UNIAXIAL TEST DATA (n of them per line).

LS-DYNA keyword format: the deck starts with *KEYWORD and ends with *END; '$' in column 1
is a comment; *DEFINE_CURVE_TITLE is followed by an 80-character title line, card 1 in
eight 10-character fields (LCID SIDR SFA SFO OFFA OFFO DATTYP LCINT; blank = default:
SIDR 0, SFA 1, SFO 1, OFFA 0, OFFO 0, DATTYP 0) and point cards of two 20-character
fields (A1, O1) until the next keyword. A zero SFA/SFO means 1; the point is
(SFA * (A + OFFA), SFO * (O + OFFO)).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class AbaqusMaterial:
    name: str
    keywords: list[tuple[str, dict[str, str | None]]] = field(default_factory=list)
    stress: list[float] = field(default_factory=list)
    strain: list[float] = field(default_factory=list)
    # Per data line: the temperature and the field variables, None where absent.
    temperature: list[float | None] = field(default_factory=list)
    field_variables: list[list[float | None]] = field(default_factory=list)

    def parameter(self, keyword: str, name: str) -> str | None:
        """The value of parameter `name` on this material's `keyword` line."""
        for word, params in self.keywords:
            if word == keyword:
                return params.get(name)
        return None


def _keyword(line: str) -> tuple[str, dict[str, str | None]]:
    parts = [p.replace(" ", "").upper() for p in line[1:].split(",")]
    params: dict[str, str | None] = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        params[key] = value if value else None
    return parts[0], params


def read_abaqus(text: str) -> dict[str, AbaqusMaterial]:
    materials: dict[str, AbaqusMaterial] = {}
    current: AbaqusMaterial | None = None
    keyword = None
    for line in text.splitlines():
        assert len(line) <= 256, line
        line.encode("ascii")
        if line.startswith("**"):
            continue
        if line.lstrip().startswith("*"):
            keyword, params = _keyword(line.strip())
            if keyword == "MATERIAL":
                name = params["NAME"]
                assert name and len(name) <= 80 and name[0].isalpha(), name
                assert name not in materials
                current = materials[name] = AbaqusMaterial(name)
            else:
                assert current is not None, f"{keyword} outside a material"
                current.keywords.append((keyword, params))
            continue
        entries = [float(v) if v.strip() else None for v in line.split(",")]
        assert current is not None and keyword is not None
        if keyword == "HYPERELASTIC":
            raise AssertionError("*HYPERELASTIC, MARLOW takes no data lines")
        assert keyword == "UNIAXIALTESTDATA", keyword
        assert 2 <= len(entries) <= 8, line
        stress, strain, *rest = entries + [None] * (8 - len(entries))
        assert stress is not None and strain is not None, line
        if rest[0] is None and any(v is not None for v in rest[1:]):
            # Temperature or field variables without a lateral strain: only with POISSON.
            assert current.parameter("HYPERELASTIC", "POISSON") is not None, line
        dependencies = int(current.parameter("UNIAXIALTESTDATA", "DEPENDENCIES") or 0)
        assert all(v is None for v in rest[2 + dependencies:]), line
        current.stress.append(stress)
        current.strain.append(strain)
        current.temperature.append(rest[1])
        current.field_variables.append(rest[2:2 + dependencies])
    return materials


@dataclass
class DynaCurve:
    lcid: int
    title: str
    sidr: int
    dattyp: int
    abscissa: np.ndarray
    ordinate: np.ndarray


def _fields(line: str, width: int, count: int) -> list[str]:
    return [line[i * width:(i + 1) * width].strip() for i in range(count)]


@dataclass
class DynaTable:
    tbid: int
    title: str
    values: np.ndarray
    curves: list[int]  # the ids of the curves that follow it, one per value


def read_lsdyna(text: str) -> dict[int, DynaCurve]:
    """The deck's curves by id (tables: read_lsdyna_tables)."""
    return _read_deck(text)[0]


def read_lsdyna_tables(text: str) -> dict[int, DynaTable]:
    return _read_deck(text)[1]


def _read_deck(text: str) -> tuple[dict[int, DynaCurve], dict[int, DynaTable]]:
    lines = [line for line in text.splitlines() if not line.startswith("$")]
    assert lines[0].strip().upper() == "*KEYWORD" and lines[-1].strip().upper() == "*END"
    curves: dict[int, DynaCurve] = {}
    tables: dict[int, DynaTable] = {}
    owed: list[int] = []  # ids of tables still waiting for their curves
    i = 1
    while i < len(lines) - 1:
        keyword = lines[i].strip().upper()
        assert keyword in ("*DEFINE_CURVE", "*DEFINE_CURVE_TITLE", "*DEFINE_TABLE",
                           "*DEFINE_TABLE_TITLE"), keyword
        i += 1
        title = ""
        if keyword.endswith("_TITLE"):
            title = lines[i]
            assert len(title) <= 80
            i += 1
        if keyword.startswith("*DEFINE_TABLE"):
            assert not owed, "a table before the previous table's curves"
            card = _fields(lines[i], 10, 3)
            tbid, sfa, offa = int(card[0]), float(card[1] or 1) or 1.0, float(card[2] or 0)
            i += 1
            values = []
            while not lines[i].startswith("*"):
                assert len(lines[i].rstrip()) <= 20, lines[i]
                values.append(sfa * (float(lines[i][:20]) + offa))
                i += 1
            assert tbid not in tables and tbid not in curves
            assert values == sorted(values), "table values must ascend"
            tables[tbid] = DynaTable(tbid, title, np.array(values), [])
            owed = [tbid] * len(values)
            continue
        card = _fields(lines[i], 10, 8)
        assert len(lines[i].rstrip()) <= 80
        lcid = int(card[0])
        sidr = int(card[1] or 0)
        sfa, sfo = (float(card[2] or 1) or 1.0), (float(card[3] or 1) or 1.0)
        offa, offo = float(card[4] or 0), float(card[5] or 0)
        dattyp = int(card[6] or 0)
        i += 1
        points = []
        while not lines[i].startswith("*"):
            assert len(lines[i].rstrip()) <= 40, lines[i]
            a, o = _fields(lines[i], 20, 2)
            points.append((sfa * (float(a) + offa), sfo * (float(o) + offo)))
            i += 1
        assert lcid not in curves and lcid not in tables
        data = np.array(points)
        curves[lcid] = DynaCurve(lcid, title, sidr, dattyp, data[:, 0], data[:, 1])
        if owed:
            tables[owed.pop()].curves.append(lcid)
    assert not owed, "a table without all its curves"
    return curves, tables


def read_csv(text: str) -> tuple[list[str], dict[str, np.ndarray], list[str]]:
    """(comment lines, columns by name, column order) of the CSV export."""
    comments = [line[2:] for line in text.splitlines() if line.startswith("#")]
    rows = [line for line in text.splitlines() if line and not line.startswith("#")]
    names = rows[0].split(",")
    matrix = np.array([[float(v) for v in row.split(",")] for row in rows[1:]])
    return comments, {n: matrix[:, k] for k, n in enumerate(names)}, names
