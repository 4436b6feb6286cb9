/**
 * Delegation end to end: a real recursive resolver (unbound) follows a real referral from a parent
 * zone to Meridian, and passes its clients' EDNS Client Subnet on, so clients in different networks
 * get the VIPs of different regions through the same resolver (docs/delegation.md).
 *
 *   dig ──▶ unbound 127.0.0.1:<free port>        subnetcache + iterator, no validator
 *             │ 1. www.gslb.example.test A        stub-zone example.test: only the parent's address is configured
 *             ▼
 *           parent 127.a.b.c:<free port>          a tiny authoritative server written below (node:dgram)
 *             │    referral: no AA, NS gslb.example.test -> ns1.gslb.example.test, glue A 127.x.y.z
 *             │ 2. www.gslb.example.test A + ECS  to the glue address, port 53 (glue carries no port)
 *             ▼
 *           Meridian 127.x.y.z:53                 test/fixtures/delegation, geodb/test/meridian-test.mmdb
 *
 * Why the parent is not a second Meridian: Meridian's zone format has no NS records below the apex
 * (no delegations, docs/dns.md "Left out"), so it cannot serve a referral. The parent here answers
 * exactly what a parent zone's server answers: NS in the authority section, glue in the additional
 * section, AA clear. unbound is told only where example.test is served; it learns gslb.example.test's
 * name server and address from that referral at query time, as a resolver on the Internet does.
 *
 * The loopback addresses are picked at random per run (any 127/8 address is local on Linux), so
 * Meridian can have port 53 without colliding with another run or a resolver on 127.0.0.1:53.
 * Needs root (port 53) and unbound (`apt-get install unbound`; scripts/ensure-tools.mjs).
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import dgram from 'node:dgram'
import { readFile, writeFile } from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { dig, type DigResult } from '../helpers/dig.js'
import { docsYaml } from '../helpers/docs.js'
import { ROOT, runCli, startServer, tempDir, TEST_GEODB, type LogLine, type RunningServer } from '../helpers/server.js'
import { encodeName, TYPE } from '../helpers/wire.js'

const PARENT_ZONE = 'example.test'
const CHILD_ZONE = 'gslb.example.test'
const CHILD_NS = `ns1.${CHILD_ZONE}`
const FIXTURE = path.join(ROOT, 'test', 'fixtures', 'delegation', 'gslb.example.test.yaml')
/** The address written in the fixture, replaced by this run's address of Meridian. */
const FIXTURE_ADDRESS = '127.0.0.53'
const VIPS = {
  'us-east': ['203.0.113.10', '203.0.113.11'],
  'eu-west': ['203.0.113.20', '203.0.113.21'],
  'ap-northeast': ['203.0.113.30', '203.0.113.31'],
}

const randomLoopback = () => `127.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`

// ---------------------------------------------------------------------------------------------
// The parent: a minimal authoritative server for example.test that delegates gslb.example.test.
// ---------------------------------------------------------------------------------------------

interface ParentQuery {
  qname: string
  qtype: number
  /** Whether the query carried an EDNS Client Subnet option. */
  ecs: boolean
}

interface Parent {
  address: string
  port: number
  queries: ParentQuery[]
  close(): Promise<void>
}

function record(name: string, type: number, ttl: number, rdata: Buffer): Buffer {
  const fixed = Buffer.alloc(10)
  fixed.writeUInt16BE(type, 0)
  fixed.writeUInt16BE(1, 2) // IN
  fixed.writeUInt32BE(ttl, 4)
  fixed.writeUInt16BE(rdata.length, 8)
  return Buffer.concat([encodeName(name), fixed, rdata])
}

const aRecord = (name: string, address: string, ttl = 3600) => record(name, TYPE.A, ttl, Buffer.from(address.split('.').map(Number)))
const nsRecord = (owner: string, target: string, ttl = 3600) => record(owner, TYPE.NS, ttl, encodeName(target))
function soaRecord(): Buffer {
  const times = Buffer.alloc(20)
  ;[1, 3600, 600, 1209600, 60].forEach((v, i) => times.writeUInt32BE(v, i * 4))
  return record(PARENT_ZONE, TYPE.SOA, 3600, Buffer.concat([encodeName(`ns.${PARENT_ZONE}`), encodeName(`hostmaster.${PARENT_ZONE}`), times]))
}

interface ParsedQuery {
  id: number
  rd: boolean
  qname: string
  qtype: number
  /** The question's octets, echoed as received. */
  question: Buffer
  edns: boolean
  ecs: boolean
}

/** Reads a query (uncompressed question, optional OPT); null for anything else, which is dropped. */
function parseQuery(msg: Buffer): ParsedQuery | null {
  if (msg.length < 12 || (msg[2]! & 0x80) !== 0 || msg.readUInt16BE(4) !== 1) return null
  let off = 12
  const labels: string[] = []
  for (;;) {
    const len = msg[off]
    if (len === undefined || len > 63) return null
    off++
    if (len === 0) break
    labels.push(msg.toString('latin1', off, off + len))
    off += len
  }
  if (off + 4 > msg.length) return null
  const qtype = msg.readUInt16BE(off)
  const question = msg.subarray(12, off + 4)
  off += 4
  let edns = false
  let ecs = false
  // A query's only extra record is its OPT (root owner, one zero octet).
  if (msg.readUInt16BE(10) >= 1 && msg[off] === 0 && off + 11 <= msg.length && msg.readUInt16BE(off + 1) === TYPE.OPT) {
    edns = true
    const rdlen = msg.readUInt16BE(off + 9)
    for (let o = off + 11; o + 4 <= off + 11 + rdlen && o + 4 <= msg.length; o += 4 + msg.readUInt16BE(o + 2)) {
      if (msg.readUInt16BE(o) === 8) ecs = true
    }
  }
  return { id: msg.readUInt16BE(0), rd: (msg[2]! & 0x01) !== 0, qname: labels.join('.').toLowerCase(), qtype, question, edns, ecs }
}

function encodeReply(q: ParsedQuery, r: { rcode: number; aa: boolean; answer?: Buffer[]; authority?: Buffer[]; additional?: Buffer[] }): Buffer {
  const answer = r.answer ?? []
  const authority = r.authority ?? []
  const additional = r.additional ?? []
  // OPT: payload 1232, version 0, no options (no ECS: the parent's answers do not depend on the client).
  const opt = q.edns ? [Buffer.from([0, 0, TYPE.OPT, 0x04, 0xd0, 0, 0, 0, 0, 0, 0])] : []
  const header = Buffer.alloc(12)
  header.writeUInt16BE(q.id, 0)
  header.writeUInt16BE(0x8000 | (r.aa ? 0x0400 : 0) | (q.rd ? 0x0100 : 0) | r.rcode, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(answer.length, 6)
  header.writeUInt16BE(authority.length, 8)
  header.writeUInt16BE(additional.length + opt.length, 10)
  return Buffer.concat([header, q.question, ...answer, ...authority, ...additional, ...opt])
}

/**
 *   question                              reply
 *   gslb.example.test or below, any type  referral: NOERROR, no AA, authority NS, additional glue A
 *   example.test SOA / NS                 AA answer (NS with ns.example.test's address)
 *   other names of example.test           AA NODATA / NXDOMAIN with the SOA
 *   outside example.test                  REFUSED
 */
function parentAnswer(q: ParsedQuery, self: string, child: string): Buffer {
  const { qname, qtype } = q
  const soa = soaRecord()
  if (qname === CHILD_ZONE || qname.endsWith(`.${CHILD_ZONE}`)) {
    return encodeReply(q, { rcode: 0, aa: false, authority: [nsRecord(CHILD_ZONE, CHILD_NS)], additional: [aRecord(CHILD_NS, child)] })
  }
  if (qname === PARENT_ZONE && qtype === TYPE.SOA) return encodeReply(q, { rcode: 0, aa: true, answer: [soa] })
  if (qname === PARENT_ZONE && qtype === TYPE.NS) {
    return encodeReply(q, { rcode: 0, aa: true, answer: [nsRecord(PARENT_ZONE, `ns.${PARENT_ZONE}`)], additional: [aRecord(`ns.${PARENT_ZONE}`, self)] })
  }
  if (qname === `ns.${PARENT_ZONE}` && qtype === TYPE.A) return encodeReply(q, { rcode: 0, aa: true, answer: [aRecord(qname, self)] })
  if (qname === PARENT_ZONE || qname === `ns.${PARENT_ZONE}`) return encodeReply(q, { rcode: 0, aa: true, authority: [soa] })
  if (qname.endsWith(`.${PARENT_ZONE}`)) return encodeReply(q, { rcode: 3, aa: true, authority: [soa] })
  return encodeReply(q, { rcode: 5, aa: false })
}

async function startParent(child: string): Promise<Parent> {
  for (let attempt = 0; ; attempt++) {
    const address = randomLoopback()
    if (address === child) continue
    const socket = dgram.createSocket('udp4')
    const queries: ParentQuery[] = []
    socket.on('message', (msg, rinfo) => {
      const q = parseQuery(msg)
      if (!q) return
      queries.push({ qname: q.qname, qtype: q.qtype, ecs: q.ecs })
      socket.send(parentAnswer(q, address, child), rinfo.port, rinfo.address)
    })
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject)
        socket.bind(0, address, () => resolve())
      })
    } catch (err) {
      socket.close()
      if (attempt >= 3) throw err
      continue
    }
    return { address, port: socket.address().port, queries, close: () => new Promise((resolve) => socket.close(() => resolve())) }
  }
}

// ---------------------------------------------------------------------------------------------
// The child (Meridian on port 53) and the resolver (unbound).
// ---------------------------------------------------------------------------------------------

/** Meridian on a random loopback address, port 53, serving the fixture with its glue rewritten to that address. */
async function startChild(zonesDir: string): Promise<{ server: RunningServer; address: string }> {
  const yaml = await readFile(FIXTURE, 'utf8')
  assert.equal(yaml.split(FIXTURE_ADDRESS).length, 2, `${FIXTURE} names ${FIXTURE_ADDRESS} exactly once (ns1's glue)`)
  for (let attempt = 1; ; attempt++) {
    const address = randomLoopback()
    await writeFile(path.join(zonesDir, 'gslb.example.test.yaml'), yaml.replace(FIXTURE_ADDRESS, address))
    try {
      const server = await startServer({
        zonesDirInPlace: zonesDir,
        listen: [`${address}:53`],
        args: ['--geodb', TEST_GEODB, '--no-watch', '--query-log', '--log-level', 'debug'],
      })
      return { server, address }
    } catch (err) {
      if (attempt >= 3) throw err // port 53 of three random addresses taken: something else is wrong
    }
  }
}

/** A port free for both UDP and TCP on 127.0.0.1, as the OS hands it out. */
async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const udp = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()))
    const port = udp.address().port
    const tcpFree = await new Promise<boolean>((resolve) => {
      const s = net.createServer()
      s.once('error', () => resolve(false))
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
    })
    await new Promise<void>((resolve) => udp.close(() => resolve()))
    if (tcpFree) return port
  }
  throw new Error('no port free for both UDP and TCP on 127.0.0.1 after 10 tries')
}

function unboundConf(dir: string, port: number, parent: Parent, child: string): string {
  return `# written by test/e2e/delegation.test.ts for one run; nothing under /etc/unbound is read
server:
  verbosity: 1
  interface: 127.0.0.1@${port}
  access-control: 127.0.0.0/8 allow
  do-ip6: no
  num-threads: 1
  so-reuseport: no
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: "${path.join(dir, 'unbound.pid')}"
  use-syslog: no
  logfile: ""
  # Loopback addresses are the parent's and Meridian's here.
  do-not-query-localhost: no
  # .test is an RFC 6761 name unbound answers itself (static) unless told not to.
  local-zone: "test." nodefault
  # No validator (nothing is signed); subnetcache is unbound's ECS module.
  module-config: "subnetcache iterator"
  # Send the full name to the parent, as a resolver without QNAME minimisation does.
  qname-minimisation: no
  # ECS goes to Meridian's address only: the parent never sees a client's subnet.
  send-client-subnet: ${child}
  max-client-subnet-ipv4: 24
  max-client-subnet-ipv6: 56

# unbound knows the parent's address only; gslb.example.test is learned from its referral.
stub-zone:
  name: "${PARENT_ZONE}"
  stub-addr: ${parent.address}@${parent.port}

remote-control:
  control-enable: no
`
}

interface Unbound {
  proc: ChildProcess
  port: number
  stderr: () => string
  stop(): Promise<void>
}

async function startUnbound(dir: string, parent: Parent, child: string): Promise<Unbound> {
  const port = await freePort()
  const conf = path.join(dir, 'unbound.conf')
  await writeFile(conf, unboundConf(dir, port, parent, child))
  const check = spawnSync('unbound-checkconf', [conf], { encoding: 'utf8' })
  assert.equal(check.status, 0, `unbound-checkconf ${conf}: ${check.stdout}${check.stderr}`)
  const proc = spawn('unbound', ['-d', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  proc.stdout!.on('data', (d: Buffer) => (stderr += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()))
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
    }
  }
  // Ready when it answers a question of its own (version.server CH TXT goes to no upstream server).
  const deadline = Date.now() + 5000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`unbound exited (${proc.exitCode}): ${stderr}`)
    const r = await dig('127.0.0.1', port, '+time=1', 'version.server', 'CH', 'TXT').catch(() => null)
    if (r?.status === 'NOERROR') break
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`unbound did not answer on 127.0.0.1:${port} within 5 s: ${stderr}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return { proc, port, stderr: () => stderr, stop }
}

const hasUnbound = spawnSync('sh', ['-c', 'command -v unbound && command -v unbound-checkconf'], { stdio: 'ignore' }).status === 0

// ---------------------------------------------------------------------------------------------

describe('a resolver follows the delegation of gslb.example.test to Meridian', { timeout: 20000 }, () => {
  let parent: Parent | undefined
  let child: { server: RunningServer; address: string } | undefined
  let unbound: Unbound | undefined
  const cleanups: (() => Promise<void>)[] = []

  before(async () => {
    assert.ok(hasUnbound, 'unbound is not installed: apt-get install unbound (scripts/ensure-tools.mjs installs it before npm test)')
    const zones = await tempDir('meridian-delegation-zones-')
    cleanups.push(zones.cleanup)
    const work = await tempDir('meridian-delegation-unbound-')
    cleanups.push(work.cleanup)
    child = await startChild(zones.dir)
    parent = await startParent(child.address)
    unbound = await startUnbound(work.dir, parent, child.address)
  })

  after(async () => {
    await unbound?.stop()
    await child?.server.stop()
    await parent?.close()
    for (const c of cleanups) await c()
  })

  /** Meridian's query-log lines for www.gslb.example.test A (one per query that reached it). */
  const wwwAtChild = () => child!.server.logs.filter((l: LogLine) => l.msg === 'query' && String(l.qname).toLowerCase() === `www.${CHILD_ZONE}` && l.qtype === TYPE.A).length
  const untilWwwAtChild = (n: number) => child!.server.waitForLog(() => wwwAtChild() >= n, 10_000)
  /** Queries the parent saw for names in the delegated zone. */
  const referralsAsked = () => parent!.queries.filter((q) => q.qname === CHILD_ZONE || q.qname.endsWith(`.${CHILD_ZONE}`))
  const viaResolver = (...args: string[]) => dig('127.0.0.1', unbound!.port, `www.${CHILD_ZONE}`, 'A', ...args)
  const addresses = (r: DigResult) => r.answer.filter((a) => a.type === 'A').map((a) => a.data).sort()
  const explain = (r: DigResult) => `${r.raw}\nunbound:\n${unbound!.stderr()}`

  test('the parent answers a referral: NS and glue for ns1.gslb.example.test, no AA', async () => {
    const r = await dig(parent!.address, parent!.port, '+norec', `www.${CHILD_ZONE}`, 'A')
    assert.equal(r.status, 'NOERROR')
    assert.ok(!r.flags.includes('aa'), r.raw)
    assert.equal(r.answer.length, 0)
    assert.deepEqual(r.authority.map((a) => `${a.name} ${a.type} ${a.data}`), [`${CHILD_ZONE}. NS ${CHILD_NS}.`])
    assert.deepEqual(r.additional.map((a) => `${a.name} ${a.type} ${a.data}`), [`${CHILD_NS}. A ${child!.address}`])
    assert.equal(r.authority[0]!.ttl, 3600)
    parent!.queries.length = 0 // only the resolver's queries count below
  })

  test("Meridian answers its apex with AA, and its NS and glue are the parent's delegation", async () => {
    const r = await dig(child!.address, 53, '+norec', CHILD_ZONE, 'NS')
    assert.equal(r.status, 'NOERROR')
    assert.ok(r.flags.includes('aa'), r.raw)
    assert.deepEqual(r.answer.map((a) => a.data), [`${CHILD_NS}.`])
    assert.equal(r.answer[0]!.ttl, 3600, 'the zone ttl (the apex NS TTL) is the parent NS TTL')
    assert.deepEqual(r.additional.map((a) => `${a.name} ${a.type} ${a.data}`), [`${CHILD_NS}. A ${child!.address}`])
  })

  test('a client in London (ECS 192.0.2.0/24) gets eu-west through the resolver, which learned the delegation from the referral', async () => {
    const r = await viaResolver('+subnet=192.0.2.0/24')
    assert.equal(r.status, 'NOERROR', explain(r))
    // A resolver's answer: RA set, AA clear (the AA answer stayed between unbound and Meridian).
    assert.ok(r.flags.includes('ra') && !r.flags.includes('aa'), `flags ${r.flags.join(' ')}`)
    assert.deepEqual(addresses(r), VIPS['eu-west'], explain(r))
    // Meridian's scope (the GeoIP network 192.0.2.0/26, capped at the source /24) comes back through unbound.
    assert.equal(r.clientSubnet, '192.0.2.0/24/24', explain(r))
    await untilWwwAtChild(1)
    // unbound asked the parent first and got the referral; the parent never saw the client's subnet.
    assert.deepEqual(
      referralsAsked().map((q) => `${q.qname} ${q.qtype}`),
      [`www.${CHILD_ZONE} 1`],
      JSON.stringify(parent!.queries),
    )
    assert.ok(parent!.queries.every((q) => !q.ecs), JSON.stringify(parent!.queries))
  })

  test('a client in Tokyo (ECS 2001:db8:200::/56) gets ap-northeast; the London answer is cached for London only', async () => {
    const again = await viaResolver('+subnet=192.0.2.0/24')
    assert.deepEqual(addresses(again), VIPS['eu-west'], explain(again))
    const r = await viaResolver('+subnet=2001:db8:200::/56')
    assert.equal(r.status, 'NOERROR', explain(r))
    assert.deepEqual(addresses(r), VIPS['ap-northeast'], explain(r))
    // Scope /40: the GeoIP network 2001:db8:200::/40 decided.
    assert.equal(r.clientSubnet, '2001:db8:200::/56/40', explain(r))
    // Meridian's log is in query order: the Tokyo query is the second to reach it, so the repeated
    // London one was answered from unbound's cache for 192.0.2.0/24.
    await untilWwwAtChild(2)
    assert.equal(wwwAtChild(), 2)
    // The delegation is cached too: the parent was not asked again.
    assert.equal(referralsAsked().length, 1, JSON.stringify(parent!.queries))
  })

  // Seen on the wire (tshark on lo): for a query without ECS, unbound sends the client's own /24,
  // 127.0.0.0/24; loopback is in no GeoIP database, so the zone's defaultLocation (US) decides, and
  // Meridian answers scope /8 (the special-use block). dig gets no ECS back, as it sent none.
  test('a client query without ECS is located by the address unbound sends for it (loopback: the zone default, us-east)', async () => {
    const r = await viaResolver()
    assert.equal(r.status, 'NOERROR', explain(r))
    assert.equal(r.clientSubnet, null)
    assert.deepEqual(addresses(r), VIPS['us-east'], explain(r))
    await untilWwwAtChild(3)
  })
})

test('the zone file in docs/delegation.md passes meridian check', async () => {
  const yaml = await docsYaml('delegation.md')
  const t = await tempDir()
  try {
    await writeFile(path.join(t.dir, 'gslb.example.com.yaml'), yaml)
    const { code, stdout, stderr } = await runCli(['check', '--zones', t.dir])
    assert.equal(code, 0, stderr)
    assert.match(stdout, /zone gslb\.example\.com OK/)
  } finally {
    await t.cleanup()
  }
})
