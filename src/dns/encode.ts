/**
 * Outcome -> wire message, with dns2's Packet as the encoder. Adds the OPT record (our payload
 * size, the DO bit copied, the extended rcode, the ECS option echoed with its scope), and fits the
 * message into the client's limit: first by dropping additional addresses, then with TC=1 and only
 * the question and OPT left (RFC 1035 §4.2.1, RFC 2181 §9, RFC 6891 §7).
 */
import dns2 from 'dns2'
import type { RR } from '../model/types.js'
import type { Outcome } from './responder.js'
import { OPT_TYPE, type Edns, type Query } from './wire.js'

const { Packet } = dns2

/** The UDP payload size Meridian advertises and answers within (DNS Flag Day 2020). */
export const DEFAULT_EDNS_UDP_SIZE = 1232
export const MAX_TCP_MESSAGE = 65535

interface Head {
  id: number
  rd: boolean
  cd: boolean
}

function optRecord(edns: Edns, rcode: number, serverUdpSize: number, ecsScope: number): object {
  const rdata = edns.ecs
    ? [{ ednsCode: 8, family: edns.ecs.family, sourcePrefixLength: edns.ecs.sourcePrefix, scopePrefixLength: Math.min(ecsScope, edns.ecs.sourcePrefix), ip: edns.ecs.address }]
    : []
  return {
    name: '',
    type: OPT_TYPE,
    class: serverUdpSize,
    // Extended rcode (high 8 bits), version 0, DO copied from the query (RFC 3225 §3).
    ttl: (((rcode >> 4) & 0xff) << 24) | (edns.dnssecOk ? 0x8000 : 0),
    rdata,
  }
}

type Writer = InstanceType<typeof Packet.Writer> & { names?: unknown; buffer: number[] }

/**
 * A dns2 writer whose toBuffer() does nothing: dns2 calls it after every record it encodes (and
 * throws the result away), each call converting the whole message so far from its array of bits,
 * so a message of n records cost n² (2 s of CPU for 300 TXT records of 200 octets). `finish()`
 * converts once, at the end.
 */
function lazyWriter(): Writer {
  const w = new Packet.Writer() as Writer
  w.toBuffer = () => EMPTY
  // dns2's write() tests each bit against Math.pow(2, i): the same bits, by shifts.
  w.write = (d: number, size: number) => {
    const bits = w.buffer
    for (let i = size - 1; i >= 0; i--) bits.push((d >>> i) & 1)
  }
  return w
}
const EMPTY = Buffer.alloc(0)

/** The message a lazyWriter() holds: its bits, eight to an octet (dns2 keeps to octet boundaries). */
function finish(w: Writer): Buffer {
  const bits = w.buffer
  if (bits.length % 8 !== 0) return Packet.Writer.prototype.toBuffer.call(w)
  const out = Buffer.allocUnsafe(bits.length >> 3)
  for (let i = 0, j = 0; i < bits.length; i += 8, j++) {
    let b = 0
    for (let k = 0; k < 8; k++) b = (b << 1) | bits[i + k]!
    out[j] = b
  }
  return out
}

/** `p` encoded by dns2, with name compression, through a lazyWriter(). */
function encodePacket(p: InstanceType<typeof Packet>, names: unknown = new Map()): Buffer {
  const w = lazyWriter()
  w.names = names
  ;(p.toBuffer as unknown as (w: unknown) => Buffer)(w)
  return finish(w)
}

function build(head: Head, q: Query | null, out: Outcome, edns: Edns | null, serverUdpSize: number, answer: readonly RR[], authority: readonly RR[], additional: readonly RR[], tc: boolean): Buffer {
  const p = new Packet()
  p.header = new Packet.Header({ id: head.id, qr: 1, opcode: 0, aa: out.aa ? 1 : 0, tc: tc ? 1 : 0, rd: head.rd ? 1 : 0, ra: 0, cd: head.cd ? 1 : 0, rcode: out.rcode & 0x0f } as never)
  const splice = q !== null && q.oddName
  if (q && !splice) p.questions = [{ name: q.qname, type: q.qtype, class: q.qclass }] as never
  p.answers = answer as never
  p.authorities = authority as never
  p.additionals = (edns ? [...additional, optRecord(edns, out.rcode, serverUdpSize, out.ecsScope)] : additional) as never
  if (!splice) return encodePacket(p)
  // A label holding '.' cannot pass through dns2's text names: encode without compression and
  // splice the question's own octets in after the header.
  const body = encodeUncompressed(p)
  const msg = Buffer.concat([body.subarray(0, 12), q.questionWire, body.subarray(12)])
  msg.writeUInt16BE(1, 4)
  return msg
}

/**
 * `p` encoded by dns2 without name compression (a writer whose `names` is not a Map turns it off),
 * so that any part after the header stays valid wherever it is placed.
 */
export function encodeUncompressed(p: InstanceType<typeof Packet>): Buffer {
  return encodePacket(p, {})
}

/**
 * The fixed part of an OPT record at `off` (11 octets: root owner, TYPE, CLASS = our payload size,
 * TTL = extended rcode 0, version 0, DO copied), its RDLENGTH `rdlen`; returns the offset after it.
 */
export function writeOpt(msg: Buffer, off: number, serverUdpSize: number, dnssecOk: boolean, rdlen: number): number {
  msg[off] = 0
  msg.writeUInt16BE(OPT_TYPE, off + 1)
  msg.writeUInt16BE(serverUdpSize, off + 3)
  msg.writeUInt32BE(dnssecOk ? 0x8000 : 0, off + 5)
  msg.writeUInt16BE(rdlen, off + 9)
  return off + 11
}

/**
 * Encodes the response to `q` (null when the question could not be read) within `maxSize` octets.
 */
export function encodeResponse(head: Head, q: Query | null, out: Outcome, edns: Edns | null, maxSize: number, serverUdpSize = DEFAULT_EDNS_UDP_SIZE): Buffer {
  // An answer that cannot fit, by the fewest octets its records can take, goes to TC unencoded.
  if (leastMessageSize(q, edns ? 11 : 0, out.answer, out.authority) > maxSize) {
    return build(head, q, out, edns, serverUdpSize, [], [], [], true)
  }
  const full = build(head, q, out, edns, serverUdpSize, out.answer, out.authority, out.additional, false)
  if (full.length <= maxSize) return full
  if (out.additional.length > 0) {
    const lean = build(head, q, out, edns, serverUdpSize, out.answer, out.authority, [], false)
    if (lean.length <= maxSize) return lean
  }
  return build(head, q, out, edns, serverUdpSize, [], [], [], true)
}

/** The fewest octets a message takes: header, question, an OPT of `optSize` octets (0: none), and `sections`' records. */
export function leastMessageSize(q: Query | null, optSize: number, ...sections: readonly (readonly RR[])[]): number {
  let n = 12 + (q ? q.questionWire.length : 0) + optSize
  for (const rrs of sections) n += leastSize(rrs)
  return n
}

/**
 * The fewest octets `rrs` take in a message: every name a 2-octet compression pointer, then type,
 * class, TTL and RDLENGTH, and the RDATA's fixed part and strings. A lower bound of what dns2 writes.
 */
export function leastSize(rrs: readonly RR[]): number {
  let n = 0
  for (const rr of rrs) {
    n += 12
    switch (rr.type) {
      case 1: // A
        n += 4
        break
      case 28: // AAAA
        n += 16
        break
      case 16: // TXT: each character-string's length octet and octets
        for (const s of rr.data ?? []) n += 1 + s.length
        break
      case 15: // MX: preference, exchange
        n += 4
        break
      case 33: // SRV: priority, weight, port, target
        n += 8
        break
      case 6: // SOA: two names, five 32-bit numbers
        n += 24
        break
      case 257: // CAA: flags, tag length, tag, value (a UTF-16 length is at most its UTF-8 one)
        n += 2 + (rr.tag?.length ?? 0) + (rr.value?.length ?? 0)
        break
      case 2: // NS
      case 5: // CNAME
        n += 2
        break
    }
  }
  return n
}

/**
 * NOTIMP for an opcode we do not implement: only QR set, the opcode kept, no sections (RFC 8906
 * §3.1.4), but an OPT when the request had one (RFC 6891 §6.1.1).
 */
export function encodeNotImp(id: number, opcode: number, edns: Edns | null, serverUdpSize = DEFAULT_EDNS_UDP_SIZE): Buffer {
  const msg = Buffer.alloc(12 + (edns ? 11 : 0))
  msg.writeUInt16BE(id, 0)
  msg[2] = 0x80 | ((opcode & 0x0f) << 3)
  msg[3] = 4
  appendOpt(msg, 12, edns, serverUdpSize)
  return msg
}

/** The OPT of a sectionless reply at `off` (its last 11 octets) and ARCOUNT 1, when the query had one. */
function appendOpt(msg: Buffer, off: number, edns: Edns | null, serverUdpSize: number): void {
  if (!edns) return
  msg.writeUInt16BE(1, 10)
  writeOpt(msg, off, serverUdpSize, edns.dnssecOk, 0)
}

/**
 * SERVFAIL with the question, for the case where answering or encoding failed (a bug, logged);
 * an OPT when the query had one (RFC 6891 §7).
 */
export function encodeServFail(head: Head, q: Query | null, edns: Edns | null, serverUdpSize = DEFAULT_EDNS_UDP_SIZE): Buffer {
  const question = q ? q.questionWire : Buffer.alloc(0)
  const msg = Buffer.alloc(12 + question.length + (edns ? 11 : 0))
  msg.writeUInt16BE(head.id, 0)
  msg[2] = 0x80 | (head.rd ? 1 : 0)
  msg[3] = 2 | (head.cd ? 0x10 : 0)
  msg.writeUInt16BE(q ? 1 : 0, 4)
  question.copy(msg, 12)
  appendOpt(msg, 12 + question.length, edns, serverUdpSize)
  return msg
}
