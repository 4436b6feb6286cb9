/**
 * CheckThread: health-check rounds on a worker thread of their own, against real HTTP servers.
 * A round is timed on the thread, so a main event loop held busy (as a DNS loop under load is) does
 * not add its wait to the latency; a cancelled round closes its connection in the thread; a thread
 * that dies hands its rounds in flight back to the event loop, and a second death within a minute
 * leaves every round there.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { Writable } from 'node:stream'
import { test, type TestContext } from 'node:test'
import { CheckThread } from '../../src/health/check-thread.js'
import { createCheck, RoundClients } from '../../src/health/check.js'
import { resolveSpec } from '../../src/health/spec.js'
import { HealthPoller } from '../../src/health/poller.js'
import { createLogger } from '../../src/log.js'

/** A logger whose lines the test reads. */
function capture(): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = []
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean))
      cb()
    },
  })
  return { log: createLogger('info', sink), lines }
}

const specFor = (port: number, timeoutMs = 5000) => resolveSpec({ kind: 'http', address: '127.0.0.1', port, path: '/healthz', intervalMs: 10_000, timeoutMs })

/** An HTTP server in a child process (its own event loop: this one is held busy in a test), answering 200 at once. */
async function childServer(t: TestContext): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, ['-e', "const s=require('http').createServer((q,r)=>r.end('ok'));s.listen(0,'127.0.0.1',()=>console.log(s.address().port))"], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => child.kill())
  const [chunk] = (await once(child.stdout!, 'data')) as [Buffer]
  return Number(chunk.toString().trim())
}

/** An HTTP server in this process that answers after `delayMs` (0: never), with the sockets it accepted. */
async function localServer(t: TestContext, delayMs: number): Promise<{ port: number; sockets: Socket[] }> {
  const sockets: Socket[] = []
  const server = http.createServer((_req, res) => {
    if (delayMs > 0) setTimeout(() => res.end('ok'), delayMs)
  })
  server.on('connection', (s: Socket) => sockets.push(s))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => {
    server.closeAllConnections()
    server.close()
  })
  return { port: (server.address() as AddressInfo).port, sockets }
}

/** Holds this thread's event loop for `ms`, as a burst of DNS queries does. */
function busy(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) {
    /* spin */
  }
}

test('a round on the thread is timed as the pool answered it, not with the wait of a busy event loop; on the loop the same round counts the wait', async (t) => {
  const port = await childServer(t)
  const thread = new CheckThread(createLogger('silent'))
  t.after(() => thread.close())
  const clients = new RoundClients()
  t.after(() => clients.close())
  const spec = specFor(port)
  // Warm both (first connections, cold code), then time one round each with the loop held 300 ms.
  assert.equal((await thread.createCheck(spec, clients).run(new AbortController().signal)).ok, true)
  assert.equal((await createCheck(spec, clients).run(new AbortController().signal)).ok, true)

  const onThread = thread.createCheck(spec, clients).run(new AbortController().signal)
  busy(300)
  const threaded = await onThread
  const onLoop = createCheck(spec, clients).run(new AbortController().signal)
  busy(300)
  const looped = await onLoop
  assert.equal(threaded.ok, true)
  assert.equal(looped.ok, true)
  assert.ok(looped.latencyMs >= 300, `the loop's round waited with the loop: ${looped.latencyMs} ms`)
  assert.ok(threaded.latencyMs < 150, `the thread's round is the pool's time, not the loop's 300 ms: ${threaded.latencyMs} ms`)
})

test('a round cancelled by the poller ends as cancelled and closes its connection in the thread', async (t) => {
  const { port, sockets } = await localServer(t, 0)
  const thread = new CheckThread(createLogger('silent'))
  t.after(() => thread.close())
  const clients = new RoundClients()
  const ac = new AbortController()
  const round = thread.createCheck(specFor(port), clients).run(ac.signal)
  while (sockets.length === 0) await new Promise((r) => setTimeout(r, 5))
  const closed = once(sockets[0]!, 'close')
  ac.abort()
  const r = await round
  assert.deepEqual([r.ok, r.error], [false, 'cancelled'])
  await closed
  assert.equal(thread.inFlight, 0)
})

test('a thread that dies hands its round in flight to the event loop (answered), a new thread takes the next; a second death within a minute leaves every round on the loop (logged)', async (t) => {
  const { port } = await localServer(t, 150)
  const { log, lines } = capture()
  const thread = new CheckThread(log)
  t.after(() => thread.close())
  const clients = new RoundClients()
  t.after(() => clients.close())
  const spec = specFor(port)

  const first = thread.createCheck(spec, clients).run(new AbortController().signal)
  assert.equal(thread.inFlight, 1)
  thread.crashForTest(7)
  const r1 = await first
  assert.equal(r1.ok, true, `run again on the loop: ${JSON.stringify(r1)}`)
  assert.equal(thread.inFlight, 0)
  assert.equal(thread.threaded, true)
  assert.match(lines.find((l) => l.includes('health-check thread stopped'))!, /exit code 7.*run again on the event loop/)

  const second = thread.createCheck(spec, clients).run(new AbortController().signal)
  assert.equal(thread.inFlight, 1, 'a new thread took the next round')
  thread.crashForTest(8)
  assert.equal((await second).ok, true)
  assert.equal(thread.threaded, false)
  assert.ok(lines.some((l) => l.includes('stopped again within a minute') && l.includes('exit code 8')))

  const third = thread.createCheck(spec, clients).run(new AbortController().signal)
  assert.equal(thread.inFlight, 0, 'on the loop now')
  assert.equal((await third).ok, true)
})

test('a poller with the thread brings a real pool up; close() ends the thread, and rounds asked for after it run on the loop', async (t) => {
  const { port } = await localServer(t, 1)
  const thread = new CheckThread(createLogger('silent'))
  const poller = new HealthPoller({ log: createLogger('silent'), createCheck: thread.createCheck })
  t.after(async () => {
    await poller.close()
    await thread.close()
  })
  const up = new Promise<void>((resolve) => poller.onChange((_v, changes) => changes.some((c) => c.to === 'up') && resolve()))
  poller.setTargets([{ kind: 'http', address: '127.0.0.1', port, path: '/healthz', intervalMs: 100, timeoutMs: 90, rise: 2, fall: 2 }])
  await up
  const [h] = [...poller.view().targets.values()]
  assert.equal(h!.state, 'up')
  assert.ok(h!.ewmaMs !== null && h!.ewmaMs >= 1, `the pool's 1 ms delay is in the latency: ${h!.ewmaMs}`)

  await thread.close()
  assert.equal(thread.threaded, false)
  const clients = new RoundClients()
  t.after(() => clients.close())
  assert.equal((await thread.createCheck(specFor(port), clients).run(new AbortController().signal)).ok, true)
})
