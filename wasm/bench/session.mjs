// Encrypt + decrypt throughput of 100-byte messages on an established hush session, in wasm under
// Node. Run by `scripts/wasm.sh bench`, which builds hush-wasm with the `bench` feature (release,
// wasm-opt) and passes the path of the Node build; the native number comes from the same Rust code
// (`cargo run --release -p hush-wasm --features bench --example session_native`) in the same run.
//
//   node wasm/bench/session.mjs path/to/node/hush_wasm.js [rounds]
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { resolve } from 'node:path';

const [modulePath, roundsArg] = process.argv.slice(2);
if (!modulePath) {
  console.error('usage: node session.mjs path/to/node/hush_wasm.js [rounds]');
  process.exit(2);
}
const hush = createRequire(import.meta.url)(resolve(modulePath));
const rounds = Number(roundsArg ?? 20000);
const message = new Uint8Array(100).fill(0x5a);

const session = new hush.BenchSession();
// Warm up (JIT tiers), then one timed batch inside wasm, and the same one call per message from JS.
session.roundTrips(message, Math.floor(rounds / 10) + 1);
let start = performance.now();
const total = session.roundTrips(message, rounds);
let secs = (performance.now() - start) / 1000;
if (total !== rounds * 100) throw new Error(`decrypted ${total} bytes, expected ${rounds * 100}`);
console.log(JSON.stringify({
  runtime: `wasm (node ${process.version})`,
  rounds,
  us_per_round_trip: +((secs * 1e6) / rounds).toFixed(3),
  round_trips_per_sec: Math.round(rounds / secs),
}));

start = performance.now();
for (let i = 0; i < rounds; i++) session.roundTrips(message, 1);
secs = (performance.now() - start) / 1000;
console.log(JSON.stringify({
  runtime: 'wasm, one JS call per message',
  rounds,
  us_per_round_trip: +((secs * 1e6) / rounds).toFixed(3),
  round_trips_per_sec: Math.round(rounds / secs),
}));
session.free();
