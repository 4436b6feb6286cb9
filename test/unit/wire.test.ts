import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseQuery, type Query } from '../../src/dns/wire.js'

/** A query for the name given as raw labels, with an optional ECS option (family, source prefix, address octets). */
function message(labels: (string | Buffer)[], ecs?: { family: 1 | 2; prefix: number; bytes: number[] }): Buffer {
  const name = Buffer.concat([...labels.map((l) => (typeof l === 'string' ? Buffer.from(l, 'latin1') : l)).map((l) => Buffer.concat([Buffer.from([l.length]), l])), Buffer.from([0])])
  const head = Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, ecs ? 1 : 0])
  const parts = [head, name, Buffer.from([0, 1, 0, 1])]
  if (ecs) {
    const opt = [0, 8, 0, 4 + ecs.bytes.length, 0, ecs.family, ecs.prefix, 0, ...ecs.bytes]
    parts.push(Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, opt.length, ...opt]))
  }
  return Buffer.concat(parts)
}

function parsed(msg: Buffer): Query {
  const r = parseQuery(msg)
  assert.equal(r.kind, 'query', JSON.stringify(r))
  return (r as { query: Query }).query
}

test('a question name keeps its case in qname and is lowercased (ASCII only) in qkey', () => {
  const q = parsed(message(['WwW', 'GSLB', 'Example', 'test']))
  assert.equal(q.qname, 'WwW.GSLB.Example.test')
  assert.equal(q.qkey, 'www.gslb.example.test')
  assert.equal(q.oddName, false)
  const lower = parsed(message(['www', 'example', 'test']))
  assert.equal(lower.qname, 'www.example.test')
  assert.equal(lower.qkey, 'www.example.test')
  // Octets above 0x7f are kept as they are (latin1), never case-folded.
  const high = parsed(message([Buffer.from([0xc4, 0x41]), 'test']))
  assert.equal(high.qname, '\u00c4A.test')
  assert.equal(high.qkey, '\u00c4a.test')
})

test('the root name reads as the empty name', () => {
  const q = parsed(Buffer.from([0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]))
  assert.equal(q.qname, '')
  assert.equal(q.qkey, '')
})

test('a label holding "." or "\\" makes an odd name, escaped in the key, case folded', () => {
  const q = parsed(message(['A.b', 'C\\d', 'Test']))
  assert.equal(q.oddName, true)
  assert.equal(q.qname, 'A.b.C\\d.Test')
  assert.equal(q.qkey, 'a\\.b.c\\\\d.test')
})

test('a name longer than 255 octets is FORMERR, wherever its odd label is', () => {
  const long = Array.from({ length: 4 }, () => 'a'.repeat(63))
  const r = parseQuery(message(long))
  assert.equal(r.kind, 'formerr')
  assert.match((r as { reason: string }).reason, /longer than 255 octets/)
  const odd = parseQuery(message(['a.b', ...long]))
  assert.equal(odd.kind, 'formerr')
  assert.match((odd as { reason: string }).reason, /longer than 255 octets/)
})

test('a record name whose compression pointer does not point back (past the end, to itself, forward) is FORMERR; one that does is read', () => {
  const q = message(['www', 'example', 'test'])
  // ARCOUNT 1: an A record after the question, its owner a pointer.
  const withRecord = (pointer: number) => {
    const m = Buffer.concat([q, Buffer.from([0xc0 | (pointer >> 8), pointer & 0xff, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1])])
    m.writeUInt16BE(1, 10)
    return m
  }
  for (const pointer of [0xff, q.length, q.length + 4]) {
    const r = parseQuery(withRecord(pointer))
    assert.equal(r.kind, 'formerr', `pointer to ${pointer}`)
    assert.match((r as { reason: string }).reason, /compression pointer does not point back/)
  }
  assert.notEqual(parseQuery(withRecord(12)).kind, 'formerr', 'a pointer to the question name')
})

test('the ECS address reads as text from its octets, IPv4 and IPv6, bits past the prefix zero', () => {
  const v4 = parsed(message(['a', 'test'], { family: 1, prefix: 24, bytes: [198, 51, 100] })).edns!.ecs!
  assert.equal(v4.address, '198.51.100.0')
  assert.deepEqual([...v4.bytes], [198, 51, 100, 0])
  assert.equal(v4.sourcePrefix, 24)
  const v6 = parsed(message(['a', 'test'], { family: 2, prefix: 48, bytes: [0x20, 0x01, 0x0d, 0xb8, 0, 0x2a] })).edns!.ecs!
  assert.equal(v6.address, '2001:db8:2a::')
  assert.equal(v6.address, '2001:db8:2a::', 'asked twice, the same text')
  assert.equal(v6.family, 2)
})
