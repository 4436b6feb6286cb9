/**
 * Strict reader of incoming DNS queries, straight from the buffer: header, the one question, and
 * the OPT record with its Client Subnet option. It decides what a message deserves before any
 * answer is looked up: a query, FORMERR (the header is readable but the rest is not right), NOTIMP
 * (an opcode other than QUERY), or a silent drop (no readable header, or a response).
 * dns2's Packet.parse skips records it cannot read, which hides malformed messages; this does not.
 */
import { addressText } from '../model/address.js'
import { asciiLower } from '../model/name.js'

export const OPT_TYPE = 41
export const ECS_OPTION = 8
/** The name server identifier option (RFC 5001). */
export const NSID_OPTION = 3
/** The DNS COOKIE option (RFC 7873). */
export const COOKIE_OPTION = 10
/** Transaction signature (RFC 8945). */
export const TSIG_TYPE = 250

export interface ClientSubnet {
  readonly family: 1 | 2
  readonly sourcePrefix: number
  readonly scopePrefix: number
  /** The address with every bit past the source prefix zero, as text (`198.51.100.0`, `2001:db8::`). */
  readonly address: string
  /** The address bytes (4 or 16), bits past the prefix zero. */
  readonly bytes: Buffer
}

export interface Edns {
  /** Requestor's UDP payload size, raised to 512 when smaller (RFC 6891 §6.2.5). */
  udpSize: number
  version: number
  dnssecOk: boolean
  ecs: ClientSubnet | null
  /** The query carried an NSID option (RFC 5001): the server's identifier is asked for. */
  nsid?: boolean
}

export interface Query {
  id: number
  /** The query's RD bit, which a reply copies (CD is not read: encode.ts's Head says why). */
  rd: boolean
  /** Question name as sent, case kept, one latin1 char per octet. */
  qname: string
  /** Question name for matching: ASCII lowercased; a label holding '.' or '\' is escaped. */
  qkey: string
  /** True when a label holds a '.', which the text form cannot carry to dns2's encoder. */
  oddName: boolean
  /** The question section's bytes, as sent (name, type, class). */
  questionWire: Buffer
  qtype: number
  qclass: number
  edns: Edns | null
  /** The query's TSIG record (RFC 8945), when it was signed: Meridian knows no key, so it gets BADKEY. */
  tsig?: Tsig | null
}

/** What a reply to a TSIG-signed request needs of its TSIG record (RFC 8945 §4.2). */
export interface Tsig {
  /** The key's name: the record's owner, as uncompressed wire octets (case kept). */
  owner: Buffer
  /** The algorithm name's wire octets, as sent. */
  algorithm: Buffer
  originalId: number
}

export type ParseResult =
  | { kind: 'query'; query: Query }
  | { kind: 'formerr'; id: number; rd: boolean; question: Query | null; edns: Edns | null; reason: string }
  | { kind: 'notimp'; id: number; opcode: number; edns: Edns | null; tsig: Tsig | null }
  | { kind: 'drop'; reason: string }

class Malformed extends Error {}

function fail(reason: string): never {
  throw new Malformed(reason)
}

/** Skips a (possibly compressed) name; returns the offset just past it in the message. */
export function skipName(buf: Buffer, off: number): number {
  let octets = 1
  for (;;) {
    if (off >= buf.length) fail('name runs past the end of the message')
    const len = buf[off]!
    if (len === 0) return off + 1
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) fail('compression pointer runs past the end of the message')
      // A pointer names a prior occurrence (RFC 1035 §4.1.4): one to here or further is malformed.
      if ((((len & 0x3f) << 8) | buf[off + 1]!) >= off) fail('compression pointer does not point back into the message')
      return off + 2
    }
    if (len & 0xc0) fail(`invalid label type 0x${len.toString(16)}`)
    octets += len + 1
    if (octets > 255) fail('name longer than 255 octets')
    off += len + 1
  }
}

/**
 * What is wrong with the ECS option data at `off` (`len` octets), or null when it is valid: family 1
 * or 2, a source prefix within the family, a scope prefix of 0 (RFC 7871 §6: "In queries, it MUST
 * be set to 0"; §7.2.1: a wrongly formatted option is FORMERR, as BIND answers it), exactly the
 * source prefix's octets, no bits past the prefix. The strict reader and the answer cache's hot
 * path both ask this.
 */
export function ecsProblem(buf: Buffer, off: number, len: number): string | null {
  if (len < 4) return 'ECS option shorter than 4 octets'
  const family = (buf[off]! << 8) | buf[off + 1]!
  const sourcePrefix = buf[off + 2]!
  const scopePrefix = buf[off + 3]!
  const max = family === 1 ? 32 : family === 2 ? 128 : 0
  if (max === 0) return `ECS family ${family} is not IPv4 (1) or IPv6 (2)`
  if (sourcePrefix > max) return `ECS source prefix /${sourcePrefix} is longer than the family allows (/${max})`
  if (scopePrefix !== 0) return `ECS scope prefix /${scopePrefix} in a query; it must be 0`
  const need = Math.ceil(sourcePrefix / 8)
  if (len - 4 !== need) return `ECS address has ${len - 4} octets; a /${sourcePrefix} needs exactly ${need}`
  if (need > 0 && sourcePrefix % 8 !== 0) {
    const mask = (0xff << (8 - (sourcePrefix % 8))) & 0xff
    if ((buf[off + 4 + need - 1]! & ~mask & 0xff) !== 0) return `ECS address has bits set past its /${sourcePrefix} prefix`
  }
  return null
}

/**
 * What is wrong with a COOKIE option of `len` octets, or null when its length is one a client may
 * send: a client cookie of 8 octets, alone or followed by a server cookie of 8 to 32 (RFC 7873
 * §4, §5.2.2: any other length is FORMERR). The strict reader and the answer cache's hot path both ask.
 */
export function cookieProblem(len: number): string | null {
  if (len === 8 || (len >= 16 && len <= 40)) return null
  return `COOKIE option of ${len} octets: a client cookie takes 8, with a server cookie 16 to 40`
}

/** The octets of an ECS option's data as echoed: family, the two prefixes, and the source prefix's address octets. */
export function ecsDataLength(ecs: ClientSubnet): number {
  return 4 + Math.ceil(ecs.sourcePrefix / 8)
}

/** A read ECS option; its address text is made when first asked for (a NXDOMAIN echoes the bytes only). */
class ReadSubnet implements ClientSubnet {
  private text: string | undefined
  constructor(
    readonly family: 1 | 2,
    readonly sourcePrefix: number,
    readonly scopePrefix: number,
    readonly bytes: Buffer,
  ) {}

  get address(): string {
    return (this.text ??= addressText(this.bytes))
  }
}

/** The ECS option data at `off` (`len` octets); throws Malformed unless `ecsProblem` finds it valid. */
export function readEcs(buf: Buffer, off: number, len: number): ClientSubnet {
  const problem = ecsProblem(buf, off, len)
  if (problem) fail(problem)
  const family = buf.readUInt16BE(off) as 1 | 2
  const bytes = Buffer.alloc(family === 1 ? 4 : 16)
  buf.copy(bytes, 0, off + 4, off + len)
  return new ReadSubnet(family, buf[off + 2]!, buf[off + 3]!, bytes)
}

/**
 * The OPT record's fixed fields. Its options are read by readOptions, and only for version 0: an
 * option's format belongs to its EDNS version, and a query of a version this server does not
 * speak gets BADVERS whatever its options hold (RFC 6891 §6.1.3).
 */
function readOpt(udpSize: number, ttl: number): Edns {
  return { udpSize: Math.max(512, udpSize), version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0, ecs: null }
}

/** Reads the options of `edns`'s OPT record (RDATA at `off`, `rdlen` octets) into it; throws Malformed. */
function readOptions(buf: Buffer, off: number, rdlen: number, edns: Edns): void {
  const end = off + rdlen
  while (off < end) {
    if (off + 4 > end) fail('EDNS option header runs past the OPT record')
    const code = buf.readUInt16BE(off)
    const len = buf.readUInt16BE(off + 2)
    off += 4
    if (off + len > end) fail('EDNS option runs past the OPT record')
    if (code === ECS_OPTION) {
      if (edns.ecs) fail('more than one ECS option')
      edns.ecs = readEcs(buf, off, len)
    } else if (code === NSID_OPTION) edns.nsid = true
    else if (code === COOKIE_OPTION) {
      const problem = cookieProblem(len)
      if (problem) fail(problem)
    }
    // Other options (a well-formed cookie, padding, keepalive...) are ignored, as RFC 6891 §6.1.2 requires.
    off += len
  }
}

/** The text of a question name being read: at most 253 octets with the dots. */
const nameText = Buffer.allocUnsafe(256)

/**
 * Reads the question name: labels only (no pointer can be valid in the first name of a message).
 * The name is gathered into `nameText` and made a string once (twice when it holds capitals: its
 * lowercased key); a name with a label holding '.' or '\' gets its key from `escapedKey`.
 */
function readQname(buf: Buffer, off: number): { end: number; qname: string; qkey: string; odd: boolean } {
  const start = off
  let octets = 1
  let n = 0
  let upper = false
  let odd = false
  for (;;) {
    if (off >= buf.length) fail('question name runs past the end of the message')
    const len = buf[off]!
    if (len === 0) break
    if (len & 0xc0) fail('question name uses compression or a reserved label type')
    octets += len + 1
    if (octets > 255) fail('question name longer than 255 octets')
    if (off + 1 + len > buf.length) fail('question label runs past the end of the message')
    if (n > 0) nameText[n++] = 0x2e
    for (let i = off + 1; i <= off + len; i++) {
      const c = buf[i]!
      if (c === 0x2e || c === 0x5c) odd = true
      else if (c >= 0x41 && c <= 0x5a) upper = true
      nameText[n++] = c
    }
    off += 1 + len
  }
  const qname = nameText.toString('latin1', 0, n)
  if (odd) return { end: off + 1, qname, qkey: escapedKey(buf, start), odd }
  if (!upper) return { end: off + 1, qname, qkey: qname, odd }
  for (let i = 0; i < n; i++) {
    const c = nameText[i]!
    if (c >= 0x41 && c <= 0x5a) nameText[i] = c | 0x20
  }
  return { end: off + 1, qname, qkey: nameText.toString('latin1', 0, n), odd }
}

/** The key of a name readQname has checked, one of whose labels holds '.' or '\': labels lowercased, those two escaped. */
function escapedKey(buf: Buffer, off: number): string {
  let key = ''
  for (let len = buf[off]!; len !== 0; off += 1 + len, len = buf[off]!) {
    if (key) key += '.'
    key += asciiLower(buf.toString('latin1', off + 1, off + 1 + len)).replace(/[\\.]/g, '\\$&')
  }
  return key
}

/**
 * The OPT record's fixed fields in a message that cannot be read in full (another opcode: NOTIFY
 * and UPDATE share the record format; or a malformed question or record before the OPT), so that
 * a NOTIMP or FORMERR reply carries an OPT as RFC 6891 §6.1.1 asks; null when absent or unreadable.
 */
function findOpt(buf: Buffer): Edns | null {
  try {
    let off = 12
    for (let i = buf.readUInt16BE(4); i > 0; i--) off = skipName(buf, off) + 4
    const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10)
    for (let i = 0; i < records; i++) {
      const nameStart = off
      off = skipName(buf, off)
      if (off + 10 > buf.length) return null
      const rdlen = buf.readUInt16BE(off + 8)
      if (off + 10 + rdlen > buf.length) return null
      if (buf.readUInt16BE(off) === OPT_TYPE && buf[nameStart] === 0) return readOpt(buf.readUInt16BE(off + 2), buf.readUInt32BE(off + 4))
      off += 10 + rdlen
    }
  } catch {
    // unreadable: answer without OPT
  }
  return null
}

/** The OPT and TSIG records readRecords found. */
interface Found {
  edns: Edns | null
  tsig: Tsig | null
}

/**
 * Reads the records after the question section (from `off`) to the message's end, into `found`:
 * at most one OPT, in the additional section, with a root owner (RFC 6891 §6.1.1), its options read
 * for version 0; at most one TSIG, the last record of the additional section, class ANY
 * (RFC 8945 §5.1), its RDATA whole. Throws Malformed, with `found` holding what was read before.
 */
function readRecords(buf: Buffer, off: number, ancount: number, nscount: number, arcount: number, found: Found): void {
  const total = ancount + nscount + arcount
  for (let i = 0; i < total; i++) {
    const nameStart = off
    off = skipName(buf, off)
    if (off + 10 > buf.length) fail('resource record header runs past the end of the message')
    const type = buf.readUInt16BE(off)
    const klass = buf.readUInt16BE(off + 2)
    const ttl = buf.readUInt32BE(off + 4)
    const rdlen = buf.readUInt16BE(off + 8)
    off += 10
    if (off + rdlen > buf.length) fail('record data runs past the end of the message')
    if (type === OPT_TYPE) {
      if (i < ancount + nscount) fail('OPT record outside the additional section')
      if (found.edns) fail('more than one OPT record')
      if (buf[nameStart] !== 0) fail('OPT record owner is not the root')
      const edns = (found.edns = readOpt(klass, ttl))
      if (edns.version === 0) readOptions(buf, off, rdlen, edns)
    } else if (type === TSIG_TYPE) {
      // Also two TSIGs: the first is not the last record.
      if (arcount === 0 || i !== total - 1) fail('TSIG record is not the last record of the additional section')
      if (klass !== 255) fail(`TSIG record of class ${klass}, not ANY`)
      found.tsig = readTsig(buf, nameStart, off, rdlen)
    }
    off += rdlen
  }
  if (off !== buf.length) fail(`${buf.length - off} octets of trailing data after the last record`)
}

/**
 * The TSIG record whose owner is at `ownerOff` and RDATA at `off` (`rdlen` octets): algorithm name
 * (uncompressed, as for every name in a TSIG's RDATA), time signed, fudge, MAC, original ID,
 * error, other data, filling the RDATA exactly. Throws Malformed.
 */
function readTsig(buf: Buffer, ownerOff: number, off: number, rdlen: number): Tsig {
  const end = off + rdlen
  const algStart = off
  for (;;) {
    if (off >= end) fail('TSIG algorithm name runs past its record')
    const len = buf[off]!
    if (len === 0) break
    if (len & 0xc0) fail('TSIG algorithm name is compressed or uses a reserved label type')
    off += 1 + len
    if (off - algStart > 254) fail('TSIG algorithm name longer than 255 octets')
  }
  off += 1
  const algEnd = off
  // Time signed (6), fudge (2), MAC size (2), the MAC, original ID (2), error (2), other length (2), other data.
  if (off + 10 > end) fail('TSIG record cut short before its MAC')
  off += 10 + buf.readUInt16BE(off + 8)
  if (off + 6 > end) fail('TSIG record cut short after its MAC')
  const originalId = buf.readUInt16BE(off)
  off += 6 + buf.readUInt16BE(off + 4)
  if (off !== end) fail('TSIG record data length does not match its fields')
  return { owner: expandName(buf, ownerOff), algorithm: Buffer.from(buf.subarray(algStart, algEnd)), originalId }
}

/**
 * The name at `off` as uncompressed wire octets, its pointers followed (each must point before
 * itself, so the walk ends; at most 255 octets). Throws Malformed.
 */
function expandName(buf: Buffer, off: number): Buffer {
  const out = Buffer.allocUnsafe(255)
  let n = 0
  for (;;) {
    if (off >= buf.length) fail('name runs past the end of the message')
    const len = buf[off]!
    if (len === 0) break
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) fail('compression pointer runs past the end of the message')
      const target = ((len & 0x3f) << 8) | buf[off + 1]!
      if (target >= off) fail('compression pointer does not point back into the message')
      off = target
      continue
    }
    if (len & 0xc0) fail(`invalid label type 0x${len.toString(16)}`)
    if (off + 1 + len > buf.length) fail('label runs past the end of the message')
    if (n + 1 + len + 1 > 255) fail('name longer than 255 octets')
    buf.copy(out, n, off, off + 1 + len)
    n += 1 + len
    off += 1 + len
  }
  out[n++] = 0
  return Buffer.from(out.subarray(0, n))
}

/**
 * A message of an opcode other than QUERY: read as far as the shared record format allows
 * (NOTIFY and UPDATE have it), so that its OPT and TSIG get the same checks as a query's
 * (BADVERS, then BADKEY, before NOTIMP: responder.ts otherOpcode). One that cannot be read gets
 * NOTIMP, with the OPT when it can still be found: its format is its opcode's, which Meridian
 * does not implement.
 */
function otherOpcode(buf: Buffer, id: number, opcode: number): ParseResult {
  const found: Found = { edns: null, tsig: null }
  try {
    let off = 12
    for (let i = buf.readUInt16BE(4); i > 0; i--) off = skipName(buf, off) + 4
    readRecords(buf, off, buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10), found)
  } catch (err) {
    if (!(err instanceof Malformed)) throw err
    return { kind: 'notimp', id, opcode, edns: findOpt(buf), tsig: null }
  }
  return { kind: 'notimp', id, opcode, edns: found.edns, tsig: found.tsig }
}

/** Classifies and reads one incoming message. Never throws. */
export function parseQuery(buf: Buffer): ParseResult {
  if (buf.length < 12) return { kind: 'drop', reason: 'shorter than a DNS header' }
  const id = buf.readUInt16BE(0)
  const f1 = buf[2]!
  if (f1 & 0x80) return { kind: 'drop', reason: 'QR set: a response, not a query' }
  const opcode = (f1 >> 3) & 0x0f
  if (opcode !== 0) return otherOpcode(buf, id, opcode)
  const rd = (f1 & 0x01) !== 0
  const qdcount = buf.readUInt16BE(4)
  let question: Query | null = null
  const found: Found = { edns: null, tsig: null }
  try {
    if (qdcount !== 1) fail(`QDCOUNT is ${qdcount}; a query carries exactly one question`)
    const q = readQname(buf, 12)
    if (q.end + 4 > buf.length) fail('question type and class run past the end of the message')
    question = {
      id,
      rd,
      qname: q.qname,
      qkey: q.qkey,
      oddName: q.odd,
      questionWire: buf.subarray(12, q.end + 4),
      qtype: buf.readUInt16BE(q.end),
      qclass: buf.readUInt16BE(q.end + 2),
      edns: null,
      tsig: null,
    }
    readRecords(buf, q.end + 4, buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10), found)
    question.edns = found.edns
    question.tsig = found.tsig
    return { kind: 'query', query: question }
  } catch (err) {
    if (!(err instanceof Malformed)) throw err
    // The reply carries an OPT when the query had one, even if the FORMERR is about the OPT's own
    // options (an OPT read before the fault: a bad COOKIE length gets its OPT, RFC 7873 §5.2.2) or
    // about what comes before it (found again from the top). No ECS echoed in a FORMERR (an ECS
    // read before the fault, of a message that is not right). No TSIG: a malformed message is not
    // verified (RFC 8945 §5.1).
    const edns = found.edns
    return { kind: 'formerr', id, rd, question, edns: edns ? { ...edns, ecs: null } : findOpt(buf), reason: err.message }
  }
}
