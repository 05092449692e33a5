#!/usr/bin/env node
// receiver.js - a test OTLP receiver (traces, logs and metrics) for shoal's
// integration tests.
//
//   node receiver.js --grpc-port P --http-port Q --out FILE
//        [--fail-first N [--fail-with unavailable|503|429|400]]
//        [--hang] [--partial-reject N]
//
// Made of real parts so that a test passing here means a real collector
// would accept the same bytes: gRPC is served by @grpc/grpc-js on the paths
// /opentelemetry.proto.collector.trace.v1.TraceService/Export,
// /opentelemetry.proto.collector.logs.v1.LogsService/Export and
// /opentelemetry.proto.collector.metrics.v1.MetricsService/Export, OTLP/HTTP
// by node's http module on POST /v1/traces, /v1/logs and /v1/metrics, and all decode
// and encode with the protobufjs code the OpenTelemetry JS project
// generates from opentelemetry-proto (@opentelemetry/otlp-transformer's
// root.js). Nothing here parses protobuf by hand except the error details
// below, which no dependency provides.
//
// Every accepted request appends one JSON line to --out, written before the
// answer goes out, so a client that saw success finds its line:
//   {"signal": "traces"|"logs"|"metrics", "transport": "grpc"|"http",
//    "headers": {...},
//    "request": <Export{Trace,Logs,Metrics}ServiceRequest as
//                OTLP/JSON: camelCase names, 64-bit numbers as strings,
//                trace and span ids as lower-case hex, absent fields left
//                out>}
// headers are the request's, lower-case, minus HTTP/2 pseudo-headers and
// hop-by-hop ones; a gRPC "-bin" value is base64. For gRPC they include
// content-type, grpc-encoding and grpc-timeout, which grpc-js strips from
// the metadata it hands to the service (see rawGrpcHeaders).
//
// Faults (the first N requests counted over both transports and signals):
//   --fail-first N   those requests fail and are not recorded, with
//                    --fail-with unavailable (default): gRPC UNAVAILABLE,
//                      HTTP 503 + Retry-After: 1
//                    503: the same
//                    429: gRPC RESOURCE_EXHAUSTED with RetryInfo (1 s),
//                      HTTP 429 + Retry-After: 1
//                    400: gRPC INVALID_ARGUMENT, HTTP 400 (not retryable)
//   --hang           every request is read and never answered
//   --partial-reject N  success, with partial_success.rejected_spans (or
//                    rejected_log_records, rejected_data_points) = N
// Ports may be 0 (the kernel picks). Once both listen it prints
// "listening grpc=P http=Q" with the real ports. Diagnostics go to stderr.
'use strict';

const fs = require('fs');
const http = require('http');
const zlib = require('zlib');
const grpc = require('@grpc/grpc-js');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const collector = root.opentelemetry.proto.collector;
// What differs between the signals: messages, paths, how to count items.
const SIGNALS = {
  traces: {
    Request: collector.trace.v1.ExportTraceServiceRequest,
    Response: collector.trace.v1.ExportTraceServiceResponse,
    grpcPath: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    httpPath: '/v1/traces',
    rejectedField: 'rejectedSpans',
    noun: 'span(s)',
    count: (req) => req.resourceSpans.reduce(
      (n, rs) => n + rs.scopeSpans.reduce((m, ss) => m + ss.spans.length, 0), 0),
  },
  metrics: {
    Request: collector.metrics.v1.ExportMetricsServiceRequest,
    Response: collector.metrics.v1.ExportMetricsServiceResponse,
    grpcPath: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    httpPath: '/v1/metrics',
    rejectedField: 'rejectedDataPoints',
    noun: 'data point(s)',
    count: (req) => req.resourceMetrics.reduce(
      (n, rm) => n + rm.scopeMetrics.reduce((m, sm) => m + sm.metrics.reduce(
        (k, x) => k + (x.sum || x.gauge || x.histogram || { dataPoints: [] }).dataPoints.length,
        0), 0), 0),
  },
  logs: {
    Request: collector.logs.v1.ExportLogsServiceRequest,
    Response: collector.logs.v1.ExportLogsServiceResponse,
    grpcPath: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
    httpPath: '/v1/logs',
    rejectedField: 'rejectedLogRecords',
    noun: 'log record(s)',
    count: (req) => req.resourceLogs.reduce(
      (n, rl) => n + rl.scopeLogs.reduce((m, sl) => m + sl.logRecords.length, 0), 0),
  },
};
const MAX_BODY = 64 << 20;

function usage(msg) {
  if (msg) process.stderr.write(`receiver.js: ${msg}\n`);
  (msg ? process.stderr : process.stdout).write(
    'usage: node receiver.js --grpc-port P --http-port Q --out FILE\n' +
      '         [--fail-first N [--fail-with unavailable|503|429|400]] [--hang]\n' +
      '         [--partial-reject N]\n');
  process.exit(msg ? 2 : 0);
}

function parseArgs(argv) {
  const o = { failFirst: 0, failWith: 'unavailable', hang: false, partialReject: 0 };
  const count = (flag, v) => {
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
      case '--grpc-port': o.grpcPort = count(a, next()); break;
      case '--http-port': o.httpPort = count(a, next()); break;
      case '--out': o.out = next(); break;
      case '--fail-first': o.failFirst = count(a, next()); break;
      case '--fail-with':
        o.failWith = next();
        if (!['unavailable', '503', '429', '400'].includes(o.failWith))
          usage(`--fail-with is unavailable, 503, 429 or 400, not ${o.failWith}`);
        break;
      case '--hang': o.hang = true; break;
      case '--partial-reject': o.partialReject = count(a, next()); break;
      case '-h': case '--help': usage(); break;
      default: usage(`unknown option ${a}`);
    }
  }
  if (o.grpcPort === undefined || o.httpPort === undefined || !o.out)
    usage('--grpc-port, --http-port and --out are required');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
let seen = 0; // requests so far, both transports: what --fail-first counts

function log(msg) {
  process.stderr.write(`receiver: ${msg}\n`);
}

// --- the record written for each accepted request ---

const ID_FIELDS = new Set(['traceId', 'spanId', 'parentSpanId']);

// protobufjs renders bytes as base64; OTLP/JSON writes ids as hex.
function hexIds(v) {
  if (Array.isArray(v)) return v.map(hexIds);
  if (v && typeof v === 'object') {
    const o = {};
    for (const [k, x] of Object.entries(v))
      o[k] = ID_FIELDS.has(k) && typeof x === 'string'
        ? Buffer.from(x, 'base64').toString('hex') : hexIds(x);
    return o;
  }
  return v;
}

function toPlain(sig, req) {
  return hexIds(sig.Request.toObject(req, { longs: String, bytes: String, enums: Number }));
}

const SKIP_HEADERS = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'upgrade',
  'http2-settings']);

function selectHeaders(entries) {
  const h = {};
  for (const [k, v] of entries) {
    const name = k.toLowerCase();
    if (name.startsWith(':') || SKIP_HEADERS.has(name)) continue;
    const one = Array.isArray(v) ? v.join(', ') : v;
    h[name] = Buffer.isBuffer(one) ? one.toString('base64') : String(one);
  }
  return h;
}

// grpc-js builds each call's metadata with Metadata.fromHttp2Headers and then
// removes the transport headers a test wants to see (content-type,
// grpc-encoding, grpc-timeout). Keeping the headers it was built from, keyed
// by the metadata object the handler gets, shows them; if a grpc-js version
// stops calling it, the plain metadata is recorded instead.
const rawGrpcHeaders = new WeakMap();
const fromHttp2Headers = grpc.Metadata.fromHttp2Headers;
grpc.Metadata.fromHttp2Headers = function (headers) {
  const m = fromHttp2Headers.call(this, headers);
  rawGrpcHeaders.set(m, Object.entries(headers));
  return m;
};

function grpcHeaders(metadata) {
  const raw = rawGrpcHeaders.get(metadata);
  return selectHeaders(raw || Object.entries(metadata.getMap()));
}

function record(signal, transport, headers, req) {
  const sig = SIGNALS[signal];
  fs.appendFileSync(opts.out,
    JSON.stringify({ signal, transport, headers, request: toPlain(sig, req) }) + '\n');
  log(`${transport}: recorded a ${signal} request with ${sig.count(req)} ${sig.noun}`);
}

function successBody(signal) {
  const sig = SIGNALS[signal];
  const r = {};
  if (opts.partialReject > 0)
    r.partialSuccess = {
      [sig.rejectedField]: opts.partialReject,
      errorMessage: `rejected ${opts.partialReject} ${sig.noun}: test receiver --partial-reject`,
    };
  return sig.Response.encode(sig.Response.create(r)).finish();
}

// --- google.rpc.Status, by hand: no dependency ships these types ---

function varint(n) {
  const out = [];
  for (; n > 0x7f; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80);
  out.push(n);
  return Buffer.from(out);
}

function field(num, wireType, payload) {
  const key = varint(num * 8 + wireType);
  if (wireType === 0) return Buffer.concat([key, varint(payload)]);
  const b = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  return Buffer.concat([key, varint(b.length), b]);
}

// google.rpc.Status { int32 code = 1; string message = 2; repeated Any details = 3 }
function rpcStatus(code, message, details = []) {
  return Buffer.concat([field(1, 0, code), field(2, 2, message),
    ...details.map((d) => field(3, 2, d))]);
}

// Any { type_url = 1, value = 2 } holding google.rpc.RetryInfo { Duration
// retry_delay = 1 }, Duration { int64 seconds = 1 }.
function retryInfoAny(seconds) {
  return Buffer.concat([field(1, 2, 'type.googleapis.com/google.rpc.RetryInfo'),
    field(2, 2, field(1, 2, field(1, 0, seconds)))]);
}

// --- faults ---

// The fault for this request, or null to accept it.
function fault() {
  seen++;
  if (opts.hang) return 'hang';
  if (seen <= opts.failFirst) return opts.failWith;
  return null;
}

// --- gRPC ---

// The Export handler of one signal's service.
const grpcExport = (signal) => (call, callback) => {
  const f = fault();
  if (f === 'hang') {
    log('grpc: hanging on a request');
    return;
  }
  if (f) {
    const meta = new grpc.Metadata();
    let code = grpc.status.UNAVAILABLE;
    if (f === '429') {
      code = grpc.status.RESOURCE_EXHAUSTED;
      meta.set('grpc-status-details-bin',
        rpcStatus(code, 'test receiver: overloaded', [retryInfoAny(1)]));
    } else if (f === '400') {
      code = grpc.status.INVALID_ARGUMENT;
    }
    log(`grpc: failing request ${seen} with status ${code}`);
    callback({ code, details: `test receiver --fail-with ${f} (request ${seen})`, metadata: meta });
    return;
  }
  try {
    record(signal, 'grpc', grpcHeaders(call.metadata), call.request);
  } catch (e) {
    log(`grpc: cannot record: ${e.message}`);
    callback({ code: grpc.status.INTERNAL, details: `test receiver: ${e.message}` });
    return;
  }
  callback(null, successBody(signal));
};

function grpcService(sig) {
  return {
    Export: {
      path: sig.grpcPath,
      requestStream: false,
      responseStream: false,
      requestSerialize: (m) => Buffer.from(sig.Request.encode(m).finish()),
      requestDeserialize: (b) => sig.Request.decode(b),
      // the success body is encoded in successBody()
      responseSerialize: (b) => Buffer.from(b),
      responseDeserialize: (b) => sig.Response.decode(b),
    },
  };
}

// --- OTLP/HTTP ---

function httpAnswer(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/x-protobuf', ...headers });
  res.end(body);
}

// The google.rpc.Code an OTLP/HTTP error body carries for each status.
const RPC_CODE = { 400: 3, 404: 5, 405: 3, 413: 8, 415: 3, 429: 8, 503: 14 };

function httpError(res, status, message, headers) {
  httpAnswer(res, status, rpcStatus(RPC_CODE[status] || 2, message), headers);
}

function httpHandle(req, res, body) {
  const path = req.url.split('?')[0];
  const signal = Object.keys(SIGNALS).find((k) => SIGNALS[k].httpPath === path);
  if (!signal) return httpError(res, 404, 'not found: only /v1/traces, /v1/logs and /v1/metrics');
  const sig = SIGNALS[signal];
  if (req.method !== 'POST') return httpError(res, 405, 'POST only', { allow: 'POST' });
  const type = (req.headers['content-type'] || '').split(';')[0].trim().toLowerCase();
  if (type !== 'application/x-protobuf')
    return httpError(res, 415, `content-type ${type || '(none)'}: only application/x-protobuf`);

  const f = fault();
  if (f === 'hang') {
    log('http: hanging on a request');
    return;
  }
  if (f) {
    const status = f === 'unavailable' ? 503 : Number(f);
    const extra = status === 400 ? {} : { 'retry-after': '1' };
    log(`http: failing request ${seen} with ${status}`);
    return httpError(res, status, `test receiver --fail-with ${f} (request ${seen})`, extra);
  }

  const enc = (req.headers['content-encoding'] || 'identity').trim().toLowerCase();
  let raw;
  try {
    if (enc === 'gzip') raw = zlib.gunzipSync(body, { maxOutputLength: MAX_BODY });
    else if (enc === 'identity') raw = body;
    else return httpError(res, 415, `content-encoding ${enc}: only gzip or none`);
  } catch (e) {
    return httpError(res, 400, `bad gzip body: ${e.message}`);
  }
  let decoded;
  try {
    decoded = sig.Request.decode(raw);
  } catch (e) {
    log(`http: undecodable request: ${e.message}`);
    return httpError(res, 400, `not an ${sig.Request.name}: ${e.message}`);
  }
  record(signal, 'http', selectHeaders(Object.entries(req.headers)), decoded);
  httpAnswer(res, 200, successBody(signal));
}

const httpServer = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (c) => {
    size += c.length;
    if (size > MAX_BODY) {
      httpError(res, 413, 'body too large');
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    if (size <= MAX_BODY) httpHandle(req, res, Buffer.concat(chunks));
  });
});
httpServer.keepAliveTimeout = 60000;

// --- start ---

const grpcServer = new grpc.Server();
for (const [signal, sig] of Object.entries(SIGNALS))
  grpcServer.addService(grpcService(sig), { Export: grpcExport(signal) });

fs.writeFileSync(opts.out, '', { flag: 'a' }); // exists from the start, for tail -f and wc
grpcServer.bindAsync(`127.0.0.1:${opts.grpcPort}`, grpc.ServerCredentials.createInsecure(),
  (err, grpcPort) => {
    if (err) {
      log(`cannot listen for gRPC on 127.0.0.1:${opts.grpcPort}: ${err.message}`);
      process.exit(1);
    }
    httpServer.on('error', (e) => {
      log(`cannot listen for HTTP on 127.0.0.1:${opts.httpPort}: ${e.message}`);
      process.exit(1);
    });
    httpServer.listen(opts.httpPort, '127.0.0.1', () => {
      process.stdout.write(`listening grpc=${grpcPort} http=${httpServer.address().port}\n`);
    });
  });

// a hung request keeps servers from closing gracefully: just go
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
