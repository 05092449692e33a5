#!/usr/bin/env node
// receiver.js - a test Loki push endpoint for shoal's integration tests.
//
//   node receiver.js --port P --out FILE [--max-body BYTES]
//        [--fail-first N [--fail-with 429|503|400] [--retry-after SECS]]
//
// Node's built-in modules only (http, zlib). It serves POST
// /loki/api/v1/push and holds every request to the rules of Loki's JSON
// push API, as a real Loki would (or stricter, where shoal promises more):
//
//   - Content-Type is application/json; Content-Encoding is gzip or absent
//     (identity), and a gzip body must inflate;
//   - the body (after inflating) is at most --max-body bytes (default
//     4 MiB: shoal's batches are 1 MiB; Loki's default per-tenant burst
//     is 6 MB) and is one JSON document, valid UTF-8 throughout;
//   - {"streams": [...]} with nothing else; each stream {"stream": labels,
//     "values": [...]} with nothing else; labels exactly service_name,
//     service_instance_id and level, non-empty strings, level one of
//     debug|info|warn|error; no two streams of a request with the same
//     labels;
//   - each value is [ts, line] or [ts, line, metadata]: ts a string of
//     decimal digits (nanoseconds) within a week back and 10 minutes ahead
//     (Loki's reject_old_samples_max_age and creation_grace_period
//     defaults), line a string of at most 256000 bytes (max_line_size),
//     metadata an object of strings under valid label names.
//
// A request that breaks a rule is answered 400 with the reason, and
// recorded. Every accepted entry appends one JSON line to --out, written
// before the answer goes out, so a client that saw success finds its line:
//   {"req": N, "gzip": true|false, "labels": {...}, "ts": "...",
//    "line": "...", "metadata": {...} | null}
// and each refused or rejected request one line:
//   {"req": N, "violation": "why"}   (400: a rule broken)
//   {"req": N, "refused": STATUS}    (--fail-first)
//
// Faults: --fail-first N answers the first N requests with --fail-with
// (default 503), with Retry-After: SECS when --retry-after is given, before
// reading their bodies as rules would. Port 0 lets the kernel pick; once
// listening it prints "listening port=P". Diagnostics go to stderr.
'use strict';

const fs = require('fs');
const http = require('http');
const zlib = require('zlib');

const PUSH_PATH = '/loki/api/v1/push';
const MAX_LINE = 256000;
const LEVELS = new Set(['debug', 'info', 'warn', 'error']);
const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const WEEK_NS = 7n * 24n * 3600n * 1000000000n;
const GRACE_NS = 10n * 60n * 1000000000n;

function usage(msg) {
  if (msg) process.stderr.write(`receiver.js: ${msg}\n`);
  (msg ? process.stderr : process.stdout).write(
    'usage: node receiver.js --port P --out FILE [--max-body BYTES]\n' +
      '         [--fail-first N [--fail-with 429|503|400] [--retry-after SECS]]\n');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
  const o = { port: 0, maxBody: 4 << 20, failFirst: 0, failWith: 503, retryAfter: 0 };
  const num = (flag, v) => {
    if (!/^\d+$/.test(v || '')) usage(`${flag} wants a number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} wants a value`);
      return argv[++i];
    };
    switch (a) {
      case '--port': o.port = num(a, next()); break;
      case '--out': o.out = next(); break;
      case '--max-body': o.maxBody = num(a, next()); break;
      case '--fail-first': o.failFirst = num(a, next()); break;
      case '--fail-with':
        o.failWith = num(a, next());
        if (![429, 503, 400].includes(o.failWith)) usage('--fail-with is 429, 503 or 400');
        break;
      case '--retry-after': o.retryAfter = num(a, next()); break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument ${a}`);
    }
  }
  if (!o.out) usage('--out is required');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
let requests = 0;

function record(obj) {
  fs.appendFileSync(opts.out, JSON.stringify(obj) + '\n');
}

function exactKeys(obj, keys) {
  const got = Object.keys(obj).sort(), want = [...keys].sort();
  return got.length === want.length && got.every((k, i) => k === want[i]);
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

// The entries of a push body, or throws the rule it breaks.
function check(doc, gzip, req) {
  if (!isObject(doc) || !exactKeys(doc, ['streams'])) throw new Error('want {"streams": [...]} only');
  if (!Array.isArray(doc.streams) || doc.streams.length === 0) throw new Error('streams: want a non-empty array');
  const now = BigInt(Date.now()) * 1000000n;
  const seen = new Set();
  const out = [];
  doc.streams.forEach((s, si) => {
    const where = `streams[${si}]`;
    if (!isObject(s) || !exactKeys(s, ['stream', 'values'])) throw new Error(`${where}: want {"stream", "values"} only`);
    const labels = s.stream;
    if (!isObject(labels) || !exactKeys(labels, ['level', 'service_instance_id', 'service_name'])) {
      throw new Error(`${where}.stream: want exactly the labels service_name, service_instance_id and level, got ${JSON.stringify(labels)}`);
    }
    for (const [k, v] of Object.entries(labels)) {
      if (!NAME.test(k)) throw new Error(`${where}.stream: bad label name ${JSON.stringify(k)}`);
      if (typeof v !== 'string' || v === '') throw new Error(`${where}.stream.${k}: want a non-empty string`);
    }
    if (!LEVELS.has(labels.level)) throw new Error(`${where}.stream.level: ${JSON.stringify(labels.level)} is not debug|info|warn|error`);
    const key = JSON.stringify([labels.service_name, labels.service_instance_id, labels.level]);
    if (seen.has(key)) throw new Error(`${where}: a second stream with the labels ${key}`);
    seen.add(key);
    if (!Array.isArray(s.values) || s.values.length === 0) throw new Error(`${where}.values: want a non-empty array`);
    s.values.forEach((v, vi) => {
      const at = `${where}.values[${vi}]`;
      if (!Array.isArray(v) || (v.length !== 2 && v.length !== 3)) throw new Error(`${at}: want [ts, line] or [ts, line, metadata]`);
      const [ts, line, meta] = v;
      if (typeof ts !== 'string' || !/^[0-9]{1,20}$/.test(ts)) throw new Error(`${at}[0]: want nanoseconds as a string of digits, got ${JSON.stringify(ts)}`);
      const t = BigInt(ts);
      if (t < now - WEEK_NS || t > now + GRACE_NS) throw new Error(`${at}[0]: ${ts} is more than a week old or 10 minutes ahead`);
      if (typeof line !== 'string') throw new Error(`${at}[1]: want the line as a string`);
      if (!line.isWellFormed()) throw new Error(`${at}[1]: not valid UTF-8 (a lone surrogate)`);
      if (Buffer.byteLength(line) > MAX_LINE) throw new Error(`${at}[1]: ${Buffer.byteLength(line)} bytes, over max_line_size ${MAX_LINE}`);
      if (v.length === 3) {
        if (!isObject(meta)) throw new Error(`${at}[2]: structured metadata must be an object`);
        for (const [k, mv] of Object.entries(meta)) {
          if (!NAME.test(k)) throw new Error(`${at}[2]: bad metadata name ${JSON.stringify(k)}`);
          if (typeof mv !== 'string') throw new Error(`${at}[2].${k}: metadata values are strings`);
        }
      }
      out.push({ req, gzip, labels, ts, line, metadata: v.length === 3 ? meta : null });
    });
  });
  return out;
}

function answer(res, status, text, headers) {
  res.writeHead(status, Object.assign({ 'Content-Type': 'text/plain' }, headers || {}));
  res.end(text ? text + '\n' : '');
}

function handle(req, res, body) {
  const n = ++requests;
  const reject = (why) => {
    record({ req: n, violation: why });
    process.stderr.write(`receiver.js: request ${n} rejected: ${why}\n`);
    answer(res, 400, why);
  };
  if (req.method !== 'POST' || req.url !== PUSH_PATH) return reject(`${req.method} ${req.url}: want POST ${PUSH_PATH}`);
  if (n <= opts.failFirst) {
    record({ req: n, refused: opts.failWith });
    const h = opts.retryAfter ? { 'Retry-After': String(opts.retryAfter) } : {};
    return answer(res, opts.failWith, opts.failWith === 429 ? 'rate limited' : 'try later', h);
  }
  const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/json') return reject(`Content-Type ${JSON.stringify(type)}: want application/json`);
  const enc = (req.headers['content-encoding'] || 'identity').toLowerCase();
  let raw = body;
  if (enc === 'gzip') {
    try {
      raw = zlib.gunzipSync(body, { maxOutputLength: opts.maxBody + 1 });
    } catch (e) {
      return reject(`gzip body does not inflate within ${opts.maxBody} bytes: ${e.message}`);
    }
  } else if (enc !== 'identity') {
    return reject(`Content-Encoding ${enc}: want gzip or none`);
  }
  if (raw.length > opts.maxBody) return reject(`body of ${raw.length} bytes, over ${opts.maxBody}`);
  let text;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  } catch (e) {
    return reject('body is not valid UTF-8');
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return reject(`body is not JSON: ${e.message}`);
  }
  let entries;
  try {
    entries = check(doc, enc === 'gzip', n);
  } catch (e) {
    return reject(e.message);
  }
  if (entries.length) fs.appendFileSync(opts.out, entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
  answer(res, 204);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0, over = false;
  req.on('data', (c) => {
    size += c.length;
    // a gzip body is bounded when it inflates; this only stops a runaway
    if (size > opts.maxBody * 2) over = true;
    else chunks.push(c);
  });
  req.on('end', () => {
    if (over) {
      const n = ++requests;
      record({ req: n, violation: `request body over ${opts.maxBody * 2} bytes` });
      return answer(res, 413, 'too large');
    }
    handle(req, res, Buffer.concat(chunks));
  });
});
server.keepAliveTimeout = 30000;
server.listen(opts.port, '127.0.0.1', () => {
  process.stdout.write(`listening port=${server.address().port}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
