#!/usr/bin/env python3
"""check_stack.py - reads compose/ the way Docker Compose, the Dockerfile's
builder, Grafana's provisioning and the backends would, for
spec/integration/test_compose.sh.

  check_stack.py check ROOT SHOAL        every structural check; one line each:
                                         "PASS<TAB>name" or
                                         "FAIL<TAB>name<TAB>detail"
  check_stack.py facts ROOT              values the shell test needs, as
                                         KEY<TAB>VALUE lines
  check_stack.py argv ROOT [--dockerfile-cmd] [--replica NAME] --listen PORT
                 --duration SECS [--map HOST=URL ...] [--dead URL]
                                         the shoal command line of
                                         docker-compose.yml (of replica
                                         NAME, default shoal; or the
                                         Dockerfile's CMD), made runnable
                                         here: NUL-separated. A URL's
                                         scheme://HOST:PORT becomes --map's
                                         URL for HOST (any scheme: redis://
                                         too), the replica's own address
                                         its --listen, other services --dead
  check_stack.py prometheus ROOT INTERVAL NAME=TARGET...
                                         compose/prometheus.yml with the
                                         shoal replicas' scrape job aimed
                                         at TARGET for replica NAME (labels
                                         kept), the rest dropped (YAML on
                                         stdout)
  check_stack.py ship ROOT LOGFILE [NAME]
                                         what the alloy service would send
                                         Loki for LOGFILE, a log of shoal
                                         read as the file it tails for
                                         replica NAME (default shoal): one
                                         JSON entry a line {labels, ts,
                                         line, metadata[, errors]}

ROOT is the repository; compose/ is under it. Needs python3-yaml; alloy.py
beside this file reads the agent's configuration.
"""
import json
import os
import re
import shlex
import subprocess
import sys
from urllib.parse import urlsplit

import yaml

sys.dont_write_bytecode = True  # no __pycache__ beside alloy.py
import alloy  # noqa: E402

SERVICES = {"shoal", "shoal-2", "redis", "grafana", "prometheus", "loki", "tempo", "pyroscope",
            "alloy"}
IMAGES = {
    "redis": "redis",
    "grafana": "grafana/grafana",
    "prometheus": "prom/prometheus",
    "loki": "grafana/loki",
    "tempo": "grafana/tempo",
    "pyroscope": "grafana/pyroscope",
    "alloy": "grafana/alloy",
}
LOKI_PUSH = "/loki/api/v1/push"
# where each link of a Grafana data source must land
LINK_TYPES = {
    "exemplarTraceIdDestinations": "tempo",
    "tracesToLogsV2": "loki",
    "tracesToProfiles": "grafana-pyroscope-datasource",
    "tracesToMetrics": "prometheus",
    "serviceMap": "prometheus",
    "derivedFields": "tempo",
}
CPU_PROFILE = "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
# libraries every Debian image has (libc6, libgcc-s1, zlib1g are Essential
# or required), and the sanitizers' runtimes of a test build
BASE_PACKAGES = {"libc6", "libgcc-s1", "zlib1g"}
SANITIZER_LIB = re.compile(r"^lib(asan|ubsan|tsan|lsan)")


class Stack:
    def __init__(self, root):
        self.root = root
        self.dir = os.path.join(root, "compose")
        self.compose = self.yaml("docker-compose.yml")
        self.services = (self.compose or {}).get("services") or {}

    def path(self, *rel):
        return os.path.join(self.dir, *rel)

    def yaml(self, rel):
        with open(self.path(rel), encoding="utf-8") as f:
            return yaml.safe_load(f)

    # ------------------------------------------------------------ compose
    def mounts(self, name):
        """(source on the host, absolute; target in the container) of each
        bind mount of a service."""
        out = []
        for v in self.services.get(name, {}).get("volumes") or []:
            if isinstance(v, dict):
                if v.get("type", "volume") != "bind":
                    continue
                src, dst = v.get("source", ""), v.get("target", "")
            else:
                parts = v.split(":")
                if len(parts) < 2 or not parts[0].startswith((".", "/", "~")):
                    continue
                src, dst = parts[0], parts[1]
            out.append((os.path.normpath(os.path.join(self.dir, src)), dst))
        return out

    def volumes(self, name):
        """(named volume, target in the container, read-only) of each
        volume mount of a service."""
        out = []
        for v in self.services.get(name, {}).get("volumes") or []:
            if isinstance(v, dict):
                if v.get("type", "volume") != "volume":
                    continue
                out.append((v.get("source", ""), v.get("target", ""), bool(v.get("read_only"))))
                continue
            parts = v.split(":")
            if len(parts) < 2 or parts[0].startswith((".", "/", "~")):
                continue
            out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
        return out

    def volume_at(self, name, container_path):
        """(volume, path inside it, read-only) of a path a service sees on a
        named volume, or None."""
        for vol, dst, ro in self.volumes(name):
            d = dst.rstrip("/")
            if container_path.startswith(d + "/"):
                return vol, container_path[len(d) + 1:], ro
        return None

    def option(self, argv, name):
        """A --name=value or --name value option of a command line."""
        for i, a in enumerate(argv):
            if a == name and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(name + "="):
                return a.split("=", 1)[1]
        return None

    def alloy_config(self):
        """(path in the container, file on the host) of the configuration
        the alloy service runs."""
        args = [a for a in self.command("alloy")[1:] if not a.startswith("-")]
        path = args[0] if len(args) == 1 else None
        return path, (self.host_path("alloy", path) if path else None)

    def host_path(self, name, container_path):
        """The file on the host that a service sees at container_path
        through its bind mounts, or None."""
        best = None
        for src, dst in self.mounts(name):
            d = dst.rstrip("/")
            if container_path == d or container_path.startswith(d + "/"):
                if best is None or len(d) > len(best[1]):
                    best = (src, d)
        if best is None:
            return None
        return best[0] + container_path[len(best[1]):]

    def command(self, name):
        cmd = self.services.get(name, {}).get("command")
        if isinstance(cmd, str):
            return shlex.split(cmd)
        return [str(a) for a in cmd or []]

    # ---------------------------------------------------------- Dockerfile
    def dockerfile_path(self):
        build = self.services.get("shoal", {}).get("build") or {}
        if isinstance(build, str):
            build = {"context": build}
        ctx = os.path.normpath(os.path.join(self.dir, build.get("context", ".")))
        return ctx, os.path.join(ctx, build.get("dockerfile", "Dockerfile"))

    def dockerfile(self):
        """Instructions as (stage, KEYWORD, text), continuation lines joined."""
        _, path = self.dockerfile_path()
        with open(path, encoding="utf-8") as f:
            text = f.read()
        logical, cur = [], ""
        for line in text.splitlines():
            s = line.strip()
            if not cur and (not s or s.startswith("#")):
                continue
            if cur and s.startswith("#"):
                continue
            if s.endswith("\\"):
                cur += s[:-1] + " "
                continue
            logical.append(cur + s)
            cur = ""
        out, stage = [], -1
        for ins in logical:
            kw, _, rest = ins.partition(" ")
            kw = kw.upper()
            if kw == "FROM":
                stage += 1
            out.append((stage, kw, rest.strip()))
        return out

    def apt_packages(self, stage):
        pkgs = []
        for st, kw, rest in self.dockerfile():
            if st != stage or kw != "RUN":
                continue
            for cmd in re.split(r"&&|;", rest):
                words = cmd.split()
                if "apt-get" in words and "install" in words:
                    pkgs += [w for w in words[words.index("install") + 1:]
                             if not w.startswith("-")]
        return pkgs

    def copies(self):
        """(sources, destination) of each COPY from the context."""
        out = []
        for _, kw, rest in self.dockerfile():
            if kw not in ("COPY", "ADD"):
                continue
            words = rest.split()
            if any(w.startswith("--from") for w in words):
                continue
            words = [w for w in words if not w.startswith("--")]
            out.append((words[:-1], words[-1]))
        return out

    def exec_form(self, keyword):
        val = None
        for _, kw, rest in self.dockerfile():
            if kw == keyword:
                val = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        return val or []

    def container_to_repo(self, p):
        """A path in the shoal image, as the repository file it was copied
        from (or p itself)."""
        for srcs, dst in self.copies():
            if len(srcs) != 1:
                continue
            src = srcs[0].rstrip("/")
            if dst.endswith("/"):
                d = dst.rstrip("/")
                if p == d or p.startswith(d + "/"):
                    return os.path.join(self.root, src + p[len(d):])
            elif p == dst:
                return os.path.join(self.root, src)
        return p

    # --------------------------------------------------------- shoal's run
    def replicas(self):
        """The services that run the shoal image (built from its
        Dockerfile): shoal first."""
        built = [n for n, spec in self.services.items() if "build" in spec]
        return sorted(built, key=lambda n: (n != "shoal", n))

    def shoal_argv(self, dockerfile_cmd=False, replica="shoal"):
        entry = self.exec_form("ENTRYPOINT")
        cmd = self.exec_form("CMD") if dockerfile_cmd else self.command(replica)
        return entry[1:] + cmd if entry else cmd[1:]

    def shoal_option(self, argv, name):
        for i, a in enumerate(argv):
            if a == "--":
                break
            if a == name and i + 1 < len(argv):
                return argv[i + 1]
            if a.startswith(name + "="):
                return a.split("=", 1)[1]
        return None

    # ------------------------------------------------------------- Grafana
    def grafana_datasources(self):
        mounted = self.host_path("grafana", "/etc/grafana/provisioning/datasources")
        out = []
        for f in sorted(os.listdir(mounted)) if mounted and os.path.isdir(mounted) else []:
            if f.endswith((".yml", ".yaml")):
                with open(os.path.join(mounted, f), encoding="utf-8") as fh:
                    doc = yaml.safe_load(fh) or {}
                out += doc.get("datasources") or []
        return out

    def grafana_dashboard_files(self):
        mounted = self.host_path("grafana", "/etc/grafana/provisioning/dashboards")
        files = []
        for f in sorted(os.listdir(mounted)) if mounted and os.path.isdir(mounted) else []:
            if not f.endswith((".yml", ".yaml")):
                continue
            with open(os.path.join(mounted, f), encoding="utf-8") as fh:
                doc = yaml.safe_load(fh) or {}
            for p in doc.get("providers") or []:
                path = (p.get("options") or {}).get("path", "")
                host = self.host_path("grafana", path)
                if host and os.path.isdir(host):
                    for root, _, names in os.walk(host):
                        files += [os.path.join(root, n) for n in sorted(names)
                                  if n.endswith(".json")]
        return files


class Report:
    def __init__(self):
        self.lines = []

    def ok(self, name, cond, detail=""):
        if cond:
            self.lines.append("PASS\t" + name)
        else:
            detail = str(detail).replace("\t", " ").replace("\n", " | ")
            self.lines.append("FAIL\t" + name + "\t" + detail)
        return cond

    def dump(self):
        print("\n".join(self.lines))


def walk_links(node, ctx=None):
    """(context key, datasourceUid) of every link in a data source's jsonData."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasourceUid" and isinstance(v, str):
                yield ctx, v
            else:
                yield from walk_links(v, k if k in LINK_TYPES else ctx)
    elif isinstance(node, list):
        for v in node:
            yield from walk_links(v, ctx)


def dashboard_refs(node):
    """Every datasource reference in a dashboard: dicts with a uid or strings."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "datasource" and v is not None:
                yield v
            else:
                yield from dashboard_refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from dashboard_refs(v)


def listen_port(addr):
    return int(addr.rsplit(":", 1)[1])


def check(root, shoal):
    r = Report()
    C = os.path.join(root, "compose")

    # -------------------------------------------------- every file parses
    for dirpath, _, names in os.walk(C):
        for n in sorted(names):
            p = os.path.join(dirpath, n)
            rel = os.path.relpath(p, root)
            try:
                with open(p, encoding="utf-8") as f:
                    if n.endswith((".yml", ".yaml")):
                        list(yaml.safe_load_all(f))
                    elif n.endswith(".alloy"):
                        alloy.parse(f.read())
                    elif n.endswith(".json"):
                        json.load(f)
                    else:
                        continue
                r.ok("parses: " + rel, True)
            except Exception as e:  # noqa: BLE001 - any parse error is the finding
                r.ok("parses: " + rel, False, e)

    s = Stack(root)
    svc = s.services

    # ------------------------------------------------------------ services
    r.ok("services: shoal, alloy, grafana, prometheus, loki, tempo, pyroscope",
         set(svc) == SERVICES, sorted(svc))
    for name, image in IMAGES.items():
        img = str(svc.get(name, {}).get("image", ""))
        repo, _, tag = img.partition(":")
        r.ok(f"{name}: official image {image}, pinned", repo == image and
             re.match(r"^v?\d+\.\d+\.\d+$", tag) is not None, img)
    for name, spec in svc.items():
        if not r.ok(f"{name}: has an image or a build", "image" in spec or "build" in spec):
            continue
        for dep in spec.get("depends_on") or []:
            r.ok(f"{name}: depends_on {dep} is a service", dep in svc)
        for src, dst in s.mounts(name):
            r.ok(f"{name}: mounted {os.path.relpath(src, C)} exists", os.path.exists(src), src)
        # the files a backend is told to read are the ones mounted there
        for a in s.command(name):
            m = re.match(r"^--?config\.file=(.+)$", a)
            if m:
                host = s.host_path(name, m.group(1))
                r.ok(f"{name}: {m.group(1)} is a mounted file of compose/",
                     host is not None and os.path.isfile(host), host)
    with open(s.path("docker-compose.yml"), encoding="utf-8") as f:
        raw = f.read()
    r.ok("docker-compose.yml: no $ that Compose would interpolate",
         not re.search(r"\$", raw.replace("$$", "")))

    # --------------------------------------------------------- the image
    ctx, dockerfile = s.dockerfile_path()
    r.ok("shoal: build context and Dockerfile exist", os.path.isdir(ctx) and
         os.path.isfile(dockerfile), dockerfile)
    build_pkgs = set(s.apt_packages(0))
    wanted = set(os.environ.get("BUILD_PACKAGES", "").split())
    r.ok("Dockerfile: the build stage installs scripts/lib.sh's BUILD_PACKAGES",
         wanted and wanted <= build_pkgs, sorted(wanted - build_pkgs) or "BUILD_PACKAGES unset")
    ignore = dockerfile + ".dockerignore"
    allowed = []
    if r.ok("Dockerfile.dockerignore beside the Dockerfile", os.path.isfile(ignore)):
        with open(ignore, encoding="utf-8") as f:
            allowed = [ln.strip()[1:].strip("/") for ln in f if ln.strip().startswith("!")]
    seen = set()
    for srcs, dst in s.copies():
        for src in srcs:
            if src in seen:
                continue
            seen.add(src)
            p = os.path.join(ctx, src)
            r.ok(f"Dockerfile: COPY {src} exists", os.path.exists(p), p)
            r.ok(f"Dockerfile: COPY {src} is let in by the .dockerignore",
                 src.strip("/") in allowed or src.strip("./") in allowed, allowed)
    runtime = set(s.apt_packages(1))
    missing = []
    needed = []
    try:
        dyn = subprocess.run(["readelf", "-d", shoal], capture_output=True, text=True,
                             check=True).stdout
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]", dyn)
        ldd = subprocess.run(["ldd", shoal], capture_output=True, text=True).stdout
        where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        for lib in needed:
            if SANITIZER_LIB.match(lib):
                continue
            p = where.get(lib, "")
            cands = {p, os.path.realpath(p)} if p else set()
            for c in list(cands):
                cands.add(c[4:] if c.startswith("/usr/") else "/usr" + c)
            pkg = None
            for c in cands:
                q = subprocess.run(["dpkg-query", "-S", c], capture_output=True, text=True)
                if q.returncode == 0:
                    pkg = q.stdout.split(":", 1)[0].strip()
                    break
            if pkg is None or pkg not in runtime | BASE_PACKAGES:
                missing.append(f"{lib} ({pkg or 'no package'})")
    except (OSError, subprocess.CalledProcessError) as e:
        missing.append(str(e))
    r.ok("Dockerfile: the runtime stage installs the package of every library shoal links",
         needed and not missing, missing or "no NEEDED entries read")

    # ------------------------------------------------------- shoal's run
    argv = s.shoal_argv()
    service = s.shoal_option(argv, "--service")
    listen = s.shoal_option(argv, "--listen") or ""
    r.ok("shoal: --service names the run", bool(service))
    r.ok("shoal: --listen on all interfaces of the container",
         listen.startswith("0.0.0.0:"), listen)
    script = argv[1] if len(argv) > 1 and argv[0] == "run" else None
    if script:
        r.ok("shoal: the script it runs is copied into the image",
             os.path.isfile(s.container_to_repo(script)), script)
    lport = listen_port(listen) if listen else None
    r.ok("shoal: its port is published", any(
        str(p).endswith(f":{lport}") for p in svc.get("shoal", {}).get("ports") or []))

    # backends: the URLs shoal gets are where the backends listen
    tempo = s.yaml("tempo.yaml")
    otlp = ((tempo.get("distributor") or {}).get("receivers") or {}).get("otlp") or {}
    protos = otlp.get("protocols") or {}
    for proto, port in (("grpc", 4317), ("http", 4318)):
        ep = str((protos.get(proto) or {}).get("endpoint", ""))
        r.ok(f"tempo: OTLP {proto} receiver on 0.0.0.0:{port}", ep == f"0.0.0.0:{port}", ep)
    r.ok("tempo: local trace storage",
         ((tempo.get("storage") or {}).get("trace") or {}).get("backend") == "local")
    u = urlsplit(s.shoal_option(argv, "--otlp-endpoint") or "")
    r.ok("shoal: --otlp-endpoint is Tempo's OTLP/HTTP receiver",
         u.hostname == "tempo" and f"0.0.0.0:{u.port}" ==
         str((protos.get("http") or {}).get("endpoint")), u.geturl())
    loki = s.yaml("loki-config.yaml")
    lim = loki.get("limits_config") or {}
    r.ok("loki: structured metadata allowed", lim.get("allow_structured_metadata") is True)
    schemas = (loki.get("schema_config") or {}).get("configs") or [{}]
    last = schemas[-1]
    r.ok("loki: the current schema is v13 on tsdb",
         last.get("schema") == "v13" and last.get("store") == "tsdb", last)
    u = urlsplit(s.shoal_option(argv, "--loki") or "")
    r.ok("shoal: no --loki: the agent ships its log file, and a push as well "
         "would store every line twice", s.shoal_option(argv, "--loki") is None,
         s.shoal_option(argv, "--loki"))
    u = urlsplit(s.shoal_option(argv, "--pyroscope") or "")
    r.ok("shoal: --pyroscope is Pyroscope's port", u.hostname == "pyroscope" and u.port == 4040,
         u.geturl())

    prom = s.yaml("prometheus.yml")
    jobs = [j for j in prom.get("scrape_configs") or []
            if any(t == f"shoal:{lport}" for sc in j.get("static_configs") or []
                   for t in sc.get("targets") or [])]
    r.ok("prometheus: a job scrapes shoal's --listen port", len(jobs) == 1)
    r.ok("prometheus: that job is named as the service (job label = service.name)",
         jobs and jobs[0].get("job_name") == service,
         jobs and jobs[0].get("job_name"))
    pcmd = s.command("prometheus")
    r.ok("prometheus: exemplar storage on",
         any(a == "--enable-feature=exemplar-storage" or
             (a.startswith("--enable-feature=") and "exemplar-storage" in a.split("=", 1)[1].split(","))
             for a in pcmd), pcmd)
    writes = [w.get("url", "") for w in
              ((tempo.get("metrics_generator") or {}).get("storage") or {}).get("remote_write") or []]
    if writes:
        r.ok("prometheus: takes remote writes (Tempo's metrics generator)",
             "--web.enable-remote-write-receiver" in pcmd)
        r.ok("tempo: remote-writes to the prometheus service",
             all(urlsplit(w).hostname == "prometheus" for w in writes), writes)

    check_replicas(r, s, argv, lport, prom)
    check_agent(r, s, argv, service, loki)

    # ------------------------------------------------------------ Grafana
    ds = s.grafana_datasources()
    uids = {d.get("uid"): d for d in ds}
    r.ok("grafana: datasources provisioned, each with a uid", ds and all(d.get("uid") for d in ds))
    r.ok("grafana: datasource uids are unique", len(uids) == len(ds))
    types = {d.get("type") for d in ds}
    for t in ("prometheus", "tempo", "loki", "grafana-pyroscope-datasource"):
        r.ok(f"grafana: a {t} datasource", t in types)
    ports = {"prometheus": 9090, "tempo": (tempo.get("server") or {}).get("http_listen_port"),
             "loki": (loki.get("server") or {}).get("http_listen_port"), "pyroscope": 4040}
    for d in ds:
        u = urlsplit(d.get("url", ""))
        r.ok(f"grafana: {d.get('uid')} points at a service's port",
             u.hostname in ports and u.port == ports[u.hostname], d.get("url"))
        for ctx_key, uid in walk_links(d.get("jsonData") or {}):
            want = LINK_TYPES.get(ctx_key)
            got = (uids.get(uid) or {}).get("type")
            r.ok(f"grafana: {d.get('uid')} {ctx_key} -> {uid} is a {want} datasource",
                 got is not None and got == want, f"{uid}: {got}")
    mounted = s.host_path("grafana", "/etc/grafana/provisioning/datasources")
    for f in sorted(os.listdir(mounted)) if mounted and os.path.isdir(mounted) else []:
        with open(os.path.join(mounted, f), encoding="utf-8") as fh:
            text = fh.read()
        body = "\n".join(ln.split(" #", 1)[0] for ln in text.splitlines()
                         if not ln.lstrip().startswith("#"))
        bad = re.findall(r"\$\{?[A-Za-z_]\w*\}?", body.replace("$$", ""))
        r.ok(f"grafana: {f} has no $VAR that Grafana would take from its environment "
             "(write $$ for Grafana's own variables)", not bad, bad)
    tempo_ds = next((d for d in ds if d.get("type") == "tempo"), {})
    jd = tempo_ds.get("jsonData") or {}
    tags = lambda k: {t.get("key"): t.get("value") or t.get("key")  # noqa: E731
                      for t in (jd.get(k) or {}).get("tags") or []}
    r.ok("grafana: span -> logs by service.name as Loki's service_name label",
         tags("tracesToLogsV2").get("service.name") == "service_name", tags("tracesToLogsV2"))
    t2l = jd.get("tracesToLogsV2") or {}
    r.ok("grafana: span -> logs filtered by trace id and span id",
         t2l.get("filterByTraceID") is True and t2l.get("filterBySpanID") is True)
    r.ok("grafana: span -> profile by service.name as Pyroscope's service_name label",
         tags("tracesToProfiles").get("service.name") == "service_name", tags("tracesToProfiles"))
    r.ok("grafana: span -> CPU profile", (jd.get("tracesToProfiles") or {}).get("profileTypeId")
         == CPU_PROFILE)
    if jd.get("tracesToMetrics"):
        r.ok("grafana: span -> metrics by service.name as Prometheus's job label",
             tags("tracesToMetrics").get("service.name") == "job", tags("tracesToMetrics"))

    # dashboards
    dfiles = s.grafana_dashboard_files()
    r.ok("grafana: a dashboard provider reads a mounted folder of dashboards", dfiles)
    dash_uids = []
    for f in dfiles:
        with open(f, encoding="utf-8") as fh:
            d = json.load(fh)
        dash_uids.append(d.get("uid"))
        dsvars = {v.get("name"): v.get("query") for v in (d.get("templating") or {}).get("list") or []
                  if v.get("type") == "datasource"}
        bad = []
        for ref in dashboard_refs(d):
            uid = ref.get("uid") if isinstance(ref, dict) else ref
            typ = ref.get("type") if isinstance(ref, dict) else None
            m = re.fullmatch(r"\$\{?(\w+)\}?", uid or "")
            if m:
                # a datasource variable: Grafana picks the default datasource
                # of its type, so one of that type must exist
                if dsvars.get(m.group(1)) not in types or (typ and typ != dsvars.get(m.group(1))):
                    bad.append(uid)
            elif uid not in uids or (typ and uids[uid].get("type") != typ):
                bad.append(uid)
        r.ok(f"grafana: every datasource of {os.path.basename(f)} is provisioned",
             not bad, sorted(set(map(str, bad))))
    r.ok("grafana: dashboard uids are unique", len(set(dash_uids)) == len(dash_uids))
    env = svc.get("grafana", {}).get("environment") or {}
    if isinstance(env, list):
        env = dict(e.split("=", 1) for e in env)
    home = env.get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
    if home:
        h = s.host_path("grafana", home)
        r.ok("grafana: the home dashboard is a mounted file", h and os.path.isfile(h), home)
    r.dump()


def without(argv, *names):
    """argv without the options names and their values."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in names:
            skip = True
        else:
            out.append(a)
    return out


def check_replicas(r, s, argv, lport, prom):
    """Two shoal processes, one crawl: the same command but for their
    names, log files and published ports, one --queue in the redis
    service, and Prometheus scraping each under its --instance."""
    svc = s.services
    reps = s.replicas()
    r.ok("replicas: shoal and shoal-2 run the shoal image", reps == ["shoal", "shoal-2"], reps)
    rcmd = s.command("redis")
    r.ok("redis: runs redis-server", rcmd[:1] == ["redis-server"], rcmd)
    rport = int(s.option(rcmd, "--port") or 6379)
    argvs = {n: s.shoal_argv(replica=n) for n in reps}
    queues = {n: s.shoal_option(a, "--queue") for n, a in argvs.items()}
    r.ok("replicas: every one shares one --queue", len(set(queues.values())) == 1, queues)
    u = urlsplit(queues.get("shoal") or "")
    r.ok("replicas: --queue is the redis service's port, with a prefix of its own",
         u.scheme == "redis" and u.hostname == "redis" and u.port == rport and
         re.search(r"(^|&)prefix=[^&]+", u.query) is not None, u.geturl())
    insts = {n: s.shoal_option(a, "--instance") for n, a in argvs.items()}
    r.ok("replicas: each one's --instance is its service name", all(
        insts[n] == n for n in reps), insts)
    r.ok("replicas: the instance ids are distinct", len(set(insts.values())) == len(reps), insts)
    logs = {n: s.shoal_option(a, "--log-file") for n, a in argvs.items()}
    r.ok("replicas: each writes a log file of its own", None not in logs.values() and
         len(set(logs.values())) == len(reps), logs)
    same = {n: without(a, "--instance", "--log-file") for n, a in argvs.items()}
    r.ok("replicas: the same crawl (command lines equal but for --instance and --log-file)",
         all(v == same["shoal"] for v in same.values()), same)
    hostports = []
    for n in reps:
        deps = svc[n].get("depends_on") or {}
        cond = (deps.get("redis") or {}).get("condition") if isinstance(deps, dict) else None
        r.ok(f"{n}: starts once redis answers (depends_on redis: service_healthy)",
             cond == "service_healthy", deps)
        mine = [str(p) for p in svc[n].get("ports") or [] if str(p).endswith(f":{lport}")]
        r.ok(f"{n}: its --listen port is published", len(mine) == 1, mine)
        hostports += [p.rsplit(":", 1)[0] for p in mine]
    r.ok("replicas: on distinct host ports", len(set(hostports)) == len(hostports), hostports)
    hc = (svc.get("redis", {}).get("healthcheck") or {}).get("test") or []
    r.ok("redis: its healthcheck asks redis-cli ping", "redis-cli" in hc and "ping" in hc, hc)
    declared = s.compose.get("volumes") or {}
    data = [v for v, dst, _ in s.volumes("redis") if dst.rstrip("/") == "/data"]
    r.ok("redis: /data on a named volume (the queue outlives the container)",
         len(data) == 1 and data[0] in declared, data)
    r.ok("redis: append-only, so a restart loses no job",
         s.option(rcmd, "--appendonly") == "yes", rcmd)

    service = s.shoal_option(argv, "--service")
    for n in reps:
        cfgs = [(j.get("job_name"), sc.get("labels") or {})
                for j in prom.get("scrape_configs") or []
                for sc in j.get("static_configs") or []
                if f"{n}:{lport}" in (sc.get("targets") or [])]
        r.ok(f"prometheus: scrapes {n} once, as job {service}", [c[0] for c in cfgs] == [service],
             cfgs)
        r.ok(f"prometheus: {n}'s instance label is its --instance (service.instance.id)",
             cfgs and cfgs[0][1].get("instance") == insts.get(n), cfgs)


def check_agent(r, s, argv, service, loki):
    """The alloy service: it tails shoal's --log-file through a shared
    volume and sends each line to Loki as {job=<service>}."""
    svc = s.services
    declared = s.compose.get("volumes") or {}
    for name in sorted(svc):
        for vol, _, _ in s.volumes(name):
            r.ok(f"{name}: volume {vol} is declared under volumes:", vol in declared)

    ons = {}
    for n in s.replicas():
        lf = s.shoal_option(s.shoal_argv(replica=n), "--log-file") or ""
        r.ok(f"{n}: --log-file is an absolute path", lf.startswith("/"), lf)
        ons[n] = s.volume_at(n, lf)
        r.ok(f"{n}: --log-file is on a named volume it may write",
             ons[n] is not None and not ons[n][2], f"{lf}: {ons[n]}")
    log_file = s.shoal_option(argv, "--log-file") or ""
    on = ons.get("shoal")
    shoal_df = {kw: rest for _, kw, rest in s.dockerfile() if kw in ("USER", "WORKDIR")}
    if on and shoal_df.get("USER", "root") != "root":
        # a new volume takes the owner of the image's directory it covers
        d = log_file[:-len(on[1]) - 1]
        made = any(kw == "RUN" and re.search(r"install\s+-d\s+-o\s+" +
                                             re.escape(shoal_df["USER"]) + r"\b.*\s" +
                                             re.escape(d) + r"(\s|$)", rest)
                   for _, kw, rest in s.dockerfile())
        r.ok(f"Dockerfile: {d} is made in the image, owned by user {shoal_df['USER']} "
             "(the volume over it is then theirs)", made)

    acmd = s.command("alloy")
    r.ok("alloy: runs `alloy run CONFIG`", acmd[:1] == ["run"], acmd)
    cpath, chost = s.alloy_config()
    if not r.ok("alloy: the configuration it runs is a mounted file of compose/",
                chost is not None and os.path.isfile(chost), cpath):
        return
    storage = s.option(acmd, "--storage.path") or ""
    r.ok("alloy: --storage.path on a named volume (where it has read to outlives the container)",
         any(storage.rstrip("/") == dst.rstrip("/") for _, dst, _ in s.volumes("alloy")), storage)
    listen = s.option(acmd, "--server.http.listen-addr") or ""
    r.ok("alloy: its UI listens on all interfaces of the container",
         listen.startswith("0.0.0.0:"), listen)
    if listen:
        r.ok("alloy: its UI port is published", any(
            str(p).endswith(f":{listen_port(listen)}") for p in svc["alloy"].get("ports") or []))

    with open(chost, encoding="utf-8") as f:
        text = f.read()
    try:
        root = alloy.parse(text)
    except alloy.AlloyError as e:
        r.ok(f"alloy: {os.path.basename(chost)} reads", False, e)
        return
    # the reader refuses what Alloy would: the last comma of a multi-line
    # object left out, two statements on a line, an argument misspelt
    for what, broken in (
            ("a multi-line object without its last comma",
             re.sub(r",(\s*\n\s*\})", r"\1", text, count=1)),
            ("two statements on a line", re.sub(r"\n\s*(forward_to\s*=)", r" \1", text, count=1)),
            ("a misspelt argument", text.replace("url ", "uri ", 1))):
        why = "unchanged" if broken == text else "accepted"
        try:
            bad = alloy.unknown_names(alloy.parse(broken))
            if bad:
                why = "refused: " + bad[0]
        except alloy.AlloyError as e:
            why = f"refused: {e}"
        r.ok(f"alloy: the reader refuses {what}", why.startswith("refused"), why)
    r.ok("alloy: every component, block and argument is one Alloy documents",
         not alloy.unknown_names(root), alloy.unknown_names(root))
    try:
        pipe = alloy.Pipeline(root)
    except alloy.AlloyError as e:
        r.ok("alloy: loki.source.file -> loki.process -> loki.write", False, e)
        return
    r.ok("alloy: loki.source.file -> loki.process -> loki.write", True)
    paths = [t.get("__path__") for t in pipe.targets]
    r.ok("alloy: one file tailed per shoal replica", len(paths) == len(ons), paths)
    tailed = [s.volume_at("alloy", p or "") for p in paths]
    for n, o in ons.items():
        r.ok(f"alloy: it tails {n}'s --log-file, on the same volume",
             o is not None and any(t is not None and t[:2] == o[:2] for t in tailed),
             f"{tailed} vs {o}")
    r.ok("alloy: every target has the same labels but its path",
         len({tuple(sorted((k, str(v)) for k, v in t.items() if k != "__path__"))
              for t in pipe.targets}) == 1, pipe.targets)
    path = next((p for p, t in zip(paths, tailed) if t is not None and on is not None and
                 t[:2] == on[:2]), "")
    theirs = s.volume_at("alloy", path or "")
    fm = next(iter(pipe.source.children("file_match")), None)
    r.ok("alloy: it looks for the file again until shoal has made it (file_match)",
         fm is not None and fm.attrs.get("enabled") is True)
    r.ok("alloy: it only reads the volume", theirs is not None and theirs[2])

    eps = [b for b in pipe.write.children("endpoint")]
    r.ok(f"alloy: {pipe.write.id} has one endpoint", len(eps) == 1, len(eps))
    u = urlsplit(str(eps[0].attrs.get("url", "")) if eps else "")
    r.ok("alloy: it pushes to the loki service's HTTP port, push API",
         u.hostname == "loki" and u.port == (loki.get("server") or {}).get("http_listen_port")
         and u.path == LOKI_PUSH, u.geturl())

    # what one line of shoal's becomes
    trace, span = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    line = (f'time=2026-01-02T03:04:05.678Z level=ERROR msg="job failed" worker=1 job.id=7 '
            f'error="GET x: HTTP 500\\nstack traceback:" instance=shoal '
            f'trace_id={trace} span_id={span}')
    try:
        e = next(pipe.ship([line], path, 0))
    except alloy.AlloyError as err:
        r.ok("alloy: its pipeline runs here", False, err)
        return
    r.ok("alloy: streams labelled job, service_name and service_instance_id, nothing else",
         sorted(e["labels"]) == ["job", "service_instance_id", "service_name"], e["labels"])
    r.ok("alloy: label service_instance_id is the line's instance= (the replica's --instance)",
         e["labels"].get("service_instance_id") == "shoal", e["labels"])
    r.ok("alloy: label job is shoal's --service (the seed's {job=...} |= \"failed\")",
         e["labels"].get("job") == service, e["labels"].get("job"))
    r.ok("alloy: label service_name is shoal's --service (Grafana's span -> logs link)",
         e["labels"].get("service_name") == service, e["labels"].get("service_name"))
    for label in [f.get("matcherRegex") for d in s.grafana_datasources() if d.get("type") == "loki"
                  for f in (d.get("jsonData") or {}).get("derivedFields") or []
                  if f.get("matcherType") == "label"]:
        r.ok(f"alloy: the line's {label} becomes structured metadata (Loki derived field)",
             e["metadata"].get(label) == trace, e["metadata"])
    r.ok("alloy: span_id becomes structured metadata too", e["metadata"].get("span_id") == span,
         e["metadata"])
    r.ok("alloy: the line's time= is its timestamp",
         e["ts"] == alloy.parse_rfc3339("2026-01-02T03:04:05.678Z"), e["ts"])
    r.ok("alloy: the line goes as written", e["line"] == line and not e.get("errors"),
         e.get("errors"))

    prom = s.yaml("prometheus.yml")
    for j in prom.get("scrape_configs") or []:
        for sc in j.get("static_configs") or []:
            for t in sc.get("targets") or []:
                if t.startswith("alloy:"):
                    r.ok("prometheus: scrapes alloy on its UI port",
                         listen and t == f"alloy:{listen_port(listen)}", t)


def ship(root, logfile, replica="shoal"):
    s = Stack(root)
    _, chost = s.alloy_config()
    with open(chost, encoding="utf-8") as f:
        pipe = alloy.Pipeline(alloy.parse(f.read()))
    on = s.volume_at(replica, s.shoal_option(s.shoal_argv(replica=replica), "--log-file") or "")
    path = next(t["__path__"] for t in pipe.targets
                if (s.volume_at("alloy", t["__path__"]) or ())[:2] == (on or ())[:2])
    with open(logfile, "rb") as f:
        data = f.read().decode("utf-8", "replace")
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # a line is sent once its newline is written
    now = int(__import__("time").time() * 1e9)
    for e in pipe.ship(lines, path, now):
        print(json.dumps(e))


def facts(root):
    s = Stack(root)
    argv = s.shoal_argv()
    ds = s.grafana_datasources()
    out = {"service": s.shoal_option(argv, "--service") or ""}
    prom = next((d for d in ds if d.get("type") == "prometheus"), {})
    out["exemplar_label"] = ",".join(
        e.get("name", "") for e in (prom.get("jsonData") or {}).get("exemplarTraceIdDestinations") or [])
    loki = next((d for d in ds if d.get("type") == "loki"), {})
    fields = (loki.get("jsonData") or {}).get("derivedFields") or []
    out["derived_label"] = ",".join(f.get("matcherRegex", "") for f in fields
                                    if f.get("matcherType") == "label")
    out["derived_regex"] = "\x1f".join(f.get("matcherRegex", "") for f in fields
                                       if f.get("matcherType", "regex") == "regex")
    tempo = next((d for d in ds if d.get("type") == "tempo"), {})
    t2m = (tempo.get("jsonData") or {}).get("tracesToMetrics") or {}
    out["metrics_queries"] = "\x1f".join(q.get("query", "") for q in t2m.get("queries") or [])
    out["dashboards"] = "\x1f".join(s.grafana_dashboard_files())
    out["prometheus_flags"] = "\x1f".join(a for a in s.command("prometheus")
                                          if a.startswith("--") and not a.startswith(
                                              ("--config.file", "--storage.tsdb.path",
                                               "--web.listen-address")))
    out["copies"] = "\x1f".join(sorted({src for srcs, _ in s.copies() for src in srcs}))
    flags = set()
    for a in s.shoal_argv() + s.shoal_argv(dockerfile_cmd=True):
        if a == "--":
            continue
        if a.startswith("--"):
            flags.add(a.split("=", 1)[0])
    out["shoal_flags"] = " ".join(sorted(flags))
    out["shoal_commands"] = " ".join(sorted({s.shoal_argv()[0], s.shoal_argv(True)[0]}))
    out["log_file"] = s.shoal_option(argv, "--log-file") or ""
    out["replicas"] = " ".join(s.replicas())
    for k, v in out.items():
        print(f"{k}\t{v}")


def argv_cmd(root, args):
    s = Stack(root)
    dockerfile_cmd = "--dockerfile-cmd" in args
    opts, maps, i = {}, {}, 0
    while i < len(args):
        a = args[i]
        if a in ("--listen", "--duration", "--dead", "--log-file", "--summary-json", "--replica"):
            opts[a] = args[i + 1]
            i += 2
        elif a == "--map":
            host, url = args[i + 1].split("=", 1)
            maps[host] = url.rstrip("/")
            i += 2
        else:
            i += 1
    replica = opts.get("--replica", "shoal")
    argv = s.shoal_argv(dockerfile_cmd, replica)
    listen = s.shoal_option(argv, "--listen") or "0.0.0.0:8080"
    cport = listen_port(listen)
    local = f"127.0.0.1:{opts['--listen']}"

    def url(m):
        host, port = m.group(2), int(m.group(3))
        if host in maps:
            return maps[host]
        if host in ("127.0.0.1", "localhost", "0.0.0.0", replica) and port == cport:
            return m.group(1) + local
        if host in s.services or host not in ("127.0.0.1", "localhost"):
            return opts.get("--dead", "http://127.0.0.1:1")
        return m.group(0)

    out = []
    log_file = s.shoal_option(argv, "--log-file")
    for a in argv:
        if a == log_file and "--log-file" in opts:
            a = opts["--log-file"]
        elif a == listen:
            a = local
        a = re.sub(r"([a-z][a-z0-9+.-]*://)([^/:\s]+):(\d+)", url, a)
        if a.startswith("/"):
            a = s.container_to_repo(a)
        out.append(a)
    dur = ["--duration", opts["--duration"]]
    if "--log-file" in opts and log_file is None:
        dur += ["--log-file", opts["--log-file"]]
    if "--summary-json" in opts:
        dur += ["--summary-json", opts["--summary-json"]]
    cut = out.index("--") if "--" in out else len(out)
    out = out[:cut] + dur + out[cut:]
    sys.stdout.write("\0".join(out) + "\0")


def prometheus_cmd(root, interval, targets):
    s = Stack(root)
    prom = s.yaml("prometheus.yml")
    lport = listen_port(s.shoal_option(s.shoal_argv(), "--listen") or "0.0.0.0:8080")
    local = dict(t.split("=", 1) for t in targets)
    jobs = []
    for j in prom.get("scrape_configs") or []:
        sc = []
        for c in j.get("static_configs") or []:
            mine = [local[n] for n in local if f"{n}:{lport}" in (c.get("targets") or [])]
            if mine:
                sc.append(dict(c, targets=mine))
        if sc:
            j = dict(j)
            j["static_configs"] = sc
            jobs.append(j)
    prom["scrape_configs"] = jobs
    g = dict(prom.get("global") or {})
    g["scrape_interval"] = g["scrape_timeout"] = interval
    prom["global"] = g
    yaml.safe_dump(prom, sys.stdout, sort_keys=False)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, root = sys.argv[1], sys.argv[2]
    if cmd == "check":
        check(root, sys.argv[3])
    elif cmd == "facts":
        facts(root)
    elif cmd == "argv":
        argv_cmd(root, sys.argv[3:])
    elif cmd == "prometheus":
        prometheus_cmd(root, sys.argv[3], sys.argv[4:])
    elif cmd == "ship":
        ship(root, *sys.argv[3:5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
