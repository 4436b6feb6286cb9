/**
 * A tiny raw DNS message builder and strict reader for tests, plus UDP and TCP clients that speak
 * bytes. Unlike dns2 (which the server uses), nothing here fixes up what it is given: a test can
 * build any header, counts, names and OPT records, and a reply that is not well formed makes
 * `parseReply` throw instead of being half read.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram'
import { connect, type Socket } from 'node:net'

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, TSIG: 250, ANY: 255 } as const
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5, NOTAUTH: 9, BADVERS: 16 } as const
export const ECS_OPTION = 8

export interface EdnsOption {
  code: number
  data: Buffer
}

export interface OptSpec {
  /** Requestor's UDP payload size (the OPT CLASS); default 1232. */
  udpSize?: number
  /** EDNS version; default 0. */
  version?: number
  /** Extended rcode (the OPT TTL's high byte); default 0. */
  extRcode?: number
  dnssecOk?: boolean
  options?: EdnsOption[]
  /** Owner name as wire octets; default the root (a single 0). */
  owner?: Buffer
}

export interface QuerySpec {
  id?: number
  opcode?: number
  qr?: boolean
  aa?: boolean
  tc?: boolean
  rd?: boolean
  ra?: boolean
  z?: boolean
  ad?: boolean
  cd?: boolean
  rcode?: number
  /** Question name: text (`gslb.example.test`) or wire octets used as they are. */
  name?: string | Buffer
  type?: number
  class?: number
  /** Write no question section (the header's QDCOUNT still follows `qdcount`). */
  noQuestion?: boolean
  /** Header counts; by default they follow what is written. */
  qdcount?: number
  ancount?: number
  nscount?: number
  arcount?: number
  /** OPT records for the additional section (one, several, or none). */
  opt?: OptSpec | OptSpec[]
  /** Octets appended after everything else. */
  trailing?: Buffer
}

/** A text name to wire labels (no compression). `''` and `'.'` are the root. */
export function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l.length > 0)
  const parts: Buffer[] = []
  for (const l of labels) {
    const b = Buffer.from(l, 'latin1')
    if (b.length > 63) throw new Error(`label "${l}" is longer than 63 octets`)
    parts.push(Buffer.from([b.length]), b)
  }
  parts.push(Buffer.from([0]))
  return Buffer.concat(parts)
}

export function ednsOption(code: number, data: Buffer | number[]): EdnsOption {
  return { code, data: Buffer.from(data) }
}

/** An ECS option (RFC 7871) with exactly the address octets given (none are added or cut). */
export function ecsOption(family: number, sourcePrefix: number, scopePrefix: number, address: Buffer | number[]): EdnsOption {
  const addr = Buffer.from(address)
  const data = Buffer.alloc(4 + addr.length)
  data.writeUInt16BE(family, 0)
  data[2] = sourcePrefix
  data[3] = scopePrefix
  addr.copy(data, 4)
  return { code: ECS_OPTION, data }
}

/** One OPT record's octets. */
export function optRecord(spec: OptSpec = {}): Buffer {
  const opts = (spec.options ?? []).map((o) => {
    const b = Buffer.alloc(4 + o.data.length)
    b.writeUInt16BE(o.code, 0)
    b.writeUInt16BE(o.data.length, 2)
    o.data.copy(b, 4)
    return b
  })
  const rdata = Buffer.concat(opts)
  const owner = spec.owner ?? Buffer.from([0])
  const fixed = Buffer.alloc(10)
  fixed.writeUInt16BE(TYPE.OPT, 0)
  fixed.writeUInt16BE(spec.udpSize ?? 1232, 2)
  fixed[4] = spec.extRcode ?? 0
  fixed[5] = spec.version ?? 0
  fixed.writeUInt16BE(spec.dnssecOk ? 0x8000 : 0, 6)
  fixed.writeUInt16BE(rdata.length, 8)
  return Buffer.concat([owner, fixed, rdata])
}

export interface TsigSpec {
  /** Owner (the key's name): text, or wire octets used as they are (a compression pointer...). */
  keyName?: string | Buffer
  algorithm?: string
  /** Seconds since the epoch; default now. */
  timeSigned?: number
  fudge?: number
  mac?: Buffer
  originalId?: number
  error?: number
  other?: Buffer
  /** Default ANY (255). */
  class?: number
  /** Default 0 (RFC 8945 §4.2). */
  ttl?: number
}

/** One TSIG record's octets (RFC 8945 §4.2); its MAC is whatever is given (Meridian knows no key to check it with). */
export function tsigRecord(spec: TsigSpec = {}): Buffer {
  const owner = typeof spec.keyName === 'object' ? spec.keyName : encodeName(spec.keyName ?? 'tkey.example')
  const mac = spec.mac ?? Buffer.alloc(32, 0xab)
  const other = spec.other ?? Buffer.alloc(0)
  const alg = encodeName(spec.algorithm ?? 'hmac-sha256')
  const fixed = Buffer.alloc(10)
  const time = spec.timeSigned ?? Math.floor(Date.now() / 1000)
  fixed.writeUInt16BE(Math.floor(time / 0x100000000), 0)
  fixed.writeUInt32BE(time >>> 0, 2)
  fixed.writeUInt16BE(spec.fudge ?? 300, 6)
  fixed.writeUInt16BE(mac.length, 8)
  const tail = Buffer.alloc(6)
  tail.writeUInt16BE(spec.originalId ?? 0x1234, 0)
  tail.writeUInt16BE(spec.error ?? 0, 2)
  tail.writeUInt16BE(other.length, 4)
  const rdata = Buffer.concat([alg, fixed, mac, tail, other])
  const head = Buffer.alloc(10)
  head.writeUInt16BE(TYPE.TSIG, 0)
  head.writeUInt16BE(spec.class ?? 255, 2)
  head.writeUInt32BE(spec.ttl ?? 0, 4)
  head.writeUInt16BE(rdata.length, 8)
  return Buffer.concat([owner, head, rdata])
}

/** The question section's octets: name, type, class. */
export function questionWire(name: string | Buffer, type: number = TYPE.A, klass = 1): Buffer {
  const n = typeof name === 'string' ? encodeName(name) : name
  const tail = Buffer.alloc(4)
  tail.writeUInt16BE(type, 0)
  tail.writeUInt16BE(klass, 2)
  return Buffer.concat([n, tail])
}

export function buildQuery(spec: QuerySpec = {}): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(spec.id ?? 0x1234, 0)
  header[2] =
    (spec.qr ? 0x80 : 0) | (((spec.opcode ?? 0) & 0x0f) << 3) | (spec.aa ? 0x04 : 0) | (spec.tc ? 0x02 : 0) | (spec.rd ? 0x01 : 0)
  header[3] = (spec.ra ? 0x80 : 0) | (spec.z ? 0x40 : 0) | (spec.ad ? 0x20 : 0) | (spec.cd ? 0x10 : 0) | ((spec.rcode ?? 0) & 0x0f)
  const question = spec.noQuestion ? Buffer.alloc(0) : questionWire(spec.name ?? 'gslb.example.test', spec.type ?? TYPE.A, spec.class ?? 1)
  const opts = spec.opt === undefined ? [] : Array.isArray(spec.opt) ? spec.opt : [spec.opt]
  header.writeUInt16BE(spec.qdcount ?? (spec.noQuestion ? 0 : 1), 4)
  header.writeUInt16BE(spec.ancount ?? 0, 6)
  header.writeUInt16BE(spec.nscount ?? 0, 8)
  header.writeUInt16BE(spec.arcount ?? opts.length, 10)
  return Buffer.concat([header, question, ...opts.map(optRecord), spec.trailing ?? Buffer.alloc(0)])
}

// ---------------------------------------------------------------------------------------------
// Reading replies

export interface Question {
  /** The name's octets exactly as they appear in the message. */
  nameWire: Buffer
  name: string
  type: number
  class: number
  /** name + type + class octets as they appear. */
  wire: Buffer
}

export interface RR {
  name: string
  type: number
  class: number
  ttl: number
  rdata: Buffer
  /** Offset of the RDATA in the message (for reading compressed names inside it). */
  rdataOffset: number
}

export interface Opt {
  udpSize: number
  extRcode: number
  version: number
  dnssecOk: boolean
  /** The OPT TTL's 15 Z bits. */
  z: number
  options: EdnsOption[]
}

export interface ClientSubnet {
  family: number
  sourcePrefix: number
  scopePrefix: number
  address: Buffer
}

export interface Reply {
  length: number
  id: number
  qr: boolean
  opcode: number
  aa: boolean
  tc: boolean
  rd: boolean
  ra: boolean
  z: boolean
  ad: boolean
  cd: boolean
  /** The 4-bit rcode of the header. */
  headerRcode: number
  /** The full rcode: header rcode plus the OPT's extended rcode (RFC 6891 §6.1.3). */
  rcode: number
  qdcount: number
  ancount: number
  nscount: number
  arcount: number
  questions: Question[]
  answers: RR[]
  authority: RR[]
  /** The additional section without the OPT record. */
  additional: RR[]
  opt: Opt | null
  ecs: ClientSubnet | null
}

/** Reads a (possibly compressed) name; pointers must point backwards. Returns the text and the offset past it. */
export function readName(buf: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = []
  let off = start
  let end = -1
  let octets = 1
  let jumps = 0
  for (;;) {
    if (off >= buf.length) throw new Error(`name at ${start} runs past the end of the message`)
    const len = buf[off]!
    if (len === 0) {
      if (end < 0) end = off + 1
      break
    }
    if ((len & 0xc0) === 0xc0) {
      if (off + 1 >= buf.length) throw new Error(`compression pointer at ${off} runs past the end`)
      const target = ((len & 0x3f) << 8) | buf[off + 1]!
      if (target >= off) throw new Error(`compression pointer at ${off} points forward (to ${target})`)
      if (++jumps > 64) throw new Error('too many compression pointers')
      if (end < 0) end = off + 2
      off = target
      continue
    }
    if (len & 0xc0) throw new Error(`reserved label type 0x${len.toString(16)} at ${off}`)
    if (off + 1 + len > buf.length) throw new Error(`label at ${off} runs past the end`)
    octets += len + 1
    if (octets > 255) throw new Error(`name at ${start} is longer than 255 octets`)
    labels.push(buf.toString('latin1', off + 1, off + 1 + len))
    off += 1 + len
  }
  return { name: labels.join('.'), end }
}

/** Parses a reply strictly: every count must be matched by records, no octet may be left over. Throws when malformed. */
export function parseReply(buf: Buffer): Reply {
  if (buf.length < 12) throw new Error(`reply of ${buf.length} octets is shorter than a header`)
  const f1 = buf[2]!
  const f2 = buf[3]!
  const r: Reply = {
    length: buf.length,
    id: buf.readUInt16BE(0),
    qr: (f1 & 0x80) !== 0,
    opcode: (f1 >> 3) & 0x0f,
    aa: (f1 & 0x04) !== 0,
    tc: (f1 & 0x02) !== 0,
    rd: (f1 & 0x01) !== 0,
    ra: (f2 & 0x80) !== 0,
    z: (f2 & 0x40) !== 0,
    ad: (f2 & 0x20) !== 0,
    cd: (f2 & 0x10) !== 0,
    headerRcode: f2 & 0x0f,
    rcode: f2 & 0x0f,
    qdcount: buf.readUInt16BE(4),
    ancount: buf.readUInt16BE(6),
    nscount: buf.readUInt16BE(8),
    arcount: buf.readUInt16BE(10),
    questions: [],
    answers: [],
    authority: [],
    additional: [],
    opt: null,
    ecs: null,
  }
  let off = 12
  for (let i = 0; i < r.qdcount; i++) {
    const n = readName(buf, off)
    if (n.end + 4 > buf.length) throw new Error('question type and class run past the end')
    r.questions.push({
      nameWire: buf.subarray(off, n.end),
      name: n.name,
      type: buf.readUInt16BE(n.end),
      class: buf.readUInt16BE(n.end + 2),
      wire: buf.subarray(off, n.end + 4),
    })
    off = n.end + 4
  }
  const sections: [RR[], number][] = [
    [r.answers, r.ancount],
    [r.authority, r.nscount],
    [r.additional, r.arcount],
  ]
  for (const [si, [list, count]] of sections.entries()) {
    for (let i = 0; i < count; i++) {
      const nameStart = off
      const n = readName(buf, off)
      off = n.end
      if (off + 10 > buf.length) throw new Error('record header runs past the end')
      const type = buf.readUInt16BE(off)
      const klass = buf.readUInt16BE(off + 2)
      const ttl = buf.readUInt32BE(off + 4)
      const rdlen = buf.readUInt16BE(off + 8)
      off += 10
      if (off + rdlen > buf.length) throw new Error('record data runs past the end')
      const rdata = buf.subarray(off, off + rdlen)
      if (type === TYPE.OPT) {
        if (si !== 2) throw new Error('OPT outside the additional section')
        if (r.opt) throw new Error('more than one OPT record')
        if (buf[nameStart] !== 0) throw new Error('OPT owner is not the root')
        r.opt = readOpt(rdata, klass, ttl)
        r.rcode = (r.opt.extRcode << 4) | r.headerRcode
        const ecs = r.opt.options.find((o) => o.code === ECS_OPTION)
        if (ecs) {
          if (ecs.data.length < 4) throw new Error('ECS option shorter than 4 octets')
          r.ecs = { family: ecs.data.readUInt16BE(0), sourcePrefix: ecs.data[2]!, scopePrefix: ecs.data[3]!, address: ecs.data.subarray(4) }
        }
      } else {
        list.push({ name: n.name, type, class: klass, ttl, rdata, rdataOffset: off })
      }
      off += rdlen
    }
  }
  if (off !== buf.length) throw new Error(`${buf.length - off} octets after the last record`)
  return r
}

function readOpt(rdata: Buffer, udpSize: number, ttl: number): Opt {
  const options: EdnsOption[] = []
  let off = 0
  while (off < rdata.length) {
    if (off + 4 > rdata.length) throw new Error('EDNS option header runs past the OPT record')
    const code = rdata.readUInt16BE(off)
    const len = rdata.readUInt16BE(off + 2)
    if (off + 4 + len > rdata.length) throw new Error('EDNS option runs past the OPT record')
    options.push({ code, data: rdata.subarray(off + 4, off + 4 + len) })
    off += 4 + len
  }
  return { udpSize, extRcode: ttl >>> 24, version: (ttl >>> 16) & 0xff, dnssecOk: (ttl & 0x8000) !== 0, z: ttl & 0x7fff, options }
}

/** The character-strings of a TXT record's RDATA. */
export function txtStrings(rdata: Buffer): string[] {
  const out: string[] = []
  let off = 0
  while (off < rdata.length) {
    const len = rdata[off]!
    if (off + 1 + len > rdata.length) throw new Error('TXT string runs past the RDATA')
    out.push(rdata.toString('latin1', off + 1, off + 1 + len))
    off += 1 + len
  }
  return out
}

/** SOA RDATA of a record read from `msg`. */
export function soaData(msg: Buffer, rr: RR): { mname: string; rname: string; serial: number; refresh: number; retry: number; expire: number; minimum: number } {
  const m = readName(msg, rr.rdataOffset)
  const r = readName(msg, m.end)
  const o = r.end
  if (o + 20 !== rr.rdataOffset + rr.rdata.length) throw new Error('SOA RDATA has the wrong length')
  return {
    mname: m.name,
    rname: r.name,
    serial: msg.readUInt32BE(o),
    refresh: msg.readUInt32BE(o + 4),
    retry: msg.readUInt32BE(o + 8),
    expire: msg.readUInt32BE(o + 12),
    minimum: msg.readUInt32BE(o + 16),
  }
}

// ---------------------------------------------------------------------------------------------
// Transports

export const HOST = '127.0.0.1'

/** Sends one datagram from a fresh socket; resolves with the first datagram back, or null after `timeoutMs`. */
export function udpExchange(port: number, msg: Buffer, timeoutMs = 2000, host = HOST): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const sock = createSocket('udp4')
    const timer = setTimeout(() => finish(null), timeoutMs)
    const finish = (reply: Buffer | null, err?: Error) => {
      clearTimeout(timer)
      sock.close()
      if (err) reject(err)
      else resolve(reply)
    }
    sock.once('message', (m) => finish(m))
    sock.once('error', (err) => finish(null, err))
    sock.send(msg, port, host, (err) => {
      if (err) finish(null, err)
    })
  })
}

/** A UDP socket that keeps every datagram it receives, for firing many queries without awaiting each. */
export class UdpClient {
  readonly received: Buffer[] = []
  private listeners: ((m: Buffer) => void)[] = []

  private constructor(
    readonly sock: UdpSocket,
    readonly port: number,
    readonly host: string,
  ) {
    sock.on('message', (m) => {
      this.received.push(m)
      for (const l of [...this.listeners]) l(m)
    })
  }

  static async open(port: number, host = HOST): Promise<UdpClient> {
    const sock = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(0, '127.0.0.1', () => {
        sock.removeListener('error', reject)
        resolve()
      })
    })
    return new UdpClient(sock, port, host)
  }

  send(msg: Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.sock.send(msg, this.port, this.host, (err) => (err ? reject(err) : resolve())))
  }

  /** Resolves with the first datagram (already received or still to come) whose ID is `id`, or null after `timeoutMs`. */
  waitForId(id: number, timeoutMs = 2000): Promise<Buffer | null> {
    const seen = this.received.find((m) => m.length >= 2 && m.readUInt16BE(0) === id)
    if (seen) return Promise.resolve(seen)
    return new Promise((resolve) => {
      const listener = (m: Buffer) => {
        if (m.length >= 2 && m.readUInt16BE(0) === id) done(m)
      }
      const timer = setTimeout(() => done(null), timeoutMs)
      const done = (m: Buffer | null) => {
        clearTimeout(timer)
        this.listeners = this.listeners.filter((l) => l !== listener)
        resolve(m)
      }
      this.listeners.push(listener)
    })
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.sock.close(() => resolve()))
  }
}

/** Prefixes a message with its 2-octet length (RFC 1035 §4.2.2). */
export function frame(msg: Buffer): Buffer {
  const b = Buffer.alloc(2 + msg.length)
  b.writeUInt16BE(msg.length, 0)
  msg.copy(b, 2)
  return b
}

/** A DNS-over-TCP client: frames what it sends, splits what it receives into messages, records the close. */
export class TcpClient {
  readonly socket: Socket
  /** Every message received so far, in order. */
  readonly messages: Buffer[] = []
  /** Resolves once connected; rejects if the connection fails first. */
  readonly connected: Promise<void>
  /** Resolves when the socket is closed, whoever closed it. */
  readonly closed: Promise<void>
  closedAt: number | null = null
  /** True when the server closed (end or reset) before we ended or destroyed our side. */
  closedByPeer = false
  error: Error | null = null
  private pending: Buffer = Buffer.alloc(0)
  private ended = false
  private readIndex = 0
  private waiters: (() => void)[] = []

  constructor(port: number, host = HOST) {
    this.socket = connect({ port, host })
    this.socket.setNoDelay(true)
    this.connected = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve())
      this.socket.once('close', () => reject(new Error('connection closed before it was established')))
    })
    this.connected.catch(() => undefined)
    this.socket.on('data', (chunk: Buffer) => {
      this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk])
      while (this.pending.length >= 2) {
        const len = this.pending.readUInt16BE(0)
        if (this.pending.length < 2 + len) break
        this.messages.push(Buffer.from(this.pending.subarray(2, 2 + len)))
        this.pending = this.pending.subarray(2 + len)
      }
      this.wake()
    })
    this.socket.on('error', (err) => (this.error = err))
    this.closed = new Promise((resolve) =>
      this.socket.once('close', () => {
        this.closedAt = Date.now()
        if (!this.ended) this.closedByPeer = true
        this.wake()
        resolve()
      }),
    )
  }

  static async open(port: number, host = HOST): Promise<TcpClient> {
    const c = new TcpClient(port, host)
    await c.connected
    return c
  }

  private wake(): void {
    const w = this.waiters
    this.waiters = []
    for (const f of w) f()
  }

  /** Writes one framed message. */
  send(msg: Buffer): Promise<void> {
    return this.write(frame(msg))
  }

  /** Writes raw octets; resolves when handed to the kernel (never rejects: a failed write shows as `error`). */
  write(raw: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve()
      this.socket.write(raw, () => resolve())
    })
  }

  /** The next message not yet returned by next(); rejects on close or after `timeoutMs`. */
  async next(timeoutMs = 5000): Promise<Buffer> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.readIndex < this.messages.length) return this.messages[this.readIndex++]!
      if (this.closedAt !== null) throw new Error(`connection closed after ${this.messages.length} message(s)${this.error ? ` (${this.error.message})` : ''}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms (${this.messages.length} received)`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Sends one query and returns the next message (for a connection used one query at a time). */
  async exchange(msg: Buffer, timeoutMs = 5000): Promise<Buffer> {
    await this.send(msg)
    return this.next(timeoutMs)
  }

  /** Half-closes our side (the server should answer what it has and close). */
  end(): void {
    this.ended = true
    this.socket.end()
  }

  destroy(): void {
    this.ended = true
    this.socket.destroy()
  }
}

/** One query over a fresh TCP connection, closed afterwards. */
export async function tcpExchange(port: number, msg: Buffer, timeoutMs = 5000, host = HOST): Promise<Buffer> {
  const c = await TcpClient.open(port, host)
  try {
    return await c.exchange(msg, timeoutMs)
  } finally {
    c.destroy()
  }
}

/** Rejects with `what` when `p` has not settled within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}
