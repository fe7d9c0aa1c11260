// Reads an Arrow IPC stream written by Sabot with apache-arrow's JS reader and checks every value
// (including nulls) against generator.cjs.
//   node read_sabot_stream.cjs <apache-arrow package dir> <stream file> <base:length,...>
// Each base:length pair describes one expected batch: rows base .. base+length-1 of the generator.
'use strict';
const fs = require('fs');
const path = require('path');
const arrow = require(process.argv[2]);
const { COLUMNS, expected } = require(path.join(__dirname, 'generator.cjs'));

const bytes = fs.readFileSync(process.argv[3]);
const spec = process.argv[4].split(',').filter((s) => s.length > 0).map((s) => s.split(':').map(Number));

let errors = 0;
function fail(msg) {
  if (errors++ < 20) console.error('MISMATCH: ' + msg);
}

function actual(vector, data, name, row) {
  if (!vector.isValid(row)) return null;
  if (name.startsWith('ts_')) {
    // get() converts timestamps to milliseconds as a JS number; read the exact int64 instead.
    return data.values[data.offset + row];
  }
  return vector.get(row);
}

function same(a, b) {
  if (a === null || b === null) return a === b;
  if (b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || a.length !== b.length) return false;
    return a.every((x, k) => x === b[k]);
  }
  return a === b;
}

function show(v) {
  if (v instanceof Uint8Array) return '[' + Array.from(v).join(',') + ']';
  return typeof v === 'bigint' ? v.toString() + 'n' : JSON.stringify(v);
}

const reader = arrow.RecordBatchReader.from(bytes).open();
if (!reader.isStream()) fail('apache-arrow did not recognise the bytes as an IPC stream');
const schema = reader.schema;
const batches = [];
for (const batch of reader) batches.push(batch);

const fields = schema.fields;
if (fields.length !== COLUMNS.length) fail(`schema has ${fields.length} fields, expected ${COLUMNS.length}`);
COLUMNS.forEach(([name, type, nullable], c) => {
  const f = fields[c];
  if (!f) return;
  if (f.name !== name) fail(`field ${c} is named ${f.name}, expected ${name}`);
  if (String(f.type) !== type) fail(`field ${name} has type ${String(f.type)}, expected ${type}`);
  if (f.nullable !== nullable) fail(`field ${name} nullable=${f.nullable}, expected ${nullable}`);
});

if (batches.length !== spec.length) fail(`read ${batches.length} batches, expected ${spec.length}`);
let checked = 0;
batches.forEach((batch, b) => {
  if (!spec[b]) return;
  const [base, length] = spec[b];
  if (batch.numRows !== length) fail(`batch ${b} has ${batch.numRows} rows, expected ${length}`);
  for (const [name] of COLUMNS) {
    const vector = batch.getChild(name);
    if (!vector) { fail(`batch ${b} lacks column ${name}`); continue; }
    const data = vector.data[0];
    let nulls = 0;
    for (let r = 0; r < Math.min(length, batch.numRows); ++r) {
      const want = expected(name, base + r);
      const got = actual(vector, data, name, r);
      if (want === null) ++nulls;
      if (!same(got, want)) fail(`batch ${b} column ${name} row ${r}: got ${show(got)}, expected ${show(want)}`);
      ++checked;
    }
    if (vector.nullCount !== nulls) fail(`batch ${b} column ${name}: nullCount ${vector.nullCount}, expected ${nulls}`);
  }
});

if (errors > 0) {
  console.error(`${errors} mismatches`);
  process.exit(1);
}
console.log(`OK: ${batches.length} batches, ${checked} values checked`);
