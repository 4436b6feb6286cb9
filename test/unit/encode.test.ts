/**
 * encode.ts: leastSize() is a lower bound of what each record takes in a message, so that an answer
 * it says cannot fit goes to TC without being encoded; and the messages written through its own
 * writer are dns2's octets.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dns2 from 'dns2'
import { encodeResponse, leastSize } from '../../src/dns/encode.js'
import type { Outcome } from '../../src/dns/responder.js'
import { parseQuery, type Query } from '../../src/dns/wire.js'
import type { RR } from '../../src/model/types.js'
import { buildQuery, parseReply, TYPE } from '../helpers/wire.js'

function question(name: string, type: number, edns = false): Query {
  const p = parseQuery(buildQuery({ name, type, ...(edns ? { opt: { udpSize: 1232 } } : {}) }))
  assert.equal(p.kind, 'query')
  return (p as { query: Query }).query
}

const outcome = (answer: RR[], authority: RR[] = []): Outcome => ({ kind: 'answer', rcode: 0, aa: true, answer, authority, additional: [], ecsScope: 0, zone: undefined, selection: undefined, client: undefined })

/** Every record type a zone file can hold, with names and strings of random lengths. */
function randomRecords(seed: number, count: number): RR[] {
  let s = seed
  const rand = (n: number) => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) % n)
  const name = () => Array.from({ length: 1 + rand(4) }, () => 'x'.repeat(1 + rand(20))).join('.') + '.t.test'
  const owner = 'www.t.test'
  const base = { name: owner, class: 1 as const, ttl: 30 }
  const out: RR[] = []
  for (let i = 0; i < count; i++) {
    switch (rand(9)) {
      case 0: out.push({ ...base, type: 1, address: `192.0.2.${rand(256)}` }); break
      case 1: out.push({ ...base, type: 28, address: `2001:db8::${rand(65536).toString(16)}` }); break
      case 2: out.push({ ...base, type: 16, data: Array.from({ length: 1 + rand(3) }, () => Buffer.from('t'.repeat(rand(255)))) }); break
      case 3: out.push({ ...base, type: 15, priority: rand(100), exchange: name() }); break
      case 4: out.push({ ...base, type: 33, priority: 1, weight: 2, port: 443, target: name() }); break
      case 5: out.push({ ...base, type: 257, flags: 0, tag: 'issue', value: 'ca.example.' + 'é'.repeat(rand(10)) }); break
      case 6: out.push({ ...base, type: 2, ns: name() }); break
      case 7: out.push({ ...base, type: 5, domain: name() }); break
      default: out.push({ ...base, type: 6, primary: name(), admin: name(), serial: 1, refresh: 2, retry: 3, expiration: 4, minimum: 5 })
    }
  }
  return out
}

test('leastSize() is never more than the octets dns2 writes for the records, for every type and random names and strings', () => {
  const q = question('www.t.test', TYPE.A)
  for (let seed = 1; seed <= 300; seed++) {
    const rrs = randomRecords(seed, 1 + (seed % 7))
    const full = encodeResponse({ id: 1, rd: false }, q, outcome(rrs), null, 65535)
    const written = full.length - 12 - q.questionWire.length
    assert.ok(leastSize(rrs) <= written, `seed ${seed}: leastSize ${leastSize(rrs)} > ${written} octets written for types ${rrs.map((r) => r.type).join(',')}`)
  }
})

test('an answer whose least size is past the limit is the TC reply (question and OPT only), as when it was encoded to find out', () => {
  const q = question('www.t.test', TYPE.TXT, true)
  const big = Array.from({ length: 300 }, (_, i) => ({ name: 'www.t.test', type: 16, class: 1 as const, ttl: 30, data: [Buffer.from(`record ${i} `.padEnd(200, '.'))] }))
  const tc = parseReply(encodeResponse({ id: 7, rd: true }, q, outcome(big), q.edns, 1232))
  assert.deepEqual([tc.tc, tc.answers.length, tc.authority.length, tc.questions.length, Boolean(tc.opt)], [true, 0, 0, 1, true])
  // Over TCP, the same answer in full (61 KB).
  const full = parseReply(encodeResponse({ id: 7, rd: true }, q, outcome(big), q.edns, 65535))
  assert.deepEqual([full.tc, full.answers.length], [false, 300])
  // An answer that fits is not cut by the bound.
  const small = parseReply(encodeResponse({ id: 7, rd: true }, q, outcome(big.slice(0, 5)), q.edns, 1232))
  assert.deepEqual([small.tc, small.answers.length], [false, 5])
})

test('the messages are dns2\'s own octets (with and without an OPT carrying ECS), written once at the end', () => {
  const { Packet } = dns2
  const ecs = [
    { family: 1 as const, sourcePrefix: 24, scopePrefix: 0, address: '198.51.100.0', bytes: Buffer.from([198, 51, 100, 0]) },
    { family: 2 as const, sourcePrefix: 56, scopePrefix: 0, address: '2001:db8:ab00::', bytes: Buffer.from('20010db8ab0000000000000000000000', 'hex') },
  ]
  for (let seed = 1; seed <= 100; seed++) {
    const rrs = randomRecords(seed, 1 + (seed % 9))
    const withOpt = seed % 3 !== 0
    const q = question('www.t.test', TYPE.A, withOpt)
    const edns = withOpt ? { ...q.edns!, dnssecOk: seed % 2 === 0, ecs: seed % 3 === 1 ? ecs[seed % 2]! : null } : null
    const ours = encodeResponse({ id: 9, rd: true }, q, { ...outcome(rrs), ecsScope: 20 }, edns, 65535)
    const p = new Packet()
    p.header = new Packet.Header({ id: 9, qr: 1, opcode: 0, aa: 1, tc: 0, rd: 1, ra: 0, cd: 0, rcode: 0 } as never)
    p.questions = [{ name: q.qname, type: q.qtype, class: q.qclass }] as never
    p.answers = rrs as never
    if (edns) {
      // The OPT as RFC 6891 and RFC 7871 write it: our payload size, DO copied, ECS echoed with its scope.
      const option = edns.ecs && { ednsCode: 8, family: edns.ecs.family, sourcePrefixLength: edns.ecs.sourcePrefix, scopePrefixLength: Math.min(20, edns.ecs.sourcePrefix), ip: edns.ecs.address }
      p.additionals = [{ name: '', type: 41, class: 1232, ttl: edns.dnssecOk ? 0x8000 : 0, rdata: option ? [option] : [] }] as never
    }
    assert.equal(ours.toString('hex'), p.toBuffer().toString('hex'), `seed ${seed}`)
  }
})

test('a 17 KB answer of 64 TXT strings (far past the writer\'s first 512 octets) is dns2\'s own octets', () => {
  const { Packet } = dns2
  const q = question('big.t.test', TYPE.TXT, true)
  const txt = [{ name: 'big.t.test', type: 16, class: 1 as const, ttl: 30, data: Array.from({ length: 64 }, (_, i) => Buffer.from(`${i}`.padEnd(253, 'x'))) }]
  const ours = encodeResponse({ id: 3, rd: false }, q, outcome(txt), q.edns, 65535)
  const p = new Packet()
  p.header = new Packet.Header({ id: 3, qr: 1, opcode: 0, aa: 1, tc: 0, rd: 0, ra: 0, cd: 0, rcode: 0 } as never)
  p.questions = [{ name: q.qname, type: q.qtype, class: q.qclass }] as never
  p.answers = txt as never
  p.additionals = [{ name: '', type: 41, class: 1232, ttl: 0, rdata: [] }] as never
  assert.ok(ours.length > 16_000)
  assert.equal(ours.toString('hex'), p.toBuffer().toString('hex'))
})
