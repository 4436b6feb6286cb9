/**
 * The UDP transport (src/dns/server.ts) in-process, over a real loopback socket: datagrams that
 * arrive as dgram hands them to the listener, including ones no reply can be sent to, and a
 * shutdown under steady traffic (the queued queries a shutdown answers: test/e2e/udp-shutdown.test.ts).
 */
import assert from 'node:assert/strict'
import { createSocket, type RemoteInfo, type Socket as UdpSocket } from 'node:dgram'
import { once } from 'node:events'
import { networkInterfaces } from 'node:os'
import { test } from 'node:test'
import { buildZoneSet } from '../../src/config/load.js'
import { DnsHandler } from '../../src/dns/handler.js'
import { DnsListener, type Interfaces } from '../../src/dns/server.js'
import { createLogger } from '../../src/log.js'
import { buildQuery, parseReply, RCODE, TYPE, UdpClient, udpExchange } from '../helpers/wire.js'

const zoneText = `origin: t.test
soa: { mname: ns1, rname: h }
ns: [ns1]
records:
  ns1: { A: 192.0.2.53 }
  www: { A: 192.0.2.80 }
`

async function withListener(body: (listener: DnsListener, port: number) => Promise<void>, host = '127.0.0.1', interfaces?: Interfaces): Promise<void> {
  const set = buildZoneSet([{ file: 't.yaml', text: zoneText }], () => 1, 1)
  assert.equal(set.zones.size, 1, 'the test zone loads')
  const handler = new DnsHandler(() => set, createLogger('silent'))
  // With `interfaces`, no timer (rescanMs 0): the test looks at the addresses itself (rescan()).
  const listener = new DnsListener({ host, port: 0 }, handler, { idleTimeoutMs: 10_000, maxConnections: 10 }, createLogger('silent'), interfaces, interfaces ? 0 : undefined)
  const [bound] = await listener.start()
  try {
    await body(listener, bound!.port)
  } finally {
    await listener.close()
  }
}

test('a query from source port 0 (spoofed: no reply can go there) is dropped, and the listener goes on answering', async () => {
  await withListener(async (listener, port) => {
    // The listener's dgram socket, handed the datagram the way dgram's onMessage hands it over
    // (a raw socket would be needed to send from port 0 for real: `emit('message', msg, rinfo)`).
    const udp = [...(listener as unknown as { udps: Map<string, UdpSocket> }).udps.values()][0]!
    const query = buildQuery({ id: 7, name: 'www.t.test', type: TYPE.A })
    const rinfo: RemoteInfo = { address: '127.0.0.1', family: 'IPv4', port: 0, size: query.length }
    let sent = 0
    const send = udp.send.bind(udp)
    udp.send = ((...args: Parameters<typeof send>) => {
      sent++
      return send(...args)
    }) as typeof udp.send
    assert.doesNotThrow(() => udp.emit('message', query, rinfo), 'a datagram from port 0 must not throw out of the socket event (that ends the process)')
    assert.equal(sent, 0, 'nothing is sent to port 0')
    const raw = await udpExchange(port, buildQuery({ id: 8, name: 'www.t.test', type: TYPE.A }))
    assert.ok(raw, 'the listener still answers')
    const reply = parseReply(raw)
    assert.equal(reply.id, 8)
    assert.equal(reply.rcode, RCODE.NOERROR)
    assert.equal(reply.answers.length, 1)
  })
})

/** An IPv4 address of this host other than loopback, if it has one. */
const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a !== undefined && a.family === 'IPv4' && !a.internal)?.address

test(
  'on a wildcard listen address (0.0.0.0), a UDP reply comes from the address the query was sent to, not the one the kernel would pick (RFC 2181 §4.1)',
  { skip: otherAddress === undefined && 'this host has no IPv4 address besides loopback' },
  async () => {
    await withListener(async (_listener, port) => {
      // The client is on loopback and asks the host's other address: the kernel's route back to
      // 127.0.0.1 has source 127.0.0.1, which a wildcard socket would answer from.
      const client = createSocket('udp4')
      await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
      try {
        client.send(buildQuery({ id: 9, name: 'www.t.test', type: TYPE.A }), port, otherAddress)
        const [msg, rinfo] = (await once(client, 'message')) as [Buffer, RemoteInfo]
        assert.equal(parseReply(msg).id, 9)
        assert.equal(`${rinfo.address}:${rinfo.port}`, `${otherAddress}:${port}`, 'the reply comes from the address and port the query went to')
      } finally {
        client.close()
      }
    }, '0.0.0.0')
  },
)

/** The address a query to `host`:`port` is answered from, or 'refused' (ICMP port unreachable: no socket there). */
async function askAt(host: string, port: number, id: number): Promise<string> {
  const client = createSocket('udp4')
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
  // Connected, so a port unreachable comes back as an 'error' event (once() then rejects), and the
  // kernel passes only replies from `host`:`port` (one from another source would never come: the
  // test would time out, as a resolver would).
  await new Promise<void>((resolve) => client.connect(port, host, resolve))
  try {
    client.send(buildQuery({ id, name: 'www.t.test', type: TYPE.A }))
    const [msg, rinfo] = (await once(client, 'message')) as [Buffer, RemoteInfo]
    assert.equal(parseReply(msg).id, id)
    return rinfo.address
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') return 'refused'
    throw err
  } finally {
    client.close()
  }
}

test('on a wildcard listen address, an address the host gains later is answered from itself after the next look at the addresses, and one it loses is let go', async () => {
  // 127.0.0.0/8 is on lo, so any of its addresses can be bound: the host "gains" 127.0.0.3 when the
  // interface list says so (as an anycast address brought up on lo once the service is healthy).
  let addresses = ['127.0.0.1']
  const interfaces: Interfaces = () => ({
    lo: addresses.map((address) => ({ address, netmask: '255.0.0.0', family: 'IPv4' as const, mac: '00:00:00:00:00:00', internal: true, cidr: `${address}/8` })),
  })
  await withListener(
    async (listener, port) => {
      assert.equal(await askAt('127.0.0.1', port, 1), '127.0.0.1')
      assert.equal(await askAt('127.0.0.3', port, 2), 'refused', 'no socket on 127.0.0.3 before the host has it')
      addresses = ['127.0.0.1', '127.0.0.3']
      assert.deepEqual(await listener.rescan(), { added: ['127.0.0.3'], removed: [] })
      assert.equal(await askAt('127.0.0.3', port, 3), '127.0.0.3', 'answered from the address asked')
      assert.deepEqual(await listener.rescan(), { added: [], removed: [] }, 'nothing new: nothing done')
      addresses = ['127.0.0.3']
      assert.deepEqual(await listener.rescan(), { added: [], removed: ['127.0.0.1'] })
      assert.equal(await askAt('127.0.0.1', port, 4), 'refused', 'the address the host lost has no socket')
      addresses = []
      assert.deepEqual(await listener.rescan(), { added: [], removed: [] }, 'a list with no address (an interface flapping) is not taken at its word')
      assert.equal(await askAt('127.0.0.3', port, 5), '127.0.0.3')
    },
    '0.0.0.0',
    interfaces,
  )
})

test('a shutdown under steady UDP traffic answers until its bound (300 ms here), then closes the socket', async () => {
  await withListener(async (listener, port) => {
    const client = await UdpClient.open(port)
    try {
      // A query as soon as each answer comes, until closed: the socket is never quiet.
      let id = 0
      let answered = 0
      let closingAt = Infinity
      let afterClose = 0
      let closed = false
      const ask = () => void client.send(buildQuery({ id: id++, name: 'www.t.test', type: TYPE.A }))
      client.sock.on('message', () => {
        answered++
        if (performance.now() >= closingAt) afterClose++
        if (!closed) ask()
      })
      ask()
      while (answered < 10) await new Promise((r) => setImmediate(r))
      const t0 = (closingAt = performance.now())
      await listener.close(2000, 300)
      closed = true
      const took = performance.now() - t0
      assert.ok(took >= 290 && took < 1500, `closed ${took.toFixed(0)} ms after the shutdown began: at the bound, not at once nor at the TCP grace`)
      assert.ok(afterClose > 10, `queries kept being answered while it drained (${afterClose})`)
      // An ID the ping-pong never reached: its query comes after the close.
      assert.ok(id < 0xffff, `${id} queries`)
      void client.send(buildQuery({ id: 0xffff, name: 'www.t.test', type: TYPE.A }))
      assert.equal(await client.waitForId(0xffff, 300), null, 'no answer once closed')
    } finally {
      await client.close()
    }
  })
})
