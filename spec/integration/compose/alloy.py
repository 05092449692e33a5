"""alloy.py - compose/config.alloy read and run the way Grafana Alloy would,
for spec/integration/compose/check_stack.py. No Alloy binary is packaged for
Debian or npm, so this holds the parts the stack uses, written from Alloy's
documentation and behaviour (its v1.19 line):

  parse(text)          the configuration syntax: blocks, attributes, and the
                       expressions a pipeline is written in (strings, numbers,
                       bools, null, lists, objects, references). A newline
                       ends a statement, and a list or object that spans lines
                       needs a comma after each element, the last one too.
                       Operators and function calls are refused: this reader
                       does not evaluate them.
  KNOWN                the components and blocks it knows, with their
                       arguments, to refuse a misspelt one;
  Pipeline             loki.source.file -> loki.process -> loki.write run
                       over a file: the entries Loki would be sent, with
                       labels, timestamp and structured metadata.
  logfmt_pairs(line)   the keys and values of a logfmt line as go-logfmt
                       (the decoder of Alloy's stage.logfmt) reads them,
                       stopping where it stops.
"""
import re
from datetime import datetime, timezone


class AlloyError(Exception):
    pass


# ------------------------------------------------------------------ syntax
class Ref:
    """A reference to another component's export, e.g. loki.write.x.receiver."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name

    def __eq__(self, other):
        return isinstance(other, Ref) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


class Block:
    def __init__(self, name, label, line):
        self.name, self.label, self.line = name, label, line
        self.attrs = {}
        self.blocks = []

    @property
    def id(self):
        return self.name + (f".{self.label}" if self.label is not None else "")

    def children(self, name):
        return [b for b in self.blocks if b.name == name]


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+)
  | (?P<nl>\n)
  | (?P<lcomment>//[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<punct>[{}\[\](),=.])
""", re.X | re.S)
# after these a newline ends the statement (as Go inserts its semicolons)
_ENDS = {"ident", "number", "string", ")", "]", "}"}
_ESC = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b",
        "f": "\f", "v": "\v"}


def _unquote(s, line):
    out, i = [], 1
    while i < len(s) - 1:
        c = s[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = s[i + 1]
        if e in _ESC:
            out.append(_ESC[e])
            i += 2
        elif e in "xuU":
            n = {"x": 2, "u": 4, "U": 8}[e]
            h = s[i + 2:i + 2 + n]
            if not re.fullmatch(r"[0-9A-Fa-f]{%d}" % n, h):
                raise AlloyError(f"line {line}: bad escape \\{e}{h}")
            out.append(chr(int(h, 16)))
            i += 2 + n
        else:
            raise AlloyError(f"line {line}: unknown escape \\{e}")
    return "".join(out)


def _tokens(text):
    toks, pos, line, last = [], 0, 1, None
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise AlloyError(f"line {line}: unexpected {text[pos]!r}")
        kind, val = m.lastgroup, m.group()
        pos = m.end()
        if kind in ("nl", "bcomment", "lcomment", "ws"):
            if "\n" in val and last in _ENDS:
                toks.append(("term", "\n", line))
                last = None
            line += val.count("\n")
            continue
        if kind == "punct":
            kind = val
        elif kind == "raw":
            kind, val = "string", '"' + val[1:-1].replace("\\", "\\\\").replace('"', '\\"') + '"'
        toks.append((kind, val, line))
        last = kind
    if last in _ENDS:
        toks.append(("term", "", line))
    toks.append(("eof", "", line))
    return toks


class _Parser:
    def __init__(self, text):
        self.t = _tokens(text)
        self.i = 0

    def peek(self):
        return self.t[self.i]

    def take(self, kind=None):
        tok = self.t[self.i]
        if kind and tok[0] != kind:
            what = tok[1] if tok[0] not in ("term", "eof") else tok[0]
            raise AlloyError(f"line {tok[2]}: expected {kind}, got {what!r}")
        self.i += 1
        return tok

    def body(self, block, end):
        while self.peek()[0] != end:
            kind, name, line = self.take("ident")
            parts = [name]
            while self.peek()[0] == ".":
                self.take(".")
                parts.append(self.take("ident")[1])
            if self.peek()[0] == "=":
                if len(parts) > 1:
                    raise AlloyError(f"line {line}: an attribute name has no dots")
                self.take("=")
                if name in block.attrs:
                    raise AlloyError(f"line {line}: {name} set twice in {block.id}")
                block.attrs[name] = self.expr()
            else:
                label = None
                if self.peek()[0] == "string":
                    label = _unquote(self.take()[1], line)
                b = Block(".".join(parts), label, line)
                self.take("{")
                self.body(b, "}")
                self.take("}")
                block.blocks.append(b)
            if self.peek()[0] != end:
                self.take("term")
        return block

    def expr(self):
        kind, val, line = self.take()
        if kind == "string":
            v = _unquote(val, line)
        elif kind == "number":
            v = float(val) if re.search(r"[.eE]", val) else int(val)
        elif kind == "ident":
            if val in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[val]
            parts = [val]
            while self.peek()[0] == ".":
                self.take(".")
                parts.append(self.take("ident")[1])
            v = Ref(".".join(parts))
        elif kind == "[":
            v = self.elements("]", lambda: self.expr())
        elif kind == "{":
            v = dict(self.elements("}", self.field))
        else:
            raise AlloyError(f"line {line}: unexpected {val!r} where a value goes")
        if self.peek()[0] in ("(", "["):
            raise AlloyError(f"line {line}: calls and indexing are not read here")
        nxt = self.peek()
        if nxt[0] in ("ident", "string", "number"):
            raise AlloyError(f"line {nxt[2]}: expected a newline or ',' before {nxt[1]!r}")
        if nxt[0] not in ("term", ",", "]", "}", ")"):
            raise AlloyError(f"line {nxt[2]}: operators are not read here ({nxt[1]!r})")
        return v

    def field(self):
        kind, key, line = self.take()
        if kind == "string":
            key = _unquote(key, line)
        elif kind != "ident":
            raise AlloyError(f"line {line}: expected a field name, got {key!r}")
        self.take("=")
        return key, self.expr()

    def elements(self, close, one):
        out = []
        while self.peek()[0] != close:
            out.append(one())
            if self.peek()[0] == close:
                break
            if self.peek()[0] != ",":
                raise AlloyError(f"line {self.peek()[2]}: missing ',' before the "
                                 f"{'newline' if self.peek()[0] == 'term' else repr(self.peek()[1])}")
            self.take(",")
        self.take(close)
        if close == "}":
            keys = [k for k, _ in out]
            dup = {k for k in keys if keys.count(k) > 1}
            if dup:
                raise AlloyError(f"field {sorted(dup)[0]} set twice in an object")
        return out


def parse(text):
    """The top-level block (name "") of a configuration; AlloyError if it
    does not read."""
    p = _Parser(text)
    root = Block("", None, 0)
    p.body(root, "eof")
    return root


# ---------------------------------------------- what components take, by name
# Per block: its arguments (attributes) and inner blocks, as Alloy's
# reference documents them. Only components this stack could use.
_ENDPOINT = {"url", "batch_size", "batch_wait", "bearer_token_file", "bearer_token",
             "enable_http2", "follow_redirects", "http_headers", "headers",
             "max_backoff_period", "max_backoff_retries", "min_backoff_period", "name",
             "no_proxy", "proxy_connect_header", "proxy_from_environment", "proxy_url",
             "remote_timeout", "retry_on_http_429", "tenant_id"}
KNOWN = {
    "logging": ({"level", "format"}, {}),
    "loki.source.file": (
        {"targets", "forward_to", "encoding", "legacy_positions_file",
         "on_positions_file_error", "tail_from_end"},
        {"file_match": ({"enabled", "ignore_older_than", "sync_period"}, {}),
         "file_watch": ({"min_poll_frequency", "max_poll_frequency"}, {}),
         "decompression": ({"enabled", "format", "initial_delay"}, {})}),
    "loki.process": (
        {"forward_to"},
        {"stage.logfmt": ({"mapping", "regex", "source"}, {}),
         "stage.json": ({"expressions", "source", "drop_malformed"}, {}),
         "stage.timestamp": ({"source", "format", "action_on_failure",
                              "action_on_duplicate_timestamp", "fallback_formats",
                              "location"}, {}),
         "stage.structured_metadata": ({"values", "regex"}, {}),
         "stage.labels": ({"values", "source_type"}, {}),
         "stage.static_labels": ({"values"}, {}),
         "stage.label_drop": ({"values"}, {}),
         "stage.label_keep": ({"values"}, {})}),
    "loki.write": (
        {"external_labels", "max_streams"},
        {"endpoint": (_ENDPOINT, {}), "wal": ({"enabled", "max_segment_age",
                                                "min_read_frequency",
                                                "max_read_frequency", "drain_timeout"}, {})}),
}
# what each component exports to forward_to
RECEIVERS = {"loki.process", "loki.write"}


def unknown_names(root):
    """'where: name' of each component, block or argument KNOWN lacks."""
    bad = []

    def walk(b, spec, where):
        attrs, blocks = spec
        bad.extend(f"{where}: {a}" for a in b.attrs if a not in attrs)
        for c in b.blocks:
            if c.name in blocks:
                walk(c, blocks[c.name], f"{where} {c.name}")
            else:
                bad.append(f"{where}: block {c.name}")

    for b in root.blocks:
        if b.name in KNOWN:
            walk(b, KNOWN[b.name], b.id)
        else:
            bad.append(f"component {b.name}")
    bad.extend(f"top level: {a}" for a in root.attrs)
    return bad


def components(root):
    return {b.id: b for b in root.blocks}


def receiver_of(ref):
    """The component a forward_to reference names (loki.write.x.receiver ->
    loki.write.x), or None."""
    if isinstance(ref, Ref) and ref.name.endswith(".receiver"):
        return ref.name[:-len(".receiver")]
    return None


# ------------------------------------------------------------------ logfmt
class LogfmtError(Exception):
    pass


_JSON_ESC = {'"': '"', "\\": "\\", "/": "/", "'": "'", "b": "\b", "f": "\f", "n": "\n",
             "r": "\r", "t": "\t"}


def _logfmt_unquote(s):
    """go-logfmt's unquoting of a quoted value with escapes: JSON's escapes
    (and \\'); anything else, or a control byte, is invalid."""
    out, i = [], 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if i + 1 >= len(s):
                raise LogfmtError("invalid quoted value")
            e = s[i + 1]
            if e in _JSON_ESC:
                out.append(_JSON_ESC[e])
                i += 2
            elif e == "u" and re.fullmatch(r"[0-9A-Fa-f]{4}", s[i + 2:i + 6]):
                cp = int(s[i + 2:i + 6], 16)
                i += 6
                if 0xD800 <= cp < 0xDC00 and s[i:i + 2] == "\\u" and \
                        re.fullmatch(r"[0-9A-Fa-f]{4}", s[i + 2:i + 6]) and \
                        0xDC00 <= int(s[i + 2:i + 6], 16) < 0xE000:
                    lo = int(s[i + 2:i + 6], 16)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00)
                    i += 6
                elif 0xD800 <= cp < 0xE000:
                    cp = 0xFFFD
                out.append(chr(cp))
            else:
                raise LogfmtError("invalid quoted value")
        elif c == '"' or c < " ":
            raise LogfmtError("invalid quoted value")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def logfmt_pairs(line):
    """Yields (key, value) of one logfmt line as go-logfmt's Decoder does (a
    bare key's value is None), and raises LogfmtError where it would stop:
    what came before is still yielded. bufio.Scanner's 64 KiB token limit
    applies to the line."""
    if len(line.encode("utf-8", "surrogateescape")) >= 64 * 1024:
        raise LogfmtError("token too long")
    line = line.rstrip("\r")
    n, pos = len(line), 0
    while True:
        while pos < n and line[pos] <= " ":
            pos += 1
        if pos >= n:
            return
        start = pos
        while pos < n and line[pos] > " " and line[pos] not in '="':
            pos += 1
        key = line[start:pos]
        if "\ufffd" in key:
            raise LogfmtError("invalid key")
        if pos < n and line[pos] == '"':
            raise LogfmtError('unexpected \'"\'')
        if pos >= n or line[pos] <= " ":
            yield key, None
            continue
        # '='
        if not key:
            raise LogfmtError("unexpected '='")
        pos += 1
        if pos >= n or line[pos] <= " ":
            yield key, None
            continue
        if line[pos] == '"':
            j, esc, has_esc = pos + 1, False, False
            while j < n:
                c = line[j]
                if esc:
                    esc = False
                elif c == "\\":
                    esc = has_esc = True
                elif c == '"':
                    break
                j += 1
            if j >= n:
                raise LogfmtError("unterminated quoted value")
            raw = line[pos + 1:j]
            yield key, (_logfmt_unquote(raw) if has_esc else raw) or None
            pos = j + 1
            continue
        start = pos
        while pos < n and line[pos] > " ":
            if line[pos] in '="':
                raise LogfmtError(f"unexpected {line[pos]!r}")
            pos += 1
        yield key, line[start:pos]


# ---------------------------------------------------------------- pipeline
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?"
                      r"(Z|[+-]\d{2}:\d{2})$")


def parse_rfc3339(s):
    """Nanoseconds since the epoch of an RFC 3339 time as Go's time.Parse
    reads RFC3339 and RFC3339Nano (a fraction is accepted by both), or None."""
    m = _RFC3339.match(s)
    if not m:
        return None
    y, mo, d, h, mi, sec, frac, tz = m.groups()
    try:
        off = 0 if tz == "Z" else (1 if tz[0] == "+" else -1) * (int(tz[1:3]) * 60 + int(tz[4:6]))
        base = datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec), tzinfo=timezone.utc)
    except ValueError:
        return None
    ns = int((frac or ".0")[1:10].ljust(9, "0"))
    return (int(base.timestamp()) - off * 60) * 10**9 + ns


def _stage_map(values):
    return {k: (v or k) for k, v in (values or {}).items()}


LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class Pipeline:
    """The file's path to Loki through the components of a configuration:
    one loki.source.file, the loki.process stages it forwards to in turn,
    and the loki.write at the end."""

    def __init__(self, root):
        comps = components(root)
        sources = [b for b in root.blocks if b.name == "loki.source.file"]
        if len(sources) != 1:
            raise AlloyError(f"one loki.source.file, not {len(sources)}")
        self.source = sources[0]
        self.targets = self.source.attrs.get("targets") or []
        self.stages, self.write = [], None
        seen, node = set(), self.source
        while True:
            fwd = node.attrs.get("forward_to") or []
            if len(fwd) != 1:
                raise AlloyError(f"{node.id} forwards to one receiver, not {len(fwd)}")
            nxt = receiver_of(fwd[0])
            if nxt not in comps or nxt in seen:
                raise AlloyError(f"{node.id}: forward_to {fwd[0]!r} is no component's receiver")
            seen.add(nxt)
            node = comps[nxt]
            if node.name == "loki.write":
                self.write = node
                break
            if node.name != "loki.process":
                raise AlloyError(f"{node.id} is not simulated here")
            self.stages += node.blocks
        self._last_ts = {}

    def ship(self, lines, path, now_ns):
        """The entries sent to Loki for the lines of the file at path:
        dicts of labels, ts (ns), line, metadata."""
        targets = [t for t in self.targets if t.get("__path__") == path]
        if not targets:
            raise AlloyError(f"no target reads {path}")
        for t in targets:
            base = {k: str(v) for k, v in t.items() if not k.startswith("__")}
            base["filename"] = path
            for i, line in enumerate(lines):
                e = {"labels": dict(base), "ts": now_ns + i, "line": line, "metadata": {},
                     "extracted": {}}
                for st in self.stages:
                    self._run(st, e)
                e.pop("extracted")
                yield e

    def _run(self, st, e):
        a, ex, labels = st.attrs, e["extracted"], e["labels"]
        if st.name == "stage.logfmt":
            src = a.get("source") or ""
            text = e["line"] if not src else ex.get(src)
            if text is None:
                return
            inverse = {v or k: k for k, v in (a.get("mapping") or {}).items()}
            rx = re.compile(a["regex"]) if a.get("regex") else None
            try:
                for k, v in logfmt_pairs(str(text)):
                    if k in inverse:
                        ex[inverse[k]] = v or ""
                    if rx and rx.search(k):
                        ex[k] = v or ""
            except LogfmtError as err:
                e.setdefault("errors", []).append(f"logfmt: {err}")
        elif st.name == "stage.timestamp":
            fmt = a.get("format")
            if fmt not in ("RFC3339", "RFC3339Nano"):
                raise AlloyError(f"stage.timestamp format {fmt!r} is not simulated")
            key = tuple(sorted(labels.items()))
            got = parse_rfc3339(str(ex.get(a.get("source"), "")))
            fail = a.get("action_on_failure", "fudge")
            dup = a.get("action_on_duplicate_timestamp", "fudge")
            last = self._last_ts.get(key)
            if got is None:
                e.setdefault("errors", []).append("timestamp: not parsed")
                if fail == "fudge" and last:
                    e["ts"] = last[1] + 1
                    self._last_ts[key] = (last[0], e["ts"])
                return
            e["ts"] = got
            if dup == "fudge" and last and last[0] == got:
                e["ts"] = last[1] + 1
            self._last_ts[key] = (got, e["ts"])
        elif st.name == "stage.structured_metadata":
            m = _stage_map(a.get("values"))
            rx = re.compile(a["regex"]) if a.get("regex") else None
            for name, src in m.items():
                if src in ex:
                    e["metadata"][name] = str(ex[src])
            for k, v in list(ex.items()):
                if rx and rx.search(k):
                    e["metadata"][k] = str(v)
            for name, src in m.items():
                if src in labels:
                    e["metadata"][name] = labels.pop(src)
            for k in [k for k in labels if rx and rx.search(k)]:
                e["metadata"][k] = labels.pop(k)
        elif st.name == "stage.labels":
            if a.get("source_type", "extracted") != "extracted":
                raise AlloyError("stage.labels from structured metadata is not simulated")
            for name, src in _stage_map(a.get("values")).items():
                if src in ex and str(ex[src]) != "":
                    labels[name] = str(ex[src])
        elif st.name == "stage.static_labels":
            for k, v in (a.get("values") or {}).items():
                labels[k] = str(v)
        elif st.name == "stage.label_drop":
            for k in a.get("values") or []:
                labels.pop(k, None)
        elif st.name == "stage.label_keep":
            keep = set(a.get("values") or [])
            for k in [k for k in labels if k not in keep]:
                del labels[k]
        else:
            raise AlloyError(f"{st.name} is not simulated")
