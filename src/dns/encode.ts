/**
 * Outcome -> wire message, with dns2's Packet as the encoder. Adds the OPT record (our payload
 * size, the DO bit copied, the extended rcode, the ECS option echoed with its scope), and fits the
 * message into the client's limit: first by dropping additional addresses, then with TC=1 and only
 * the question and OPT left (RFC 1035 §4.2.1, RFC 2181 §9, RFC 6891 §7).
 */
import dns2 from 'dns2'
import type { RR } from '../model/types.js'
import type { Outcome } from './responder.js'
import { ecsDataLength, NSID_OPTION, OPT_TYPE, TSIG_TYPE, type Edns, type Query, type Tsig } from './wire.js'

const { Packet } = dns2

/** The UDP payload size Meridian advertises and answers within (DNS Flag Day 2020). */
export const DEFAULT_EDNS_UDP_SIZE = 1232
export const MAX_TCP_MESSAGE = 65535

/**
 * The largest reply a client takes whole: 65,535 octets over TCP; over UDP 512 without EDNS, else
 * its payload size (512 at least, RFC 6891 §6.2.5) capped by ours. The full path truncates to it,
 * and the answer cache serves only what fits it.
 */
export function replyLimit(tcp: boolean, udpSize: number | null, serverUdpSize: number): number {
  return tcp ? MAX_TCP_MESSAGE : udpSize === null ? 512 : Math.min(Math.max(512, udpSize), serverUdpSize)
}

/**
 * What a reply takes from its query's header: the ID and RD. Not CD: Meridian does not implement
 * DNSSEC, and a server without it leaves CD clear (RFC 8906's testing text for CD=1 queries, as
 * its draft -08 words it; gdnsd does the same; RFC 4035 §3.1.6 has a security-aware server copy
 * it). AD, RA and Z are clear too.
 */
interface Head {
  id: number
  rd: boolean
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

/**
 * The writer dns2's encoders write through, in place of its own (lib/writer.js). dns2's keeps the
 * message as a JS array of bits, pushes eight of them per octet, and converts the whole array to a
 * Buffer after every record it encodes (the result thrown away), so a message of n records cost n²:
 * 2 s of CPU for 300 TXT records of 200 octets, and 13 ms for a 17 KB answer of 64 TXT strings even
 * with that conversion made once (an array push costs ~90 ns here). This one writes octets into a
 * Buffer (bits only where dns2 writes fewer than eight: the header's flags), and `finish()` hands
 * the message over once, at the end. The octets are dns2's own (test/unit/encode.test.ts).
 */
class ByteWriter {
  /** dns2's compression table (name → offset); anything but a Map turns compression off. */
  names: unknown
  /**
   * Zeroed, so that bits written one at a time (the header's flags) need only be set: a slice of
   * Node's pool, cleared (an unpooled Buffer.alloc costs ~1 µs more per message).
   */
  private buf = Buffer.allocUnsafe(512).fill(0)
  /** The write position, in bits. */
  private at = 0

  constructor(names: unknown) {
    this.names = names
  }

  write(d: number, size: number): void {
    if ((this.at & 7) === 0 && (size & 7) === 0 && size <= 32) {
      this.room(size >> 3)
      this.octets(this.at >> 3, d, size)
      this.at += size
      return
    }
    // dns2's own test of each bit, for a size or position off octet boundaries.
    this.room((size >> 3) + 1)
    for (let i = 0; i < size; i++) this.bit(d & Math.pow(2, size - i - 1) ? 1 : 0, this.at++)
  }

  /** A dns2 writer's message appended (an array of bits: dns2 encodes each EDNS option into one). */
  writeBuffer(w: { buffer: number[] }): void {
    for (const b of w.buffer) this.write(b, 1)
  }

  bitLength(): number {
    return this.at
  }

  byteLength(): number {
    return this.at / 8
  }

  /** Overwrites `size` bits at `bitOffset` with `value` (dns2 back-fills RDLENGTH with it). */
  patch(bitOffset: number, value: number, size: number): void {
    if ((bitOffset & 7) === 0 && (size & 7) === 0 && size <= 32) return this.octets(bitOffset >> 3, value, size)
    for (let i = 0; i < size; i++) this.bit(value & Math.pow(2, size - i - 1) ? 1 : 0, bitOffset + i)
  }

  /** dns2 calls this after every record and drops the result: nothing to do until `finish()`. */
  toBuffer(): Buffer {
    return EMPTY
  }

  /** The message written: its octets (a last, partial octet padded with zero bits, as dns2 does). */
  finish(): Buffer {
    return this.buf.subarray(0, (this.at + 7) >> 3)
  }

  /** `value`'s low `size` bits (a multiple of 8, at most 32), high octet first, at octet `pos`. */
  private octets(pos: number, value: number, size: number): void {
    for (let shift = size - 8; shift >= 0; shift -= 8) this.buf[pos++] = (value >>> shift) & 0xff
  }

  private bit(b: number, at: number): void {
    const mask = 0x80 >> (at & 7)
    this.buf[at >> 3] = b ? this.buf[at >> 3]! | mask : this.buf[at >> 3]! & ~mask
  }

  private room(octets: number): void {
    const need = (this.at >> 3) + octets + 1
    if (need <= this.buf.length) return
    const grown = Buffer.alloc(Math.max(need, this.buf.length * 2))
    this.buf.copy(grown)
    this.buf = grown
  }
}
const EMPTY = Buffer.alloc(0)

/** `p` encoded by dns2's encoders, with name compression, through a ByteWriter. */
function encodePacket(p: InstanceType<typeof Packet>, names: unknown = new Map()): Buffer {
  const w = new ByteWriter(names)
  ;(p.toBuffer as unknown as (w: unknown) => Buffer)(w)
  return w.finish()
}

function build(head: Head, q: Query | null, out: Outcome, edns: Edns | null, serverUdpSize: number, answer: readonly RR[], authority: readonly RR[], additional: readonly RR[], tc: boolean, nsid: Buffer | null = null): Buffer {
  const msg = buildPacket(head, q, out, edns, serverUdpSize, answer, authority, additional, tc)
  if (!edns || nsid === null) return msg
  // dns2 encodes no option but ECS: NSID goes after the OPT's last option (the OPT is the message's
  // last record, so its RDATA ends the message), and its RDLENGTH grows by the option's octets.
  const rdlen = edns.ecs ? 4 + ecsDataLength(edns.ecs) : 0
  const withId = Buffer.allocUnsafe(msg.length + 4 + nsid.length)
  msg.copy(withId)
  withId.writeUInt16BE(rdlen + 4 + nsid.length, msg.length - rdlen - 2)
  withId.writeUInt16BE(NSID_OPTION, msg.length)
  withId.writeUInt16BE(nsid.length, msg.length + 2)
  nsid.copy(withId, msg.length + 4)
  return withId
}

function buildPacket(head: Head, q: Query | null, out: Outcome, edns: Edns | null, serverUdpSize: number, answer: readonly RR[], authority: readonly RR[], additional: readonly RR[], tc: boolean): Buffer {
  const p = new Packet()
  p.header = new Packet.Header({ id: head.id, qr: 1, opcode: 0, aa: out.aa ? 1 : 0, tc: tc ? 1 : 0, rd: head.rd ? 1 : 0, ra: 0, cd: 0, rcode: out.rcode & 0x0f } as never)
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
export function encodeResponse(head: Head, q: Query | null, out: Outcome, edns: Edns | null, maxSize: number, serverUdpSize = DEFAULT_EDNS_UDP_SIZE, nsid: Buffer | null = null): Buffer {
  // The server's NSID, only to a query that asked for it (RFC 5001 §2.1), in the OPT of every reply form.
  const id = edns?.nsid ? nsid : null
  // An answer that cannot fit, by the fewest octets its records can take, goes to TC unencoded.
  if (leastMessageSize(q, edns ? 11 : 0, out.answer, out.authority) > maxSize) {
    return build(head, q, out, edns, serverUdpSize, [], [], [], true, id)
  }
  const full = build(head, q, out, edns, serverUdpSize, out.answer, out.authority, out.additional, false, id)
  if (full.length <= maxSize) return full
  if (out.additional.length > 0) {
    const lean = build(head, q, out, edns, serverUdpSize, out.answer, out.authority, [], false, id)
    if (lean.length <= maxSize) return lean
  }
  return build(head, q, out, edns, serverUdpSize, [], [], [], true, id)
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
 * The reply to a message of an opcode other than QUERY (`rcode`: responder.ts otherOpcode): only
 * QR set, the opcode kept, no sections (RFC 8906 §3.1.4), but an OPT when the request had one
 * (RFC 6891 §6.1.1; a BADVERS's extended rcode in it), and for NOTAUTH the unsigned TSIG of a
 * BADKEY error (RFC 8945 §5.3.2). `limit`: the reply's size limit (replyLimit), as encodeTsigError's.
 */
export function encodeOtherOpcode(id: number, opcode: number, rcode: number, edns: Edns | null, tsig: Tsig | null, serverUdpSize = DEFAULT_EDNS_UDP_SIZE, nowMs = Date.now(), limit = MAX_TCP_MESSAGE): Buffer {
  return sectionless(id, 0x80 | ((opcode & 0x0f) << 3), null, rcode, edns, rcode === RCODE_NOTAUTH ? tsig : null, serverUdpSize, nowMs, limit)
}

/**
 * NOTAUTH to a TSIG-signed query (Meridian knows no key, RFC 8945 §5.2.1): the question echoed,
 * RD copied, an OPT when the query had one, and last the TSIG record of the error: the
 * key's name and algorithm copied, the server's time, fudge 300, no MAC (an error about the key is
 * never signed, §5.3.2), the original ID copied, error BADKEY (17), no other data.
 *
 * The key's name (written out, up to 255 octets, though the request may point it at the question)
 * and the algorithm's make that TSIG up to 536 octets: a reply that would exceed `limit` (512 over
 * UDP without EDNS: replyLimit) is sent truncated instead, TC set and no TSIG, so the client asks
 * again over TCP and gets it whole there.
 */
export function encodeTsigError(head: Head, q: Query, edns: Edns | null, tsig: Tsig, serverUdpSize = DEFAULT_EDNS_UDP_SIZE, nowMs = Date.now(), limit = MAX_TCP_MESSAGE): Buffer {
  return sectionless(head.id, 0x80 | (head.rd ? 1 : 0), q.questionWire, RCODE_NOTAUTH, edns, tsig, serverUdpSize, nowMs, limit)
}

const RCODE_NOTAUTH = 9
const TSIG_BADKEY = 17
/** The fudge of the TSIG records Meridian sends, in seconds (RFC 8945 §10 recommends 300). */
const TSIG_FUDGE = 300

/**
 * Header (`f1` its first flag octet; the second holds only `rcode`'s low 4 bits: no AD, RA, Z or CD), `question` if any, the OPT
 * (extended rcode), the TSIG; without the TSIG and with TC set when the whole would exceed `limit`
 * (the rest is at most 12 + 260 + 11 octets, which 512 holds).
 */
function sectionless(id: number, f1: number, question: Buffer | null, rcode: number, edns: Edns | null, tsig: Tsig | null, serverUdpSize: number, nowMs: number, limit: number): Buffer {
  const qlen = question ? question.length : 0
  let tsigLen = tsig ? tsig.owner.length + 10 + tsig.algorithm.length + 16 : 0
  if (tsig && 12 + qlen + (edns ? 11 : 0) + tsigLen > limit) {
    tsig = null
    tsigLen = 0
    f1 |= 0x02
  }
  const msg = Buffer.alloc(12 + qlen + (edns ? 11 : 0) + tsigLen)
  msg.writeUInt16BE(id, 0)
  msg[2] = f1
  msg[3] = rcode & 0x0f
  msg.writeUInt16BE(question ? 1 : 0, 4)
  msg.writeUInt16BE((edns ? 1 : 0) + (tsig ? 1 : 0), 10)
  let off = 12
  if (question) off += question.copy(msg, off)
  if (edns) {
    writeOpt(msg, off, serverUdpSize, edns.dnssecOk, 0)
    msg[off + 5] = (rcode >> 4) & 0xff
    off += 11
  }
  if (tsig) {
    off += tsig.owner.copy(msg, off)
    msg.writeUInt16BE(TSIG_TYPE, off)
    msg.writeUInt16BE(255, off + 2) // class ANY, TTL 0 (RFC 8945 §4.2)
    msg.writeUInt16BE(tsig.algorithm.length + 16, off + 8)
    off += 10
    off += tsig.algorithm.copy(msg, off)
    const now = Math.floor(nowMs / 1000)
    msg.writeUInt16BE(Math.floor(now / 0x100000000), off)
    msg.writeUInt32BE(now >>> 0, off + 2)
    msg.writeUInt16BE(TSIG_FUDGE, off + 6)
    // MAC size 0 (off + 8), original ID, error, other length 0.
    msg.writeUInt16BE(tsig.originalId, off + 10)
    msg.writeUInt16BE(TSIG_BADKEY, off + 12)
  }
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
  msg[3] = 2
  msg.writeUInt16BE(q ? 1 : 0, 4)
  question.copy(msg, 12)
  appendOpt(msg, 12 + question.length, edns, serverUdpSize)
  return msg
}
