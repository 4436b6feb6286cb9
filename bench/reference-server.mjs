#!/usr/bin/env node
/**
 * The "Node ceiling" reference for `npm run bench`: a raw `node:dgram` UDP server that answers every
 * datagram with one precomputed DNS answer, copying it and patching only the 2-octet ID. No parsing,
 * no dns2, no logging, and the same socket options as Meridian's (no dns.lookup per send): the most
 * a single Node event loop can do with one socket.
 *
 *   node bench/reference-server.mjs [--listen 127.0.0.1:0] [--answer FILE]
 *
 * --answer FILE  the raw answer to replay (bench/run.mjs passes a real Meridian answer to a GSLB A
 *                query with ECS, so both servers send the same number of octets); without it, a
 *                built-in answer of the same shape (A query with ECS, two A records, OPT + ECS) is used.
 *
 * Prints one line `reference serving udp://ADDR:PORT pid=PID` on stdout once bound, and exits on
 * SIGTERM/SIGINT or when its stdin closes (so it never outlives the harness that started it).
 * Loopback only: it refuses a non-loopback --listen address.
 */
import { createSocket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { option } from './common.mjs'

/** An answer shaped like Meridian's to `www0.bench.test A` with ECS 8.8.8.0/24 (scope 24). */
function builtInAnswer() {
  const name = Buffer.from([4, ...Buffer.from('www0'), 5, ...Buffer.from('bench'), 4, ...Buffer.from('test'), 0])
  const header = Buffer.from([0, 0, 0x84, 0x00, 0, 1, 0, 2, 0, 0, 0, 1]) // QR AA, 1 question, 2 answers, OPT
  const question = Buffer.concat([name, Buffer.from([0, 1, 0, 1])])
  const rr = (a) => Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, ...a])
  const ecs = Buffer.from([0, 8, 0, 7, 0, 1, 24, 24, 8, 8, 8])
  const opt = Buffer.concat([Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, ecs.length]), ecs])
  return Buffer.concat([header, question, rr([127, 90, 1, 1]), rr([127, 90, 1, 2]), opt])
}

const listen = option('--listen', '127.0.0.1:0')
const m = /^([\d.]+):(\d+)$/.exec(listen)
if (!m || !m[1].startsWith('127.')) {
  console.error(`reference-server: --listen must be a loopback IPv4 ADDR:PORT, got ${listen}`)
  process.exit(2)
}
const file = option('--answer')
const answer = file ? readFileSync(file) : builtInAnswer()
if (answer.length < 12) {
  console.error('reference-server: the answer is shorter than a DNS header')
  process.exit(2)
}

// Default socket buffer sizes, as Meridian's dns2 UDP socket has: neither side gets a bigger queue.
// The same lookup as Meridian's (src/dns/server.ts): the peer is an IP literal, so a send needs no
// dns.lookup, whose answer comes a process.nextTick later. With dgram's default lookup the reference
// paid that tick and Meridian did not: measured, the reference did ~9% fewer queries/s, and every
// ratio before session 8 is against that slower reference (docs/benchmarks.md).
const literalLookup = (address, family, callback) => callback(null, address, family)
const sock = createSocket({ type: 'udp4', lookup: literalLookup })
sock.on('message', (msg, rinfo) => {
  if (msg.length < 12) return
  const out = Buffer.allocUnsafe(answer.length)
  answer.copy(out)
  out[0] = msg[0]
  out[1] = msg[1]
  sock.send(out, rinfo.port, rinfo.address)
})
sock.on('error', (err) => {
  console.error(`reference-server: ${err.message}`)
  process.exit(1)
})
sock.bind(Number(m[2]), m[1], () => {
  const a = sock.address()
  process.stdout.write(`reference serving udp://${a.address}:${a.port} pid=${process.pid} answer=${answer.length}B\n`)
})
const stop = () => sock.close(() => process.exit(0))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.stdin.on('end', stop)
process.stdin.on('error', stop)
process.stdin.resume()
