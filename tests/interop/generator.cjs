// Deterministic test data for the interop tests: the value of every column at row `i`, computed
// from the row number alone. interop_test.cc implements the same formulas in C++, so each side
// checks the other's data against its own independent expectation.
'use strict';

const WORDS = ['', 'a', 'h\u00e9llo', '\u20ac', '\u{1F600}', 'w\u00f6rld \u00e9\u20ac'];

// [name, arrow type name (String(field.type) in apache-arrow), nullable]
const COLUMNS = [
  ['id', 'Int64', false],
  ['b', 'Bool', true],
  ['i32', 'Int32', true],
  ['i64', 'Int64', true],
  ['u64', 'Uint64', true],
  ['f64', 'Float64', true],
  ['s', 'Utf8', true],
  ['bin', 'Binary', true],
  ['ts_s', 'Timestamp<SECOND>', true],
  ['ts_ms', 'Timestamp<MILLISECOND>', true],
  ['ts_us', 'Timestamp<MICROSECOND>', true],
  ['ts_ns', 'Timestamp<NANOSECOND>', true],
];

// The expected value of `column` at row `i`: null, boolean, number, bigint, string or Uint8Array.
function expected(column, i) {
  const I = BigInt(i);
  switch (column) {
    case 'id': return I;
    case 'b': return i % 7 === 3 ? null : (i * 5) % 3 === 1;
    case 'i32': return i % 11 === 5 ? null : Number(BigInt.asIntN(32, I * 2654435761n));
    case 'i64': return i % 13 === 0 ? null : BigInt.asIntN(64, I * 0x9E3779B97F4A7C15n);
    case 'u64': return i % 17 === 2 ? null : BigInt.asUintN(64, I * 0xD1B54A32D192ED03n + 12345n);
    case 'f64': return i % 19 === 4 ? null : (i - 1000) / 7;
    case 's': return i % 5 === 1 ? null : WORDS[i % 6] + String(i);
    case 'bin': {
      if (i % 9 === 4) return null;
      const bytes = new Uint8Array(i % 10);
      for (let k = 0; k < bytes.length; ++k) bytes[k] = (i * 31 + k * 7) & 0xFF;
      return bytes;
    }
    case 'ts_s': return i % 29 === 1 ? null : 1700000000n + I;
    case 'ts_ms': return i % 23 === 7 ? null : 1700000000000n + I * 1000n;
    case 'ts_us': return i % 31 === 3 ? null : 1700000000000000n + I * 1000003n;
    case 'ts_ns': return i % 37 === 5 ? null : 1700000000000000000n + I * 1000000007n;
  }
  throw new Error('unknown column ' + column);
}

module.exports = { COLUMNS, expected };
