#!/usr/bin/env node
// selftest.js - checks receiver.js before any test relies on it.
//
//   node selftest.js        prints "N passed, N failed", exits 1 on a failure
//
// A client made of the same official parts (@grpc/grpc-js, the generated
// OTLP types of @opentelemetry/otlp-transformer) sends trace, log and metric export
// requests over both transports to receivers started in each fault mode,
// and checks the answers and the recorded JSON lines.
'use strict';

const assert = require('assert');
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const zlib = require('zlib');
const { spawn } = require('child_process');
const grpc = require('@grpc/grpc-js');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const v1 = root.opentelemetry.proto.collector.trace.v1;
const Request = v1.ExportTraceServiceRequest;
const Response = v1.ExportTraceServiceResponse;
const logsV1 = root.opentelemetry.proto.collector.logs.v1;
const LogsRequest = logsV1.ExportLogsServiceRequest;
const LogsResponse = logsV1.ExportLogsServiceResponse;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'otlp-selftest-'));

const TraceClient = grpc.makeGenericClientConstructor({
  Export: {
    path: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: (m) => Buffer.from(Request.encode(m).finish()),
    requestDeserialize: (b) => Request.decode(b),
    responseSerialize: (m) => Buffer.from(Response.encode(m).finish()),
    responseDeserialize: (b) => Response.decode(b),
  },
}, 'TraceService');

const LogsClient = grpc.makeGenericClientConstructor({
  Export: {
    path: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: (m) => Buffer.from(LogsRequest.encode(m).finish()),
    requestDeserialize: (b) => LogsRequest.decode(b),
    responseSerialize: (m) => Buffer.from(LogsResponse.encode(m).finish()),
    responseDeserialize: (b) => LogsResponse.decode(b),
  },
}, 'LogsService');

const metricsV1 = root.opentelemetry.proto.collector.metrics.v1;
const MetricsRequest = metricsV1.ExportMetricsServiceRequest;
const MetricsResponse = metricsV1.ExportMetricsServiceResponse;
const MetricsClient = grpc.makeGenericClientConstructor({
  Export: {
    path: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
    requestStream: false,
    responseStream: false,
    requestSerialize: (m) => Buffer.from(MetricsRequest.encode(m).finish()),
    requestDeserialize: (b) => MetricsRequest.decode(b),
    responseSerialize: (m) => Buffer.from(MetricsResponse.encode(m).finish()),
    responseDeserialize: (b) => MetricsResponse.decode(b),
  },
}, 'MetricsService');

// A counter with two series and a histogram with one: three data points.
function sampleMetrics() {
  const point = (status, v) => ({ attributes: [{ key: 'status', value: { stringValue: status } }],
    startTimeUnixNano: 1700000000000000000, timeUnixNano: 1700000005000000000, asDouble: v });
  return MetricsRequest.create({
    resourceMetrics: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'selftest' } }] },
      scopeMetrics: [{
        scope: { name: 'shoal', version: '0.1.0' },
        metrics: [
          { name: 'jobs_total', sum: { dataPoints: [point('success', 9), point('failed', 1)],
            aggregationTemporality: 2, isMonotonic: true } },
          { name: 'job_duration_seconds', histogram: { aggregationTemporality: 2, dataPoints: [{
            startTimeUnixNano: 1700000000000000000, timeUnixNano: 1700000005000000000,
            count: 10, sum: 1.5, bucketCounts: [4, 6], explicitBounds: [0.1],
            exemplars: [{ timeUnixNano: 1700000001000000000, asDouble: 0.05,
              traceId: Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex') }] }] } },
        ],
      }],
    }],
  });
}

function checkRecordedMetrics(rec, transport) {
  assert.strictEqual(rec.signal, 'metrics');
  assert.strictEqual(rec.transport, transport);
  const [sum, hist] = rec.request.resourceMetrics[0].scopeMetrics[0].metrics;
  assert.strictEqual(sum.sum.dataPoints[0].asDouble, 9);
  assert.strictEqual(sum.sum.dataPoints[1].attributes[0].value.stringValue, 'failed');
  assert.strictEqual(hist.histogram.dataPoints[0].count, '10');
  assert.deepStrictEqual(hist.histogram.dataPoints[0].bucketCounts, ['4', '6']);
  assert.strictEqual(hist.histogram.dataPoints[0].exemplars[0].traceId,
    '4bf92f3577b34da6a3ce929d0e0e4736');
}

const hex = (s) => Buffer.from(s, 'hex');

// Two spans of one trace: a SERVER root with every kind of field, and its
// CLIENT child.
function sampleRequest() {
  return Request.create({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'selftest' } }] },
      scopeSpans: [{
        scope: { name: 'shoal', version: '0.1.0' },
        spans: [{
          traceId: hex('4bf92f3577b34da6a3ce929d0e0e4736'),
          spanId: hex('00f067aa0ba902b7'),
          traceState: 'k=v',
          flags: 1,
          name: 'process_job',
          kind: 2,
          startTimeUnixNano: '1700000000123456789',
          endTimeUnixNano: '1700000000987654321',
          attributes: [
            { key: 'worker.id', value: { intValue: 3 } },
            { key: 'job.url', value: { stringValue: 'http://x/' } },
            { key: 'ok', value: { boolValue: false } },
            { key: 'w', value: { doubleValue: 1.5 } },
          ],
          events: [{ timeUnixNano: '1700000000500000000', name: 'retry' }],
          links: [{ traceId: hex('0102030405060708090a0b0c0d0e0f10'),
            spanId: hex('deadbeef00000001'), flags: 1 }],
          status: { code: 2, message: 'HTTP 503' },
        }, {
          traceId: hex('4bf92f3577b34da6a3ce929d0e0e4736'),
          spanId: hex('53995c3f42cd8ad8'),
          parentSpanId: hex('00f067aa0ba902b7'),
          name: 'GET',
          kind: 3,
        }],
      }],
    }],
  });
}

// Two log records: "job done" inside a job's span, with typed attributes,
// and an engine warning with neither ids nor attributes.
function sampleLogs() {
  return LogsRequest.create({
    resourceLogs: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'selftest' } }] },
      scopeLogs: [{
        scope: { name: 'shoal', version: '0.1.0' },
        logRecords: [{
          timeUnixNano: '1700000000123456789',
          observedTimeUnixNano: '1700000000200000000',
          severityNumber: 9,
          severityText: 'INFO',
          body: { stringValue: 'job done' },
          attributes: [
            { key: 'job.id', value: { intValue: 7 } },
            { key: 'url', value: { stringValue: 'http://x/' } },
            { key: 'duration', value: { doubleValue: 0.5 } },
          ],
          flags: 1,
          traceId: hex('4bf92f3577b34da6a3ce929d0e0e4736'),
          spanId: hex('00f067aa0ba902b7'),
        }, {
          timeUnixNano: '1700000001000000000',
          severityNumber: 13,
          severityText: 'WARN',
          body: { stringValue: 'queue full' },
        }],
      }],
    }],
  });
}

function checkRecordedLogs(rec, transport) {
  assert.strictEqual(rec.signal, 'logs');
  assert.strictEqual(rec.transport, transport);
  const rl = rec.request.resourceLogs[0];
  assert.deepStrictEqual(rl.resource.attributes,
    [{ key: 'service.name', value: { stringValue: 'selftest' } }]);
  assert.deepStrictEqual(rl.scopeLogs[0].scope, { name: 'shoal', version: '0.1.0' });
  const [a, b] = rl.scopeLogs[0].logRecords;
  assert.strictEqual(a.timeUnixNano, '1700000000123456789');
  assert.strictEqual(a.observedTimeUnixNano, '1700000000200000000');
  assert.strictEqual(a.severityNumber, 9);
  assert.strictEqual(a.severityText, 'INFO');
  assert.deepStrictEqual(a.body, { stringValue: 'job done' });
  assert.deepStrictEqual(a.attributes, [
    { key: 'job.id', value: { intValue: '7' } },
    { key: 'url', value: { stringValue: 'http://x/' } },
    { key: 'duration', value: { doubleValue: 0.5 } },
  ]);
  assert.strictEqual(a.flags, 1);
  assert.strictEqual(a.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.strictEqual(a.spanId, '00f067aa0ba902b7');
  assert.strictEqual(b.severityNumber, 13);
  assert.strictEqual(b.traceId, undefined);
  assert.strictEqual(b.spanId, undefined);
  assert.strictEqual(b.attributes, undefined);
}

function startReceiver(name, extra = []) {
  const out = path.join(TMP, `${name}.jsonl`);
  const child = spawn(process.execPath,
    [path.join(__dirname, 'receiver.js'), '--grpc-port', '0', '--http-port', '0', '--out', out,
      ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      const m = /^listening grpc=(\d+) http=(\d+)\n/.exec(buf);
      if (m) {
        const client = new TraceClient(`127.0.0.1:${m[1]}`, grpc.credentials.createInsecure());
        const logsClient = new LogsClient(`127.0.0.1:${m[1]}`, grpc.credentials.createInsecure());
        const metricsClient = new MetricsClient(`127.0.0.1:${m[1]}`,
          grpc.credentials.createInsecure());
        resolve({ child, out, grpcPort: +m[1], httpPort: +m[2], client, logsClient, metricsClient,
          stop() { client.close(); logsClient.close(); metricsClient.close(); child.kill(); },
          lines() { return fs.readFileSync(out, 'utf8').split('\n').filter(Boolean).map(JSON.parse); } });
      }
    });
    child.on('exit', (code) => reject(new Error(`receiver exited ${code}: ${err}`)));
  });
}

function grpcExport(r, req, { deadlineMs = 5000, metadata, client } = {}) {
  const md = metadata || new grpc.Metadata();
  return new Promise((resolve) => {
    (client || r.client).Export(req, md, { deadline: Date.now() + deadlineMs },
      (err, res) => resolve({ err, res }));
  });
}

const grpcExportLogs = (r, req, o = {}) => grpcExport(r, req, { ...o, client: r.logsClient });
const grpcExportMetrics = (r, req, o = {}) =>
  grpcExport(r, req, { ...o, client: r.metricsClient });
const encodedMetrics = () => Buffer.from(MetricsRequest.encode(sampleMetrics()).finish());

function httpPost(r, body, { headers = {}, timeoutMs = 5000, path: p = '/v1/traces' } = {}) {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: r.httpPort, method: 'POST', path: p,
      headers: { 'content-type': 'application/x-protobuf', ...headers } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers,
        body: Buffer.concat(chunks) }));
    });
    req.setTimeout(timeoutMs, () => { req.destroy(); resolve({ timeout: true }); });
    req.on('error', (e) => resolve({ error: e }));
    req.end(body);
  });
}

const encoded = () => Buffer.from(Request.encode(sampleRequest()).finish());
const encodedLogs = () => Buffer.from(LogsRequest.encode(sampleLogs()).finish());

let passed = 0;
let failed = 0;
async function check(name, fn) {
  try {
    await fn();
    passed++;
  } catch (e) {
    failed++;
    process.stderr.write(`FAIL ${name}: ${e.stack}\n`);
  }
}

function checkRecorded(rec, transport) {
  assert.strictEqual(rec.signal, 'traces');
  assert.strictEqual(rec.transport, transport);
  const rs = rec.request.resourceSpans[0];
  assert.deepStrictEqual(rs.resource.attributes,
    [{ key: 'service.name', value: { stringValue: 'selftest' } }]);
  assert.deepStrictEqual(rs.scopeSpans[0].scope, { name: 'shoal', version: '0.1.0' });
  const [a, b] = rs.scopeSpans[0].spans;
  assert.strictEqual(a.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.strictEqual(a.spanId, '00f067aa0ba902b7');
  assert.strictEqual(a.parentSpanId, undefined);
  assert.strictEqual(a.traceState, 'k=v');
  assert.strictEqual(a.flags, 1);
  assert.strictEqual(a.kind, 2);
  assert.strictEqual(a.startTimeUnixNano, '1700000000123456789');
  assert.strictEqual(a.endTimeUnixNano, '1700000000987654321');
  assert.deepStrictEqual(a.attributes, [
    { key: 'worker.id', value: { intValue: '3' } },
    { key: 'job.url', value: { stringValue: 'http://x/' } },
    { key: 'ok', value: { boolValue: false } },
    { key: 'w', value: { doubleValue: 1.5 } },
  ]);
  assert.deepStrictEqual(a.events, [{ timeUnixNano: '1700000000500000000', name: 'retry' }]);
  assert.deepStrictEqual(a.links,
    [{ traceId: '0102030405060708090a0b0c0d0e0f10', spanId: 'deadbeef00000001', flags: 1 }]);
  assert.deepStrictEqual(a.status, { code: 2, message: 'HTTP 503' });
  assert.strictEqual(b.parentSpanId, '00f067aa0ba902b7');
  assert.strictEqual(b.kind, 3);
  assert.strictEqual(b.status, undefined);
}

async function main() {
  let r = await startReceiver('plain');
  await check('grpc export is answered and recorded', async () => {
    const md = new grpc.Metadata();
    md.set('authorization', 'Bearer t0k');
    const { err, res } = await grpcExport(r, sampleRequest(), { metadata: md });
    assert.ifError(err);
    assert.strictEqual(res.partialSuccess, null);
    const lines = r.lines();
    assert.strictEqual(lines.length, 1);
    checkRecorded(lines[0], 'grpc');
    assert.strictEqual(lines[0].headers.authorization, 'Bearer t0k');
    assert.match(lines[0].headers['user-agent'], /grpc-node-js/);
    assert.strictEqual(lines[0].headers['content-type'], 'application/grpc');
  });
  await check('grpc export compressed with gzip shows grpc-encoding', async () => {
    const c = new TraceClient(`127.0.0.1:${r.grpcPort}`, grpc.credentials.createInsecure(),
      { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip });
    const res = await new Promise((resolve) => c.Export(sampleRequest(), (err) => resolve(err)));
    c.close();
    assert.ifError(res);
    const rec = r.lines()[1];
    checkRecorded(rec, 'grpc');
    assert.strictEqual(rec.headers['grpc-encoding'], 'gzip');
  });
  await check('http export, plain and gzip, is answered and recorded', async () => {
    const plain = await httpPost(r, encoded(), { headers: { 'x-scope': 'a' } });
    assert.strictEqual(plain.status, 200);
    assert.strictEqual(plain.headers['content-type'], 'application/x-protobuf');
    assert.strictEqual(Response.decode(plain.body).partialSuccess, null);
    const gz = await httpPost(r, zlib.gzipSync(encoded()), { headers: { 'content-encoding': 'gzip' } });
    assert.strictEqual(gz.status, 200);
    const lines = r.lines();
    assert.strictEqual(lines.length, 4);
    checkRecorded(lines[2], 'http');
    checkRecorded(lines[3], 'http');
    assert.strictEqual(lines[2].headers['x-scope'], 'a');
    assert.strictEqual(lines[2].headers['content-type'], 'application/x-protobuf');
    assert.strictEqual(lines[3].headers['content-encoding'], 'gzip');
  });
  await check('http refuses what is not OTLP/protobuf and records nothing', async () => {
    assert.strictEqual((await httpPost(r, '{}', { headers: { 'content-type': 'application/json' } })).status, 415);
    assert.strictEqual((await httpPost(r, Buffer.from([0x0a, 0x05, 1])))
      .status, 400);
    assert.strictEqual((await httpPost(r, encoded(), { path: '/v1/profiles' })).status, 404);
    assert.strictEqual(r.lines().length, 4);
  });
  await check('logs over grpc and http (plain and gzip) are answered and recorded', async () => {
    const g = await grpcExportLogs(r, sampleLogs());
    assert.ifError(g.err);
    assert.strictEqual(g.res.partialSuccess, null);
    const plain = await httpPost(r, encodedLogs(), { path: '/v1/logs' });
    assert.strictEqual(plain.status, 200);
    assert.strictEqual(LogsResponse.decode(plain.body).partialSuccess, null);
    const gz = await httpPost(r, zlib.gzipSync(encodedLogs()),
      { path: '/v1/logs', headers: { 'content-encoding': 'gzip' } });
    assert.strictEqual(gz.status, 200);
    const lines = r.lines();
    assert.strictEqual(lines.length, 7);
    checkRecordedLogs(lines[4], 'grpc');
    checkRecordedLogs(lines[5], 'http');
    checkRecordedLogs(lines[6], 'http');
    assert.strictEqual(lines[6].headers['content-encoding'], 'gzip');
  });
  await check('POST /v1/logs is decoded as logs, whatever it holds', async () => {
    // the two requests share field 1, so a mix-up decodes: the record shows it
    const res = await httpPost(r, Buffer.from([0x0a, 0x02, 0x0a, 0x00]), { path: '/v1/logs' });
    assert.strictEqual(res.status, 200);
    const last = r.lines().pop();
    assert.strictEqual(last.signal, 'logs');
    assert.deepStrictEqual(last.request, { resourceLogs: [{ resource: {} }] });
  });
  r.stop();

  for (const [mode, grpcCode, httpStatus, retryAfter] of [
    ['unavailable', grpc.status.UNAVAILABLE, 503, '1'],
    ['503', grpc.status.UNAVAILABLE, 503, '1'],
    ['429', grpc.status.RESOURCE_EXHAUSTED, 429, '1'],
    ['400', grpc.status.INVALID_ARGUMENT, 400, undefined],
  ]) {
    r = await startReceiver(`fail-${mode}`, ['--fail-first', '2', '--fail-with', mode]);
    await check(`--fail-first 2 --fail-with ${mode}`, async () => {
      const g = await grpcExport(r, sampleRequest());
      assert.strictEqual(g.err && g.err.code, grpcCode);
      if (mode === '429') {
        const details = g.err.metadata.get('grpc-status-details-bin')[0];
        assert.ok(details.includes('type.googleapis.com/google.rpc.RetryInfo'));
      }
      const h = await httpPost(r, encoded());
      assert.strictEqual(h.status, httpStatus);
      assert.strictEqual(h.headers['retry-after'], retryAfter);
      assert.strictEqual(r.lines().length, 0);
      const ok = await grpcExport(r, sampleRequest());
      assert.ifError(ok.err);
      assert.strictEqual((await httpPost(r, encoded())).status, 200);
      assert.deepStrictEqual(r.lines().map((l) => l.transport), ['grpc', 'http']);
    });
    r.stop();
    r = await startReceiver(`logs-fail-${mode}`, ['--fail-first', '2', '--fail-with', mode]);
    await check(`logs: --fail-first 2 --fail-with ${mode}`, async () => {
      const g = await grpcExportLogs(r, sampleLogs());
      assert.strictEqual(g.err && g.err.code, grpcCode);
      const h = await httpPost(r, encodedLogs(), { path: '/v1/logs' });
      assert.strictEqual(h.status, httpStatus);
      assert.strictEqual(h.headers['retry-after'], retryAfter);
      assert.strictEqual(r.lines().length, 0);
      assert.ifError((await grpcExportLogs(r, sampleLogs())).err);
      assert.strictEqual((await httpPost(r, encodedLogs(), { path: '/v1/logs' })).status, 200);
      assert.deepStrictEqual(r.lines().map((l) => `${l.signal}/${l.transport}`),
        ['logs/grpc', 'logs/http']);
    });
    r.stop();
  }

  r = await startReceiver('metrics');
  await check('metrics over grpc and http are answered and recorded', async () => {
    const g = await grpcExportMetrics(r, sampleMetrics());
    assert.ifError(g.err);
    assert.strictEqual(g.res.partialSuccess, null);
    const h = await httpPost(r, encodedMetrics(), { path: '/v1/metrics' });
    assert.strictEqual(h.status, 200);
    assert.strictEqual(MetricsResponse.decode(h.body).partialSuccess, null);
    const lines = r.lines();
    assert.strictEqual(lines.length, 2);
    checkRecordedMetrics(lines[0], 'grpc');
    checkRecordedMetrics(lines[1], 'http');
  });
  r.stop();

  r = await startReceiver('partial', ['--partial-reject', '3']);
  await check('--partial-reject 3', async () => {
    const g = await grpcExport(r, sampleRequest());
    assert.ifError(g.err);
    assert.strictEqual(Number(g.res.partialSuccess.rejectedSpans), 3);
    assert.match(g.res.partialSuccess.errorMessage, /rejected 3/);
    const h = await httpPost(r, encoded());
    assert.strictEqual(h.status, 200);
    assert.strictEqual(Number(Response.decode(h.body).partialSuccess.rejectedSpans), 3);
    assert.strictEqual(r.lines().length, 2);
    const gl = await grpcExportLogs(r, sampleLogs());
    assert.ifError(gl.err);
    assert.strictEqual(Number(gl.res.partialSuccess.rejectedLogRecords), 3);
    assert.match(gl.res.partialSuccess.errorMessage, /rejected 3 log record/);
    const hl = await httpPost(r, encodedLogs(), { path: '/v1/logs' });
    assert.strictEqual(Number(LogsResponse.decode(hl.body).partialSuccess.rejectedLogRecords), 3);
    assert.strictEqual(r.lines().length, 4);
    const gm = await grpcExportMetrics(r, sampleMetrics());
    assert.ifError(gm.err);
    assert.strictEqual(Number(gm.res.partialSuccess.rejectedDataPoints), 3);
    assert.match(gm.res.partialSuccess.errorMessage, /rejected 3 data point/);
  });
  r.stop();

  r = await startReceiver('hang', ['--hang']);
  await check('--hang never answers and records nothing', async () => {
    const g = await grpcExport(r, sampleRequest(), { deadlineMs: 700 });
    assert.strictEqual(g.err && g.err.code, grpc.status.DEADLINE_EXCEEDED);
    const h = await httpPost(r, encoded(), { timeoutMs: 700 });
    assert.strictEqual(h.timeout, true);
    const gl = await grpcExportLogs(r, sampleLogs(), { deadlineMs: 700 });
    assert.strictEqual(gl.err && gl.err.code, grpc.status.DEADLINE_EXCEEDED);
    assert.strictEqual(r.lines().length, 0);
  });
  r.stop();

  console.log(`${passed} passed, ${failed} failed`);
  fs.rmSync(TMP, { recursive: true, force: true });
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  console.error(e);
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
});
