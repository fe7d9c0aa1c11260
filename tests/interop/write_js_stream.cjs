// Writes an Arrow IPC stream with apache-arrow's JS writer from generator.cjs, for Sabot to read.
//   node write_js_stream.cjs <apache-arrow package dir> <output file> <base:length,...>
// Buffers are built by hand (makeData) so that every value, including int64 timestamps, is exact.
'use strict';
const fs = require('fs');
const path = require('path');
const arrow = require(process.argv[2]);
const { COLUMNS, expected } = require(path.join(__dirname, 'generator.cjs'));

const TYPES = {
  id: () => new arrow.Int64(),
  b: () => new arrow.Bool(),
  i32: () => new arrow.Int32(),
  i64: () => new arrow.Int64(),
  u64: () => new arrow.Uint64(),
  f64: () => new arrow.Float64(),
  s: () => new arrow.Utf8(),
  bin: () => new arrow.Binary(),
  ts_s: () => new arrow.TimestampSecond(),
  ts_ms: () => new arrow.TimestampMillisecond(),
  ts_us: () => new arrow.TimestampMicrosecond(),
  ts_ns: () => new arrow.TimestampNanosecond(),
};

function column_data(name, type, base, length) {
  const validity = new Uint8Array(Math.ceil(length / 8));
  const values = [];
  let nulls = 0;
  for (let r = 0; r < length; ++r) {
    const v = expected(name, base + r);
    if (v === null) ++nulls; else validity[r >> 3] |= 1 << (r & 7);
    values.push(v);
  }
  const common = { type, length, nullCount: nulls, nullBitmap: nulls > 0 ? validity : null };
  switch (name) {
    case 'b': {
      const bits = new Uint8Array(Math.ceil(length / 8));
      values.forEach((v, r) => { if (v) bits[r >> 3] |= 1 << (r & 7); });
      return arrow.makeData({ ...common, data: bits });
    }
    case 'i32': return arrow.makeData({ ...common, data: Int32Array.from(values, (v) => v ?? 0) });
    case 'f64': return arrow.makeData({ ...common, data: Float64Array.from(values, (v) => v ?? 0) });
    case 'u64': return arrow.makeData({ ...common, data: BigUint64Array.from(values, (v) => v ?? 0n) });
    case 's':
    case 'bin': {
      const chunks = values.map((v) => (v === null ? new Uint8Array(0) : typeof v === 'string' ? Buffer.from(v, 'utf8') : v));
      const offsets = new Int32Array(length + 1);
      chunks.forEach((c, r) => { offsets[r + 1] = offsets[r] + c.length; });
      const bytes = new Uint8Array(offsets[length]);
      chunks.forEach((c, r) => bytes.set(c, offsets[r]));
      return arrow.makeData({ ...common, valueOffsets: offsets, data: bytes });
    }
    default:  // id, i64 and the timestamps: int64 values
      return arrow.makeData({ ...common, data: BigInt64Array.from(values, (v) => v ?? 0n) });
  }
}

const fields = COLUMNS.map(([name, , nullable]) => new arrow.Field(name, TYPES[name](), nullable));
const schema = new arrow.Schema(fields);
const spec = process.argv[4].split(',').filter((s) => s.length > 0).map((s) => s.split(':').map(Number));
const batches = spec.map(([base, length]) => {
  const children = fields.map((f) => column_data(f.name, f.type, base, length));
  const struct = arrow.makeData({ type: new arrow.Struct(fields), length, nullCount: 0, children });
  return new arrow.RecordBatch(schema, struct);
});
const writer = new arrow.RecordBatchStreamWriter();
writer.reset(undefined, schema);
for (const batch of batches) writer.write(batch);
writer.finish();
fs.writeFileSync(process.argv[3], writer.toUint8Array(true));
console.log(`OK: wrote ${batches.length} batches`);
