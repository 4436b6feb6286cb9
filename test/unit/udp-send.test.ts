/**
 * UDP replies written to the socket's native handle (src/dns/udp-send.ts): over real loopback
 * sockets, every reply arrives whole and in order, the path is the direct one on the Node this runs
 * on (an upgrade that changes dgram's internals fails here rather than slowing replies quietly),
 * and the hand-over of a queued send, an unexpected handle and a closed socket behave as written.
 */
import assert from 'node:assert/strict'
import { createSocket, type Socket } from 'node:dgram'
import { once } from 'node:events'
import { test } from 'node:test'
import { UdpReplySender } from '../../src/dns/udp-send.js'

const literalLookup = (address: string, family: number, cb: (err: null, address: string, family: number) => void): void => cb(null, address, family)

async function bound(type: 'udp4' | 'udp6', host: string): Promise<Socket> {
  const s = createSocket({ type, lookup: literalLookup } as never)
  // With a lookup that answers at once, 'listening' comes within bind(): its callback is registered first.
  await new Promise<void>((resolve) => s.bind(0, host, resolve))
  return s
}

function ipv6Loopback(): Promise<boolean> {
  const s = createSocket('udp6')
  return new Promise((resolve) => {
    s.once('error', () => resolve(false))
    s.bind(0, '::1', () => s.close(() => resolve(true)))
  })
}

async function exchange(type: 'udp4' | 'udp6', host: string): Promise<void> {
  const from = await bound(type, host)
  const to = await bound(type, host)
  try {
    const sender = new UdpReplySender(from)
    const got: Buffer[] = []
    to.on('message', (m: Buffer) => got.push(m))
    // 600 replies of different lengths (1..600 octets), in rounds of 50 the receiver's buffer takes
    // whole (~2 KB of it each at most: 100 KB of the default 208 KB; a full buffer would drop some): every one arrives, with its own octets.
    for (let round = 0; round < 12; round++) {
      const want = got.length + 50
      for (let i = 0; i < 50; i++) {
        const n = round * 50 + i + 1
        sender.send(Buffer.alloc(n, n & 0xff), to.address().port, host)
      }
      while (got.length < want) await once(to, 'message')
    }
    assert.equal(got.length, 600)
    got.forEach((m, i) => assert.deepEqual(m, Buffer.alloc(i + 1, (i + 1) & 0xff), `reply ${i + 1}`))
    assert.equal(sender.direct, true, 'replies go to the native handle on this Node')
  } finally {
    from.close()
    to.close()
  }
}

test('replies over IPv4 arrive whole and in order, by the direct path', () => exchange('udp4', '127.0.0.1'))

test('replies over IPv6 arrive whole and in order, by the direct path', async (t) => {
  if (!(await ipv6Loopback())) return t.skip('no IPv6 loopback on this host')
  await exchange('udp6', '::1')
})

test('a reply after the socket closed is dropped, not thrown', async () => {
  const from = await bound('udp4', '127.0.0.1')
  const to = await bound('udp4', '127.0.0.1')
  const sender = new UdpReplySender(from)
  sender.send(Buffer.from('first'), to.address().port, '127.0.0.1')
  const [first] = (await once(to, 'message')) as [Buffer]
  assert.equal(first.toString(), 'first')
  assert.equal(sender.direct, true)
  from.close()
  assert.doesNotThrow(() => sender.send(Buffer.from('late'), to.address().port, '127.0.0.1'))
  to.close()
})

/**
 * A socket shaped as dgram's: its send() passes a new request object to the handle's send, as dgram
 * does; the handle answers what `results` says (octets + 1: sent, 0: queued, else what it returns).
 */
function fakeSocket(results: unknown[]) {
  class Req {
    list: Buffer[] | null = null
  }
  const calls: { req: Req; list: Buffer[]; buf: Buffer; port: number; ip: string; hasCallback: boolean }[] = []
  const handle = {
    send(req: Req, list: Buffer[], count: number, port: number, ip: string, hasCallback: boolean): unknown {
      assert.equal(count, 1)
      calls.push({ req, list, buf: list[0]!, port, ip, hasCallback })
      return results.length > 0 ? results.shift() : list[0]!.length + 1
    },
  }
  let publicSends = 0
  const socket = {
    [Symbol('state symbol')]: { handle },
    send(buf: Buffer, port: number, ip: string): void {
      publicSends++
      handle.send(new Req(), [buf], 1, port, ip, false)
    },
  }
  return { socket: socket as unknown as Socket, calls, publicSends: () => publicSends, Req }
}

test('a queued send keeps its request and list; the next reply gets new ones', () => {
  const f = fakeSocket([])
  const s = new UdpReplySender(f.socket)
  s.send(Buffer.from('a'), 53, '192.0.2.1') // dgram's send, learning the request class
  assert.equal(f.publicSends(), 1)
  assert.equal(s.direct, true)
  s.send(Buffer.from('b'), 53, '192.0.2.1')
  s.send(Buffer.from('c'), 53, '192.0.2.1')
  assert.equal(f.publicSends(), 1, 'later replies go to the handle')
  assert.ok(f.calls[2]!.req instanceof f.Req)
  assert.equal(f.calls[2]!.req, f.calls[1]!.req, 'a request sent at once is used again')
  assert.deepEqual([f.calls[2]!.hasCallback, f.calls[2]!.port, f.calls[2]!.ip], [false, 53, '192.0.2.1'])

  const q = fakeSocket([undefined, 0]) // the first (dgram's) send's result is not read; the second is queued
  const s2 = new UdpReplySender(q.socket)
  s2.send(Buffer.from('a'), 53, '192.0.2.1')
  s2.send(Buffer.from('queued'), 53, '192.0.2.1')
  s2.send(Buffer.from('next'), 53, '192.0.2.1')
  const queued = q.calls[1]!
  const next = q.calls[2]!
  assert.notEqual(next.req, queued.req, 'the queued send keeps its request object')
  assert.notEqual(next.list, queued.list, 'and its list')
  assert.equal(queued.req.list, queued.list)
  assert.equal(queued.list[0]!.toString(), 'queued', 'whose octets stay referenced until it completes')
})

test('a handle that does not answer as expected turns the direct path off: dgram sends from then on', () => {
  const f = fakeSocket([undefined, 'odd'])
  const s = new UdpReplySender(f.socket)
  s.send(Buffer.from('a'), 53, '192.0.2.1')
  s.send(Buffer.from('b'), 53, '192.0.2.1')
  assert.equal(s.direct, false)
  s.send(Buffer.from('c'), 53, '192.0.2.1')
  assert.equal(f.publicSends(), 2)

  const none = new UdpReplySender({ send: () => undefined } as unknown as Socket) // no dgram state at all
  assert.equal(none.direct, false)
})

test('an error from the kernel loses that reply only', () => {
  const f = fakeSocket([undefined, -101]) // ENETUNREACH
  const s = new UdpReplySender(f.socket)
  s.send(Buffer.from('a'), 53, '192.0.2.1')
  assert.doesNotThrow(() => s.send(Buffer.from('b'), 53, '192.0.2.1'))
  s.send(Buffer.from('c'), 53, '192.0.2.1')
  assert.equal(s.direct, true)
  assert.equal(f.calls.length, 3)
  assert.equal(f.publicSends(), 1)
})
