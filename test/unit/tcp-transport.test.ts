/**
 * The TCP transport (src/dns/server.ts) in-process, over real loopback sockets: a client that
 * pipelines many queries and does not read its answers (RFC 7766 §6.2.1). The server's handler is
 * the real one, on a zone with a large TXT set, so that each answer is ~16 KiB.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect, type Socket } from 'node:net'
import { test } from 'node:test'
import { setImmediate as turn } from 'node:timers/promises'
import { buildZoneSet } from '../../src/config/load.js'
import { DnsHandler } from '../../src/dns/handler.js'
import { DnsListener } from '../../src/dns/server.js'
import { createLogger } from '../../src/log.js'
import { TYPE } from '../helpers/wire.js'

const STRINGS = 64
const zoneText = `origin: t.test
soa: { mname: ns1, rname: h }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  big: { TXT: [${Array.from({ length: STRINGS }, (_, i) => `"${String(i).padStart(3, '0')}${'x'.repeat(250)}"`).join(', ')}] }
`

/** A framed query for big.t.test TXT with this ID (no EDNS). */
function framedQuery(id: number): Buffer {
  const name = Buffer.from([3, ...Buffer.from('big'), 1, ...Buffer.from('t'), 4, ...Buffer.from('test'), 0])
  const msg = Buffer.concat([Buffer.from([id >> 8, id & 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]), name, Buffer.from([0, TYPE.TXT, 0, 1])])
  const frame = Buffer.alloc(2 + msg.length)
  frame.writeUInt16BE(msg.length, 0)
  msg.copy(frame, 2)
  return frame
}

/** Every framed message the client reads until the server ends the connection. */
async function readAll(client: Socket): Promise<Buffer[]> {
  const chunks: Buffer[] = []
  client.on('data', (c: Buffer) => chunks.push(c))
  client.resume()
  await once(client, 'end')
  const all = Buffer.concat(chunks)
  const out: Buffer[] = []
  for (let off = 0; off + 2 <= all.length; ) {
    const len = all.readUInt16BE(off)
    out.push(all.subarray(off + 2, off + 2 + len))
    off += 2 + len
  }
  return out
}

async function withListener(body: (listener: DnsListener, port: number) => Promise<void>): Promise<void> {
  const set = buildZoneSet([{ file: 't.yaml', text: zoneText }], () => 1, 1)
  assert.equal(set.zones.size, 1, 'the test zone loads')
  const handler = new DnsHandler(() => set, createLogger('silent'))
  const listener = new DnsListener({ host: '127.0.0.1', port: 0 }, handler, { idleTimeoutMs: 10_000, maxConnections: 10 }, createLogger('silent'))
  const [bound] = await listener.start()
  try {
    await body(listener, bound!.port)
  } finally {
    await listener.close()
  }
}

/** The server's side of the one connection, once it has been handed over. */
async function serverSide(listener: DnsListener): Promise<Socket> {
  while (listener.tcpConnections.size === 0) await turn()
  return [...listener.tcpConnections][0]!
}

/**
 * A client that sends `n` queries in one write (the server reads most of it at once, up to 64 KiB a
 * read) and reads nothing yet, half-closed after it when `end`; with the server's side of the
 * connection once it has stopped reading.
 */
async function unreadPipeline(listener: DnsListener, port: number, n: number, end: boolean): Promise<{ client: Socket; sock: Socket }> {
  const client = connect({ host: '127.0.0.1', port })
  await once(client, 'connect')
  client.pause()
  client.write(Buffer.concat(Array.from({ length: n }, (_, id) => framedQuery(id))))
  if (end) client.end()
  const sock = await serverSide(listener)
  if (!sock.isPaused()) await once(sock, 'pause')
  return { client, sock }
}

test('a client that pipelines 2,000 queries and reads nothing: the server stops answering at the high-water mark (not the rest of what it read), then answers all, in order, once it reads; a half-close waits for them', async () => {
  await withListener(async (listener, port) => {
    const n = 2000
    const { client, sock } = await unreadPipeline(listener, port, n, true)
    // Whatever the server would still do with what it already read happens in that same turn.
    await turn()
    const answer = 2 + 12 + 16 + STRINGS * (12 + 1 + 253)
    assert.ok(
      sock.writableLength <= sock.writableHighWaterMark + answer,
      `the server holds ${sock.writableLength} octets of answers for a client that does not read, more than one answer (${answer}) past the high-water mark (${sock.writableHighWaterMark})`,
    )
    const replies = await readAll(client)
    assert.equal(replies.length, n, 'every query is answered, the half-close notwithstanding')
    replies.forEach((r, i) => {
      assert.equal(r.readUInt16BE(0), i, `reply ${i} in order`)
      assert.equal(r[3]! & 0x0f, 0, 'NOERROR')
      assert.equal(r.readUInt16BE(6), STRINGS, `reply ${i} holds the whole TXT set`)
    })
  })
})

test('a shutdown answers the 2,000 queries a client had sent (most still unread, the client not reading yet), ends the connection with a FIN and takes no new one', async () => {
  await withListener(async (listener, port) => {
    const n = 2000
    // The server has stopped reading: most queries wait in the kernel, unread, when the shutdown begins.
    const { client } = await unreadPipeline(listener, port, n, false)
    const closing = listener.close(10_000)
    const refused = connect({ host: '127.0.0.1', port })
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
    // Refused, or reset when it reached the backlog just before the listening socket closed.
    assert.ok(err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET', `no new connection is taken: ${err.code}`)
    const replies = await readAll(client) // up to the server's FIN ('end'), not a reset
    assert.equal(replies.length, n, 'every query sent before the shutdown is answered')
    replies.forEach((r, i) => assert.equal(r.readUInt16BE(0), i, `reply ${i} in order`))
    client.end()
    await closing
  })
})

test('a shutdown ends an idle connection at once, and drops one whose client keeps its side open after the FIN at the grace', async () => {
  await withListener(async (listener, port) => {
    const idle = connect({ host: '127.0.0.1', port })
    await once(idle, 'connect')
    await serverSide(listener)
    // allowHalfOpen: this client does not answer the server's FIN with its own.
    const stubborn = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    await once(stubborn, 'connect')
    while (listener.tcpConnections.size < 2) await turn()
    const t0 = performance.now()
    const closing = listener.close(300)
    const [idleEnd, stubbornEnd] = await Promise.all([once(idle, 'end').then(() => performance.now() - t0), once(stubborn, 'end').then(() => performance.now() - t0)])
    assert.ok(idleEnd < 250 && stubbornEnd < 250, `FINs ${idleEnd.toFixed(0)} and ${stubbornEnd.toFixed(0)} ms after the shutdown began, not at the grace`)
    idle.end()
    stubborn.on('error', () => undefined)
    await closing
    const took = performance.now() - t0
    assert.ok(took >= 290 && took < 2000, `the shutdown took ${took.toFixed(0)} ms: the grace (300 ms) bounds a client that keeps its side open`)
  })
})
