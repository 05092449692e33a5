#!/usr/bin/env node
// receiver.js - a test Pyroscope /ingest endpoint for shoal's integration
// tests.
//
//   node receiver.js --port P --out FILE [--fail-first N [--fail-with STATUS]]
//
// It takes POST /ingest the way Pyroscope's ingest handler reads it
// (grafana/pyroscope, pkg/ingester/pyroscope/ingest_handler.go and
// pkg/og/convert/pprof/profile.go), and is stricter where a client could
// get by on luck:
//
//   - name is "app{k=v,...}": an application name of [A-Za-z0-9_./-], then
//     labels whose names are [A-Za-z0-9_.]; Pyroscope's own parser has no
//     escapes, so a value may not hold ',' '{' or '}';
//   - from and until, when given, are decimal integers: Unix seconds (10
//     digits), or ms / us / ns by their length, as Pyroscope guesses them;
//     from <= until;
//   - the profile comes as the Go client sends it, a multipart/form-data
//     body whose part "profile" holds the pprof (no format parameter), or
//     raw with format=pprof. Pyroscope looks at format first, so a
//     multipart body with format=pprof would be read as a pprof and fail:
//     refused here too. Any other format is refused (this receiver only
//     decodes pprof);
//   - the pprof may be gzip'd or not (Pyroscope sniffs the magic bytes) and
//     must decode with pprof-format, a decoder that owes nothing to shoal:
//     string_table[0] is "", every sample has one value per sample type,
//     every location id and function id a sample reaches exists.
//
// Each accepted request appends one JSON line to --out before the answer
// (200, empty, as Pyroscope answers) goes out:
//   {"req": N, "app": "...", "labels": {...}, "from": S, "until": S,
//    "from_raw": "...", "until_raw": "...", "spyName": "...", "format": "",
//    "body": "multipart"|"raw", "gzip": true, "sample_types": ["samples/count", ...],
//    "period_type": "cpu/nanoseconds", "period": P, "time_nanos": "...",
//    "duration_nanos": "...", "samples": [{"stack": [leaf, ..., root],
//    "values": [...], "labels": {"thread": "...", "worker": 1, ...}}]}
// (from/until converted to Unix seconds). A request that breaks a rule is
// answered 400 and recorded as {"req": N, "violation": "why"}; one refused
// by --fail-first N (the first N requests, with --fail-with, default 503)
// as {"req": N, "refused": STATUS}. Port 0 lets the kernel pick; once
// listening it prints "listening port=P". Diagnostics go to stderr.
'use strict';

const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const { Profile } = require('pprof-format');

const APP_RUNE = /^[A-Za-z0-9_.\/-]+$/;
const LABEL_NAME = /^[A-Za-z0-9_.]+$/;
const MAX_BODY = 32 << 20; // Pyroscope's form reader keeps 32 MiB in memory

function parseArgs(argv) {
    const o = { port: 0, out: null, failFirst: 0, failWith: 503 };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i], v = argv[i + 1];
        if (a === '--port') o.port = Number(v), i++;
        else if (a === '--out') o.out = v, i++;
        else if (a === '--fail-first') o.failFirst = Number(v), i++;
        else if (a === '--fail-with') o.failWith = Number(v), i++;
        else throw new Error(`unknown argument ${a}`);
    }
    if (!o.out) throw new Error('--out FILE is required');
    return o;
}

class Violation extends Error {}
function rule(ok, why) {
    if (!ok) throw new Violation(why);
}

// "app{k=v,k2=v2}" -> {app, labels}
function parseName(name) {
    rule(typeof name === 'string' && name.length > 0, 'name is missing');
    const open = name.indexOf('{');
    const app = (open < 0 ? name : name.slice(0, open)).trim();
    rule(APP_RUNE.test(app), `application name ${JSON.stringify(app)} has a character Pyroscope refuses`);
    const labels = {};
    if (open >= 0) {
        rule(name.endsWith('}'), `name ${JSON.stringify(name)}: labels do not end with }`);
        const body = name.slice(open + 1, -1);
        for (const pair of body.length ? body.split(',') : []) {
            const eq = pair.indexOf('=');
            rule(eq > 0, `name: label ${JSON.stringify(pair)} is not k=v`);
            const k = pair.slice(0, eq).trim(), v = pair.slice(eq + 1).trim();
            rule(LABEL_NAME.test(k), `name: label name ${JSON.stringify(k)} is invalid`);
            rule(!/[{}]/.test(v), `name: label value ${JSON.stringify(v)} holds a brace`);
            rule(!(k in labels), `name: label ${k} given twice`);
            labels[k] = v;
        }
    }
    return { app, labels };
}

// Unix seconds from a from/until value, by its number of digits
function parseTime(what, s) {
    if (s === null) return null;
    rule(/^[0-9]+$/.test(s), `${what}=${JSON.stringify(s)} is not a decimal integer`);
    const v = BigInt(s);
    const div = { 13: 1000n, 16: 1000000n, 19: 1000000000n }[s.length] || 1n;
    return Number(v / div);
}

async function profileBytes(req, q, body) {
    const format = q.get('format') || '';
    const ctype = req.headers['content-type'] || '';
    const multipart = /^multipart\/form-data\s*;/i.test(ctype);
    if (format === 'pprof') {
        rule(!multipart, 'format=pprof with a multipart body: Pyroscope would read the form as the pprof');
        return { bytes: body, kind: 'raw', format };
    }
    rule(format === '', `format=${format}: only pprof is decoded here`);
    rule(multipart, `no format parameter, so the body must be multipart/form-data (Content-Type: ${ctype})`);
    let form;
    try {
        form = await new Response(body, { headers: { 'content-type': ctype } }).formData();
    } catch (e) {
        throw new Violation(`the multipart body does not parse: ${e.message}`);
    }
    const part = form.get('profile');
    rule(part !== null, 'the form has no "profile" part');
    rule(typeof part !== 'string', 'the "profile" part is a plain field, not a file');
    rule(form.get('prev_profile') === null, 'prev_profile is refused by current Pyroscope');
    return { bytes: Buffer.from(await part.arrayBuffer()), kind: 'multipart', format };
}

function num(v) {
    return typeof v === 'bigint' ? Number(v) : v;
}

function decode(bytes) {
    const gzip = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
    let raw = bytes;
    if (gzip) {
        try {
            raw = zlib.gunzipSync(bytes);
        } catch (e) {
            throw new Violation(`the profile does not gunzip: ${e.message}`);
        }
    }
    let p;
    try {
        p = Profile.decode(raw);
    } catch (e) {
        throw new Violation(`the profile does not decode as pprof: ${e.message}`);
    }
    const str = p.stringTable.strings;
    rule(str.length > 0 && str[0] === '', 'string_table[0] is not ""');
    const s = (i) => {
        const k = num(i);
        rule(k >= 0 && k < str.length, `string index ${k} out of range`);
        return str[k];
    };
    const funcs = new Map(), locs = new Map();
    for (const f of p.function) {
        rule(num(f.id) !== 0, 'a function has id 0');
        funcs.set(num(f.id), s(f.name));
    }
    for (const l of p.location) {
        rule(num(l.id) !== 0, 'a location has id 0');
        const names = l.line.map((ln) => {
            rule(funcs.has(num(ln.functionId)), `location ${l.id} names function ${ln.functionId}, which is not there`);
            return funcs.get(num(ln.functionId));
        });
        locs.set(num(l.id), names);
    }
    const types = p.sampleType.map((t) => `${s(t.type)}/${s(t.unit)}`);
    const samples = p.sample.map((x) => {
        rule(x.value.length === types.length, `a sample has ${x.value.length} values for ${types.length} sample types`);
        const stack = [];
        for (const id of x.locationId) {
            rule(locs.has(num(id)), `a sample names location ${id}, which is not there`);
            stack.push(...locs.get(num(id)));
        }
        const labels = {};
        for (const l of x.label) {
            const k = s(l.key);
            rule(!(k in labels), `a sample has label ${k} twice`);
            labels[k] = num(l.str) !== 0 ? s(l.str) : num(l.num);
        }
        return { stack, values: x.value.map(num), labels };
    });
    return {
        gzip,
        sample_types: types,
        period_type: p.periodType ? `${s(p.periodType.type)}/${s(p.periodType.unit)}` : null,
        period: num(p.period),
        time_nanos: String(p.timeNanos),
        duration_nanos: String(p.durationNanos),
        samples,
    };
}

function readBody(req) {
    return new Promise((resolve, reject) => {
        const chunks = [];
        let n = 0;
        req.on('data', (c) => {
            n += c.length;
            if (n > MAX_BODY) reject(new Violation('body over 32 MiB'));
            else chunks.push(c);
        });
        req.on('end', () => resolve(Buffer.concat(chunks)));
        req.on('error', reject);
    });
}

function main() {
    const opt = parseArgs(process.argv);
    fs.writeFileSync(opt.out, '');
    let seen = 0;
    const record = (o) => fs.appendFileSync(opt.out, JSON.stringify(o) + '\n');

    const server = http.createServer(async (req, res) => {
        const n = ++seen;
        const answer = (status, text) => {
            res.writeHead(status, { 'Content-Type': 'text/plain' });
            res.end(text);
        };
        try {
            const u = new URL(req.url, 'http://x');
            if (u.pathname !== '/ingest') {
                req.resume();
                record({ req: n, violation: `path ${u.pathname} is not /ingest` });
                return answer(404, 'not found\n');
            }
            if (req.method !== 'POST') {
                req.resume();
                record({ req: n, violation: `method ${req.method}` });
                return answer(405, 'POST only\n');
            }
            if (n <= opt.failFirst) {
                req.resume();
                record({ req: n, refused: opt.failWith });
                return answer(opt.failWith, 'try later\n');
            }
            const body = await readBody(req);
            const q = u.searchParams;
            const { app, labels } = parseName(q.get('name'));
            const from = parseTime('from', q.get('from'));
            const until = parseTime('until', q.get('until'));
            rule(from === null || until === null || from <= until, `from ${from} is after until ${until}`);
            const got = await profileBytes(req, q, body);
            const prof = decode(got.bytes);
            record({
                req: n, app, labels, from, until,
                from_raw: q.get('from'), until_raw: q.get('until'),
                spyName: q.get('spyName'), format: got.format, body: got.kind,
                ...prof,
            });
            answer(200, '');
        } catch (e) {
            if (!(e instanceof Violation)) {
                console.error(`receiver: request ${n}: ${e.stack || e}`);
                record({ req: n, violation: `receiver error: ${e.message}` });
                return answer(500, 'receiver error\n');
            }
            record({ req: n, violation: e.message });
            answer(400, e.message + '\n');
        }
    });
    server.listen(opt.port, '127.0.0.1', () => {
        console.log(`listening port=${server.address().port}`);
    });
    // curl keeps its connection open: close it too, or close() would wait
    const stop = () => {
        server.close(() => process.exit(0));
        server.closeAllConnections();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
}

main();
