#!/usr/bin/env node
// A platform team's whole journey with credbatch from Node.js, built from the repository's
// protos alone (no generated code, no Python): create and read a schema, fetch its sample CSV,
// validate and upload a file in a client stream, follow the batch with WatchBatch until it
// ends, download the CSV report, page through ListRecords, decode error details, and check
// that another tenant's batch is NOT_FOUND and that a retried upload is idempotent.
//
// Environment:
//   CREDBATCH_TEMPLATES_ADDR, CREDBATCH_UPLOADS_ADDR, CREDBATCH_BATCHES_ADDR  host:port
//   CREDBATCH_TOKEN        a bearer token with the org_admin (or issuer) role
//   CREDBATCH_OTHER_TOKEN  a token of another tenant (for the NOT_FOUND step)
//   CREDBATCH_ROWS         data rows to upload (default 25)
//
// Every step prints one line `ok <step>: ...`; the last line is a JSON summary. The exit code
// is 0 only when every step did what the contract promises.
'use strict';

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { createRequire } = require('node:module');

// `make node-example-deps` installs the pinned packages under .tools/node_example; a copy of
// this folder with its own `npm ci` finds them next to it.
const TOOLS = path.join(__dirname, '..', '..', '.tools', 'node_example', 'node_modules');
const load = fs.existsSync(TOOLS) ? createRequire(path.join(TOOLS, 'index.js')) : require;
const grpc = load('@grpc/grpc-js');
const protoLoader = load('@grpc/proto-loader');
const protobuf = load('protobufjs');

const PROTOS = path.join(__dirname, '..', '..', 'protos');
const WATCH_END_KEY = 'credbatch-watch-end-reason';
const TERMINAL = new Set([
  'BATCH_STATE_COMPLETED',
  'BATCH_STATE_COMPLETED_WITH_ERRORS',
  'BATCH_STATE_CANCELLED',
  'BATCH_STATE_FAILED',
]);

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

// keepCase: field names as in the protos (snake_case), as the docs spell them.
// longs: String, so an int64 (e.g. Duration.seconds) never loses precision.
// enums: String, so states read as their names (BATCH_STATE_COMPLETED), as in reports.
// defaults: true, so unset scalars read as 0 / '' like every other language's getters.
// oneofs: true, so a oneof's set member is named (UploadBatchRequest.part).
const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTOS],
};

function loadServices() {
  const definition = protoLoader.loadSync(
    [
      'credbatch/templates/v1/templates_service.proto',
      'credbatch/uploads/v1/uploads_service.proto',
      'credbatch/batches/v1/batches_service.proto',
    ],
    LOADER_OPTIONS,
  );
  return grpc.loadPackageDefinition(definition).credbatch;
}

// google.rpc.Status and its details, to decode `grpc-status-details-bin`. protobufjs finds
// google/protobuf/any.proto among its bundled well-known types.
function loadErrorTypes() {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => path.join(PROTOS, target);
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  return root;
}

// Adds the bearer token to every call of a client: one place, not every call site.
function bearer(token) {
  return (options, nextCall) =>
    new grpc.InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set('authorization', `Bearer ${token}`);
        next(metadata, listener);
      },
    });
}

function clients(credbatch, token) {
  const options = { interceptors: [bearer(token)] };
  const insecure = grpc.credentials.createInsecure();
  return {
    templates: new credbatch.templates.v1.TemplateService(
      env('CREDBATCH_TEMPLATES_ADDR'),
      insecure,
      options,
    ),
    uploads: new credbatch.uploads.v1.UploadService(env('CREDBATCH_UPLOADS_ADDR'), insecure, options),
    batches: new credbatch.batches.v1.BatchStatusService(
      env('CREDBATCH_BATCHES_ADDR'),
      insecure,
      options,
    ),
  };
}

function unary(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, { deadline: Date.now() + 30_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

// The google.rpc.Status of a failed call, its details unpacked by type:
// { code, message, errorInfo, badRequest, retryInfo }.
function statusDetails(errorTypes, error) {
  const raw = error.metadata?.get('grpc-status-details-bin')?.[0];
  if (!raw) return { code: error.code, message: error.details };
  const Status = errorTypes.lookupType('google.rpc.Status');
  const status = Status.decode(raw);
  const decoded = { code: status.code, message: status.message };
  for (const any of status.details) {
    const typeName = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    const type = errorTypes.lookupType(typeName);
    const value = type.toObject(type.decode(any.value), { defaults: true });
    const key = typeName.replace('google.rpc.', '');
    decoded[key.charAt(0).toLowerCase() + key.slice(1)] = value;
  }
  return decoded;
}

async function expectError(errorTypes, promise, code) {
  try {
    await promise;
  } catch (error) {
    assert.equal(error.code, code, `expected ${grpc.status[code]}, got ${error.code}: ${error.details}`);
    return statusDetails(errorTypes, error);
  }
  throw new Error(`expected ${grpc.status[code]}, the call succeeded`);
}

// One CSV cell, quoted when it needs to be (RFC 4180).
function cell(value) {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

// Upload a file in chunks of `chunkBytes` (well under the 4 MiB message limit): the header
// first, then the bytes. Resolves with the UploadBatchResponse.
function upload(client, header, content, chunkBytes) {
  return new Promise((resolve, reject) => {
    const call = client.UploadBatch({ deadline: Date.now() + 60_000 }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
    call.write({ header });
    for (let start = 0; start < content.length; start += chunkBytes) {
      call.write({ chunk: content.subarray(start, start + chunkBytes) });
    }
    call.end();
  });
}

// One WatchBatch stream: every Batch it sends, and why it ended (the trailer).
function watchOnce(client, name, onBatch) {
  return new Promise((resolve, reject) => {
    const call = client.WatchBatch({ name });
    let last;
    call.on('data', (batch) => {
      last = batch;
      onBatch(batch);
    });
    call.on('error', reject);
    call.on('status', (status) => {
      if (status.code !== grpc.status.OK) return; // 'error' has it
      const [reason] = status.metadata.get(WATCH_END_KEY);
      resolve({ last, reason: reason === undefined ? undefined : String(reason) });
    });
  });
}

// The re-watch loop: a stream also ends at its maximum lifetime; then watch again.
async function watchToTheEnd(client, name, deadlineMs) {
  let streams = 0;
  let updates = 0;
  const reasons = [];
  while (Date.now() < deadlineMs) {
    streams += 1;
    const { last, reason } = await watchOnce(client, name, () => {
      updates += 1;
    });
    reasons.push(reason);
    if (reason === 'WATCH_END_REASON_BATCH_ENDED') {
      assert.ok(TERMINAL.has(last.state), `ended on a running state ${last.state}`);
      return { batch: last, streams, updates, reasons };
    }
    assert.equal(reason, 'WATCH_END_REASON_STREAM_LIFETIME', `unexpected end reason ${reason}`);
  }
  throw new Error(`batch ${name} did not end in time`);
}

function reportChunks(client, name) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const call = client.DownloadBatchReport({ name });
    call.on('data', (message) => chunks.push(message.chunk));
    call.on('error', reject);
    call.on('end', () => resolve(chunks));
  });
}

async function allRecords(client, parent, pageSize, filter) {
  const records = [];
  let pageToken = '';
  let pages = 0;
  do {
    const page = await unary(client, 'ListRecords', {
      parent,
      page_size: pageSize,
      page_token: pageToken,
      filter,
    });
    assert.ok(page.records.length <= pageSize);
    records.push(...page.records);
    pageToken = page.next_page_token;
    pages += 1;
  } while (pageToken);
  return { records, pages };
}

function ok(step, detail) {
  console.log(`ok ${step}: ${detail}`);
}

async function main() {
  const credbatch = loadServices();
  const errorTypes = loadErrorTypes();
  const mine = clients(credbatch, env('CREDBATCH_TOKEN'));
  const theirs = clients(credbatch, env('CREDBATCH_OTHER_TOKEN'));
  const rows = Number(env('CREDBATCH_ROWS', '25'));
  const summary = {};

  // 1. A schema, then read back as any client would.
  const created = await unary(mine.templates, 'CreateCredentialSchema', {
    schema: {
      display_name: `Node journey ${crypto.randomUUID().slice(0, 8)}`,
      description: 'Created by examples/node/journey.js',
      attributes: [
        { name: 'full_name', type: 'ATTRIBUTE_TYPE_STRING', required: true, description: 'Name' },
        {
          name: 'level',
          type: 'ATTRIBUTE_TYPE_ENUM',
          required: true,
          enum_values: ['basic', 'advanced'],
        },
      ],
    },
    request_id: crypto.randomUUID(),
  });
  const schema = await unary(mine.templates, 'GetCredentialSchema', { name: created.name });
  assert.equal(schema.name, created.name);
  assert.equal(schema.attributes[1].type, 'ATTRIBUTE_TYPE_ENUM');
  ok('schema', `${schema.name} version ${schema.version}`);
  summary.schema = schema.name;

  // 2. The sample CSV: its header is the file's header.
  const sample = await unary(mine.templates, 'GetSampleCsv', {
    schema: schema.name,
    mediums: ['MEDIUM_EMAIL'],
  });
  const columns = sample.columns.map((column) => column.name);
  const header = Buffer.from(sample.content).toString('utf8').split(/\r?\n/)[0];
  assert.equal(header, columns.map(cell).join(','));
  ok('sample csv', `${sample.filename}: ${columns.join(', ')}`);

  const values = (row) => ({
    full_name: `Zoë Ødegård-${row}`, // multi-byte UTF-8 on purpose
    level: row % 2 ? 'basic' : 'advanced',
    email: `holder${row}@example.org`,
  });
  const file = (bad) => {
    const lines = [columns.map(cell).join(',')];
    for (let row = 1; row <= rows; row += 1) {
      const value = values(row);
      if (bad && row === 3) value.email = 'not-an-email';
      lines.push(columns.map((column) => cell(value[column] ?? '')).join(','));
    }
    return Buffer.from(`${lines.join('\r\n')}\r\n`, 'utf8');
  };
  const uploadHeader = {
    schema: schema.name,
    mediums: ['MEDIUM_EMAIL'],
    filename: 'holders.csv',
  };

  // 3. validate_only: the whole validation report, nothing created.
  const checked = await upload(mine.uploads, { ...uploadHeader, validate_only: true }, file(true), 100);
  assert.equal(checked.report.valid, false);
  assert.equal(checked.report.rows_total, rows); // int32: a plain number
  assert.equal(typeof checked.report.rows_total, 'number');
  const problem = checked.report.errors[0];
  assert.equal(problem.row, 4); // data row 3 is line 4, as a spreadsheet numbers it
  ok('validation report', `${checked.report.error_count} problem: row ${problem.row} ${problem.column} ${problem.code}`);

  // 4. The same invalid file uploaded for real: INVALID_ARGUMENT with decodable details.
  const refused = await expectError(
    errorTypes,
    upload(mine.uploads, uploadHeader, file(true), 100),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.ok(refused.errorInfo?.reason, 'an ErrorInfo with a reason');
  assert.ok(refused.badRequest?.field_violations?.length > 0, 'BadRequest field violations');
  const violation = refused.badRequest.field_violations[0];
  ok(
    'error details',
    `ErrorInfo ${refused.errorInfo.reason} (${refused.errorInfo.domain}); BadRequest ` +
      `${violation.field}: ${violation.description}`,
  );
  summary.error_reason = refused.errorInfo.reason;
  summary.violation_field = violation.field;

  // 5. The valid file, streamed in small chunks, with a request_id; then retried with the same.
  const requestId = crypto.randomUUID();
  const content = file(false);
  const accepted = await upload(mine.uploads, { ...uploadHeader, request_id: requestId }, content, 64);
  const name = accepted.batch.name;
  assert.equal(accepted.batch.total_records, rows);
  const retried = await upload(mine.uploads, { ...uploadHeader, request_id: requestId }, content, 4096);
  assert.equal(retried.batch.name, name, 'a retried request_id returns the same batch');
  ok('upload', `${name} with ${accepted.batch.total_records} records; the retry returned it again`);
  summary.batch = name;

  // 6. Follow it to the end, watching again whenever a stream reaches its lifetime.
  const watched = await watchToTheEnd(mine.batches, name, Date.now() + 120_000);
  assert.equal(watched.batch.state, 'BATCH_STATE_COMPLETED');
  assert.equal(watched.batch.record_counts.invited, rows);
  ok(
    'watch',
    `${watched.batch.state} after ${watched.updates} updates in ${watched.streams} stream(s): ` +
      watched.reasons.join(', '),
  );
  summary.watch_streams = watched.streams;
  summary.watch_reasons = watched.reasons;

  // 7. The CSV report: every chunk is whole rows, so each decodes on its own.
  const chunks = await reportChunks(mine.batches, name);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (const chunk of chunks) {
    const text = decoder.decode(chunk);
    assert.ok(text.endsWith('\r\n'), 'a chunk ends on a row boundary');
  }
  const report = chunks.map((chunk) => Buffer.from(chunk).toString('utf8')).join('');
  const reportLines = report.trimEnd().split('\r\n');
  assert.equal(reportLines.length, rows + 1);
  const stateColumn = reportLines[0].split(',').indexOf('state');
  assert.ok(reportLines.slice(1).every((line) => line.split(',')[stateColumn] === 'RECORD_STATE_INVITED'));
  ok('report', `${chunks.length} chunk(s), ${rows} rows, states spelled as the protos spell them`);

  // 8. The same rows typed and paged, and filtered by state.
  const listed = await allRecords(mine.batches, name, 10, '');
  assert.deepEqual(
    listed.records.map((record) => record.row_number),
    Array.from({ length: rows }, (_, i) => i + 1),
  );
  assert.ok(listed.records.every((record) => record.state === 'RECORD_STATE_INVITED'));
  const failed = await allRecords(mine.batches, name, 10, 'state = RECORD_STATE_FAILED');
  assert.equal(failed.records.length, 0);
  ok('list records', `${listed.records.length} records in ${listed.pages} pages; none FAILED`);
  summary.pages = listed.pages;
  summary.records = listed.records.length;

  // 9. Another tenant's caller cannot tell the batch exists.
  for (const [method, request] of [
    ['GetBatch', { name }],
    ['ListRecords', { parent: name }],
  ]) {
    const hidden = await expectError(
      errorTypes,
      unary(theirs.batches, method, request),
      grpc.status.NOT_FOUND,
    );
    assert.equal(hidden.message, `batch ${name} not found`);
  }
  ok('tenant isolation', `${name} is NOT_FOUND to another tenant`);

  // 10. A malformed name: INVALID_ARGUMENT naming the field.
  const malformed = await expectError(
    errorTypes,
    unary(mine.batches, 'GetBatch', { name: 'batches/not-a-uuid' }),
    grpc.status.INVALID_ARGUMENT,
  );
  assert.equal(malformed.badRequest.field_violations[0].field, 'name');
  ok('bad name', `${malformed.errorInfo.reason}: ${malformed.message}`);

  for (const group of [mine, theirs]) for (const client of Object.values(group)) client.close();
  console.log(JSON.stringify({ ok: true, ...summary }));
}

main().catch((error) => {
  console.error(`journey failed: ${error.stack ?? error}`);
  if (error.metadata) console.error(error.metadata.getMap());
  process.exitCode = 1;
});
