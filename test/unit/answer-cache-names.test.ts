/**
 * The NXDOMAIN name index writes each name's labels straight into one buffer (writeNameOctets).
 * It must give exactly the octets the per-name Buffers it replaced gave (nameOctets before
 * session 26, copied below as the reference), or -1 where that gave null, for every name: random
 * names with uppercase, non-ASCII, backslashes, empty labels, labels of 63 and 64 octets, the root;
 * and it must write nothing past the room it is given (the name's length + 1 octets).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { writeNameOctets } from '../../src/dns/answer-cache.js'
import { prng } from '../../src/sim/prng.js'

/** The reference: answer-cache.ts's nameOctets at 03fb4de. */
function referenceOctets(name: string): Buffer | null {
  if (name === '') return Buffer.alloc(0)
  const labels = name.split('.')
  const out = Buffer.allocUnsafe(name.length + 1)
  let k = 0
  for (const l of labels) {
    if (l.length === 0 || l.length > 63) return null
    out[k++] = l.length
    for (let i = 0; i < l.length; i++) {
      const c = l.charCodeAt(i)
      if (c >= 0x80 || c === 0x5c || (c >= 0x41 && c <= 0x5a)) return null
      out[k++] = c
    }
  }
  return out.subarray(0, k)
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz0123456789-_*'
/** Characters the hot path never reads, and one (DEL, 0x7f) it does. */
const ODD = ['A', 'Z', '\\', 'é', '\u0080', '\u00ff', '中', '😀', '\u007f', ' ', '\u0000']

function randomName(rand: () => number): string {
  const n = Math.floor(rand() * 6)
  const labels: string[] = []
  for (let i = 0; i < n; i++) {
    const r = rand()
    // Label lengths around the limits as often as short ones.
    const len = r < 0.08 ? 0 : r < 0.16 ? 63 : r < 0.24 ? 64 : r < 0.28 ? 62 + Math.floor(rand() * 4) : 1 + Math.floor(rand() * 12)
    let l = ''
    for (let j = 0; j < len; j++) l += rand() < 0.03 ? ODD[Math.floor(rand() * ODD.length)]! : LOWER[Math.floor(rand() * LOWER.length)]!
    labels.push(l)
  }
  let name = labels.join('.')
  if (rand() < 0.05) name = `.${name}`
  if (rand() < 0.05) name = `${name}.`
  return name
}

/** writeNameOctets(name) at `off` in a buffer of exactly the room it needs, guarded on both sides: what it returned and wrote. */
function written(name: string, off: number): Buffer | null {
  const GUARD = 8
  const buf = Buffer.alloc(off + name.length + 1 + GUARD, 0xa5)
  const end = writeNameOctets(name, buf.subarray(0, off + name.length + 1), off)
  assert.ok(buf.subarray(off + name.length + 1).every((b) => b === 0xa5), `${JSON.stringify(name)}: wrote past its room`)
  assert.ok(buf.subarray(0, off).every((b) => b === 0xa5), `${JSON.stringify(name)}: wrote before its offset`)
  if (end < 0) {
    assert.equal(end, -1)
    return null
  }
  assert.ok(end >= off && end <= off + name.length + 1, `${JSON.stringify(name)}: end ${end}`)
  return buf.subarray(off, end)
}

function same(name: string, off: number): void {
  const want = referenceOctets(name)
  const got = written(name, off)
  if (want === null) assert.equal(got, null, `${JSON.stringify(name)}: the reference gives null`)
  else assert.deepEqual(got === null ? null : [...got], [...want], `${JSON.stringify(name)}`)
}

test('writeNameOctets gives the octets the old nameOctets gave, or -1 where it gave null: chosen names', () => {
  const l63 = 'a'.repeat(63)
  const l64 = 'a'.repeat(64)
  const names = [
    '', '.', '..', 'a', 'a.', '.a', 'a..b', 'www.example.test', 'WWW.example.test', 'www.Example.test', 'www.example.tesT',
    'a\\.b', 'a\\046b', 'xn--bcher-kva.test', 'bücher.test', '中文.test', '😀.test', '_imaps._tcp.gslb.example.test', '*.wild.test',
    'a-b.c_d', '\u007f.test', '\u0080.test', ' .test', 'a b.test', '\u0000.test',
    l63, l64, `${l63}.${l63}.${l63}.${'b'.repeat(61)}`, `${l63}.${l64}`, `${l64}.${l63}`, `x.${l63}`, `x.${l64}`, `${l63}.`, `.${l63}`,
  ]
  for (const name of names) for (const off of [0, 1, 37]) same(name, off)
})

test('writeNameOctets gives the octets the old nameOctets gave, or -1 where it gave null: 50,000 random names', () => {
  const rand = prng(0x6d657269)
  let nulls = 0
  for (let i = 0; i < 50_000; i++) {
    const name = randomName(rand)
    same(name, Math.floor(rand() * 5))
    if (referenceOctets(name) === null) nulls++
  }
  // Both kinds were tried often.
  assert.ok(nulls > 5_000 && nulls < 45_000, `${nulls} names the hot path never reads`)
})

test('names written one after another into one buffer (as the name index does) are each the reference, a refused one leaving no trace', () => {
  const rand = prng(26)
  const names = Array.from({ length: 5_000 }, () => randomName(rand))
  const room = names.reduce((n, s) => n + s.length + 1, 0)
  const octets = Buffer.alloc(room, 0xa5)
  const offsets = [0]
  const kept: string[] = []
  for (const name of names) {
    const end = writeNameOctets(name, octets, offsets.at(-1)!)
    if (end < 0) continue
    offsets.push(end)
    kept.push(name)
  }
  assert.ok(kept.length > 500)
  kept.forEach((name, i) => assert.deepEqual([...octets.subarray(offsets[i]!, offsets[i + 1]!)], [...referenceOctets(name)!], JSON.stringify(name)))
  const want = Buffer.concat(kept.map((n) => referenceOctets(n)!))
  assert.deepEqual(octets.subarray(0, offsets.at(-1)!), want)
})
